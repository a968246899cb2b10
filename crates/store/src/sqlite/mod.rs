//! The SQLite backend: the embedded default and the test backend.
//!
//! Built on `libsql` (Turso's SQLite fork, local files only) because the embedded binary also
//! links the tansu broker, which uses it; `rusqlite`'s bundled SQLite would collide at link time.
//!
//! One writer connection, owned by a writer thread that group-commits concurrent writes, and a
//! few reader connections on reader threads ([`workers`]): no SQLite call runs on an async
//! runtime's threads. The database is in WAL mode, so readers never block the writer and other
//! processes may open the same file: their writers queue on SQLite's write lock, waiting up to
//! the configured busy timeout.
//!
//! Every record is one row, keyed as its port says, holding the record as JSON next to the
//! columns its lookups need; a compare-and-set is an `UPDATE … WHERE version = ?`.

mod clients;
mod codec;
mod receipts;
mod records;
mod schema;
mod webhooks;
mod workers;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use libsql::{Connection, Database};
use tokio::sync::mpsc;

use crate::{Error, Health, Result, SqliteOptions};

pub(crate) const BACKEND: &str = "sqlite";

/// Reader connections (and threads) per store. Reads are short point lookups.
const READERS: usize = 2;

/// The SQLite store. Cheap to clone: clones share the same connections and threads.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The writer's queue. Dropping the last sender (with the last clone of the store) ends
    /// the writer thread.
    writer: mpsc::Sender<Box<dyn workers::WriteJob>>,
    readers: std_mpsc::Sender<workers::ReadJob>,
    /// Write transactions the writer has committed.
    commits: Arc<AtomicU64>,
    /// Held strongly by each of the store's threads until it has ended.
    threads: Weak<()>,
}

/// Whether a store's threads (and so its connections) have all ended: see
/// [`SqliteStore::stopped`].
#[derive(Debug, Clone)]
pub struct Stopped(Weak<()>);

impl Stopped {
    /// True once every thread of the store has ended and closed its connection.
    pub fn is_stopped(&self) -> bool {
        self.0.strong_count() == 0
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date. Safe
    /// to call concurrently from several processes on the same file.
    pub async fn open(path: &Path, options: &SqliteOptions) -> Result<Self> {
        let location = path.display().to_string();
        let failed = |e: Error| match e {
            Error::Open { .. } => e,
            other => Error::Open {
                location: location.clone(),
                detail: other.to_string(),
            },
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::Open {
                location: location.clone(),
                detail: format!("cannot create directory {}: {e}", parent.display()),
            })?;
        }
        let db = libsql::Builder::new_local(path)
            .build()
            .await
            .map_err(|e| failed(e.into()))?;
        let writer = connect(&db, path, options, Role::Writer)
            .await
            .map_err(failed)?;
        schema::migrate(&writer, &location).await.map_err(failed)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(
                connect(&db, path, options, Role::Reader)
                    .await
                    .map_err(failed)?,
            );
        }
        let thread_failed = |e: std::io::Error| Error::Open {
            location: location.clone(),
            detail: format!("cannot start the store's threads: {e}"),
        };
        let (write_jobs, write_queue) = mpsc::channel(workers::QUEUE);
        let commits = Arc::new(AtomicU64::new(0));
        let alive = Arc::new(());
        workers::spawn_writer(writer, write_queue, Arc::clone(&commits), &alive)
            .map_err(thread_failed)?;
        let (read_jobs, read_queue) = std_mpsc::channel();
        workers::spawn_readers(readers, read_queue, &alive).map_err(thread_failed)?;
        tracing::debug!(path = %location, synchronous = ?options.synchronous, "opened sqlite store");
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: write_jobs,
                readers: read_jobs,
                commits,
                threads: Arc::downgrade(&alive),
            }),
        })
    }

    /// Tells when this store's threads have ended, which they do once its last clone is
    /// dropped and every write already queued is committed (or failed). A process that wants
    /// its last writes on disk before it exits waits for it.
    pub fn stopped(&self) -> Stopped {
        Stopped(self.inner.threads.clone())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version of the open database (`PRAGMA user_version`).
    pub async fn schema_version(&self) -> Result<u32> {
        self.read(|conn| async move { schema::user_version(&conn).await })
            .await
    }

    /// How many write transactions this store has committed. Concurrent writes share
    /// transactions, so this may be far fewer than the writes. For tests and benchmarks.
    #[doc(hidden)]
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Runs `work` on the writer thread, in a savepoint of a group-committed transaction, and
    /// waits for its outcome, which comes once the transaction has committed (or failed).
    async fn write<F, Fut, T>(&self, work: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        let (job, outcome) = workers::write_job(work);
        self.inner
            .writer
            .send(job)
            .await
            .map_err(|_| Error::Stopped)?;
        outcome.await.map_err(|_| Error::Stopped)?
    }

    /// Runs `work` on a reader thread and waits for its outcome.
    async fn read<F, Fut, T>(&self, work: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        let (job, outcome) = workers::read_job(work);
        self.inner.readers.send(job).map_err(|_| Error::Stopped)?;
        outcome.await.map_err(|_| Error::Stopped)?
    }
}

#[async_trait]
impl Health for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        self.read(|conn| async move {
            conn.query("SELECT 1", ()).await?.next().await?;
            Ok(())
        })
        .await
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

async fn connect(
    db: &Database,
    path: &Path,
    options: &SqliteOptions,
    role: Role,
) -> Result<Connection> {
    let conn = db.connect()?;
    // Before anything else, so that even switching to WAL waits for other processes.
    let max = Duration::from_millis(i32::MAX as u64);
    conn.busy_timeout(options.busy_timeout.min(max))?;
    if role == Role::Writer {
        // Persistent in the file; a no-op once set.
        let mut rows = conn.query("PRAGMA journal_mode = WAL", ()).await?;
        let row = rows
            .next()
            .await?
            .ok_or_else(|| codec::corrupt("journal_mode", "no row"))?;
        let mode = codec::text(&row, 0, "journal_mode")?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Open {
                location: path.display().to_string(),
                detail: format!("cannot switch to WAL journal mode (still {mode})"),
            });
        }
    }
    let synchronous = options.synchronous.pragma_value();
    conn.execute_batch(&format!("PRAGMA synchronous = {synchronous};"))
        .await?;
    if role == Role::Reader {
        conn.execute("PRAGMA query_only = ON", ()).await?;
    }
    Ok(conn)
}

/// Ends whatever transaction `conn` has open. Failing to roll back leaves nothing to undo that
/// SQLite has not undone already, so the error is only logged.
async fn rollback_quietly(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(error) = conn.execute("ROLLBACK", ()).await
    {
        tracing::warn!(%error, "rollback failed");
    }
}
