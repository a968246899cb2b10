//! `receipts list`: a tenant's receipts straight from the store, for operators (partners use
//! `GET /v1/receipts`; the query and its rules are the same).

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use receipts_core::Receipts;
use receipts_domain::listing::{ListRequest, page_limit};
use receipts_domain::{Order, ReceiptSummary, Status, TenantId};
use receipts_store::Stores;

/// How listed receipts are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns with a header line.
    Table,
    /// One JSON object per line.
    Ndjson,
}

/// What to list.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    pub tenant: String,
    /// Received at or after this RFC 3339 time (default: 30 days before `--to`).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// Received before this RFC 3339 time (default: now).
    #[arg(long)]
    pub to: Option<DateTime<Utc>>,
    /// Only these statuses (comma-separated, e.g. REJECTED,FAILED).
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    pub status: Vec<Status>,
    /// Only this receipt type.
    #[arg(long = "type")]
    pub receipt_type: Option<String>,
    /// Oldest first instead of newest first.
    #[arg(long)]
    pub asc: bool,
    /// Receipts per page (at most 10,000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Every page, not only the first.
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(&s.trim().to_ascii_uppercase()).ok_or_else(|| {
        format!("unknown status {s:?}; one of RECEIVED, VALIDATED, ACCEPTED, REJECTED, FAILED")
    })
}

/// Prints the receipts `args` selects to stdout; returns how many.
pub async fn print(stores: &Stores, args: ListArgs) -> anyhow::Result<usize> {
    let tenant = TenantId::parse(&args.tenant)?;
    let limit = page_limit(Some(args.limit))?;
    let query = ListRequest {
        from: args.from,
        to: args.to,
        statuses: args.status.into_iter().collect(),
        receipt_type: args.receipt_type,
        order: Some(if args.asc { Order::Asc } else { Order::Desc }),
    }
    .resolve(Utc::now())?;
    let receipts = Receipts::new(
        stores.receipts.clone(),
        stores.reservations.clone(),
        stores.documents.clone(),
    );
    let mut out = std::io::stdout().lock();
    if args.output == Output::Table {
        writeln!(
            out,
            "{:<36}  {:<9}  {:<24}  {:<24}  type",
            "id", "status", "received_at", "updated_at"
        )?;
    }
    let mut position = None;
    let mut printed = 0;
    loop {
        let page = receipts.page(&tenant, &query, position, limit).await?;
        let mut summaries = receipts.summaries(tenant.clone(), page.ids, query.order);
        while let Some(summary) = summaries.next().await {
            write_one(&mut out, args.output, &summary?)?;
            printed += 1;
        }
        match page.next {
            Some(next) if args.all => position = Some(next),
            Some(_) => {
                eprintln!("more receipts follow: --all lists every page");
                break;
            }
            None => break,
        }
    }
    Ok(printed)
}

fn write_one(out: &mut impl Write, output: Output, s: &ReceiptSummary) -> anyhow::Result<()> {
    match output {
        Output::Ndjson => {
            serde_json::to_writer(&mut *out, s)?;
            writeln!(out)?;
        }
        Output::Table => {
            let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
            writeln!(
                out,
                "{:<36}  {:<9}  {:<24}  {:<24}  {}",
                s.id,
                s.status,
                time(s.received_at),
                time(s.updated_at),
                s.receipt_type.as_deref().unwrap_or("-")
            )?;
        }
    }
    Ok(())
}
