//! The SQLite backend: the embedded default and the test backend.
//!
//! Built on `libsql` (Turso's SQLite fork, local files only) because the embedded binary also
//! links the tansu broker, which uses it; `rusqlite`'s bundled SQLite would collide at link time.
//!
//! Concurrency: a libsql connection has one transaction state, so every write goes through one
//! writer connection, owned by a writer task that commits concurrent writes together, each in a
//! savepoint of its own, in `BEGIN IMMEDIATE` transactions (group commit, see [`writer`]); reads
//! use a few reader connections of their own. The database is in WAL mode, so readers never
//! block the writer and other processes may open the same file: their writers queue on SQLite's
//! write lock, waiting up to the configured busy timeout.
//!
//! The writer task is spawned on the tokio runtime that opens the store and ends when the last
//! clone of the store is dropped. Callers only wait for its reply, so a dropped caller future
//! can never leave a transaction half-open.
//!
//! The local libsql API is `async` in signature only: each call runs synchronously on the calling
//! task, blocking a runtime thread for the duration of a statement, or of a busy wait when
//! another process holds the write lock.

mod codec;
mod config;
mod schema;
mod webhooks;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use libsql::{Connection, Database};
use receipts_domain::event::now_millis;
use receipts_domain::{
    EventId, EventKind, Fact, IdempotencyKey, ReceiptEvent, ReceiptId, ReceiptState, Registration,
    RegistrationFailure, RegistryName, RequestFingerprint, Status, StatusPolicy, TenantId,
    Transition,
};
use tokio::sync::{Mutex, MutexGuard, mpsc, oneshot};

pub use config::{SqliteConfig, Synchronous};

use crate::{
    ApiClient, Applied, ClientId, ClientStore, Error, NewClient, ReceiptRecord, Reservation,
    Reserved, Result, Scope, StatusStore, StoredDocument, TimelineEntry,
};

/// Reader connections per store. Reads are short point lookups, so a few are plenty.
const READERS: usize = 4;

/// How often `apply` retries after losing a version-guarded update before giving up. With the
/// single writer connection and `BEGIN IMMEDIATE` a conflict cannot normally happen; the guard
/// protects against anything that writes the file some other way.
const MAX_ATTEMPTS: u32 = 5;

/// The SQLite status store. Cheap to clone: clones share the same connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Which registries ACCEPTED needs: statuses are derived with it.
    policy: StatusPolicy,
    /// The writer task's queue. Dropping the last sender (with the last clone of the store)
    /// ends the task.
    writer: mpsc::Sender<writer::Request>,
    /// Write transactions the writer task has committed.
    commits: Arc<AtomicU64>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `config.path` and brings its schema up to date.
    /// Safe to call concurrently from several processes on the same file.
    ///
    /// `policy` says which registries a receipt must be registered with to be ACCEPTED: every
    /// status this store records is derived with it, so every process that applies events to one
    /// database should use the same policy.
    pub async fn open(config: &SqliteConfig, policy: StatusPolicy) -> Result<Self> {
        let path = config.path.display().to_string();
        let failed = |e: Error| match e {
            Error::Open { .. } => e,
            other => Error::Open {
                path: path.clone(),
                detail: other.to_string(),
            },
        };
        if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::Open {
                path: path.clone(),
                detail: format!("cannot create directory {}: {e}", parent.display()),
            })?;
        }
        let db = libsql::Builder::new_local(&config.path)
            .build()
            .await
            .map_err(|e| failed(e.into()))?;

        let writer = connect(&db, config, Role::Writer).await.map_err(failed)?;
        schema::migrate(&writer, &path).await.map_err(failed)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Mutex::new(
                connect(&db, config, Role::Reader).await.map_err(failed)?,
            ));
        }
        // The writer runs on the runtime that opens the store (and ends with it at the latest).
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| Error::Open {
            path: path.clone(),
            detail: format!("no tokio runtime to run the store's writer on: {e}"),
        })?;
        let (requests, queue) = mpsc::channel(writer::QUEUE);
        let commits = Arc::new(AtomicU64::new(0));
        runtime
            .spawn(writer::Writer::new(writer, policy.clone(), queue, Arc::clone(&commits)).run());
        tracing::debug!(
            path,
            synchronous = ?config.synchronous,
            required_registries = ?policy.required_registries,
            "opened sqlite store"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                path: config.path.clone(),
                policy,
                writer: requests,
                commits,
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The policy statuses are derived with.
    pub fn policy(&self) -> &StatusPolicy {
        &self.inner.policy
    }

    /// The schema version of the open database (`PRAGMA user_version`).
    pub async fn schema_version(&self) -> Result<u32> {
        let conn = self.reader().await;
        schema::user_version(&conn).await
    }

    /// How many write transactions this store has committed. Concurrent writes share
    /// transactions, so this may be far fewer than the writes. For tests and benchmarks.
    #[doc(hidden)]
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Hands a write to the writer task and waits for its outcome, which comes once the
    /// write's transaction has committed (or failed).
    async fn write<T>(
        &self,
        request: impl FnOnce(writer::Reply<T>) -> writer::Request,
    ) -> Result<T> {
        let (reply, outcome) = oneshot::channel();
        self.inner
            .writer
            .send(request(reply))
            .await
            .map_err(|_| Error::WriterStopped)?;
        outcome.await.map_err(|_| Error::WriterStopped)?
    }

    /// A reader connection: an idle one if there is one, else the next in turn.
    async fn reader(&self) -> MutexGuard<'_, Connection> {
        for reader in &self.inner.readers {
            if let Ok(conn) = reader.try_lock() {
                return conn;
            }
        }
        let next =
            self.inner.next_reader.fetch_add(1, Ordering::Relaxed) % self.inner.readers.len();
        self.inner.readers[next].lock().await
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

async fn connect(db: &Database, config: &SqliteConfig, role: Role) -> Result<Connection> {
    let conn = db.connect()?;
    // Before anything else, so that even switching to WAL waits for other processes.
    let max = Duration::from_millis(i32::MAX as u64);
    conn.busy_timeout(config.busy_timeout.min(max))?;
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
                path: config.path.display().to_string(),
                detail: format!("cannot switch to WAL journal mode (still {mode})"),
            });
        }
    }
    let synchronous = config.synchronous.pragma_value();
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON;"
    ))
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

/// Columns of `receipts` as [`Projection::from_row`] reads them.
const PROJECTION_COLUMNS: &str = "tenant_id, status, state_json, version, receipt_type, content_type, \
     callback_url, received_at, updated_at, reasons_json, receipt_json, registrations_json, \
     failures_json";

/// A `receipts` row. The JSON columns `apply` only carries over stay undecoded; registrations
/// and failures are decoded because `apply` merges into them.
#[derive(Debug, Clone)]
struct Projection {
    tenant_id: String,
    /// The status recorded by the last applied event.
    status: Status,
    state: ReceiptState,
    version: i64,
    receipt_type: Option<String>,
    content_type: Option<String>,
    callback_url: Option<String>,
    received_at: Option<i64>,
    updated_at: i64,
    reasons_json: Option<String>,
    receipt_json: Option<String>,
    registrations: Vec<Registration>,
    failures: Vec<RegistrationFailure>,
}

impl Projection {
    /// The row a receipt's first event creates (before that event is folded in).
    fn empty(event: &ReceiptEvent, policy: &StatusPolicy) -> Self {
        let state = ReceiptState::default();
        Self {
            tenant_id: event.meta().tenant_id.as_str().to_owned(),
            status: state.status(policy),
            state,
            version: 0,
            receipt_type: None,
            content_type: None,
            callback_url: None,
            received_at: None,
            updated_at: 0,
            reasons_json: None,
            receipt_json: None,
            registrations: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn from_row(row: &libsql::Row, policy: &StatusPolicy) -> Result<Self> {
        let state: ReceiptState = codec::from_json(
            &codec::text(row, 2, "receipts.state_json")?,
            "receipts.state_json",
        )?;
        let status = codec::parse(
            &codec::text(row, 1, "receipts.status")?,
            "receipts.status",
            |s| Status::parse(s).ok_or("unknown status"),
        )?;
        if !status_fits_state(status, &state, policy) {
            return Err(codec::corrupt(
                "receipts.status",
                format!("status {status} contradicts state {state:?}"),
            ));
        }
        Ok(Self {
            tenant_id: codec::text(row, 0, "receipts.tenant_id")?,
            status,
            state,
            version: codec::int(row, 3, "receipts.version")?,
            receipt_type: codec::opt_text(row, 4, "receipts.receipt_type")?,
            content_type: codec::opt_text(row, 5, "receipts.content_type")?,
            callback_url: codec::opt_text(row, 6, "receipts.callback_url")?,
            received_at: codec::opt_int(row, 7, "receipts.received_at")?,
            updated_at: codec::int(row, 8, "receipts.updated_at")?,
            reasons_json: codec::opt_text(row, 9, "receipts.reasons_json")?,
            receipt_json: codec::opt_text(row, 10, "receipts.receipt_json")?,
            registrations: codec::from_json(
                &codec::text(row, 11, "receipts.registrations_json")?,
                "receipts.registrations_json",
            )?,
            failures: codec::from_json(
                &codec::text(row, 12, "receipts.failures_json")?,
                "receipts.failures_json",
            )?,
        })
    }

    fn tenant(&self) -> Result<TenantId> {
        codec::parse(&self.tenant_id, "receipts.tenant_id", TenantId::parse)
    }

    fn into_record(self, id: ReceiptId, timeline: Vec<TimelineEntry>) -> Result<ReceiptRecord> {
        Ok(ReceiptRecord {
            id,
            tenant_id: self.tenant()?,
            status: self.status,
            state: self.state,
            version: u64::try_from(self.version).map_err(|_| {
                codec::corrupt(
                    "receipts.version",
                    format!("negative version {}", self.version),
                )
            })?,
            receipt_type: self.receipt_type,
            content_type: self.content_type,
            callback_url: self.callback_url,
            received_at: codec::opt_time(self.received_at, "receipts.received_at")?,
            updated_at: codec::time(self.updated_at, "receipts.updated_at")?,
            reasons: match self.reasons_json {
                Some(json) => codec::from_json(&json, "receipts.reasons_json")?,
                None => Vec::new(),
            },
            receipt: self
                .receipt_json
                .map(|json| codec::from_json(&json, "receipts.receipt_json"))
                .transpose()?,
            registrations: self.registrations,
            failures: self.failures,
            timeline,
        })
    }
}

/// Whether a stored status can belong to a stored state. The status is derived from the state
/// with the policy of the store that wrote it; a store opened later with another policy (a
/// registry added to or removed from `[status]`) may derive VALIDATED where ACCEPTED was stored
/// or the reverse. That is a configuration change, not corruption: the stored status stands until
/// the receipt's next event. Any other disagreement is corruption.
fn status_fits_state(stored: Status, state: &ReceiptState, policy: &StatusPolicy) -> bool {
    let derived = state.status(policy);
    let registering = |s: Status| matches!(s, Status::Validated | Status::Accepted);
    stored == derived || (registering(stored) && registering(derived))
}

/// Adds `item` to `items` (kept in registry-name order) unless its registry already has one:
/// the first report of a registry's outcome wins.
fn merge_first<T: Clone>(items: &mut Vec<T>, item: &T, registry: impl Fn(&T) -> &RegistryName) {
    if let Err(at) = items.binary_search_by(|x| registry(x).cmp(registry(item))) {
        items.insert(at, item.clone());
    }
}

/// The registry a registration event is about.
fn registry_of(event: &ReceiptEvent) -> Option<&RegistryName> {
    match event {
        ReceiptEvent::Registered(e) => Some(&e.registration.registry),
        ReceiptEvent::RegistrationFailed(e) => Some(&e.failure.registry),
        _ => None,
    }
}

async fn load_projection(
    conn: &Connection,
    id: &str,
    policy: &StatusPolicy,
) -> Result<Option<Projection>> {
    let sql = format!("SELECT {PROJECTION_COLUMNS} FROM receipts WHERE id = ?1");
    let mut rows = conn.query(&sql, [id]).await?;
    match rows.next().await? {
        Some(row) => Projection::from_row(&row, policy).map(Some),
        None => Ok(None),
    }
}

/// The transition recorded in the timeline when event `event_id` was applied.
async fn recorded_transition(conn: &Connection, id: &str, event_id: &str) -> Result<Transition> {
    let mut rows = conn
        .query(
            "SELECT status_before, status FROM timeline WHERE receipt_id = ?1 AND event_id = ?2",
            [id, event_id],
        )
        .await?;
    let row = rows
        .next()
        .await?
        .ok_or_else(|| codec::corrupt("timeline", "conflicting entry not found"))?;
    let status = |idx, what| {
        codec::parse(&codec::text(&row, idx, what)?, what, |s| {
            Status::parse(s).ok_or("unknown status")
        })
    };
    Ok(Transition {
        from: status(0, "timeline.status_before")?,
        to: status(1, "timeline.status")?,
    })
}

/// What one attempt at applying an event came to.
enum Step {
    Applied(Transition),
    Duplicate(Transition),
    /// The version guard refused the update: retry from the start.
    Conflict,
}

/// One attempt at `apply`, inside a write transaction that the caller commits or rolls back.
async fn apply_in_tx(
    conn: &Connection,
    event: &ReceiptEvent,
    fact: &Fact,
    policy: &StatusPolicy,
) -> Result<Step> {
    let meta = event.meta();
    let id = meta.receipt_id.to_string();
    let event_id = meta.event_id.to_string();
    let existing = load_projection(conn, &id, policy).await?;
    let is_new = existing.is_none();
    let mut row = match existing {
        Some(row) if row.tenant_id != meta.tenant_id.as_str() => {
            return Err(Error::TenantMismatch {
                receipt_id: meta.receipt_id,
                event_tenant: meta.tenant_id.clone(),
                stored_tenant: row.tenant()?,
            });
        }
        Some(row) => row,
        None => Projection::empty(event, policy),
    };

    let before = row.state.clone();
    // From the status partners last saw (the stored one), to the one the facts now add up to.
    // Under one policy ACCEPTED is final by construction; should a stricter policy have been
    // configured since, it is still never withdrawn.
    let derived = row.state.apply(fact, policy).to;
    let transition = Transition {
        from: row.status,
        to: match (row.status, derived) {
            (Status::Accepted, Status::Validated) => Status::Accepted,
            (_, derived) => derived,
        },
    };
    row.status = transition.to;
    let expected_version = row.version;
    row.version += 1;
    let now = codec::millis(now_millis());
    row.updated_at = now;
    // Each fact's data comes from the first event that stated it. A second, different event of
    // the same kind (not a redelivery: those are caught by the timeline below) only adds to the
    // timeline, so a fiscal document or a registration, once stored, is never replaced.
    let mut document = None;
    match event {
        ReceiptEvent::Submitted(e) if !before.submitted => {
            // The submission names the type the partner declared; it wins over any other.
            row.receipt_type = Some(e.receipt_type.clone());
            row.content_type = Some(e.content_type.clone());
            row.callback_url = e.callback_url.as_ref().map(|url| url.as_str().to_owned());
            row.received_at = Some(codec::millis(e.meta.occurred_at));
            document = Some((e.content_type.clone(), e.document.clone()));
        }
        ReceiptEvent::Validated(e) if !before.validated => {
            row.receipt_json = Some(codec::to_json(&e.receipt, "normalized receipt")?);
        }
        ReceiptEvent::Rejected(e) if !before.rejected => {
            row.reasons_json = Some(codec::to_json(&e.reasons, "rejection reasons")?);
        }
        ReceiptEvent::Registered(e) => {
            merge_first(&mut row.registrations, &e.registration, |r| &r.registry);
        }
        ReceiptEvent::RegistrationFailed(e) => {
            merge_first(&mut row.failures, &e.failure, |f| &f.registry);
        }
        _ => {}
    }
    if row.receipt_type.is_none() {
        row.receipt_type = event.receipt_type().map(str::to_owned);
    }

    // The timeline entry doubles as the deduplication record.
    let inserted = conn
        .execute(
            "INSERT INTO timeline (receipt_id, event_id, kind, occurred_at, recorded_at, status_before,
                                   status, registry, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (receipt_id, event_id) DO NOTHING",
            (
                id.as_str(),
                event_id.as_str(),
                event.kind().as_str(),
                codec::millis(meta.occurred_at),
                now,
                transition.from.as_str(),
                transition.to.as_str(),
                registry_of(event).map(RegistryName::as_str),
                row.version,
            ),
        )
        .await?;
    if inserted == 0 {
        return recorded_transition(conn, &id, &event_id)
            .await
            .map(Step::Duplicate);
    }

    let state_json = codec::to_json(&row.state, "receipt state")?;
    let registrations_json = codec::to_json(&row.registrations, "registrations")?;
    let failures_json = codec::to_json(&row.failures, "registration failures")?;
    let written = if is_new {
        conn.execute(
            "INSERT INTO receipts (id, tenant_id, status, state_json, version, receipt_type, content_type,
                                   callback_url, received_at, updated_at, reasons_json, receipt_json,
                                   registrations_json, failures_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (id) DO NOTHING",
            libsql::params![
                id.as_str(),
                row.tenant_id,
                row.status.as_str(),
                state_json,
                row.version,
                row.receipt_type,
                row.content_type,
                row.callback_url,
                row.received_at,
                row.updated_at,
                row.reasons_json,
                row.receipt_json,
                registrations_json,
                failures_json,
            ],
        )
        .await?
    } else {
        conn.execute(
            "UPDATE receipts SET status = ?3, state_json = ?4, version = ?5, receipt_type = ?6,
                    content_type = ?7, callback_url = ?8, received_at = ?9, updated_at = ?10,
                    reasons_json = ?11, receipt_json = ?12, registrations_json = ?13,
                    failures_json = ?14
             WHERE id = ?1 AND tenant_id = ?2 AND version = ?15",
            libsql::params![
                id.as_str(),
                row.tenant_id,
                row.status.as_str(),
                state_json,
                row.version,
                row.receipt_type,
                row.content_type,
                row.callback_url,
                row.received_at,
                row.updated_at,
                row.reasons_json,
                row.receipt_json,
                registrations_json,
                failures_json,
                expected_version,
            ],
        )
        .await?
    };
    if written == 0 {
        return Ok(Step::Conflict);
    }

    if let Some((content_type, bytes)) = document {
        conn.execute(
            "INSERT INTO documents (receipt_id, content_type, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT (receipt_id) DO NOTHING",
            (id.as_str(), content_type, bytes),
        )
        .await?;
    }
    Ok(Step::Applied(transition))
}

async fn read_timeline(conn: &Connection, id: &str) -> Result<Vec<TimelineEntry>> {
    let mut rows = conn
        .query(
            "SELECT event_id, kind, occurred_at, recorded_at, status, registry FROM timeline
             WHERE receipt_id = ?1 ORDER BY occurred_at, seq",
            [id],
        )
        .await?;
    let mut timeline = Vec::new();
    while let Some(row) = rows.next().await? {
        timeline.push(TimelineEntry {
            event_id: codec::parse(
                &codec::text(&row, 0, "timeline.event_id")?,
                "timeline.event_id",
                EventId::parse,
            )?,
            event: codec::parse(
                &codec::text(&row, 1, "timeline.kind")?,
                "timeline.kind",
                |s| EventKind::parse(s).ok_or("unknown event kind"),
            )?,
            occurred_at: codec::time(
                codec::int(&row, 2, "timeline.occurred_at")?,
                "timeline.occurred_at",
            )?,
            recorded_at: codec::time(
                codec::int(&row, 3, "timeline.recorded_at")?,
                "timeline.recorded_at",
            )?,
            status: codec::parse(
                &codec::text(&row, 4, "timeline.status")?,
                "timeline.status",
                |s| Status::parse(s).ok_or("unknown status"),
            )?,
            registry: codec::opt_text(&row, 5, "timeline.registry")?
                .map(|s| codec::parse(&s, "timeline.registry", RegistryName::parse))
                .transpose()?,
        });
    }
    Ok(timeline)
}

async fn read_receipt(
    conn: &Connection,
    tenant: &TenantId,
    id: ReceiptId,
    policy: &StatusPolicy,
) -> Result<Option<ReceiptRecord>> {
    let key = id.to_string();
    let sql = format!("SELECT {PROJECTION_COLUMNS} FROM receipts WHERE id = ?1 AND tenant_id = ?2");
    let projection = {
        let mut rows = conn.query(&sql, [key.as_str(), tenant.as_str()]).await?;
        match rows.next().await? {
            Some(row) => Projection::from_row(&row, policy)?,
            None => return Ok(None),
        }
    };
    let timeline = read_timeline(conn, &key).await?;
    projection.into_record(id, timeline).map(Some)
}

#[async_trait]
impl StatusStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %reservation.tenant_id, receipt_id = %reservation.receipt_id))]
    async fn reserve(&self, reservation: &Reservation) -> Result<Reserved> {
        let reserved = self
            .write(|reply| writer::Request::Reserve {
                reservation: reservation.clone(),
                reply,
            })
            .await?;
        tracing::debug!(
            new = matches!(reserved, Reserved::New),
            "reserved idempotency key"
        );
        Ok(reserved)
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(receipt_id = %event.meta().receipt_id, event_id = %event.meta().event_id, kind = %event.kind()),
    )]
    async fn apply(&self, event: &ReceiptEvent) -> Result<Applied> {
        let Some(fact) = event.fact() else {
            tracing::debug!("event states no fact, ignored");
            return Ok(Applied::Ignored);
        };
        let applied = self
            .write(|reply| writer::Request::Apply {
                event: Box::new(event.clone()),
                fact,
                reply,
            })
            .await?;
        match applied {
            Applied::Applied(transition) => {
                tracing::debug!(from = %transition.from, to = %transition.to, "applied event");
            }
            Applied::Duplicate(transition) => {
                tracing::debug!(from = %transition.from, to = %transition.to, "duplicate event ignored");
            }
            Applied::Ignored => {}
        }
        Ok(applied)
    }

    async fn receipt(&self, tenant: &TenantId, id: ReceiptId) -> Result<Option<ReceiptRecord>> {
        let conn = self.reader().await;
        rollback_quietly(&conn).await;
        // One read transaction, so the row and its timeline are the same snapshot.
        conn.execute("BEGIN", ()).await?;
        let result = read_receipt(&conn, tenant, id, &self.inner.policy).await;
        rollback_quietly(&conn).await;
        result
    }

    async fn tenant_of(&self, id: ReceiptId) -> Result<Option<TenantId>> {
        let conn = self.reader().await;
        let mut rows = conn
            .query(
                "SELECT tenant_id FROM receipts WHERE id = ?1",
                [id.to_string()],
            )
            .await?;
        match rows.next().await? {
            Some(row) => codec::parse(
                &codec::text(&row, 0, "receipts.tenant_id")?,
                "receipts.tenant_id",
                TenantId::parse,
            )
            .map(Some),
            None => Ok(None),
        }
    }

    async fn ping(&self) -> Result<()> {
        let conn = self.reader().await;
        let mut rows = conn.query("SELECT 1", ()).await?;
        rows.next().await?;
        Ok(())
    }

    async fn document(&self, tenant: &TenantId, id: ReceiptId) -> Result<Option<StoredDocument>> {
        let conn = self.reader().await;
        let mut rows = conn
            .query(
                "SELECT d.content_type, d.bytes FROM documents d JOIN receipts r ON r.id = d.receipt_id
                 WHERE r.id = ?1 AND r.tenant_id = ?2",
                [id.to_string().as_str(), tenant.as_str()],
            )
            .await?;
        match rows.next().await? {
            Some(row) => Ok(Some(StoredDocument {
                content_type: codec::text(&row, 0, "documents.content_type")?,
                bytes: codec::blob(&row, 1, "documents.bytes")?,
            })),
            None => Ok(None),
        }
    }
}

async fn reserve_in_tx(conn: &Connection, r: &Reservation) -> Result<Reserved> {
    let inserted = conn
        .execute(
            "INSERT INTO idempotency (tenant_id, idempotency_key, fingerprint, receipt_id, event_id, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
            (
                r.tenant_id.as_str(),
                r.idempotency_key.as_str(),
                r.fingerprint.as_hex(),
                r.receipt_id.to_string(),
                r.event_id.to_string(),
                codec::millis(r.received_at),
            ),
        )
        .await?;
    if inserted > 0 {
        return Ok(Reserved::New);
    }
    let mut rows = conn
        .query(
            "SELECT tenant_id, idempotency_key, fingerprint, receipt_id, event_id, received_at FROM idempotency
             WHERE tenant_id = ?1 AND idempotency_key = ?2",
            [r.tenant_id.as_str(), r.idempotency_key.as_str()],
        )
        .await?;
    let row = rows
        .next()
        .await?
        .ok_or_else(|| codec::corrupt("idempotency", "conflicting row not found"))?;
    Ok(Reserved::Existing(Reservation {
        tenant_id: codec::parse(
            &codec::text(&row, 0, "idempotency.tenant_id")?,
            "idempotency.tenant_id",
            TenantId::parse,
        )?,
        idempotency_key: codec::parse(
            &codec::text(&row, 1, "idempotency.idempotency_key")?,
            "idempotency.idempotency_key",
            IdempotencyKey::parse,
        )?,
        fingerprint: RequestFingerprint::from_hex(codec::text(&row, 2, "idempotency.fingerprint")?),
        receipt_id: codec::parse(
            &codec::text(&row, 3, "idempotency.receipt_id")?,
            "idempotency.receipt_id",
            ReceiptId::parse,
        )?,
        event_id: codec::parse(
            &codec::text(&row, 4, "idempotency.event_id")?,
            "idempotency.event_id",
            EventId::parse,
        )?,
        received_at: codec::time(
            codec::int(&row, 5, "idempotency.received_at")?,
            "idempotency.received_at",
        )?,
    }))
}

const CLIENT_COLUMNS: &str = "id, tenant_id, scope, key_prefix, label, created_at, revoked_at";

fn client_from_row(row: &libsql::Row) -> Result<ApiClient> {
    Ok(ApiClient {
        id: codec::parse(
            &codec::text(row, 0, "api_clients.id")?,
            "api_clients.id",
            |s| s.parse::<ClientId>(),
        )?,
        tenant_id: codec::parse(
            &codec::text(row, 1, "api_clients.tenant_id")?,
            "api_clients.tenant_id",
            TenantId::parse,
        )?,
        scope: codec::parse(
            &codec::text(row, 2, "api_clients.scope")?,
            "api_clients.scope",
            |s| s.parse::<Scope>(),
        )?,
        key_prefix: codec::text(row, 3, "api_clients.key_prefix")?,
        label: codec::opt_text(row, 4, "api_clients.label")?,
        created_at: codec::time(
            codec::int(row, 5, "api_clients.created_at")?,
            "api_clients.created_at",
        )?,
        revoked_at: codec::opt_time(
            codec::opt_int(row, 6, "api_clients.revoked_at")?,
            "api_clients.revoked_at",
        )?,
    })
}

#[async_trait]
impl ClientStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client.id, tenant_id = %client.tenant_id))]
    async fn create_client(&self, client: &NewClient) -> Result<ApiClient> {
        let created_at = now_millis();
        let created = self
            .write(|reply| writer::Request::CreateClient {
                client: client.clone(),
                created_at,
                reply,
            })
            .await?;
        tracing::debug!("created api client");
        Ok(created)
    }

    async fn client_by_key_hash(&self, key_hash: &str) -> Result<Option<ApiClient>> {
        let conn = self.reader().await;
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM api_clients WHERE key_hash = ?1");
        let mut rows = conn.query(&sql, [key_hash]).await?;
        match rows.next().await? {
            Some(row) => client_from_row(&row).map(Some),
            None => Ok(None),
        }
    }

    async fn list_clients(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiClient>> {
        let conn = self.reader().await;
        let mut rows = match tenant {
            Some(tenant) => {
                let sql = format!(
                    "SELECT {CLIENT_COLUMNS} FROM api_clients WHERE tenant_id = ?1 ORDER BY created_at, rowid"
                );
                conn.query(&sql, [tenant.as_str()]).await?
            }
            None => {
                let sql =
                    format!("SELECT {CLIENT_COLUMNS} FROM api_clients ORDER BY created_at, rowid");
                conn.query(&sql, ()).await?
            }
        };
        let mut clients = Vec::new();
        while let Some(row) = rows.next().await? {
            clients.push(client_from_row(&row)?);
        }
        Ok(clients)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %id))]
    async fn revoke_client(&self, id: ClientId) -> Result<bool> {
        let revoked_at = now_millis();
        let revoked = self
            .write(|reply| writer::Request::RevokeClient {
                id,
                revoked_at,
                reply,
            })
            .await?;
        tracing::debug!(revoked, "revoke api client");
        Ok(revoked)
    }
}

async fn create_client_in_tx(
    conn: &Connection,
    client: &NewClient,
    created_at: DateTime<Utc>,
) -> Result<ApiClient> {
    let inserted = conn
        .execute(
            "INSERT INTO api_clients (id, tenant_id, scope, key_hash, key_prefix, label, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT DO NOTHING",
            (
                client.id.to_string(),
                client.tenant_id.as_str(),
                client.scope.as_str(),
                client.key_hash.as_str(),
                client.key_prefix.as_str(),
                client.label.as_deref(),
                codec::millis(created_at),
            ),
        )
        .await?;
    if inserted == 0 {
        return Err(Error::AlreadyExists {
            what: "api client",
            detail: format!("a client with id {} or the same key hash", client.id),
        });
    }
    Ok(ApiClient {
        id: client.id,
        tenant_id: client.tenant_id.clone(),
        scope: client.scope,
        key_prefix: client.key_prefix.clone(),
        label: client.label.clone(),
        created_at,
        revoked_at: None,
    })
}

/// Whether the client was there, unrevoked, and is now revoked.
async fn revoke_client_in_tx(
    conn: &Connection,
    id: ClientId,
    revoked_at: DateTime<Utc>,
) -> Result<bool> {
    let revoked = conn
        .execute(
            "UPDATE api_clients SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            (id.to_string(), codec::millis(revoked_at)),
        )
        .await?;
    Ok(revoked > 0)
}
