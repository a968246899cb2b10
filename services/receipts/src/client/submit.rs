//! `submit FILE...`: each file is one receipt document, submitted with a deterministic
//! idempotency key (`file-<sha256 of its bytes>`), so running the same command again replays
//! instead of creating receipts twice.
//!
//! How a file's `Content-Type` and `Receipt-Type` are chosen (docs/cli.md):
//! - `--content-type`, else the extension (`.xml`: `application/xml`, `.json`:
//!   `application/json`), else the first character (`<`: XML, anything else JSON);
//! - `--type`, else the type an XML document declares by its root element's namespace
//!   `urn:receipts:<name>:<version>` (the API's type list says which name accepts XML: for
//!   `urn:receipts:retail-receipt:v1` it is the alias `retail-receipt-xml/v1`), else
//!   `retail-receipt/v1` for JSON and `retail-receipt-xml/v1` for XML. JSON documents declare no
//!   type: the receipt types refuse members they do not define.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use receipts_client::{Client, Problem, Submission, TypeSummary};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::connection::ConnectionArgs;
use super::exit;
use super::output::{self, Format};

pub const EXAMPLES: &str = "\
Examples:
  receipts submit examples/receipts/retail-valid.json
  receipts submit --type fuel-receipt/v1 pump-3/*.json
  receipts submit exports/2026-11-20/*.xml --callback-url https://erp.example.com/receipts/done
  receipts sample --type restaurant-bill/v1 | receipts submit --type restaurant-bill/v1 -
  ID=$(receipts submit r.json --output json | jq -r '.files[0].id') && receipts watch \"$ID\"

Each file is submitted with the idempotency key file-<sha256 of its bytes>: submitting the same
file again answers with its first receipt (\"replayed\"). Exit code 2 when the API refused a file,
6 when it could not be reached (see docs/cli.md).";

pub const DEFAULT_JSON_TYPE: &str = "retail-receipt/v1";
pub const DEFAULT_XML_TYPE: &str = "retail-receipt-xml/v1";
const JSON: &str = "application/json";
const XML: &str = "application/xml";

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Receipt documents (JSON or XML); `-` reads one from standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The Receipt-Type of every file [default: from each file: see below].
    #[arg(long = "type", value_name = "NAME/VERSION")]
    pub receipt_type: Option<String>,
    /// The Content-Type of every file [default: by extension, else by the first character].
    #[arg(long, value_name = "MEDIA_TYPE")]
    pub content_type: Option<String>,
    /// POST the receipt's terminal status to this URL, signed (the Callback-Url header).
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
    /// The Idempotency-Key (one FILE only) [default: file-<sha256 of the file>].
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Submissions in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// text: a line per file and a summary; json: `{accepted, replayed, refused, errors, files}`.
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What became of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub file: String,
    /// `accepted`, `replayed`, `refused` (the API said no) or `error` (not submitted).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it was not submitted: the API was unavailable (retried) rather than a local problem.
    #[serde(skip)]
    unavailable: bool,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    accepted: usize,
    replayed: usize,
    refused: usize,
    errors: usize,
    files: Vec<FileOutcome>,
}

impl Summary {
    /// 0 when every file is in; 6 when the API was unavailable for some; else 1 for a local
    /// error (unreadable file); else 2 when the API refused some.
    fn exit_code(&self) -> u8 {
        if self.files.iter().any(|f| f.unavailable) {
            exit::UNAVAILABLE
        } else if self.errors > 0 {
            exit::LOCAL
        } else if self.refused > 0 {
            exit::REJECTED
        } else {
            exit::OK
        }
    }
}

/// What every file's submission shares.
struct Shared {
    client: Client,
    receipt_type: Option<String>,
    content_type: Option<String>,
    callback_url: Option<String>,
    idempotency_key: Option<String>,
    /// The API's receipt types, fetched once if a file needs them.
    types: OnceCell<Vec<TypeSummary>>,
}

pub async fn run(args: SubmitArgs) -> anyhow::Result<u8> {
    anyhow::ensure!(
        args.idempotency_key.is_none() || args.files.len() == 1,
        "--idempotency-key names one submission: give one FILE"
    );
    anyhow::ensure!(
        args.files.iter().filter(|f| is_stdin(f)).count() <= 1,
        "standard input (-) can be read once"
    );
    let context = Arc::new(Shared {
        client: args.connection.client()?,
        receipt_type: args.receipt_type,
        content_type: args.content_type,
        callback_url: args.callback_url,
        idempotency_key: args.idempotency_key,
        types: OnceCell::new(),
    });
    let text = args.output == Format::Text;
    let bar = if args.files.len() > 1 && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(args.files.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} files  {elapsed}  {msg}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut summary = Summary::default();
    let mut outcomes = futures::stream::iter(args.files)
        .map(|file| {
            let context = context.clone();
            async move { submit_file(&context, &file).await }
        })
        .buffered(usize::from(args.concurrency));
    while let Some(result) = outcomes.next().await {
        // A refused key or scope refuses every file alike: stop at the first.
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => {
                bar.finish_and_clear();
                return Err(e);
            }
        };
        bar.inc(1);
        match outcome.outcome {
            "accepted" => summary.accepted += 1,
            "replayed" => summary.replayed += 1,
            "refused" => summary.refused += 1,
            _ => summary.errors += 1,
        }
        if text {
            bar.suspend(|| writeln!(std::io::stdout().lock(), "{}", line(&outcome)))?;
        }
        bar.set_message(format!(
            "{} in, {} refused",
            summary.accepted + summary.replayed,
            summary.refused + summary.errors
        ));
        summary.files.push(outcome);
    }
    bar.finish_and_clear();
    if text {
        eprintln!(
            "{} file(s): {} accepted, {} replayed, {} refused{}",
            summary.files.len(),
            summary.accepted,
            summary.replayed,
            summary.refused,
            if summary.errors > 0 {
                format!(", {} not submitted", summary.errors)
            } else {
                String::new()
            }
        );
    } else {
        output::json(&summary)?;
    }
    Ok(summary.exit_code())
}

fn line(o: &FileOutcome) -> String {
    match (&o.id, &o.problem, &o.error) {
        (Some(id), _, _) => format!("{:<8}  {id}  {}", o.outcome, o.file),
        (None, Some(problem), _) => format!("{:<8}  {}  {problem}", o.outcome, o.file),
        (None, None, error) => format!(
            "{:<8}  {}  {}",
            o.outcome,
            o.file,
            error.as_deref().unwrap_or("")
        ),
    }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Submits one file. `Err` only for a problem that refuses every file alike (401, 403).
async fn submit_file(context: &Shared, path: &Path) -> anyhow::Result<FileOutcome> {
    let mut outcome = FileOutcome {
        file: path.display().to_string(),
        outcome: "error",
        id: None,
        receipt_type: None,
        idempotency_key: None,
        problem: None,
        error: None,
        unavailable: false,
    };
    let document = match read(path) {
        Ok(document) => document,
        Err(e) => {
            outcome.error = Some(format!("{e:#}"));
            return Ok(outcome);
        }
    };
    let content_type = context
        .content_type
        .clone()
        .unwrap_or_else(|| guess_content_type(path, &document).to_owned());
    let receipt_type = match receipt_type(context, &content_type, &document).await {
        Ok(t) => t,
        Err(e) => {
            outcome.unavailable = e.is_unavailable();
            outcome.error = Some(format!("reading the API's receipt types: {e}"));
            return Ok(outcome);
        }
    };
    let key = context
        .idempotency_key
        .clone()
        .unwrap_or_else(|| file_key(&document));
    outcome.receipt_type = Some(receipt_type.clone());
    outcome.idempotency_key = Some(key.clone());
    let mut submission = Submission::new(document, content_type, receipt_type, key);
    submission.callback_url = context.callback_url.clone();
    match context.client.submit(&submission).await {
        Ok(accepted) => {
            outcome.outcome = if accepted.replayed {
                "replayed"
            } else {
                "accepted"
            };
            outcome.id = Some(accepted.id);
        }
        Err(e) if matches!(e.status(), Some(401 | 403)) => return Err(e.into()),
        Err(receipts_client::Error::Problem(problem)) if problem.status < 500 => {
            outcome.outcome = "refused";
            outcome.problem = Some(*problem);
        }
        Err(e) => {
            outcome.unavailable = e.is_unavailable();
            outcome.error = Some(e.to_string());
        }
    }
    Ok(outcome)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    if is_stdin(path) {
        let mut document = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut document)
            .context("reading standard input")?;
        return Ok(document);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The flag's type, else the one the document declares, else the default of its format.
async fn receipt_type(
    context: &Shared,
    content_type: &str,
    document: &[u8],
) -> receipts_client::Result<String> {
    if let Some(t) = &context.receipt_type {
        return Ok(t.clone());
    }
    let xml = is_xml(content_type);
    if xml && let Some(declared) = declared_xml_type(document) {
        let types = context
            .types
            .get_or_try_init(|| context.client.receipt_types())
            .await?;
        if let Some(t) = resolve_type(&declared, XML, types) {
            return Ok(t);
        }
    }
    Ok(if xml {
        DEFAULT_XML_TYPE
    } else {
        DEFAULT_JSON_TYPE
    }
    .to_owned())
}

fn is_xml(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case(XML) || media.eq_ignore_ascii_case("text/xml")
}

/// `file-<sha256 hex of the bytes>`.
pub fn file_key(document: &[u8]) -> String {
    let digest = Sha256::digest(document);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("file-{hex}")
}

/// By extension, else by the first non-blank character.
pub fn guess_content_type(path: &Path, document: &[u8]) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("xml") => XML,
        Some(e) if e.eq_ignore_ascii_case("json") => JSON,
        _ => {
            let text = document.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(document);
            match text.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'<') => XML,
                _ => JSON,
            }
        }
    }
}

/// `name/version` from a root element in the namespace `urn:receipts:<name>:<version>`.
pub fn declared_xml_type(document: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(document).ok()?;
    let parsed = roxmltree::Document::parse(text).ok()?;
    let namespace = parsed.root_element().tag_name().namespace()?;
    let (name, version) = namespace.strip_prefix("urn:receipts:")?.rsplit_once(':')?;
    (!name.is_empty() && !version.is_empty()).then(|| format!("{name}/{version}"))
}

/// The name under which `declared` accepts `media_type`: itself, or one of its aliases.
pub fn resolve_type(declared: &str, media_type: &str, types: &[TypeSummary]) -> Option<String> {
    let t = types.iter().find(|t| t.id == declared)?;
    if t.media_types.iter().any(|m| m == media_type) {
        return Some(t.id.clone());
    }
    t.aliases
        .iter()
        .find(|a| a.media_type == media_type)
        .map(|a| a.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/receipts")
    }

    #[test]
    fn content_types_come_from_the_extension_then_the_first_character() {
        assert_eq!(guess_content_type(Path::new("a.XML"), b"{}"), XML);
        assert_eq!(guess_content_type(Path::new("a.json"), b"<x/>"), JSON);
        assert_eq!(
            guess_content_type(Path::new("-"), b"\xEF\xBB\xBF \n<Receipt/>"),
            XML
        );
        assert_eq!(guess_content_type(Path::new("a.txt"), b" {\"a\":1}"), JSON);
    }

    #[test]
    fn xml_documents_declare_their_type_by_namespace() {
        let xml = std::fs::read(examples().join("retail-xml-valid.xml")).expect("example");
        assert_eq!(
            declared_xml_type(&xml).as_deref(),
            Some("retail-receipt/v1")
        );
        assert_eq!(
            declared_xml_type(b"<FuelReceipt xmlns=\"urn:receipts:fuel-receipt:v1\"/>").as_deref(),
            Some("fuel-receipt/v1")
        );
        assert_eq!(declared_xml_type(b"<Invoice xmlns=\"urn:oasis:x\"/>"), None);
        assert_eq!(declared_xml_type(b"<Receipt/>"), None);
        assert_eq!(declared_xml_type(b"not xml"), None);
    }

    #[test]
    fn a_declared_type_resolves_to_the_name_that_accepts_the_format() {
        let types: Vec<TypeSummary> = serde_json::from_value(serde_json::json!([
            {"id": "retail-receipt/v1", "name": "retail-receipt", "version": "v1",
             "description": "", "status": "active", "media_types": ["application/json"],
             "aliases": [{"id": "retail-receipt-xml/v1", "media_type": "application/xml"}],
             "url": ""},
            {"id": "fuel-receipt/v1", "name": "fuel-receipt", "version": "v1",
             "description": "", "status": "active",
             "media_types": ["application/json", "application/xml"], "aliases": [], "url": ""}
        ]))
        .expect("types");
        assert_eq!(
            resolve_type("retail-receipt/v1", XML, &types).as_deref(),
            Some("retail-receipt-xml/v1")
        );
        assert_eq!(
            resolve_type("fuel-receipt/v1", XML, &types).as_deref(),
            Some("fuel-receipt/v1")
        );
        assert_eq!(resolve_type("restaurant-bill/v1", XML, &types), None);
    }

    #[test]
    fn idempotency_keys_are_the_documents_hash() {
        assert_eq!(
            file_key(b"abc"),
            "file-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_exit_code_tells_the_worst_outcome() {
        let file = |outcome: &'static str, unavailable: bool| FileOutcome {
            file: "f".into(),
            outcome,
            id: None,
            receipt_type: None,
            idempotency_key: None,
            problem: None,
            error: None,
            unavailable,
        };
        let summary = |files: Vec<FileOutcome>, refused, errors| Summary {
            refused,
            errors,
            files,
            ..Default::default()
        };
        assert_eq!(summary(vec![file("accepted", false)], 0, 0).exit_code(), 0);
        assert_eq!(summary(vec![file("refused", false)], 1, 0).exit_code(), 2);
        assert_eq!(summary(vec![file("error", false)], 1, 1).exit_code(), 1);
        assert_eq!(summary(vec![file("error", true)], 1, 1).exit_code(), 6);
    }
}
