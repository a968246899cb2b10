//! `receipts ingest-folder DIR`: the folder ingester as a command, with a progress bar per file
//! (on a terminal) and a summary. The `receipts` binary only parses [`Args`] and calls [`run`].

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use receipts_domain::Secret;
use receipts_runtime::{LogFormat, TelemetryConfig, shutdown_on_signal, telemetry};
use url::Url;

use crate::Error;
use crate::config::IngestConfig;
use crate::progress::{FileReport, Outcome, Progress};
use crate::watch::{Mode, Summary, ingest_folder};

/// Submit the records of the files in a folder (NDJSON, JSON, CSV, XML) through the gateway,
/// exactly once each; finished files go to DIR/done/, reports of refused records to
/// DIR/rejected/ (docs/bulk.md, "Watched folder").
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The folder.
    pub dir: PathBuf,
    /// The receipt type of the documents [default: retail-receipt/v1, and
    /// retail-receipt-xml/v1 for XML files].
    #[arg(long = "type")]
    pub receipt_type: Option<String>,
    /// The receipt type of XML files [default: --type, else retail-receipt-xml/v1].
    #[arg(long = "xml-type")]
    pub xml_receipt_type: Option<String>,
    /// Take the files present now (waiting for those still being written), then exit: for cron
    /// jobs and tests. Without it, watch the folder until Ctrl-C.
    #[arg(long)]
    pub once: bool,
    /// The gateway's base URL.
    #[arg(long, env = "RECEIPTS_URL", default_value = "http://127.0.0.1:8080")]
    pub url: Url,
    /// A read-write API key (`receipts up` writes one to data/dev-api-key).
    #[arg(long, env = "RECEIPTS_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Records per second at most (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Records per batch request (1 to 1000).
    #[arg(long, default_value_t = IngestConfig::default().batch_size)]
    pub batch_size: usize,
    /// Batch requests in flight.
    #[arg(long, default_value_t = IngestConfig::default().concurrency)]
    pub concurrency: usize,
    /// How long a file must stay unchanged before it is taken.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub quiet_period: Duration,
    /// Watching: how often the folder is looked at.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
    /// After submitting a file, wait until every receipt is terminal and add the REJECTED and
    /// FAILED ones (with their reasons) to the file's report.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits per file at most.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub wait_timeout: Duration,
    /// How long a failing gateway is retried before a file is given up (it stays, with its
    /// checkpoint).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub give_up_after: Duration,
    /// No progress bar (there is none when stderr is not a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

impl Args {
    /// The `[folder_ingest]` settings these arguments stand for.
    pub fn config(&self) -> IngestConfig {
        IngestConfig {
            dir: self.dir.clone(),
            gateway_url: self.url.clone(),
            api_key: self.key.clone().map(Secret::new),
            receipt_type: self.receipt_type.clone(),
            xml_receipt_type: self.xml_receipt_type.clone(),
            batch_size: self.batch_size,
            concurrency: self.concurrency,
            rate: self.rate,
            quiet_period: self.quiet_period,
            poll_interval: self.poll_interval,
            give_up_after: self.give_up_after,
            wait: self.wait,
            wait_timeout: self.wait_timeout,
            ..IngestConfig::default()
        }
    }
}

/// Runs the command: ingests, prints a line per file and a summary. Fails when a file was left
/// in the folder (an error, or Ctrl-C).
pub async fn run(args: Args) -> Result<(), Error> {
    let config = args.config();
    config.validate().map_err(Error::Config)?;
    let telemetry = telemetry::init(
        "receipts-ingest-folder",
        &TelemetryConfig {
            log_format: LogFormat::Pretty,
            log_filter: "warn".into(),
            ..TelemetryConfig::default()
        },
    )
    .map_err(|e| Error::Config(e.to_string()))?;
    let bars = Arc::new(Bars::new(
        !args.no_progress && std::io::stderr().is_terminal(),
    ));
    let mode = if args.once { Mode::Once } else { Mode::Watch };
    let result = ingest_folder(config, bars, mode, shutdown_on_signal()).await;
    telemetry.shutdown();
    let summary = result?;
    print_summary(&summary);
    if summary.complete() {
        Ok(())
    } else {
        let interrupted = summary
            .files
            .iter()
            .filter(|f| matches!(f.outcome, Outcome::Interrupted))
            .count();
        Err(Error::Unfinished {
            files: summary.failed.len() + interrupted,
        })
    }
}

fn print_summary(summary: &Summary) {
    let mut totals = (0u64, 0u64, 0u64, 0u64);
    let mut elapsed = Duration::ZERO;
    let mut run_records = 0;
    for file in &summary.files {
        totals.0 += file.records;
        totals.1 += file.accepted;
        totals.2 += file.replayed;
        totals.3 += file.refused;
        elapsed += file.elapsed;
        run_records +=
            (file.accepted + file.replayed + file.refused).saturating_sub(file.resumed_at);
    }
    for (name, error) in &summary.failed {
        println!("{name}: left in the folder: {error}");
    }
    if summary.files.is_empty() && summary.failed.is_empty() {
        println!("no file ingested");
    }
    if summary.files.len() + summary.failed.len() > 1 {
        let rate = run_records as f64 / elapsed.as_secs_f64().max(1e-3);
        println!(
            "{} files, {} records: {} accepted, {} replayed, {} refused; {run_records} records in {:.1}s ({rate:.0} records/s)",
            summary.files.len(),
            totals.0,
            totals.1,
            totals.2,
            totals.3,
            elapsed.as_secs_f64()
        );
    }
}

/// One line about a finished file.
pub fn describe(report: &FileReport) -> String {
    match &report.outcome {
        Outcome::Done { path } => {
            let mut line = format!(
                "{}: {} records: {} accepted, {} replayed, {} refused in {:.1}s ({:.0} records/s) -> {}",
                report.name,
                report.records,
                report.accepted,
                report.replayed,
                report.refused,
                report.elapsed.as_secs_f64(),
                report.rate(),
                path.display()
            );
            if report.resumed_at > 0 {
                line.push_str(&format!(" (resumed after record {})", report.resumed_at));
            }
            if report.pending > 0 {
                line.push_str(&format!("; {} receipts not terminal yet", report.pending));
            }
            if let Some(report) = &report.report {
                line.push_str(&format!("; refused: {}", report.display()));
            }
            line
        }
        Outcome::Refused { path, reason } => format!(
            "{}: refused, nothing sent ({reason}) -> {}",
            report.name,
            path.display()
        ),
        Outcome::Interrupted => format!(
            "{}: interrupted after record {} of {} (resumes from there)",
            report.name,
            report.accepted + report.replayed + report.refused,
            report.records
        ),
    }
}

/// `{rate}` in a template: records per second, whole.
fn rate(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0}/s", state.per_sec());
}

/// A progress bar per file, on stderr; lines about finished files on stdout.
struct Bars {
    visible: bool,
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn new(visible: bool) -> Self {
        Self {
            visible,
            current: Mutex::new(None),
        }
    }

    fn replace(&self, bar: Option<ProgressBar>) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = current.take() {
            old.finish_and_clear();
        }
        *current = bar;
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            f(bar);
        }
    }

    fn bar(&self, len: Option<u64>, template: &str, message: String) -> ProgressBar {
        let target = if self.visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = match len {
            Some(len) => ProgressBar::with_draw_target(Some(len), target),
            None => ProgressBar::with_draw_target(None, target),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> ").with_key("rate", rate));
        }
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

impl Progress for Bars {
    fn surveying(&self, name: &str, bytes: u64) {
        let bar = self.bar(
            Some(bytes),
            "{spinner} {msg}: reading {bytes}/{total_bytes}",
            name.to_owned(),
        );
        self.replace(Some(bar));
    }

    fn started(&self, name: &str, records: u64, done: u64) {
        let bar = self.bar(
            Some(records),
            "{msg} [{bar:30}] {pos}/{len} records, {rate}, eta {eta}",
            name.to_owned(),
        );
        bar.set_position(done);
        bar.reset_eta();
        self.replace(Some(bar));
    }

    fn advanced(&self, done: u64) {
        self.with(|bar| bar.set_position(done));
    }

    fn waiting(&self, receipts: u64) {
        self.with(|bar| {
            bar.set_length(receipts);
            bar.set_position(0);
            bar.reset_eta();
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} receipts terminal, eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
        });
    }

    fn waited(&self, polled: u64) {
        self.with(|bar| bar.set_position(polled));
    }

    fn finished(&self, report: &FileReport) {
        self.replace(None);
        println!("{}", describe(report));
    }
}
