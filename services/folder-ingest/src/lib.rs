//! folder-ingest: watched-folder ingest. Files dropped in a folder (NDJSON, a JSON array or
//! document, CSV retail receipts, an XML document) are read as streams, their records sent to
//! the gateway's batch endpoint under deterministic idempotency keys (content hash + record
//! number) at a bounded rate, with a checkpoint after every answered batch; finished files go to
//! `done/`, a report of refused records to `rejected/`. A crash or a restart only delays: every
//! record ends recorded exactly once. docs/bulk.md ("Watched folder") is the user's guide.
//!
//! The same library runs as the `folder-ingest` service ([`run`]) and as
//! `receipts ingest-folder` ([`cli`]).
#![forbid(unsafe_code)]

mod batch;
mod checkpoint;
pub mod cli;
pub mod config;
pub mod folder;
pub mod format;
pub mod gateway;
mod ingest;
mod metrics;
pub mod progress;
pub mod read;
pub mod report;
pub mod survey;
mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use checkpoint::Checkpoint;
pub use config::{FolderIngestConfig, IngestConfig};
pub use ingest::Ingester;
pub use watch::{Mode, Summary, ingest_folder, run};

/// Why ingesting stopped, or a file was left where it is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is already being ingested by another process (its lock is {}/.receipts-ingest/lock)", dir.display(), dir.display())]
    Busy { dir: PathBuf },
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: read::ReadError,
    },
    #[error(
        "{file} changed while it was being ingested: it is taken again once it is quiet (write files under a .tmp name and rename them into place)"
    )]
    Changed { file: String },
    #[error("the gateway: {0}")]
    Gateway(#[from] receipts_client::Error),
    #[error("unexpected answer from the gateway: {0}")]
    UnexpectedAnswer(String),
    #[error("the gateway has been failing for {} (last: {last}); the file stays with its checkpoint and is taken again later", humantime::format_duration(*after))]
    GaveUp { after: Duration, last: String },
    #[error("interrupted")]
    Interrupted,
    #[error("{files} file(s) not finished: they stay in the folder with their checkpoints")]
    Unfinished { files: usize },
    #[error(transparent)]
    Service(#[from] receipts_service::Error),
    #[error("a background task failed: {0}")]
    Task(String),
}

impl Error {
    /// Ingesting cannot go on without an operator: a key the gateway refuses, a request it
    /// will never take, a bad configuration, a folder in use.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Config(_) | Self::Busy { .. } | Self::Service(_) => true,
            Self::Gateway(error) => gateway::is_refused(error),
            _ => false,
        }
    }
}

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
