//! `get`, `document`, `list`, `watch`, `deliveries`, `redeliver`: reading receipts.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use receipts_client::{Delivery, ListFilter, Order, Receipt, ReceiptSummary, Status};

use super::connection::ConnectionArgs;
use super::exit;
use super::output::{self, Format, ListFormat, ListWriter, Row, or_dash, time};

pub const GET_EXAMPLES: &str = "\
Examples:
  receipts get 01a1fdb0-466b-7339-a3c0-b494a01de95d
  receipts get 01a1fdb0-466b-7339-a3c0-b494a01de95d --output json | jq .registrations";

pub const DOCUMENT_EXAMPLES: &str = "\
Examples:
  receipts document 01a1fdb0-466b-7339-a3c0-b494a01de95d > receipt.json
  receipts document 01a1fdb0-466b-7339-a3c0-b494a01de95d --out receipt.xml";

pub const LIST_EXAMPLES: &str = "\
Examples:
  receipts list                                   # the last 30 days, newest first, first 100
  receipts list --status REJECTED,FAILED --from 7d
  receipts list --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z --all --output csv > nov.csv
  receipts list --type retail-receipt/v1 --order asc --limit 1000 --all --output ndjson";

pub const WATCH_EXAMPLES: &str = "\
Examples:
  receipts watch 01a1fdb0-466b-7339-a3c0-b494a01de95d
  receipts watch \"$ID\" --timeout 2m --interval 500ms && echo accepted

Exit codes: 0 ACCEPTED, 2 REJECTED, 3 FAILED, 4 not terminal within --timeout (5 and 6: API
errors, as for every command).";

pub const DELIVERIES_EXAMPLES: &str = "\
Examples:
  receipts deliveries 01a1fdb0-466b-7339-a3c0-b494a01de95d
  receipts deliveries \"$ID\" --output json | jq '.[].attempts'";

pub const REDELIVER_EXAMPLES: &str = "\
Examples:
  receipts redeliver 01a1fdb0-466b-7339-a3c0-b494a01de95d msg_5f0c1e9a2b7d4c3e8a1f6b2d9c0e7a41";

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The receipt's id.
    pub id: String,
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub async fn get(args: GetArgs) -> anyhow::Result<u8> {
    let receipt = args.connection.client()?.receipt(&args.id).await?;
    match args.output {
        Format::Json => output::json(&receipt)?,
        Format::Text => print_receipt(&mut std::io::stdout().lock(), &receipt)?,
    }
    Ok(exit::OK)
}

fn print_receipt(out: &mut impl Write, r: &Receipt) -> std::io::Result<()> {
    output::fields(
        out,
        &[
            ("id", r.id.clone()),
            ("status", r.status.to_string()),
            ("type", or_dash(r.receipt_type.as_deref())),
            ("content type", or_dash(r.content_type.as_deref())),
            ("callback url", or_dash(r.callback_url.as_deref())),
            ("received", r.received_at.map(time).unwrap_or("-".into())),
            ("updated", time(r.updated_at)),
        ],
    )?;
    section(
        out,
        "reasons",
        r.reasons
            .iter()
            .map(|x| vec![format!("  {}", x.path), x.code.clone(), x.message.clone()]),
    )?;
    section(
        out,
        "registrations",
        r.registrations.iter().map(|x| {
            vec![
                format!("  {}", x.registry),
                x.registration_id.clone(),
                time(x.registered_at),
                attempts(x.attempts),
            ]
        }),
    )?;
    section(
        out,
        "failures",
        r.failures.iter().map(|x| {
            vec![
                format!("  {}", x.registry),
                x.code.clone(),
                time(x.failed_at),
                attempts(x.attempts),
                x.reason.clone(),
            ]
        }),
    )?;
    section(
        out,
        "timeline",
        r.timeline.iter().map(|x| {
            let event = match &x.registry {
                Some(registry) => format!("{} ({registry})", x.event),
                None => x.event.clone(),
            };
            vec![
                format!("  {}", time(x.occurred_at)),
                event,
                x.status.to_string(),
            ]
        }),
    )?;
    Ok(())
}

fn attempts(n: u32) -> String {
    if n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}

#[derive(Debug, Args)]
pub struct DocumentArgs {
    /// The receipt's id.
    pub id: String,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'O', value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub async fn document(args: DocumentArgs) -> anyhow::Result<u8> {
    let document = args.connection.client()?.document(&args.id).await?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &document.bytes)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{} bytes ({}) written to {}",
                document.bytes.len(),
                or_dash(document.content_type.as_deref()),
                path.display()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&document.bytes)?;
            out.flush()?;
        }
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Received at or after: an RFC 3339 time, or a duration ago such as 7d or 12h
    /// [default: 30 days before --to].
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub from: Option<DateTime<Utc>>,
    /// Received before: an RFC 3339 time, or a duration ago [default: now].
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub to: Option<DateTime<Utc>>,
    /// Only these statuses (comma-separated): RECEIVED, VALIDATED, ACCEPTED, REJECTED, FAILED.
    #[arg(long, value_delimiter = ',', value_parser = parse_status, value_name = "STATUS")]
    pub status: Vec<Status>,
    /// Only this receipt type, e.g. retail-receipt/v1.
    #[arg(long = "type", value_name = "NAME/VERSION")]
    pub receipt_type: Option<String>,
    /// desc: newest first; asc: oldest first.
    #[arg(long, value_parser = ["desc", "asc"], default_value = "desc")]
    pub order: String,
    /// Receipts per page (1 to 10,000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Every page, following the cursors, not only the first.
    #[arg(long)]
    pub all: bool,
    #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// An RFC 3339 time, or a duration before now (`7d`, `12h`, `90m`).
fn parse_time(value: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.to_utc());
    }
    let ago = humantime::parse_duration(value).map_err(|_| {
        format!(
            "expected an RFC 3339 time (2026-11-01T00:00:00Z) or a duration ago (7d), not {value:?}"
        )
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| Utc::now().checked_sub_signed(ago))
        .ok_or_else(|| format!("{value} ago is out of range"))
}

fn parse_status(value: &str) -> Result<Status, String> {
    Status::parse(value).ok_or_else(|| {
        format!("unknown status {value:?}; one of RECEIVED, VALIDATED, ACCEPTED, REJECTED, FAILED")
    })
}

impl Row for ReceiptSummary {
    const COLUMNS: &'static [&'static str] = &["id", "status", "type", "received_at", "updated_at"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.status.to_string(),
            or_dash(self.receipt_type.as_deref()),
            time(self.received_at),
            time(self.updated_at),
        ]
    }
}

pub async fn list(args: ListArgs) -> anyhow::Result<u8> {
    let client = args.connection.client()?;
    let filter = ListFilter {
        from: args.from,
        to: args.to,
        statuses: args.status,
        receipt_type: args.receipt_type,
        order: Some(if args.order == "asc" {
            Order::Asc
        } else {
            Order::Desc
        }),
        limit: Some(args.limit),
    };
    let mut writer = ListWriter::new(std::io::stdout().lock(), args.output);
    let mut cursor: Option<String> = None;
    loop {
        let page = client.list(&filter, cursor.as_deref()).await?;
        writer.rows(&page.receipts)?;
        match page.next_cursor {
            Some(next) if args.all => cursor = Some(next),
            Some(_) => {
                eprintln!("more receipts follow: --all lists every page");
                break;
            }
            None => break,
        }
    }
    writer.finish::<ReceiptSummary>()?;
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The receipt's id.
    pub id: String,
    /// Give up (exit 4) when the receipt is not terminal after this long.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Time between two polls.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// text: a line per status change, then the outcome; json: the final receipt only.
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The exit code of a watched receipt's status.
pub fn watch_exit(status: Status) -> u8 {
    match status {
        Status::Accepted => exit::OK,
        Status::Rejected => exit::REJECTED,
        Status::Failed => exit::FAILED,
        _ => exit::TIMEOUT,
    }
}

pub async fn watch(args: WatchArgs) -> anyhow::Result<u8> {
    let client = args.connection.client()?;
    let deadline = tokio::time::Instant::now() + args.timeout;
    let interval = args.interval.max(Duration::from_millis(50));
    let text = args.output == Format::Text;
    let mut last: Option<Status> = None;
    loop {
        let receipt = client.receipt(&args.id).await?;
        if text && last != Some(receipt.status) {
            writeln!(
                std::io::stdout().lock(),
                "{}  {}",
                time(receipt.updated_at),
                receipt.status
            )?;
        }
        last = Some(receipt.status);
        let done = receipt.status.is_terminal();
        let now = tokio::time::Instant::now();
        if done || now >= deadline {
            if text {
                print_outcome(&mut std::io::stdout().lock(), &receipt)?;
            } else {
                output::json(&receipt)?;
            }
            if !done {
                eprintln!(
                    "still {} after {}",
                    receipt.status,
                    humantime::format_duration(args.timeout)
                );
            }
            return Ok(watch_exit(receipt.status));
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}

/// What a terminal status comes with: registrations, reasons or failures, aligned.
fn print_outcome(out: &mut impl Write, r: &Receipt) -> std::io::Result<()> {
    let lines: Vec<Vec<String>> = match r.status {
        Status::Accepted => r
            .registrations
            .iter()
            .map(|x| vec![format!("  {}", x.registry), x.registration_id.clone()])
            .collect(),
        Status::Rejected => r
            .reasons
            .iter()
            .map(|x| vec![format!("  {}", x.path), x.code.clone(), x.message.clone()])
            .collect(),
        Status::Failed => r
            .failures
            .iter()
            .map(|x| {
                vec![
                    format!("  {}", x.registry),
                    x.code.clone(),
                    x.reason.clone(),
                ]
            })
            .collect(),
        _ => Vec::new(),
    };
    output::write_table(out, &lines)
}

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// The receipt's id.
    pub id: String,
    #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

impl Row for Delivery {
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "destination",
        "event",
        "status",
        "attempts",
        "last_attempt",
        "url",
    ];
    fn cells(&self) -> Vec<String> {
        let last = self
            .attempts
            .last()
            .map(|a| match (a.http_status, &a.error) {
                (_, Some(error)) => error.clone(),
                (Some(status), None) => format!("HTTP {status}"),
                (None, None) => "-".into(),
            });
        vec![
            self.id.clone(),
            self.destination.to_string(),
            self.event_type.clone(),
            match &self.failure_reason {
                Some(reason) => format!("{} ({reason})", self.status),
                None => self.status.clone(),
            },
            self.attempts.len().to_string(),
            or_dash(last.as_deref()),
            self.url.clone(),
        ]
    }
}

pub async fn deliveries(args: DeliveriesArgs) -> anyhow::Result<u8> {
    let deliveries = args.connection.client()?.deliveries(&args.id).await?;
    output::list(&deliveries, args.output)?;
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub struct RedeliverArgs {
    /// The receipt's id.
    pub id: String,
    /// The message's id (its webhook-id, `msg_…`; see `receipts deliveries`).
    pub delivery: String,
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub async fn redeliver(args: RedeliverArgs) -> anyhow::Result<u8> {
    let delivery = args
        .connection
        .client()?
        .redeliver(&args.id, &args.delivery)
        .await?;
    match args.output {
        Format::Json => output::json(&delivery)?,
        Format::Text => writeln!(
            std::io::stdout().lock(),
            "{} to {} queued again ({})",
            delivery.id,
            delivery.url,
            delivery.status
        )?,
    }
    Ok(exit::OK)
}

/// A titled table of a receipt's details; nothing when there are no rows.
fn section(
    out: &mut impl Write,
    title: &str,
    rows: impl Iterator<Item = Vec<String>>,
) -> std::io::Result<()> {
    let lines: Vec<Vec<String>> = rows.collect();
    if lines.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{title}")?;
    output::write_table(out, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_a_duration_ago() {
        assert_eq!(
            parse_time("2026-11-01T01:00:00+01:00").expect("time"),
            "2026-11-01T00:00:00Z"
                .parse::<DateTime<Utc>>()
                .expect("time")
        );
        let week_ago = parse_time("7d").expect("duration");
        let expected = Utc::now() - chrono::Duration::days(7);
        assert!((week_ago - expected).num_seconds().abs() < 5);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn statuses_are_case_insensitive() {
        assert_eq!(parse_status("rejected"), Ok(Status::Rejected));
        assert!(parse_status("done").is_err());
    }

    #[test]
    fn watch_exit_codes() {
        assert_eq!(watch_exit(Status::Accepted), 0);
        assert_eq!(watch_exit(Status::Rejected), 2);
        assert_eq!(watch_exit(Status::Failed), 3);
        assert_eq!(watch_exit(Status::Validated), 4);
    }
}
