//! The folder ingester's metrics (names in `receipts_telemetry::metrics`, documented in
//! docs/observability.md). Without an installed recorder (tests, a CLI without `/metrics`)
//! recording is a no-op.

use std::time::Duration;

use receipts_telemetry::metrics::{
    FOLDER_INGEST_BATCH_DURATION, FOLDER_INGEST_BATCH_RETRIES, FOLDER_INGEST_BYTES_READ,
    FOLDER_INGEST_FILE_RECORDS, FOLDER_INGEST_FILE_RECORDS_DONE, FOLDER_INGEST_FILES,
    FOLDER_INGEST_FILES_WAITING, FOLDER_INGEST_RECORDS,
};

/// The `service` label of every series.
pub const SERVICE: &str = "folder-ingest";

/// How a file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcome {
    Done,
    Refused,
    Failed,
}

pub fn file_finished(outcome: FileOutcome) {
    let outcome = match outcome {
        FileOutcome::Done => "done",
        FileOutcome::Refused => "refused",
        FileOutcome::Failed => "failed",
    };
    metrics::counter!(FOLDER_INGEST_FILES, "service" => SERVICE, "outcome" => outcome).increment(1);
}

/// Records finished, by outcome.
pub fn records(accepted: u64, replayed: u64, refused: u64) {
    for (outcome, count) in [
        ("accepted", accepted),
        ("replayed", replayed),
        ("refused", refused),
    ] {
        if count > 0 {
            metrics::counter!(FOLDER_INGEST_RECORDS, "service" => SERVICE, "outcome" => outcome)
                .increment(count);
        }
    }
}

pub fn bytes_read(bytes: usize) {
    metrics::counter!(FOLDER_INGEST_BYTES_READ, "service" => SERVICE).increment(bytes as u64);
}

/// The progress of the current file (`records` 0: none).
pub fn file_progress(records: u64, done: u64) {
    metrics::gauge!(FOLDER_INGEST_FILE_RECORDS, "service" => SERVICE).set(records as f64);
    metrics::gauge!(FOLDER_INGEST_FILE_RECORDS_DONE, "service" => SERVICE).set(done as f64);
}

pub fn files_waiting(files: usize) {
    metrics::gauge!(FOLDER_INGEST_FILES_WAITING, "service" => SERVICE).set(files as f64);
}

pub fn batch_duration(elapsed: Duration) {
    metrics::histogram!(FOLDER_INGEST_BATCH_DURATION, "service" => SERVICE)
        .record(elapsed.as_secs_f64());
}

pub fn batch_retry(reason: &'static str) {
    metrics::counter!(FOLDER_INGEST_BATCH_RETRIES, "service" => SERVICE, "reason" => reason)
        .increment(1);
}
