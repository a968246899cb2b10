//! What the ingester tells whoever watches it (the command's progress bars; nothing in the
//! service, whose progress is in its metrics).

use std::path::PathBuf;
use std::time::Duration;

/// How a file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Moved to `done/` (under this path).
    Done { path: PathBuf },
    /// Its structure is broken: moved to `rejected/` (under this path), nothing sent.
    Refused { path: PathBuf, reason: String },
    /// Stopped on shutdown; it resumes from its checkpoint.
    Interrupted,
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub name: String,
    pub outcome: Outcome,
    pub records: u64,
    /// Records finished before this run (a resumed file).
    pub resumed_at: u64,
    /// Records finished when it ended: new receipts, replays, refused (all runs).
    pub accepted: u64,
    pub replayed: u64,
    pub refused: u64,
    /// `--wait`: receipts still not terminal when the wait ended.
    pub pending: u64,
    /// The report of refused records, if any was refused.
    pub report: Option<PathBuf>,
    /// This run's time on the file, both passes included.
    pub elapsed: Duration,
}

impl FileReport {
    /// Records finished in this run per second.
    pub fn rate(&self) -> f64 {
        let done = self.accepted + self.replayed + self.refused;
        done.saturating_sub(self.resumed_at) as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }
}

/// Hooks called as files are worked on; every method does nothing by default.
pub trait Progress: Send + Sync {
    /// The first pass (hash, count) of a file of `bytes` bytes starts.
    fn surveying(&self, _name: &str, _bytes: u64) {}
    /// Submission starts: `records` in the file, `done` of them finished earlier.
    fn started(&self, _name: &str, _records: u64, _done: u64) {}
    /// `done` records of the current file are finished.
    fn advanced(&self, _done: u64) {}
    /// `--wait`: polling `receipts` receipts for their terminal status.
    fn waiting(&self, _receipts: u64) {}
    /// `--wait`: `polled` of them are terminal (or given up on).
    fn waited(&self, _polled: u64) {}
    fn finished(&self, _report: &FileReport) {}
}

/// Tells nobody.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
