//! Watching the folder: the service's loop, and `--once`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::config::{FolderIngestConfig, IngestConfig};
use crate::folder::{Folder, Settling};
use crate::ingest::Ingester;
use crate::metrics::{self, FileOutcome};
use crate::progress::{FileReport, Outcome, Progress, Silent};

/// Between two looks at files still settling, in `--once` mode.
const SETTLE_POLL: Duration = Duration::from_millis(200);

/// How long to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The files present at the start, once each (waiting for those still being written); then
    /// return.
    Once,
    /// Every file that appears, until shutdown.
    Watch,
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub files: Vec<FileReport>,
    /// Files left in the folder after an error (with the error).
    pub failed: Vec<(String, String)>,
}

impl Summary {
    /// Every file was finished (done or refused as unreadable) and none was interrupted.
    pub fn complete(&self) -> bool {
        self.failed.is_empty()
            && self
                .files
                .iter()
                .all(|f| !matches!(f.outcome, Outcome::Interrupted))
    }
}

/// The `folder-ingest` service: watches `folder_ingest.dir` until `shutdown`.
pub async fn run(config: FolderIngestConfig, shutdown: CancellationToken) -> Result<(), Error> {
    tracing::info!(
        dir = %config.folder_ingest.dir.display(),
        gateway = %config.folder_ingest.gateway_url,
        "watching the folder"
    );
    ingest_folder(
        config.folder_ingest,
        Arc::new(Silent),
        Mode::Watch,
        shutdown,
    )
    .await
    .map(drop)
}

/// Ingests the folder of `config` (see [`Mode`]). A file that fails is left in place with its
/// checkpoint (watching: taken again at a later scan; once: listed in the summary); an error
/// that needs an operator ([`Error::is_fatal`]) stops the run.
pub async fn ingest_folder(
    config: IngestConfig,
    progress: Arc<dyn Progress>,
    mode: Mode,
    shutdown: CancellationToken,
) -> Result<Summary, Error> {
    let mut folder = Folder::open(&config.dir)?;
    let (quiet, poll) = (config.quiet_period, config.poll_interval);
    let ingester = Ingester::new(config, progress)?;
    let mut settling = Settling::new(quiet);
    let mut summary = Summary::default();
    // Once: the files present now, each taken at most once.
    let mut remaining: Option<HashSet<PathBuf>> = match mode {
        Mode::Once => Some(folder.candidates()?.into_iter().map(|c| c.path).collect()),
        Mode::Watch => None,
    };
    while !shutdown.is_cancelled() {
        let mut candidates = folder.candidates()?;
        if let Some(remaining) = &mut remaining {
            remaining.retain(|path| candidates.iter().any(|c| &c.path == path));
            candidates.retain(|c| remaining.contains(&c.path));
            if remaining.is_empty() {
                break;
            }
        }
        metrics::files_waiting(candidates.len());
        for candidate in settling.ready(candidates, SystemTime::now(), Instant::now()) {
            if shutdown.is_cancelled() {
                break;
            }
            settling.forget(&candidate.path);
            if let Some(remaining) = &mut remaining {
                remaining.remove(&candidate.path);
            }
            match ingester.ingest(&folder, &candidate, &shutdown).await {
                Ok(report) => summary.files.push(report),
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => {
                    tracing::error!(file = %candidate.name, %error, "file left in the folder");
                    metrics::file_finished(FileOutcome::Failed);
                    metrics::file_progress(0, 0);
                    summary
                        .failed
                        .push((candidate.name.clone(), error.to_string()));
                }
            }
        }
        let pause = match mode {
            Mode::Once => SETTLE_POLL,
            Mode::Watch => poll,
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => break,
        }
    }
    metrics::files_waiting(0);
    Ok(summary)
}
