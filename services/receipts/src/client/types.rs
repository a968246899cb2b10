//! `types list` and `types show`: the receipt types a gateway accepts. (`types list --dir DIR`,
//! `types check` and `types validate` work offline on a types directory: see main.rs.)

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use receipts_client::TypeSummary;

use super::connection::ConnectionArgs;
use super::exit;
use super::output::{self, Format, ListFormat, Row, or_dash};

pub const LIST_EXAMPLES: &str = "\
Examples:
  receipts types list                      # the types the API accepts
  receipts types list --output json | jq -r '.[].id'
  receipts types list --dir receipt-types  # offline: the types a directory defines";

pub const SHOW_EXAMPLES: &str = "\
Examples:
  receipts types show restaurant-bill/v1
  receipts types show retail-receipt/v1 --output json | jq .schema > retail.schema.json";

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List the types a types directory defines, offline, instead of asking the API.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The type, as `Receipt-Type` names it: NAME/VERSION.
    #[arg(value_name = "NAME/VERSION")]
    pub id: String,
    /// text: the type and its JSON Schema; json: the API's document.
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

impl Row for TypeSummary {
    const COLUMNS: &'static [&'static str] = &["id", "status", "media_types", "aliases"];
    fn cells(&self) -> Vec<String> {
        let status = match self.sunset {
            Some(sunset) => format!("{} (sunset {sunset})", self.status),
            None => self.status.clone(),
        };
        let aliases: Vec<String> = self
            .aliases
            .iter()
            .map(|a| format!("{} ({})", a.id, a.media_type))
            .collect();
        vec![
            self.id.clone(),
            status,
            self.media_types.join(","),
            if aliases.is_empty() {
                "-".into()
            } else {
                aliases.join(", ")
            },
        ]
    }
}

/// `types list` from the API (main.rs handles `--dir`).
pub async fn list(args: ListArgs) -> anyhow::Result<u8> {
    let types = args.connection.client()?.receipt_types().await?;
    output::list(&types, args.output)?;
    Ok(exit::OK)
}

pub async fn show(args: ShowArgs) -> anyhow::Result<u8> {
    let Some((name, version)) = args.id.split_once('/') else {
        anyhow::bail!(
            "a type is NAME/VERSION, e.g. retail-receipt/v1, not {:?}",
            args.id
        );
    };
    let detail = args
        .connection
        .client()?
        .receipt_type(name, version)
        .await?;
    match args.output {
        Format::Json => output::json(&detail)?,
        Format::Text => {
            let t = &detail.summary;
            let mut out = std::io::stdout().lock();
            let aliases: Vec<String> = t
                .aliases
                .iter()
                .map(|a| format!("{} ({})", a.id, a.media_type))
                .collect();
            output::fields(
                &mut out,
                &[
                    ("id", t.id.clone()),
                    ("status", t.status.clone()),
                    (
                        "deprecated since",
                        or_dash(t.deprecated_since.map(|d| d.to_string()).as_deref()),
                    ),
                    (
                        "sunset",
                        or_dash(t.sunset.map(|d| d.to_string()).as_deref()),
                    ),
                    ("media types", t.media_types.join(", ")),
                    (
                        "aliases",
                        if aliases.is_empty() {
                            "-".into()
                        } else {
                            aliases.join(", ")
                        },
                    ),
                    ("description", t.description.clone()),
                ],
            )?;
            writeln!(out, "\nschema")?;
            serde_json::to_writer_pretty(&mut out, &detail.schema)?;
            writeln!(out)?;
        }
    }
    Ok(exit::OK)
}
