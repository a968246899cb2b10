//! One file, from the folder to `done/`:
//!
//! 1. the first pass hashes and counts it ([`survey`]); a broken structure refuses the file
//!    (moved to `rejected/` with a one-line report, nothing sent);
//! 2. its checkpoint (by content hash) says where to resume;
//! 3. the second pass reads records from there in batches, paced by the rate limit, sent
//!    `concurrency` at a time; answers are applied in file order: refused records go to the
//!    report, then the checkpoint moves past the batch;
//! 4. `--wait`: every accepted receipt is polled until terminal; REJECTED and FAILED ones are
//!    added to the report;
//! 5. the report goes to `rejected/`, the file to `done/`, the checkpoint away.
//!
//! Exactly once: every record has the same key in every run (content hash + number), the
//! gateway records a key once (and answers `replayed` after), and a record is never skipped
//! before the gateway answered for it (the checkpoint only covers answered batches).

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::batch::{Batch, Batcher, Item, Plan};
use crate::checkpoint::Checkpoint;
use crate::config::IngestConfig;
use crate::folder::{Candidate, Folder, move_file, report_name};
use crate::format::ReceiptTypes;
use crate::gateway;
use crate::metrics::{self, FileOutcome};
use crate::progress::{FileReport, Outcome, Progress};
use crate::read::{Limits, ReadError, records};
use crate::report::{Accepted, Entry, FileRefusal, Journal, RefusedBy};
use crate::survey::{FileHash, Survey, Tap, survey};
use crate::{Error, io_error};
use receipts_client::{BatchItemOutcome as ItemAnswer, Client, Receipt, Status};

/// Receipts `--wait` polls at once.
const WAIT_CONCURRENCY: usize = 16;
/// Between two polls of a receipt that is not terminal yet.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// First and longest pause between retries of a failing batch.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Ingests files, one at a time.
pub struct Ingester {
    config: IngestConfig,
    types: ReceiptTypes,
    gateway: Client,
    limiter: Option<DefaultDirectRateLimiter>,
    progress: Arc<dyn Progress>,
}

/// A batch's outcome, for the checkpoint and the report.
#[derive(Debug)]
struct Settled {
    last: u64,
    accepted: Vec<Accepted>,
    replayed: u64,
    /// Refused records (by the reader or the gateway), in record order.
    refused: Vec<Entry>,
}

/// The work files of a file being ingested.
struct Work {
    report: Journal,
    /// `--wait` only: the receipts to poll.
    accepted: Option<Journal>,
}

impl Ingester {
    pub fn new(config: IngestConfig, progress: Arc<dyn Progress>) -> Result<Self, Error> {
        config.validate().map_err(Error::Config)?;
        let gateway = gateway::client(&config.gateway_url, &config.key(), config.request_timeout)
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let limiter = NonZeroU32::new(config.rate).map(|rate| {
            // A batch holds at most one second's worth (see `plan`), so it always fits the burst.
            RateLimiter::direct(Quota::per_second(rate).allow_burst(rate))
        });
        Ok(Self {
            types: ReceiptTypes::new(
                config.receipt_type.as_deref(),
                config.xml_receipt_type.as_deref(),
            ),
            config,
            gateway,
            limiter,
            progress,
        })
    }

    fn limits(&self) -> Limits {
        Limits {
            max_record_bytes: self.config.max_record_bytes,
        }
    }

    fn plan(&self, candidate: &Candidate) -> Plan {
        let mut batch_size = self.config.batch_size;
        if self.config.rate > 0 {
            batch_size = batch_size.min(self.config.rate as usize);
        }
        Plan {
            batch_size,
            max_batch_bytes: self.config.max_batch_bytes,
            receipt_type: self.types.for_format(candidate.format).to_owned(),
            content_type: candidate.format.content_type(),
        }
    }

    /// Ingests one file. `Ok` with [`Outcome::Interrupted`] when `shutdown` stopped it (its
    /// checkpoint is saved); an error leaves the file where it is, checkpoint and all.
    #[tracing::instrument(skip_all, fields(file = %candidate.name))]
    pub async fn ingest(
        &self,
        folder: &Folder,
        candidate: &Candidate,
        shutdown: &CancellationToken,
    ) -> Result<FileReport, Error> {
        let started = Instant::now();
        self.progress.surveying(&candidate.name, candidate.size);
        let path = candidate.path.clone();
        let (format, limits) = (candidate.format, self.limits());
        let surveyed = tokio::task::spawn_blocking(move || survey(&path, format, limits))
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let survey = match surveyed {
            Ok(survey) => survey,
            Err(ReadError::Malformed { line, detail }) => {
                return self.refuse_file(folder, candidate, line, detail, started);
            }
            Err(ReadError::Io(e)) => return Err(io_error(&candidate.path)(e)),
        };
        tracing::info!(hash = %survey.hash.short(), records = survey.records, bytes = survey.bytes, "file taken");
        let work_dir = folder.work();
        let mut checkpoint = Checkpoint::load(work_dir, &survey.hash)
            .map_err(io_error(work_dir))?
            .unwrap_or_else(|| Checkpoint::new(&survey.hash, &candidate.name, survey.records));
        let resumed_at = checkpoint.done;
        if resumed_at > 0 {
            tracing::info!(
                done = resumed_at,
                records = survey.records,
                "resuming from the checkpoint"
            );
        }
        let mut work = self.open_work(work_dir, &survey.hash, &checkpoint)?;
        metrics::file_progress(survey.records, checkpoint.done);
        self.progress
            .started(&candidate.name, survey.records, checkpoint.done);

        let mut pending = 0;
        if checkpoint.finishing.is_none() {
            let complete = checkpoint.done >= survey.records
                || self
                    .submit_file(
                        candidate,
                        &survey,
                        &mut checkpoint,
                        &mut work,
                        work_dir,
                        shutdown,
                    )
                    .await?;
            if complete && self.config.wait && !checkpoint.waited {
                match self
                    .wait(&mut checkpoint, &mut work, work_dir, shutdown)
                    .await?
                {
                    Some(still_pending) => pending = still_pending,
                    None => {
                        return Ok(self.interrupted(candidate, &checkpoint, resumed_at, started));
                    }
                }
            } else if !complete {
                return Ok(self.interrupted(candidate, &checkpoint, resumed_at, started));
            }
            // The file must be the one surveyed: a writer still at work would have lost records.
            let now = Candidate::observe(&candidate.path).map_err(io_error(&candidate.path))?;
            if !now.is_some_and(|now| now.unchanged(candidate)) {
                return Err(Error::Changed {
                    file: candidate.name.clone(),
                });
            }
        }
        let (done_path, report) =
            self.finish(folder, candidate, &survey.hash, &mut checkpoint, work)?;
        metrics::file_finished(FileOutcome::Done);
        metrics::file_progress(0, 0);
        let report = FileReport {
            name: candidate.name.clone(),
            outcome: Outcome::Done { path: done_path },
            records: survey.records,
            resumed_at,
            accepted: checkpoint.accepted,
            replayed: checkpoint.replayed,
            refused: checkpoint.refused,
            pending,
            report,
            elapsed: started.elapsed(),
        };
        tracing::info!(
            records = report.records,
            accepted = report.accepted,
            replayed = report.replayed,
            refused = report.refused,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "file done"
        );
        self.progress.finished(&report);
        Ok(report)
    }

    fn open_work(
        &self,
        work_dir: &Path,
        hash: &FileHash,
        checkpoint: &Checkpoint,
    ) -> Result<Work, Error> {
        let report_path = work_dir.join(format!("{}.report.ndjson", hash.short()));
        let report = Journal::open(report_path.clone(), checkpoint.report_bytes)
            .map_err(io_error(&report_path))?;
        let accepted = if self.config.wait {
            let path = work_dir.join(format!("{}.accepted.ndjson", hash.short()));
            Some(Journal::open(path.clone(), checkpoint.accepted_bytes).map_err(io_error(&path))?)
        } else {
            None
        };
        Ok(Work { report, accepted })
    }

    fn interrupted(
        &self,
        candidate: &Candidate,
        checkpoint: &Checkpoint,
        resumed_at: u64,
        started: Instant,
    ) -> FileReport {
        tracing::info!(
            done = checkpoint.done,
            records = checkpoint.records,
            "interrupted; the checkpoint is saved"
        );
        let report = FileReport {
            name: candidate.name.clone(),
            outcome: Outcome::Interrupted,
            records: checkpoint.records,
            resumed_at,
            accepted: checkpoint.accepted,
            replayed: checkpoint.replayed,
            refused: checkpoint.refused,
            pending: 0,
            report: None,
            elapsed: started.elapsed(),
        };
        self.progress.finished(&report);
        report
    }

    /// Sends every record after the checkpoint. `Ok(false)`: interrupted by `shutdown`.
    async fn submit_file(
        &self,
        candidate: &Candidate,
        survey: &Survey,
        checkpoint: &mut Checkpoint,
        work: &mut Work,
        work_dir: &Path,
        shutdown: &CancellationToken,
    ) -> Result<bool, Error> {
        let concurrency = self.config.concurrency;
        let (sender, mut receiver) = tokio::sync::mpsc::channel(concurrency);
        let reader = {
            let path = candidate.path.clone();
            let (format, limits, plan) = (candidate.format, self.limits(), self.plan(candidate));
            let (hash, skip) = (survey.hash.clone(), checkpoint.done);
            tokio::task::spawn_blocking(move || {
                read_batches(&path, format, limits, plan, hash, skip, &sender);
            })
        };
        // Boxed, not pinned on the stack: dropping it must drop the receiver, so that a reader
        // blocked on a full channel stops.
        let mut batches = Box::pin(
            futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
                .then(|batch: Result<Batch, ReadError>| async move {
                    if let (Ok(batch), Some(limiter)) = (&batch, &self.limiter)
                        && let Some(n) = u32::try_from(batch.items.len())
                            .ok()
                            .and_then(NonZeroU32::new)
                        && let Err(error) = limiter.until_n_ready(n).await
                    {
                        tracing::warn!(%error, "a batch larger than the rate's burst");
                    }
                    batch
                })
                .take_until(shutdown.cancelled())
                .map(|batch| async move {
                    match batch {
                        Ok(batch) => self.submit(batch, shutdown).await,
                        Err(error) => Err(Error::Read {
                            file: candidate.name.clone(),
                            source: error,
                        }),
                    }
                })
                .buffered(concurrency),
        );
        while let Some(settled) = batches.next().await {
            match settled {
                Ok(settled) => self.apply(settled, checkpoint, work, work_dir)?,
                Err(Error::Interrupted) => break,
                Err(error) => return Err(error),
            }
        }
        drop(batches);
        reader.await.map_err(|e| Error::Task(e.to_string()))?;
        if checkpoint.done >= checkpoint.records {
            Ok(true)
        } else if shutdown.is_cancelled() {
            Ok(false)
        } else {
            Err(Error::Changed {
                file: candidate.name.clone(),
            })
        }
    }

    /// Sends a batch until every item has an answer that will not change: items the gateway
    /// answered 5xx (broker or store unavailable) and whole requests that failed transiently are
    /// sent again, with backoff, under the same keys.
    async fn submit(&self, batch: Batch, shutdown: &CancellationToken) -> Result<Settled, Error> {
        let started = Instant::now();
        let mut answers: Vec<Option<ItemAnswer>> = vec![None; batch.items.len()];
        let mut pending: Vec<usize> = (0..batch.items.len()).collect();
        let mut backoff = BACKOFF_FIRST;
        let mut failing_since: Option<Instant> = None;
        let mut last_item_problem: Option<String> = None;
        while !pending.is_empty() {
            let body = Batch::body(pending.iter().map(|&i| &batch.items[i]));
            let failure = match self.gateway.submit_batch_ndjson(body.into()).await {
                Ok(answer) => {
                    if answer.items.len() != pending.len() {
                        return Err(Error::UnexpectedAnswer(format!(
                            "{} outcomes for {} items",
                            answer.items.len(),
                            pending.len()
                        )));
                    }
                    let mut again = Vec::new();
                    let mut item_problem = None;
                    for item in answer.items {
                        let Some(&i) = pending.get(item.index) else {
                            return Err(Error::UnexpectedAnswer(format!(
                                "an outcome for item {}",
                                item.index
                            )));
                        };
                        if gateway::item_is_transient(&item) {
                            if item_problem.is_none() {
                                item_problem = Some(problem_summary(&item));
                            }
                            again.push(i);
                        } else {
                            answers[i] = Some(item);
                        }
                    }
                    pending = again;
                    if pending.is_empty() {
                        break;
                    }
                    metrics::batch_retry("items");
                    last_item_problem = item_problem;
                    None
                }
                Err(error) if gateway::is_transient(&error) => {
                    metrics::batch_retry(gateway::retry_reason(&error));
                    Some(error)
                }
                Err(error) => return Err(error.into()),
            };
            let since = *failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.config.give_up_after {
                return Err(Error::GaveUp {
                    after: self.config.give_up_after,
                    last: failure.map_or_else(
                        || {
                            format!(
                                "{} items answered {}",
                                pending.len(),
                                last_item_problem.as_deref().unwrap_or("5xx")
                            )
                        },
                        |e| e.to_string(),
                    ),
                });
            }
            let pause = failure
                .as_ref()
                .and_then(receipts_client::Error::retry_after)
                .unwrap_or(backoff)
                .min(BACKOFF_MAX);
            tracing::warn!(
                first = batch.first,
                last = batch.last,
                items = pending.len(),
                error = failure
                    .as_ref()
                    .map(ToString::to_string)
                    .or_else(|| last_item_problem.clone()),
                retry_in_ms = pause.as_millis() as u64,
                "batch not through; sending it again"
            );
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => return Err(Error::Interrupted),
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        metrics::batch_duration(started.elapsed());
        Ok(settle(batch, answers))
    }

    /// Records a batch's outcome: report lines first (durably), then the checkpoint past it.
    fn apply(
        &self,
        settled: Settled,
        checkpoint: &mut Checkpoint,
        work: &mut Work,
        work_dir: &Path,
    ) -> Result<(), Error> {
        let accepted = settled.accepted.len() as u64 - settled.replayed;
        let refused = settled.refused.len() as u64;
        work.report
            .append(&settled.refused)
            .map_err(io_error(work.report.path()))?;
        if refused > 0 {
            work.report.sync().map_err(io_error(work.report.path()))?;
        }
        if let Some(journal) = &mut work.accepted {
            journal
                .append(&settled.accepted)
                .map_err(io_error(journal.path()))?;
            journal.sync().map_err(io_error(journal.path()))?;
            checkpoint.accepted_bytes = journal.len();
        }
        checkpoint.done = settled.last;
        checkpoint.accepted += accepted;
        checkpoint.replayed += settled.replayed;
        checkpoint.refused += refused;
        checkpoint.report_bytes = work.report.len();
        checkpoint.save(work_dir).map_err(io_error(work_dir))?;
        metrics::records(accepted, settled.replayed, refused);
        metrics::file_progress(checkpoint.records, checkpoint.done);
        self.progress.advanced(checkpoint.done);
        Ok(())
    }

    /// `--wait`: polls every accepted receipt until its status is terminal (or the wait times
    /// out) and reports the REJECTED and FAILED ones. `Ok(Some(n))`: done, `n` receipts still
    /// not terminal; `Ok(None)`: interrupted (the wait starts over on resume).
    async fn wait(
        &self,
        checkpoint: &mut Checkpoint,
        work: &mut Work,
        work_dir: &Path,
        shutdown: &CancellationToken,
    ) -> Result<Option<u64>, Error> {
        let Some(journal) = &work.accepted else {
            return Ok(Some(0));
        };
        let path = journal.path().to_path_buf();
        let receipts = checkpoint.accepted + checkpoint.replayed;
        self.progress.waiting(receipts);
        let deadline = tokio::time::Instant::now() + self.config.wait_timeout;
        let accepted = Journal::read::<Accepted>(&path).map_err(io_error(&path))?;
        let path = &path;
        let polls = futures::stream::iter(accepted)
            .map(|accepted| async move {
                let accepted = accepted.map_err(io_error(path))?;
                let view = self.poll(&accepted.id, deadline, shutdown).await?;
                Ok::<_, Error>((accepted, view))
            })
            .buffered(WAIT_CONCURRENCY);
        tokio::pin!(polls);
        let (mut polled, mut pending, mut refused, mut terminal_refusals) = (0, 0, Vec::new(), 0);
        while let Some(outcome) = polls.next().await {
            let (accepted, view) = match outcome {
                Ok(outcome) => outcome,
                Err(Error::Interrupted) => return Ok(None),
                Err(error) => return Err(error),
            };
            polled += 1;
            match view {
                None => pending += 1,
                Some(view) if view.status == Status::Rejected => {
                    refused.push(Entry::terminal(
                        &accepted,
                        view.status.as_str(),
                        to_json(&view.reasons),
                    ));
                }
                Some(view) if view.status == Status::Failed => {
                    refused.push(Entry::terminal(
                        &accepted,
                        view.status.as_str(),
                        to_json(&view.failures),
                    ));
                }
                Some(_) => {}
            }
            if refused.len() >= 100 {
                work.report
                    .append(&refused)
                    .map_err(io_error(work.report.path()))?;
                terminal_refusals += refused.len() as u64;
                refused.clear();
            }
            self.progress.waited(polled);
        }
        work.report
            .append(&refused)
            .map_err(io_error(work.report.path()))?;
        work.report.sync().map_err(io_error(work.report.path()))?;
        terminal_refusals += refused.len() as u64;
        if pending > 0 {
            tracing::warn!(pending, timeout = %humantime::format_duration(self.config.wait_timeout), "receipts not terminal when the wait ended");
        }
        checkpoint.refused += terminal_refusals;
        checkpoint.report_bytes = work.report.len();
        checkpoint.waited = true;
        checkpoint.save(work_dir).map_err(io_error(work_dir))?;
        Ok(Some(pending))
    }

    /// The receipt's terminal view, or `None` if it is not terminal by `deadline`.
    async fn poll(
        &self,
        id: &str,
        deadline: tokio::time::Instant,
        shutdown: &CancellationToken,
    ) -> Result<Option<Receipt>, Error> {
        loop {
            match self.gateway.receipt(id).await {
                Ok(view) if view.status.is_terminal() => return Ok(Some(view)),
                Ok(_) => {}
                Err(error) if gateway::is_transient(&error) => {
                    tracing::debug!(%error, receipt_id = id, "polling again");
                }
                Err(error) => return Err(error.into()),
            }
            if tokio::time::Instant::now() + POLL_EVERY > deadline {
                return Ok(None);
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY) => {}
                () = shutdown.cancelled() => return Err(Error::Interrupted),
            }
        }
    }

    /// Moves the report to `rejected/` and the file to `done/`, then forgets the checkpoint.
    /// Each step can be repeated: a crash in between finishes on the next run.
    fn finish(
        &self,
        folder: &Folder,
        candidate: &Candidate,
        hash: &FileHash,
        checkpoint: &mut Checkpoint,
        work: Work,
    ) -> Result<(PathBuf, Option<PathBuf>), Error> {
        let work_dir = folder.work();
        let name = match &checkpoint.finishing {
            Some(name) => name.clone(),
            None => {
                let name = folder.free_name(&candidate.name);
                checkpoint.finishing = Some(name.clone());
                checkpoint.save(work_dir).map_err(io_error(work_dir))?;
                name
            }
        };
        let report_path = folder.rejected().join(report_name(&name));
        let report = if checkpoint.refused > 0 {
            move_file(work.report.path(), &report_path)?;
            Some(report_path)
        } else {
            remove(work.report.path())?;
            None
        };
        if let Some(journal) = &work.accepted {
            remove(journal.path())?;
        }
        let done_path = folder.done().join(&name);
        move_file(&candidate.path, &done_path)?;
        Checkpoint::remove(work_dir, hash).map_err(io_error(work_dir))?;
        Ok((done_path, report))
    }

    /// A file that cannot be read to the end: to `rejected/`, with a report saying why.
    fn refuse_file(
        &self,
        folder: &Folder,
        candidate: &Candidate,
        line: u64,
        detail: String,
        started: Instant,
    ) -> Result<FileReport, Error> {
        tracing::warn!(line, %detail, "file refused: it cannot be read");
        let name = folder.free_name(&candidate.name);
        let report_path = folder.rejected().join(report_name(&name));
        let refusal = FileRefusal {
            file: candidate.name.clone(),
            refused_by: RefusedBy::Reader,
            line,
            detail: detail.clone(),
        };
        let mut line_text =
            serde_json::to_vec(&refusal).map_err(|e| io_error(&report_path)(e.into()))?;
        line_text.push(b'\n');
        std::fs::write(&report_path, line_text).map_err(io_error(&report_path))?;
        let path = folder.rejected().join(&name);
        move_file(&candidate.path, &path)?;
        metrics::file_finished(FileOutcome::Refused);
        let report = FileReport {
            name: candidate.name.clone(),
            outcome: Outcome::Refused {
                path,
                reason: format!("line {line}: {detail}"),
            },
            records: 0,
            resumed_at: 0,
            accepted: 0,
            replayed: 0,
            refused: 0,
            pending: 0,
            report: Some(report_path),
            elapsed: started.elapsed(),
        };
        self.progress.finished(&report);
        Ok(report)
    }
}

/// "503 broker-unavailable: <detail>" for logs.
fn problem_summary(item: &ItemAnswer) -> String {
    let problem = item.problem.as_ref();
    let kind = problem.and_then(|p| p.slug()).unwrap_or("problem");
    let detail = problem
        .and_then(|p| p.detail.as_deref())
        .unwrap_or_default();
    format!("{} {kind}: {detail}", item.status)
}

/// A part of an answer as the JSON the report keeps.
fn to_json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn remove(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(path)(e)),
        _ => Ok(()),
    }
}

/// A batch's items with their final answers, and its unreadable records, in record order.
fn settle(batch: Batch, answers: Vec<Option<ItemAnswer>>) -> Settled {
    let mut settled = Settled {
        last: batch.last,
        accepted: Vec::new(),
        replayed: 0,
        refused: batch.unreadable,
    };
    for (item, answer) in batch.items.into_iter().zip(answers) {
        let Item {
            number, line, key, ..
        } = item;
        match answer {
            Some(ItemAnswer {
                status: 202,
                id: Some(id),
                replayed,
                ..
            }) => {
                settled.replayed += u64::from(replayed);
                settled.accepted.push(Accepted {
                    record: number,
                    line,
                    idempotency_key: key,
                    id,
                });
            }
            Some(answer) => settled.refused.push(Entry::refused(
                number,
                line,
                &key,
                answer.status,
                answer.problem.as_ref().map(to_json).unwrap_or_default(),
            )),
            // Not reached: `submit` returns only when every item has an answer.
            None => settled.refused.push(Entry::refused(
                number,
                line,
                &key,
                0,
                serde_json::Value::Null,
            )),
        }
    }
    settled.refused.sort_by_key(|entry| entry.record);
    settled
}

/// The second pass (on a blocking thread): records after `skip`, in batches, into `sender`.
/// Stops early when the receiver is gone.
fn read_batches(
    path: &Path,
    format: crate::format::Format,
    limits: Limits,
    plan: Plan,
    hash: FileHash,
    skip: u64,
    sender: &tokio::sync::mpsc::Sender<Result<Batch, ReadError>>,
) {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) => {
            let _ = sender.blocking_send(Err(error.into()));
            return;
        }
    };
    let reader = std::io::BufReader::with_capacity(64 * 1024, Tap::new(file, None));
    let mut batcher = Batcher::new(plan, hash);
    for record in records(format, reader, limits) {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
                return;
            }
        };
        if record.number <= skip {
            continue;
        }
        for batch in batcher.push(record) {
            if sender.blocking_send(Ok(batch)).is_err() {
                return;
            }
        }
    }
    if let Some(batch) = batcher.finish() {
        let _ = sender.blocking_send(Ok(batch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_batches_list_refusals_in_record_order() {
        let hash = FileHash::of(&[3; 32]);
        let item = |number: u64| Item {
            number,
            line: number,
            key: hash.key(number),
            envelope: String::new(),
        };
        let batch = Batch {
            first: 1,
            last: 4,
            items: vec![item(1), item(3), item(4)],
            unreadable: vec![Entry::unreadable(2, 2, &hash.key(2), "too large".into())],
            ..Batch::default()
        };
        let answer = |index, status, replayed| {
            ItemAnswer {
            index,
            status,
            id: (status == 202).then(|| format!("id-{index}")),
            replayed,
            receipt_status: None,
            status_url: None,
            problem: (status != 202).then(|| {
                receipts_client::Problem::from_response(
                    status,
                    Some("application/problem+json"),
                    br#"{"type":"urn:receipts:problem:malformed-json","title":"Malformed JSON document","status":400}"#,
                )
            }),
        }
        };
        let settled = settle(
            batch,
            vec![
                Some(answer(0, 202, false)),
                Some(answer(1, 400, false)),
                Some(answer(2, 202, true)),
            ],
        );
        assert_eq!(settled.last, 4);
        assert_eq!(settled.replayed, 1);
        assert_eq!(
            settled
                .accepted
                .iter()
                .map(|a| a.record)
                .collect::<Vec<_>>(),
            [1, 4]
        );
        assert_eq!(
            settled
                .refused
                .iter()
                .map(|e| (e.record, e.refused_by))
                .collect::<Vec<_>>(),
            [(2, RefusedBy::Reader), (3, RefusedBy::Gateway)]
        );
    }
}
