//! The threads that run SQLite. libsql's local API is `async` in signature only: every call
//! blocks its thread for the duration of a statement (or of a busy wait when another process
//! holds the write lock). So no SQLite call ever runs on the caller's async runtime: callers hand
//! a job to a dedicated thread and await its reply.
//!
//! **The writer** owns the one writer connection and commits concurrent writes together (group
//! commit): it takes everything queued (up to [`MAX_BATCH`] jobs) and runs it in one
//! `BEGIN IMMEDIATE … COMMIT`, each job inside a savepoint of its own, so a job that fails is
//! rolled back alone and answered with its error while the others commit. Jobs run one after
//! another in arrival order. Replies are sent only once the COMMIT has succeeded: nobody is told
//! a write happened before it is durable. If the transaction cannot be begun (another process
//! held the write lock longer than the busy timeout) or the COMMIT fails, every job of the batch
//! gets the error; callers retry (every write is idempotent or version-guarded). With
//! `synchronous = FULL` a commit waits for the disk, so a batch of n writes costs one wait
//! instead of n.
//!
//! **The readers** each own a reader connection and take read jobs from a shared queue.
//!
//! The threads end when the last clone of the store is dropped (their queues close), after
//! finishing what was queued. A caller that goes away leaves its job to complete (or roll back)
//! with the rest; its reply is dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};

use futures::future::LocalBoxFuture;
use libsql::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

/// The most jobs one transaction takes. Bounds how long a transaction holds the database's
/// write lock (other processes wait for it) and how long the first job of a batch waits for the
/// last.
pub(super) const MAX_BATCH: usize = 256;

/// How many write jobs may wait for the writer before senders wait for room.
pub(super) const QUEUE: usize = 4 * MAX_BATCH;

/// `SQLITE_ABORT`: the transaction was rolled back.
const SQLITE_ABORT: std::ffi::c_int = 4;

/// A write, as callers hand it to the writer.
pub(super) trait WriteJob: Send {
    /// Runs the write inside the savepoint the writer opened for it.
    fn run(self: Box<Self>, conn: Connection) -> LocalBoxFuture<'static, Box<dyn Answer>>;

    /// Answers the job, which was never run, with `error`.
    fn fail(self: Box<Self>, error: &Error);
}

/// A job's outcome, held back until the fate of its transaction is known.
pub(super) trait Answer {
    /// The error the job failed with on its own, if it did.
    fn error(&self) -> Option<&Error>;

    /// Sends the outcome; or, if the transaction did not commit (`failed`), that error instead
    /// (a job that failed on its own keeps its own error).
    fn send(self: Box<Self>, failed: Option<&Error>);
}

struct Job<F, T> {
    work: F,
    reply: oneshot::Sender<Result<T>>,
}

struct Pending<T> {
    reply: oneshot::Sender<Result<T>>,
    result: Result<T>,
}

/// A write job running `work`, and where its committed outcome will arrive.
pub(super) fn write_job<F, Fut, T>(work: F) -> (Box<dyn WriteJob>, oneshot::Receiver<Result<T>>)
where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>> + 'static,
    T: Send + 'static,
{
    let (reply, outcome) = oneshot::channel();
    (Box::new(Job { work, reply }), outcome)
}

impl<F, Fut, T> WriteJob for Job<F, T>
where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>> + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: Connection) -> LocalBoxFuture<'static, Box<dyn Answer>> {
        let Job { work, reply } = *self;
        Box::pin(async move {
            let result = work(conn).await;
            Box::new(Pending { reply, result }) as Box<dyn Answer>
        })
    }

    fn fail(self: Box<Self>, error: &Error) {
        answer(self.reply, Err(error.clone()));
    }
}

impl<T> Answer for Pending<T> {
    fn error(&self) -> Option<&Error> {
        self.result.as_ref().err()
    }

    fn send(self: Box<Self>, failed: Option<&Error>) {
        let result = match (self.result, failed) {
            (Ok(_), Some(error)) => Err(error.clone()),
            (result, _) => result,
        };
        answer(self.reply, result);
    }
}

/// Sends `result` to a caller, if it still waits: one that has gone away just misses it.
fn answer<T>(reply: oneshot::Sender<Result<T>>, result: Result<T>) {
    if reply.send(result).is_err() {
        tracing::trace!("the caller of a store job has gone away");
    }
}

/// A read, as callers hand it to a reader thread.
pub(super) type ReadJob = Box<dyn FnOnce(Connection) -> LocalBoxFuture<'static, ()> + Send>;

/// A read job running `work`, and where its outcome will arrive.
pub(super) fn read_job<F, Fut, T>(work: F) -> (ReadJob, oneshot::Receiver<Result<T>>)
where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>> + 'static,
    T: Send + 'static,
{
    let (reply, outcome) = oneshot::channel();
    let job: ReadJob = Box::new(move |conn| {
        Box::pin(async move {
            answer(reply, work(conn).await);
        })
    });
    (job, outcome)
}

/// A thread with a runtime of its own to drive libsql's futures on. It holds a clone of `alive`
/// until `body` has returned and dropped everything it owned (its connection above all).
fn spawn_thread(
    name: String,
    alive: &Arc<()>,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let alive = Arc::clone(alive);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            body();
            drop(alive);
        })
        .map(drop)
}

fn local_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().build()
}

/// Starts the writer thread on `conn`, serving `jobs`.
pub(super) fn spawn_writer(
    conn: Connection,
    jobs: mpsc::Receiver<Box<dyn WriteJob>>,
    commits: Arc<AtomicU64>,
    alive: &Arc<()>,
) -> std::io::Result<()> {
    let runtime = local_runtime()?;
    spawn_thread("sqlite-writer".into(), alive, move || {
        runtime.block_on(
            Writer {
                conn,
                jobs,
                commits,
            }
            .run(),
        );
    })
}

/// Starts one reader thread per connection, sharing `jobs`.
pub(super) fn spawn_readers(
    conns: Vec<Connection>,
    jobs: std_mpsc::Receiver<ReadJob>,
    alive: &Arc<()>,
) -> std::io::Result<()> {
    let jobs = Arc::new(Mutex::new(jobs));
    for (n, conn) in conns.into_iter().enumerate() {
        let (runtime, jobs) = (local_runtime()?, Arc::clone(&jobs));
        spawn_thread(format!("sqlite-reader-{n}"), alive, move || {
            loop {
                // Waiting for a job holds the lock; the other readers queue behind it.
                let job = jobs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .recv();
                let Ok(job) = job else { break };
                runtime.block_on(job(conn.clone()));
            }
        })?;
    }
    Ok(())
}

struct Writer {
    conn: Connection,
    jobs: mpsc::Receiver<Box<dyn WriteJob>>,
    /// Transactions committed, for [`super::SqliteStore::commits`].
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Serves jobs until every sender is gone and nothing is queued.
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while self.jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let mut queued = VecDeque::from(std::mem::take(&mut batch));
            while !queued.is_empty() {
                self.transaction(&mut queued).await;
            }
            batch = Vec::from(queued);
        }
        tracing::debug!("sqlite writer stopped: no store left to serve");
    }

    /// Runs queued jobs, from the front, in one write transaction, and answers them once its
    /// fate is known. Jobs it did not get to (because the transaction broke) stay queued.
    async fn transaction(&self, queued: &mut VecDeque<Box<dyn WriteJob>>) {
        let conn = &self.conn;
        // A transaction is never left open between batches; this only guards against the
        // unforeseen.
        super::rollback_quietly(conn).await;
        // Waits up to the busy timeout for another process holding the write lock.
        if let Err(e) = conn.execute("BEGIN IMMEDIATE", ()).await {
            let error = Error::from(e);
            tracing::warn!(%error, batch = queued.len(), "cannot begin a write transaction");
            for job in queued.drain(..) {
                job.fail(&error);
            }
            return;
        }
        let mut answers = Vec::with_capacity(queued.len());
        while let Some(job) = queued.pop_front() {
            if let Err(e) = conn.execute("SAVEPOINT job", ()).await {
                let error = Error::from(e);
                job.fail(&error);
                return abandon(conn, answers, &error).await;
            }
            let answer = job.run(conn.clone()).await;
            let outcome = end_savepoint(conn, answer.error()).await;
            answers.push(answer);
            if let Err(error) = outcome {
                return abandon(conn, answers, &error).await;
            }
        }
        match conn.execute("COMMIT", ()).await {
            Ok(_) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(batch = answers.len(), "committed");
                for answer in answers {
                    answer.send(None);
                }
            }
            Err(e) => {
                let error = Error::from(e);
                super::rollback_quietly(conn).await;
                tracing::warn!(%error, batch = answers.len(), "commit failed");
                for answer in answers {
                    answer.send(Some(&error));
                }
            }
        }
    }
}

/// Ends the savepoint of a job: keeps its writes, or undoes them if it failed (`failed` is its
/// error). An error means the transaction can no longer be committed.
async fn end_savepoint(conn: &Connection, failed: Option<&Error>) -> Result<()> {
    if conn.is_autocommit() {
        // SQLite rolled the whole transaction back itself (an I/O error, a full disk, …).
        let detail = match failed {
            Some(cause) => format!("the write transaction was rolled back: {cause}"),
            None => "the write transaction was rolled back".to_owned(),
        };
        return Err(libsql::Error::SqliteFailure(SQLITE_ABORT, detail).into());
    }
    if failed.is_some() {
        conn.execute("ROLLBACK TO job", ()).await?;
    }
    conn.execute("RELEASE job", ()).await?;
    Ok(())
}

/// Gives up a transaction that can no longer be committed: rolls it back and answers each of its
/// jobs with `error` (or with its own).
async fn abandon(conn: &Connection, answers: Vec<Box<dyn Answer>>, error: &Error) {
    super::rollback_quietly(conn).await;
    tracing::warn!(%error, batch = answers.len(), "write transaction rolled back");
    for answer in answers {
        answer.send(Some(error));
    }
}
