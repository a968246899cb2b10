//! Prometheus metrics. Code records through the `metrics` facade (`metrics::counter!(…)`) with
//! the names below; a process that serves `/metrics` installs the recorder once ([`install`]) and
//! renders it ([`Recorder::render`]). Without a recorder (unit tests, tools) recording is a no-op.
//!
//! [`CATALOGUE`] is the contract: every series the platform exports, documented in
//! `docs/observability.md` (a test keeps the two equal, and CI checks that the dashboard and the
//! alert rules use only these names).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets, in seconds, for every duration.
pub const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How often recorded histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

pub const HTTP_REQUESTS: &str = "receipts_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "receipts_http_request_duration_seconds";
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "receipts_http_requests_in_flight";
pub const CONSUMER_MESSAGES: &str = "receipts_consumer_messages_total";
pub const CONSUMER_PROCESSING_DURATION: &str = "receipts_consumer_processing_duration_seconds";
pub const CONSUMER_TRANSIENT_FAILURES: &str = "receipts_consumer_transient_failures_total";
pub const CONSUMER_RETRIES_SCHEDULED: &str = "receipts_consumer_retries_scheduled_total";
pub const CONSUMER_DEAD_LETTERED: &str = "receipts_consumer_dead_lettered_total";
pub const CONSUMER_LAG: &str = "receipts_consumer_lag";
pub const CONSUMER_IN_FLIGHT: &str = "receipts_consumer_in_flight";
pub const PRODUCER_MESSAGES: &str = "receipts_producer_messages_total";
pub const PRODUCER_SEND_DURATION: &str = "receipts_producer_send_duration_seconds";
pub const REGISTRY_CALLS: &str = "receipts_registry_calls_total";
pub const REGISTRY_CALL_DURATION: &str = "receipts_registry_call_duration_seconds";
pub const REGISTRY_CALLBACKS: &str = "receipts_registry_callbacks_total";
pub const PROJECTOR_APPLY_DURATION: &str = "receipts_projector_apply_duration_seconds";
pub const PROJECTOR_EVENTS: &str = "receipts_projector_events_total";
pub const TERMINAL_RECEIPTS: &str = "receipts_terminal_receipts_total";
pub const STATUS_CHANGES: &str = "receipts_status_changes_total";
pub const WEBHOOK_DELIVERIES: &str = "receipts_webhook_deliveries_total";
pub const WEBHOOK_ATTEMPT_DURATION: &str = "receipts_webhook_attempt_duration_seconds";
pub const WEBHOOK_ENDPOINTS_DISABLED: &str = "receipts_webhook_endpoints_disabled_total";
pub const STORE_OPERATION_DURATION: &str = "receipts_store_operation_duration_seconds";
pub const STORE_ERRORS: &str = "receipts_store_errors_total";
pub const BUILD_INFO: &str = "receipts_build_info";
pub const RECEIPT_TYPES_RELOADS: &str = "receipts_receipt_types_reloads_total";
pub const RECEIPT_TYPES_LOADED: &str = "receipts_receipt_types_loaded";
pub const FOLDER_INGEST_FILES: &str = "receipts_folder_ingest_files_total";
pub const FOLDER_INGEST_RECORDS: &str = "receipts_folder_ingest_records_total";
pub const FOLDER_INGEST_BYTES_READ: &str = "receipts_folder_ingest_bytes_read_total";
pub const FOLDER_INGEST_FILE_RECORDS: &str = "receipts_folder_ingest_file_records";
pub const FOLDER_INGEST_FILE_RECORDS_DONE: &str = "receipts_folder_ingest_file_records_done";
pub const FOLDER_INGEST_FILES_WAITING: &str = "receipts_folder_ingest_files_waiting";
pub const FOLDER_INGEST_BATCH_DURATION: &str = "receipts_folder_ingest_batch_duration_seconds";
pub const FOLDER_INGEST_BATCH_RETRIES: &str = "receipts_folder_ingest_batch_retries_total";

/// A metric's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn metric(name: &'static str, kind: Kind, help: &'static str) -> Metric {
    Metric { name, kind, help }
}

/// Every metric the platform exports.
pub const CATALOGUE: &[Metric] = &[
    metric(
        HTTP_REQUESTS,
        Kind::Counter,
        "HTTP requests answered, by route template and status.",
    ),
    metric(
        HTTP_REQUEST_DURATION,
        Kind::Histogram,
        "Time from an HTTP request to its response head.",
    ),
    metric(
        HTTP_REQUESTS_IN_FLIGHT,
        Kind::Gauge,
        "HTTP requests being handled.",
    ),
    metric(
        CONSUMER_MESSAGES,
        Kind::Counter,
        "Kafka messages a consumer finished, by topic and outcome.",
    ),
    metric(
        CONSUMER_PROCESSING_DURATION,
        Kind::Histogram,
        "Time from taking a message to finishing it, in-place retries included.",
    ),
    metric(
        CONSUMER_TRANSIENT_FAILURES,
        Kind::Counter,
        "Attempts that failed on the platform's own infrastructure and were retried in place.",
    ),
    metric(
        CONSUMER_RETRIES_SCHEDULED,
        Kind::Counter,
        "Messages sent to a retry tier.",
    ),
    metric(
        CONSUMER_DEAD_LETTERED,
        Kind::Counter,
        "Messages sent to a dead-letter topic.",
    ),
    metric(
        CONSUMER_LAG,
        Kind::Gauge,
        "Messages behind the partition's high watermark (librdkafka statistics).",
    ),
    metric(CONSUMER_IN_FLIGHT, Kind::Gauge, "Messages being processed."),
    metric(
        PRODUCER_MESSAGES,
        Kind::Counter,
        "Messages produced, by topic and whether the broker acknowledged them.",
    ),
    metric(
        PRODUCER_SEND_DURATION,
        Kind::Histogram,
        "Time from producing a message to the broker's acknowledgement (acks=all).",
    ),
    metric(
        REGISTRY_CALLS,
        Kind::Counter,
        "Calls to an external registry, by outcome.",
    ),
    metric(
        REGISTRY_CALL_DURATION,
        Kind::Histogram,
        "Duration of calls to an external registry.",
    ),
    metric(
        REGISTRY_CALLBACKS,
        Kind::Counter,
        "Asynchronous registry results received by the gateway.",
    ),
    metric(
        PROJECTOR_APPLY_DURATION,
        Kind::Histogram,
        "Time to apply one event to the status store.",
    ),
    metric(
        PROJECTOR_EVENTS,
        Kind::Counter,
        "Events the projector applied or found already applied.",
    ),
    metric(
        TERMINAL_RECEIPTS,
        Kind::Counter,
        "Receipts that reached a terminal status.",
    ),
    metric(
        STATUS_CHANGES,
        Kind::Counter,
        "Status changes announced on receipts.status-changed.",
    ),
    metric(
        WEBHOOK_DELIVERIES,
        Kind::Counter,
        "Webhook deliveries that ended or moved to a retry.",
    ),
    metric(
        WEBHOOK_ATTEMPT_DURATION,
        Kind::Histogram,
        "Duration of one webhook HTTP attempt.",
    ),
    metric(
        WEBHOOK_ENDPOINTS_DISABLED,
        Kind::Counter,
        "Webhook endpoints disabled after failing longer than the configured window.",
    ),
    metric(
        STORE_OPERATION_DURATION,
        Kind::Histogram,
        "Duration of store operations.",
    ),
    metric(STORE_ERRORS, Kind::Counter, "Store operations that failed."),
    metric(BUILD_INFO, Kind::Gauge, "The running build; always 1."),
    metric(
        RECEIPT_TYPES_RELOADS,
        Kind::Counter,
        "Reloads of a changed receipt types directory; outcome refused when a type was refused.",
    ),
    metric(
        RECEIPT_TYPES_LOADED,
        Kind::Gauge,
        "Receipt types this service validates with.",
    ),
    metric(
        FOLDER_INGEST_FILES,
        Kind::Counter,
        "Files the folder ingester finished, by outcome.",
    ),
    metric(
        FOLDER_INGEST_RECORDS,
        Kind::Counter,
        "Records the folder ingester finished, by outcome.",
    ),
    metric(
        FOLDER_INGEST_BYTES_READ,
        Kind::Counter,
        "Bytes the folder ingester read from its files (each file is read twice).",
    ),
    metric(
        FOLDER_INGEST_FILE_RECORDS,
        Kind::Gauge,
        "Records of the file being ingested (0 between files).",
    ),
    metric(
        FOLDER_INGEST_FILE_RECORDS_DONE,
        Kind::Gauge,
        "Records of the file being ingested that are finished.",
    ),
    metric(
        FOLDER_INGEST_FILES_WAITING,
        Kind::Gauge,
        "Files in the folder not ingested yet, the one being ingested included.",
    ),
    metric(
        FOLDER_INGEST_BATCH_DURATION,
        Kind::Histogram,
        "Time from sending a batch to the gateway to its answer, retries included.",
    ),
    metric(
        FOLDER_INGEST_BATCH_RETRIES,
        Kind::Counter,
        "Batches (or their items) sent again after a transient failure, by reason.",
    ),
];

/// The process-wide Prometheus recorder.
#[derive(Clone)]
pub struct Recorder {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Every series, in the Prometheus text format (0.0.4).
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

static RECORDER: OnceLock<Recorder> = OnceLock::new();

/// Installs the process-wide recorder, once: every service of the process records into it, so
/// one `/metrics` shows them all. Later calls return the same recorder.
pub fn install() -> Recorder {
    if let Some(recorder) = RECORDER.get() {
        return recorder.clone();
    }
    // `set_buckets` refuses only an empty list.
    let builder = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    // Two threads racing here: the loser's recorder is dropped and it uses the winner's.
    let installed = RECORDER.get_or_init(|| {
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::warn!(%error, "another metrics recorder is installed");
        }
        describe();
        spawn_upkeep(handle.clone());
        Recorder { handle }
    });
    installed.clone()
}

/// The recorder, if [`install`] was called.
pub fn recorder() -> Option<Recorder> {
    RECORDER.get().cloned()
}

fn describe() {
    for m in CATALOGUE {
        let unit = m
            .name
            .ends_with("_seconds")
            .then_some(metrics::Unit::Seconds);
        match (m.kind, unit) {
            (Kind::Counter, _) => metrics::describe_counter!(m.name, m.help),
            (Kind::Gauge, _) => metrics::describe_gauge!(m.name, m.help),
            (Kind::Histogram, Some(unit)) => metrics::describe_histogram!(m.name, unit, m.help),
            (Kind::Histogram, None) => metrics::describe_histogram!(m.name, m.help),
        }
    }
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Folds histogram samples into buckets now and then, so memory stays bounded between scrapes.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start metrics upkeep; histograms are folded at scrape time only");
    }
}

/// Seconds elapsed since `start`, for histograms.
pub fn seconds_since(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for m in CATALOGUE {
            assert!(m.name.starts_with("receipts_"), "{}", m.name);
            match m.kind {
                Kind::Counter => assert!(m.name.ends_with("_total"), "{}", m.name),
                Kind::Gauge | Kind::Histogram => {
                    assert!(!m.name.ends_with("_total"), "{}", m.name)
                }
            }
            if m.kind == Kind::Histogram {
                assert!(m.name.ends_with("_seconds"), "base unit: {}", m.name);
            }
        }
        let mut names: Vec<_> = CATALOGUE.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "no name twice");
    }

    #[test]
    fn the_documentation_lists_exactly_the_catalogue() {
        let doc = include_str!("../../../docs/observability.md");
        let mut documented: Vec<(&str, &str)> = doc
            .lines()
            .filter_map(|line| {
                let mut cells = line.split('|').map(str::trim).skip(1);
                let name = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
                let kind = cells.next()?;
                name.starts_with("receipts_").then_some((name, kind))
            })
            .collect();
        documented.sort_unstable();
        let mut catalogue: Vec<(&str, &str)> = CATALOGUE
            .iter()
            .map(|m| (m.name, m.kind.as_str()))
            .collect();
        catalogue.sort_unstable();
        assert_eq!(documented, catalogue);
    }
}
