//! The writer task: the only user of the writer connection, committing concurrent writes
//! together (group commit).
//!
//! Callers send a [`Request`] and wait for its reply. The task takes everything queued (up to
//! [`MAX_BATCH`] requests) and runs it in one `BEGIN IMMEDIATE … COMMIT`, each request inside a
//! savepoint of its own: a request that fails is rolled back alone and answered with its error,
//! while the others commit. Requests run one after another in arrival order on one connection,
//! so requests for one receipt behave exactly as if each had had its own transaction.
//!
//! Replies are sent only once the COMMIT has succeeded: nobody is told a write happened before
//! it is durable. If the transaction cannot be begun (another process held the write lock for
//! longer than the busy timeout) or the COMMIT fails, every request of the batch gets the error;
//! every write is idempotent, so callers retry. With `synchronous = FULL` a commit waits for the
//! disk, so a batch of n writes costs one wait instead of n.
//!
//! The task is independent of its callers: a caller that goes away leaves its request to
//! complete (or roll back) with the rest of its batch, and the reply is dropped. The task ends
//! when the last `SqliteStore` clone is dropped (its channel closes), after finishing what was
//! queued; or with the runtime it was spawned on, in which case the connection is closed and
//! SQLite rolls back whatever was not committed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use libsql::Connection;
use receipts_domain::{Fact, ReceiptEvent, StatusPolicy};
use tokio::sync::{mpsc, oneshot};

use super::{
    MAX_ATTEMPTS, Step, apply_in_tx, create_client_in_tx, reserve_in_tx, revoke_client_in_tx,
    rollback_quietly, webhooks,
};
use crate::{ApiClient, Applied, ClientId, Error, NewClient, Reservation, Reserved, Result};

/// The most requests one transaction takes. Bounds how long a transaction holds the database's
/// write lock (other processes wait for it) and how long the first request of a batch waits for
/// the last.
pub(super) const MAX_BATCH: usize = 256;

/// How many requests may wait for the writer before senders wait for room.
pub(super) const QUEUE: usize = 4 * MAX_BATCH;

/// `SQLITE_ABORT`: the transaction was rolled back.
const SQLITE_ABORT: std::ffi::c_int = 4;

/// Where the writer sends a request's outcome.
pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// One write, as a caller hands it to the writer task.
pub(super) enum Request {
    Reserve {
        reservation: Reservation,
        reply: Reply<Reserved>,
    },
    Apply {
        event: Box<ReceiptEvent>,
        fact: Fact,
        reply: Reply<Applied>,
    },
    CreateClient {
        client: NewClient,
        created_at: DateTime<Utc>,
        reply: Reply<ApiClient>,
    },
    RevokeClient {
        id: ClientId,
        revoked_at: DateTime<Utc>,
        reply: Reply<bool>,
    },
    /// Endpoints, secrets and the delivery log.
    Webhook(Box<webhooks::Write>),
}

impl Request {
    /// Runs the request inside the savepoint the writer opened for it.
    async fn execute(self, conn: &Connection, policy: &StatusPolicy) -> Box<dyn Answer> {
        match self {
            Self::Reserve { reservation, reply } => {
                pending(reply, reserve_in_tx(conn, &reservation).await)
            }
            Self::Apply { event, fact, reply } => {
                pending(reply, apply_in_savepoint(conn, &event, &fact, policy).await)
            }
            Self::CreateClient {
                client,
                created_at,
                reply,
            } => pending(reply, create_client_in_tx(conn, &client, created_at).await),
            Self::RevokeClient {
                id,
                revoked_at,
                reply,
            } => pending(reply, revoke_client_in_tx(conn, id, revoked_at).await),
            Self::Webhook(write) => write.execute(conn).await,
        }
    }

    /// Answers the request, which was never run, with (a copy of) `error`.
    fn fail(self, error: &Error) {
        match self {
            Self::Reserve { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::Apply { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::CreateClient { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::RevokeClient { reply, .. } => answer(reply, Err(error.duplicate())),
            Self::Webhook(write) => write.fail(error),
        }
    }
}

/// Sends `result` to a caller, if it still waits: one that has gone away just misses it.
pub(super) fn answer<T>(reply: Reply<T>, result: Result<T>) {
    if reply.send(result).is_err() {
        tracing::trace!("the caller of a store write has gone away");
    }
}

/// A request's outcome, held back until the fate of its transaction is known.
pub(super) trait Answer: Send {
    /// The error the request failed with on its own, if it did.
    fn error(&self) -> Option<&Error>;

    /// Sends the outcome; or, if the transaction did not commit (`failed`), that error instead
    /// (a request that failed on its own keeps its own error).
    fn send(self: Box<Self>, failed: Option<&Error>);
}

struct Pending<T> {
    reply: Reply<T>,
    result: Result<T>,
}

pub(super) fn pending<T: Send + 'static>(reply: Reply<T>, result: Result<T>) -> Box<dyn Answer> {
    Box::new(Pending { reply, result })
}

impl<T: Send> Answer for Pending<T> {
    fn error(&self) -> Option<&Error> {
        self.result.as_ref().err()
    }

    fn send(self: Box<Self>, failed: Option<&Error>) {
        let result = match (self.result, failed) {
            (Ok(_), Some(error)) => Err(error.duplicate()),
            (result, _) => result,
        };
        answer(self.reply, result);
    }
}

/// `apply`, inside the request's savepoint: a lost version-guarded update is rolled back to the
/// savepoint and tried again, up to [`MAX_ATTEMPTS`] times.
async fn apply_in_savepoint(
    conn: &Connection,
    event: &ReceiptEvent,
    fact: &Fact,
    policy: &StatusPolicy,
) -> Result<Applied> {
    for attempt in 1..=MAX_ATTEMPTS {
        match apply_in_tx(conn, event, fact, policy).await? {
            Step::Applied(transition) => return Ok(Applied::Applied(transition)),
            Step::Duplicate(transition) => return Ok(Applied::Duplicate(transition)),
            Step::Conflict => {
                conn.execute("ROLLBACK TO request", ()).await?;
                tracing::debug!(
                    attempt,
                    receipt_id = %event.meta().receipt_id,
                    "version conflict, retrying"
                );
            }
        }
    }
    Err(Error::Contention {
        receipt_id: event.meta().receipt_id,
        attempts: MAX_ATTEMPTS,
    })
}

/// The task that owns the writer connection.
pub(super) struct Writer {
    conn: Connection,
    policy: StatusPolicy,
    requests: mpsc::Receiver<Request>,
    /// Transactions committed, for [`super::SqliteStore::commits`].
    commits: Arc<AtomicU64>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        policy: StatusPolicy,
        requests: mpsc::Receiver<Request>,
        commits: Arc<AtomicU64>,
    ) -> Self {
        Self {
            conn,
            policy,
            requests,
            commits,
        }
    }

    /// Serves requests until every sender is gone and nothing is queued.
    pub(super) async fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while self.requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let mut queued = VecDeque::from(std::mem::take(&mut batch));
            while !queued.is_empty() {
                self.transaction(&mut queued).await;
            }
            // Keep the allocation for the next batch.
            batch = Vec::from(queued);
            // Let the callers just answered run (and queue their next writes) before the next
            // batch is taken.
            tokio::task::yield_now().await;
        }
        tracing::debug!("store writer stopped: no store left to serve");
    }

    /// Runs queued requests, from the front, in one write transaction, and answers them once
    /// its fate is known. Requests it did not get to (because the transaction broke) stay
    /// queued.
    async fn transaction(&self, queued: &mut VecDeque<Request>) {
        let conn = &self.conn;
        // A transaction is never left open between batches; this only guards against the
        // unforeseen.
        rollback_quietly(conn).await;
        // Waits up to the busy timeout for another process holding the write lock.
        if let Err(e) = conn.execute("BEGIN IMMEDIATE", ()).await {
            let error = Error::from(e);
            tracing::warn!(%error, batch = queued.len(), "cannot begin a write transaction");
            for request in queued.drain(..) {
                request.fail(&error);
            }
            return;
        }
        let mut answers = Vec::with_capacity(queued.len());
        while let Some(request) = queued.pop_front() {
            if let Err(e) = conn.execute("SAVEPOINT request", ()).await {
                let error = Error::from(e);
                request.fail(&error);
                return abandon(conn, answers, &error).await;
            }
            let answer = request.execute(conn, &self.policy).await;
            let outcome = end_savepoint(conn, answer.error()).await;
            answers.push(answer);
            if let Err(error) = outcome {
                return abandon(conn, answers, &error).await;
            }
        }
        match conn.execute("COMMIT", ()).await {
            Ok(_) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(batch = answers.len(), "committed");
                for answer in answers {
                    answer.send(None);
                }
            }
            Err(e) => {
                let error = Error::from(e);
                rollback_quietly(conn).await;
                tracing::warn!(%error, batch = answers.len(), "commit failed");
                for answer in answers {
                    answer.send(Some(&error));
                }
            }
        }
    }
}

/// Ends the savepoint of a request: keeps its writes, or undoes them if it failed (`failed` is
/// its error). An error means the transaction can no longer be committed.
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
        conn.execute("ROLLBACK TO request", ()).await?;
    }
    conn.execute("RELEASE request", ()).await?;
    Ok(())
}

/// Gives up a transaction that can no longer be committed: rolls it back and answers each of
/// its requests with `error` (or with its own).
async fn abandon(conn: &Connection, answers: Vec<Box<dyn Answer>>, error: &Error) {
    rollback_quietly(conn).await;
    tracing::warn!(%error, batch = answers.len(), "write transaction rolled back");
    for answer in answers {
        answer.send(Some(error));
    }
}
