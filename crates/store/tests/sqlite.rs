//! The SQLite backend: the shared conformance suite, then what is specific to SQLite (files,
//! migrations, several connections and processes on one file).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use receipts_domain::event::now_millis;
use receipts_domain::{
    Destination, EventKind, ReceiptEvent, ReceiptId, Status, StatusPolicy, Transition,
    WebhookEventType, WebhookSecret,
};
use receipts_store::conformance::{self, ReceiptFixture};
use receipts_store::{
    ApiKey, Applied, ClientId, ClientStore, DeliveryStatus, EndpointPatch, Error, NewClient,
    Reserved, Scope, SqliteConfig, SqliteStore, StatusStore, StoredSecret, Synchronous,
    WebhookStore,
};
use tempfile::TempDir;

/// A store on a fresh file in its own temporary directory (deleted when the `TempDir` drops).
async fn fresh() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open(&config(dir.path())).await;
    (dir, store)
}

/// Opens a store with the default policy (tax and logistics required).
async fn open(config: &SqliteConfig) -> SqliteStore {
    SqliteStore::open(config, StatusPolicy::default())
        .await
        .expect("open the store")
}

fn config(dir: &Path) -> SqliteConfig {
    SqliteConfig::new(dir.join("receipts.db"))
}

macro_rules! conformance {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {$(
        $(#[$attr])*
        async fn $name() {
            let (_dir, store) = fresh().await;
            conformance::$name(&store).await;
        }
    )*};
}

conformance!(
    #[tokio::test]
    reserve_is_first_writer_wins,
    #[tokio::test]
    apply_creates_receipt_from_any_first_event,
    #[tokio::test]
    submitted_then_validated,
    #[tokio::test]
    submitted_then_rejected,
    #[tokio::test]
    duplicate_event_changes_nothing,
    #[tokio::test]
    out_of_order_matches_in_order,
    #[tokio::test]
    every_permutation_converges,
    #[tokio::test]
    accepted_once_every_required_registry_registered,
    #[tokio::test]
    failed_when_a_registry_failed,
    #[tokio::test]
    rejected_beats_failed_beats_accepted,
    #[tokio::test]
    registrations_and_failures_first_wins,
    #[tokio::test]
    duplicate_carries_the_original_transition,
    #[tokio::test]
    status_changed_is_ignored,
    #[tokio::test]
    tenant_of_finds_the_owner,
    #[tokio::test]
    every_permutation_of_a_registration_converges,
    #[tokio::test]
    receipts_are_tenant_isolated,
    #[tokio::test]
    tenant_mismatch_is_refused,
    #[tokio::test]
    documents_are_byte_exact,
    #[tokio::test]
    document_needs_submission,
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_applies_keep_each_event_once,
    #[tokio::test]
    clients_create_lookup_list_revoke,
    #[tokio::test]
    duplicate_client_key_is_refused,
    #[tokio::test]
    webhook_endpoints_crud_and_tenant_isolation,
    #[tokio::test]
    webhook_endpoint_events_and_subscriptions,
    #[tokio::test]
    webhook_endpoint_secret_rotation,
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    webhook_callback_secrets_get_or_create,
    #[tokio::test]
    webhook_endpoint_health,
    #[tokio::test]
    webhook_delivery_log,
);

/// Stores with different policies on one file, as processes configured differently would have.
#[tokio::test]
async fn the_policy_decides_what_accepted_needs() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    conformance::the_policy_decides_what_accepted_needs(|policy| {
        let config = config.clone();
        async move {
            SqliteStore::open(&config, policy)
                .await
                .expect("open with a policy")
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// SQLite specifics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let fx = ReceiptFixture::new();
    let reservation = conformance::reservation(&fx.tenant, "order-1", b"{}");
    let key = ApiKey::generate();
    let new_client = NewClient {
        id: ClientId::new(),
        tenant_id: fx.tenant.clone(),
        scope: Scope::ReadWrite,
        key_hash: key.hash(),
        key_prefix: key.display_prefix(),
        label: Some("till 1".to_owned()),
    };

    let (record, document, client) = {
        let store = open(&config).await;
        assert_eq!(
            store.reserve(&reservation).await.expect("reserve"),
            Reserved::New
        );
        store.apply(&fx.submitted().into()).await.expect("apply");
        store.apply(&fx.validated().into()).await.expect("apply");
        let client = store
            .create_client(&new_client)
            .await
            .expect("create client");
        let record = store
            .receipt(&fx.tenant, fx.receipt_id)
            .await
            .expect("receipt()")
            .expect("exists");
        let document = store
            .document(&fx.tenant, fx.receipt_id)
            .await
            .expect("document()")
            .expect("exists");
        (record, document, client)
    };

    let store = open(&config).await;
    assert_eq!(
        store
            .receipt(&fx.tenant, fx.receipt_id)
            .await
            .expect("receipt()"),
        Some(record.clone())
    );
    assert_eq!(record.status, Status::Validated);
    assert_eq!(
        store
            .document(&fx.tenant, fx.receipt_id)
            .await
            .expect("document()"),
        Some(document)
    );
    assert_eq!(
        store.client_by_key_hash(&key.hash()).await.expect("lookup"),
        Some(client)
    );
    assert_eq!(
        store.reserve(&reservation).await.expect("reserve"),
        Reserved::Existing(reservation.clone())
    );
}

#[tokio::test]
async fn redelivery_after_reopen_is_a_duplicate() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let fx = ReceiptFixture::new();
    let event: ReceiptEvent = fx.submitted().into();
    {
        let store = open(&config).await;
        store.apply(&event).await.expect("apply");
    }
    let store = open(&config).await;
    assert_eq!(
        store.apply(&event).await.expect("apply"),
        Applied::Duplicate(Transition {
            from: Status::Received,
            to: Status::Received
        })
    );
    let record = store
        .receipt(&fx.tenant, fx.receipt_id)
        .await
        .expect("receipt()")
        .expect("exists");
    assert_eq!((record.version, record.timeline.len()), (1, 1));
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let fx = ReceiptFixture::new();
    let first = open(&config).await;
    let version = first.schema_version().await.expect("schema version");
    assert!(version >= 1);
    first.apply(&fx.submitted().into()).await.expect("apply");

    // Reopening, also while another store has the file open, migrates nothing twice.
    for _ in 0..3 {
        let again = open(&config).await;
        assert_eq!(
            again.schema_version().await.expect("schema version"),
            version
        );
        assert!(
            again
                .receipt(&fx.tenant, fx.receipt_id)
                .await
                .expect("receipt()")
                .is_some()
        );
    }
    drop(first);
    let last = open(&config).await;
    assert_eq!(
        last.schema_version().await.expect("schema version"),
        version
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    drop(open(&config).await);
    {
        let db = libsql::Builder::new_local(&config.path)
            .build()
            .await
            .expect("raw database");
        let conn = db.connect().expect("raw connection");
        conn.execute("PRAGMA user_version = 999", ())
            .await
            .expect("set user_version");
    }
    match SqliteStore::open(&config, StatusPolicy::default()).await {
        Err(Error::Open { detail, .. }) => assert!(detail.contains("999"), "{detail}"),
        other => panic!("expected an Open error, got {other:?}"),
    }
}

#[tokio::test]
async fn open_creates_directories_and_uses_wal() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("nested/deeper/receipts.db");
    let config = SqliteConfig {
        path: path.clone(),
        synchronous: Synchronous::Normal,
        ..SqliteConfig::default()
    };
    let store = open(&config).await;
    assert_eq!(store.path(), path);
    assert!(path.exists());

    let db = libsql::Builder::new_local(&path)
        .build()
        .await
        .expect("raw database");
    let conn = db.connect().expect("raw connection");
    let mut rows = conn.query("PRAGMA journal_mode", ()).await.expect("query");
    let row = rows.next().await.expect("row").expect("a row");
    assert_eq!(row.get::<String>(0).expect("text"), "wal");
}

#[tokio::test]
async fn open_reports_the_path_when_it_cannot_create_the_directory() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").expect("write");
    let config = SqliteConfig::new(blocker.join("receipts.db"));
    match SqliteStore::open(&config, StatusPolicy::default()).await {
        Err(e @ Error::Open { .. }) => assert!(e.to_string().contains("receipts.db"), "{e}"),
        other => panic!("expected an Open error, got {other:?}"),
    }
}

/// Holds the database's write lock from another connection (as another process would) for
/// `hold`, on its own thread.
fn hold_write_lock(
    path: PathBuf,
    hold: Duration,
) -> (std::thread::JoinHandle<()>, std::sync::mpsc::Receiver<()>) {
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let db = libsql::Builder::new_local(&path)
                .build()
                .await
                .expect("raw database");
            let conn = db.connect().expect("raw connection");
            conn.execute("BEGIN IMMEDIATE", ())
                .await
                .expect("take the write lock");
            locked_tx.send(()).expect("signal");
            std::thread::sleep(hold);
            conn.execute("COMMIT", ())
                .await
                .expect("release the write lock");
        });
    });
    (holder, locked_rx)
}

#[tokio::test]
async fn writes_wait_for_the_lock_up_to_the_busy_timeout() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let store = open(&config).await;

    // Held for less than the busy timeout: the write waits, then succeeds.
    let (holder, locked) = hold_write_lock(config.path.clone(), Duration::from_millis(400));
    locked.recv().expect("the lock is held");
    let started = Instant::now();
    let fx = ReceiptFixture::new();
    store
        .apply(&fx.submitted().into())
        .await
        .expect("the write waits for the lock");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the write did not wait: {:?}",
        started.elapsed()
    );
    holder.join().expect("holder thread");

    // Held for longer than a short busy timeout: the write fails, and nothing is half-written.
    let impatient = open(&SqliteConfig {
        busy_timeout: Duration::from_millis(50),
        ..config.clone()
    })
    .await;
    let (holder, locked) = hold_write_lock(config.path.clone(), Duration::from_millis(600));
    locked.recv().expect("the lock is held");
    let other = ReceiptFixture::new();
    let err = impatient
        .apply(&other.submitted().into())
        .await
        .expect_err("the lock is held too long");
    assert!(matches!(err, Error::Database(_)), "{err}");
    holder.join().expect("holder thread");
    assert_eq!(
        store
            .receipt(&other.tenant, other.receipt_id)
            .await
            .expect("receipt()"),
        None
    );
    // The failed store recovers once the lock is free.
    impatient
        .apply(&other.submitted().into())
        .await
        .expect("apply after the lock is released");
}

/// Events for `receipts` receipts of one tenant: a submission and a validation each.
fn shared_events(receipts: usize) -> Vec<ReceiptEvent> {
    let tenant = conformance::unique_tenant();
    (0..receipts)
        .flat_map(|_| {
            let fx = ReceiptFixture::for_tenant(tenant.clone());
            [fx.submitted().into(), fx.validated().into()]
        })
        .collect()
}

/// Checks that every receipt of `events` saw each of its events exactly once.
async fn assert_each_event_once(store: &SqliteStore, events: &[ReceiptEvent]) {
    let mut receipts: Vec<ReceiptId> = events.iter().map(|e| e.meta().receipt_id).collect();
    receipts.dedup();
    let tenant = &events[0].meta().tenant_id;
    for id in receipts {
        let record = store
            .receipt(tenant, id)
            .await
            .expect("receipt()")
            .expect("exists");
        let expected: Vec<_> = events
            .iter()
            .filter(|e| e.meta().receipt_id == id)
            .map(|e| e.meta().event_id)
            .collect();
        let mut seen: Vec<_> = record.timeline.iter().map(|e| e.event_id).collect();
        seen.sort();
        let mut expected_sorted = expected.clone();
        expected_sorted.sort();
        assert_eq!(seen, expected_sorted, "receipt {id}");
        assert_eq!(record.version, expected.len() as u64, "receipt {id}");
        assert_eq!(record.status, Status::Validated, "receipt {id}");
    }
}

/// Two stores on one file, as two processes would have: concurrent writes from both all succeed
/// (no "database is locked"), and every event lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_write_concurrently() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let a = open(&config).await;
    let b = open(&config).await;
    let events = shared_events(30);

    let mut tasks = tokio::task::JoinSet::new();
    for (i, event) in events.iter().enumerate() {
        // Every event is delivered to both stores.
        for store in [&a, &b] {
            let (store, event) = (store.clone(), event.clone());
            tasks.spawn(async move {
                let taken = store
                    .apply(&event)
                    .await
                    .map(|a| matches!(a, Applied::Applied(_)));
                (format!("event {i}"), taken)
            });
        }
    }
    // Both stores race for the same idempotency keys too.
    let tenant = conformance::unique_tenant();
    let keys = 20;
    for k in 0..keys {
        for store in [&a, &b] {
            let store = store.clone();
            let reservation = conformance::reservation(&tenant, &format!("key-{k}"), b"{}");
            tasks.spawn(async move {
                let taken = store
                    .reserve(&reservation)
                    .await
                    .map(|r| r == Reserved::New);
                (format!("key {k}"), taken)
            });
        }
    }
    let mut taken = std::collections::BTreeMap::<String, usize>::new();
    while let Some(joined) = tasks.join_next().await {
        let (what, outcome) = joined.expect("task panicked");
        let won = outcome.unwrap_or_else(|e| panic!("concurrent write ({what}) failed: {e}"));
        *taken.entry(what).or_default() += usize::from(won);
    }
    // Each event and each key was taken exactly once, by one of the two stores.
    assert_eq!(taken.len(), events.len() + keys);
    assert!(taken.values().all(|&n| n == 1), "{taken:?}");
    assert_each_event_once(&a, &events).await;
    assert_each_event_once(&b, &events).await;
}

const CHILD_DB: &str = "RECEIPTS_STORE_TEST_CHILD_DB";
const CHILD_EVENTS: &str = "RECEIPTS_STORE_TEST_CHILD_EVENTS";

/// A real second process on the same file: this test binary re-run for this same test with
/// `CHILD_DB` set, which makes it the child: it applies the same events as the parent, in reverse
/// order, at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_write_one_file() {
    if let (Some(db), Some(events_file)) =
        (std::env::var_os(CHILD_DB), std::env::var_os(CHILD_EVENTS))
    {
        return child_writer(PathBuf::from(db), PathBuf::from(events_file)).await;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let store = open(&config).await;
    let events = shared_events(60);
    let events_file = dir.path().join("events.json");
    std::fs::write(
        &events_file,
        serde_json::to_vec(&events).expect("encode events"),
    )
    .expect("write events");
    let ready = dir.path().join("child-ready");

    let exe = std::env::current_exe().expect("test binary");
    let child = tokio::process::Command::new(exe)
        .args([
            "--exact",
            "two_processes_write_one_file",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &config.path)
        .env(CHILD_EVENTS, &events_file)
        .kill_on_drop(true)
        .output();
    let child = tokio::spawn(child);

    // Start writing once the child has opened the store, so the two really overlap.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the child process did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for event in &events {
        store
            .apply(event)
            .await
            .unwrap_or_else(|e| panic!("parent apply failed: {e}"));
    }
    let output = child.await.expect("join").expect("run the child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("child applied 120 events"),
        "the child did not run: {stdout}"
    );
    assert_each_event_once(&store, &events).await;
}

/// The child half of `two_processes_write_one_file`.
async fn child_writer(db: PathBuf, events_file: PathBuf) {
    let events: Vec<ReceiptEvent> =
        serde_json::from_slice(&std::fs::read(&events_file).expect("read events"))
            .expect("decode events");
    let store = open(&SqliteConfig::new(db)).await;
    let ready = events_file.with_file_name("child-ready");
    std::fs::write(ready, b"").expect("signal readiness");
    for event in events.iter().rev() {
        store
            .apply(event)
            .await
            .unwrap_or_else(|e| panic!("child apply failed: {e}"));
    }
    println!("child applied {} events", events.len());
}

/// Bad stored data is reported as `Error::Corrupt`, never a panic.
#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let store = open(&config).await;
    let (state, timeline, tenant) = (
        ReceiptFixture::new(),
        ReceiptFixture::new(),
        ReceiptFixture::new(),
    );
    for fx in [&state, &timeline, &tenant] {
        store.apply(&fx.submitted().into()).await.expect("apply");
    }

    let db = libsql::Builder::new_local(&config.path)
        .build()
        .await
        .expect("raw database");
    let conn = db.connect().expect("raw connection");
    let vandalise = [
        (
            "UPDATE receipts SET state_json = '{not json' WHERE id = ?1",
            state.receipt_id,
        ),
        (
            "UPDATE timeline SET kind = 'teleported' WHERE receipt_id = ?1",
            timeline.receipt_id,
        ),
        (
            "UPDATE receipts SET tenant_id = 'Not A Tenant' WHERE id = ?1",
            tenant.receipt_id,
        ),
    ];
    for (sql, id) in vandalise {
        conn.execute(sql, [id.to_string()])
            .await
            .expect("vandalise");
    }

    let err = store
        .receipt(&state.tenant, state.receipt_id)
        .await
        .expect_err("bad state");
    assert!(
        matches!(
            err,
            Error::Corrupt {
                what: "receipts.state_json",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .apply(&state.validated().into())
        .await
        .expect_err("bad state");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let err = store
        .receipt(&timeline.tenant, timeline.receipt_id)
        .await
        .expect_err("bad timeline");
    assert!(
        matches!(
            err,
            Error::Corrupt {
                what: "timeline.kind",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .apply(&tenant.validated().into())
        .await
        .expect_err("bad tenant");
    assert!(
        matches!(
            err,
            Error::Corrupt {
                what: "receipts.tenant_id",
                ..
            }
        ),
        "{err}"
    );
    // A failed apply leaves no transaction behind: the store keeps working.
    let fine = ReceiptFixture::new();
    store
        .apply(&fine.submitted().into())
        .await
        .expect("apply after errors");
    assert!(
        store
            .receipt(&fine.tenant, fine.receipt_id)
            .await
            .expect("receipt()")
            .is_some()
    );
}

/// The schema of version 1, exactly as released (`src/sqlite/schema.rs`, migration 1).
const SCHEMA_V1: &str = r#"
    CREATE TABLE receipts (
        id           TEXT    NOT NULL PRIMARY KEY,
        tenant_id    TEXT    NOT NULL,
        status       TEXT    NOT NULL,
        state_json   TEXT    NOT NULL,
        version      INTEGER NOT NULL,
        receipt_type TEXT    NOT NULL,
        content_type TEXT,
        callback_url TEXT,
        received_at  INTEGER,
        updated_at   INTEGER NOT NULL,
        reasons_json TEXT,
        receipt_json TEXT
    ) STRICT;
    CREATE INDEX receipts_by_tenant_updated ON receipts (tenant_id, updated_at);

    CREATE TABLE timeline (
        receipt_id  TEXT    NOT NULL REFERENCES receipts (id) DEFERRABLE INITIALLY DEFERRED,
        event_id    TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        occurred_at INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL,
        status      TEXT    NOT NULL,
        seq         INTEGER NOT NULL,
        PRIMARY KEY (receipt_id, event_id)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE documents (
        receipt_id   TEXT NOT NULL PRIMARY KEY REFERENCES receipts (id) DEFERRABLE INITIALLY DEFERRED,
        content_type TEXT NOT NULL,
        bytes        BLOB NOT NULL
    ) STRICT;

    CREATE TABLE idempotency (
        tenant_id       TEXT    NOT NULL,
        idempotency_key TEXT    NOT NULL,
        fingerprint     TEXT    NOT NULL,
        receipt_id      TEXT    NOT NULL,
        event_id        TEXT    NOT NULL,
        received_at     INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, idempotency_key)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE api_clients (
        id         TEXT    NOT NULL PRIMARY KEY,
        tenant_id  TEXT    NOT NULL,
        scope      TEXT    NOT NULL,
        key_hash   TEXT    NOT NULL UNIQUE,
        key_prefix TEXT    NOT NULL,
        label      TEXT,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;
    CREATE INDEX api_clients_by_tenant ON api_clients (tenant_id, created_at);
"#;

/// The schema version this build writes.
const LATEST_VERSION: u32 = 3;

/// Migration 2, exactly as released (`src/sqlite/schema.rs`): applied to [`SCHEMA_V1`] it gives
/// the schema of version 2.
const MIGRATION_2: &str = r#"
    CREATE TABLE receipts_v2 (
        id                 TEXT    NOT NULL PRIMARY KEY,
        tenant_id          TEXT    NOT NULL,
        status             TEXT    NOT NULL,
        state_json         TEXT    NOT NULL,
        version            INTEGER NOT NULL,
        receipt_type       TEXT,
        content_type       TEXT,
        callback_url       TEXT,
        received_at        INTEGER,
        updated_at         INTEGER NOT NULL,
        reasons_json       TEXT,
        receipt_json       TEXT,
        registrations_json TEXT    NOT NULL DEFAULT '[]',
        failures_json      TEXT    NOT NULL DEFAULT '[]'
    ) STRICT;
    INSERT INTO receipts_v2 (id, tenant_id, status, state_json, version, receipt_type, content_type,
                             callback_url, received_at, updated_at, reasons_json, receipt_json)
        SELECT id, tenant_id, status, state_json, version, receipt_type, content_type,
               callback_url, received_at, updated_at, reasons_json, receipt_json
        FROM receipts;
    DROP TABLE receipts;
    ALTER TABLE receipts_v2 RENAME TO receipts;
    CREATE INDEX receipts_by_tenant_updated ON receipts (tenant_id, updated_at);
    ALTER TABLE timeline ADD COLUMN status_before TEXT;
    UPDATE timeline SET status_before = status;
    ALTER TABLE timeline ADD COLUMN registry TEXT;
"#;

/// A database written by a version-1 build (a validated receipt with its document and
/// timeline) opens, migrates to the current schema and keeps working: old events are still
/// recognised as duplicates, and the receipt goes on to ACCEPTED.
#[tokio::test]
async fn a_version_1_database_opens_and_migrates() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let fx = ReceiptFixture::new();
    let (submitted, validated) = (fx.submitted(), fx.validated());
    {
        let db = libsql::Builder::new_local(&config.path)
            .build()
            .await
            .expect("raw database");
        let conn = db.connect().expect("raw connection");
        conn.execute_batch(SCHEMA_V1).await.expect("schema v1");
        let id = fx.receipt_id.to_string();
        let millis = |e: &ReceiptEvent| e.meta().occurred_at.timestamp_millis();
        let (s, v): (ReceiptEvent, ReceiptEvent) =
            (submitted.clone().into(), validated.clone().into());
        conn.execute(
            "INSERT INTO receipts VALUES (?1, ?2, 'VALIDATED', ?3, 2, ?4, 'application/json', ?5, ?6, ?7, NULL, ?8)",
            libsql::params![
                id.as_str(),
                fx.tenant.as_str(),
                r#"{"submitted":true,"validated":true,"rejected":false}"#,
                conformance::RECEIPT_TYPE,
                "https://partner.example/hooks/receipts",
                millis(&s),
                millis(&v),
                serde_json::to_string(&validated.receipt).expect("receipt json"),
            ],
        )
        .await
        .expect("v1 receipt");
        for (event, status, seq) in [(&s, "RECEIVED", 1), (&v, "VALIDATED", 2)] {
            conn.execute(
                "INSERT INTO timeline VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
                libsql::params![
                    id.as_str(),
                    event.meta().event_id.to_string(),
                    event.kind().as_str(),
                    millis(event),
                    status,
                    seq,
                ],
            )
            .await
            .expect("v1 timeline");
        }
        conn.execute(
            "INSERT INTO documents VALUES (?1, 'application/json', ?2)",
            libsql::params![id.as_str(), submitted.document.clone()],
        )
        .await
        .expect("v1 document");
        conn.execute("PRAGMA user_version = 1", ())
            .await
            .expect("version 1");
    }

    let store = open(&config).await;
    assert_eq!(
        store.schema_version().await.expect("schema version"),
        LATEST_VERSION
    );
    let old = store
        .receipt(&fx.tenant, fx.receipt_id)
        .await
        .expect("receipt()")
        .expect("the old receipt");
    assert_eq!((old.status, old.version), (Status::Validated, 2));
    assert_eq!(old.receipt_type.as_deref(), Some(conformance::RECEIPT_TYPE));
    assert_eq!(old.receipt, Some(validated.receipt.clone()));
    assert!(old.registrations.is_empty() && old.failures.is_empty());
    let timeline: Vec<_> = old
        .timeline
        .iter()
        .map(|e| (e.event, e.status, e.registry.clone()))
        .collect();
    assert_eq!(
        timeline,
        [
            (EventKind::Submitted, Status::Received, None),
            (EventKind::Validated, Status::Validated, None)
        ]
    );
    assert_eq!(
        store
            .document(&fx.tenant, fx.receipt_id)
            .await
            .expect("document()")
            .map(|d| d.bytes),
        Some(submitted.document.clone())
    );
    assert_eq!(
        store.tenant_of(fx.receipt_id).await.expect("tenant_of()"),
        Some(fx.tenant.clone())
    );

    // Old entries know no earlier status: they count as "no change".
    assert_eq!(
        store.apply(&validated.into()).await.expect("apply"),
        Applied::Duplicate(Transition {
            from: Status::Validated,
            to: Status::Validated
        })
    );
    store
        .apply(&fx.registered(conformance::TAX).into())
        .await
        .expect("apply");
    assert_eq!(
        store
            .apply(&fx.registered(conformance::LOGISTICS).into())
            .await
            .expect("apply"),
        Applied::Applied(Transition {
            from: Status::Validated,
            to: Status::Accepted
        })
    );
    // The rebuilt table takes receipts without a type, and the references still hold.
    let fresh = ReceiptFixture::new();
    store
        .apply(&fresh.registered(conformance::TAX).into())
        .await
        .expect("a receipt created by a registration");
    let db = libsql::Builder::new_local(&config.path)
        .build()
        .await
        .expect("raw database");
    let conn = db.connect().expect("raw connection");
    let mut rows = conn
        .query("PRAGMA foreign_key_check", ())
        .await
        .expect("foreign key check");
    assert!(
        rows.next().await.expect("row").is_none(),
        "dangling references"
    );
    let mut rows = conn
        .query(
            "SELECT \"table\" FROM pragma_foreign_key_list('timeline')",
            (),
        )
        .await
        .expect("foreign keys of timeline");
    let parent = rows.next().await.expect("row").expect("a foreign key");
    assert_eq!(parent.get::<String>(0).expect("text"), "receipts");
    drop(store);
    assert_eq!(
        open(&config)
            .await
            .schema_version()
            .await
            .expect("schema version"),
        LATEST_VERSION,
        "reopening migrates nothing twice"
    );
}

/// A database written by a version-2 build (a submitted receipt with its document and timeline,
/// an API client) opens, migrates to the current schema and keeps working; the webhook tables
/// are there, STRICT, and work.
#[tokio::test]
async fn a_version_2_database_opens_and_migrates() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let fx = ReceiptFixture::new();
    let submitted = fx.submitted();
    let key = ApiKey::generate();
    let client_id = ClientId::new();
    {
        let db = libsql::Builder::new_local(&config.path)
            .build()
            .await
            .expect("raw database");
        let conn = db.connect().expect("raw connection");
        conn.execute_batch(SCHEMA_V1).await.expect("schema v1");
        conn.execute_batch(MIGRATION_2).await.expect("migration 2");
        let id = fx.receipt_id.to_string();
        let at = submitted.meta.occurred_at.timestamp_millis();
        conn.execute(
            "INSERT INTO receipts VALUES (?1, ?2, 'RECEIVED', ?3, 1, ?4, 'application/json', ?5, ?6, ?6,
                                          NULL, NULL, '[]', '[]')",
            libsql::params![
                id.as_str(),
                fx.tenant.as_str(),
                r#"{"submitted":true,"validated":false,"rejected":false}"#,
                conformance::RECEIPT_TYPE,
                "https://partner.example/hooks/receipts",
                at,
            ],
        )
        .await
        .expect("v2 receipt");
        conn.execute(
            "INSERT INTO timeline VALUES (?1, ?2, 'submitted', ?3, ?3, 'RECEIVED', 1, 'RECEIVED', NULL)",
            libsql::params![id.as_str(), submitted.meta.event_id.to_string(), at],
        )
        .await
        .expect("v2 timeline");
        conn.execute(
            "INSERT INTO documents VALUES (?1, 'application/json', ?2)",
            libsql::params![id.as_str(), submitted.document.clone()],
        )
        .await
        .expect("v2 document");
        conn.execute(
            "INSERT INTO api_clients VALUES (?1, ?2, 'read-write', ?3, ?4, NULL, ?5, NULL)",
            libsql::params![
                client_id.to_string(),
                fx.tenant.as_str(),
                key.hash(),
                key.display_prefix(),
                at,
            ],
        )
        .await
        .expect("v2 client");
        conn.execute("PRAGMA user_version = 2", ())
            .await
            .expect("version 2");
    }

    let store = open(&config).await;
    assert_eq!(
        store.schema_version().await.expect("schema version"),
        LATEST_VERSION
    );
    let old = store
        .receipt(&fx.tenant, fx.receipt_id)
        .await
        .expect("receipt()")
        .expect("the old receipt");
    assert_eq!((old.status, old.version), (Status::Received, 1));
    assert_eq!(
        store
            .client_by_key_hash(&key.hash())
            .await
            .expect("lookup")
            .map(|c| c.id),
        Some(client_id)
    );
    assert_eq!(
        store.apply(&submitted.into()).await.expect("apply"),
        Applied::Duplicate(Transition {
            from: Status::Received,
            to: Status::Received
        })
    );
    assert_eq!(
        store.apply(&fx.validated().into()).await.expect("apply"),
        Applied::Applied(Transition {
            from: Status::Received,
            to: Status::Validated
        })
    );

    // The webhook tables work.
    let endpoint = store
        .create_endpoint(&conformance::new_endpoint(&fx.tenant, None))
        .await
        .expect("create_endpoint()");
    let delivery = conformance::new_delivery(
        &fx.tenant,
        fx.receipt_id,
        Destination::Endpoint(endpoint.id),
        now_millis(),
    );
    store
        .record_delivery(&delivery)
        .await
        .expect("record_delivery()");
    store
        .record_attempt(&delivery.id, &conformance::attempt(1, now_millis(), true))
        .await
        .expect("record_attempt()");
    let log = store
        .deliveries(&fx.tenant, fx.receipt_id)
        .await
        .expect("deliveries()");
    assert_eq!(
        log.iter()
            .map(|d| (d.id.as_str(), d.status, d.attempts.len()))
            .collect::<Vec<_>>(),
        [(delivery.id.as_str(), DeliveryStatus::Delivered, 1)]
    );
    let initial = WebhookSecret::generate();
    assert_eq!(
        store
            .callback_secrets(&fx.tenant, initial.clone())
            .await
            .expect("callback_secrets()")
            .len(),
        1
    );

    let db = libsql::Builder::new_local(&config.path)
        .build()
        .await
        .expect("raw database");
    let conn = db.connect().expect("raw connection");
    let mut rows = conn
        .query(
            "SELECT name, strict FROM pragma_table_list WHERE name LIKE 'webhook%' ORDER BY name",
            (),
        )
        .await
        .expect("table list");
    let mut tables = Vec::new();
    while let Some(row) = rows.next().await.expect("row") {
        tables.push((
            row.get::<String>(0).expect("name"),
            row.get::<i64>(1).expect("strict"),
        ));
    }
    assert_eq!(
        tables,
        [
            ("webhook_attempts".to_owned(), 1),
            ("webhook_callback_secrets".to_owned(), 1),
            ("webhook_deliveries".to_owned(), 1),
            ("webhook_endpoint_secrets".to_owned(), 1),
            ("webhook_endpoints".to_owned(), 1),
        ]
    );
    let mut rows = conn
        .query("PRAGMA foreign_key_check", ())
        .await
        .expect("foreign key check");
    assert!(
        rows.next().await.expect("row").is_none(),
        "dangling references"
    );
    drop(store);
    assert_eq!(
        open(&config)
            .await
            .schema_version()
            .await
            .expect("schema version"),
        LATEST_VERSION,
        "reopening migrates nothing twice"
    );
}

/// Endpoints (with rotated secrets and their health), callback secrets and the delivery log are
/// on disk: a store opened again on the file reads exactly what the first one wrote.
#[tokio::test]
async fn webhook_data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let tenant = conformance::unique_tenant();
    let receipt = ReceiptId::new();
    let now = now_millis();

    let (endpoint, callback, log) = {
        let store = open(&config).await;
        let new = conformance::new_endpoint(
            &tenant,
            Some(vec![WebhookEventType::Accepted, WebhookEventType::Failed]),
        );
        let id = new.id;
        store
            .create_endpoint(&new)
            .await
            .expect("create_endpoint()");
        store
            .rotate_endpoint_secret(
                &tenant,
                id,
                WebhookSecret::generate(),
                now + TimeDelta::hours(1),
            )
            .await
            .expect("rotate_endpoint_secret()");
        store
            .update_endpoint(
                &tenant,
                id,
                &EndpointPatch {
                    description: Some(None),
                    ..EndpointPatch::default()
                },
            )
            .await
            .expect("update_endpoint()");
        store
            .record_endpoint_result(id, false, now, Duration::from_secs(3600))
            .await
            .expect("record_endpoint_result()");
        store
            .rotate_callback_secret(
                &tenant,
                WebhookSecret::generate(),
                now + TimeDelta::hours(1),
            )
            .await
            .expect("rotate_callback_secret()");
        let callback = store
            .rotate_callback_secret(
                &tenant,
                WebhookSecret::generate(),
                now + TimeDelta::hours(2),
            )
            .await
            .expect("rotate_callback_secret()");

        let to_endpoint =
            conformance::new_delivery(&tenant, receipt, Destination::Endpoint(id), now);
        let to_callback = conformance::new_delivery(
            &tenant,
            receipt,
            Destination::Callback,
            now + TimeDelta::milliseconds(1),
        );
        for delivery in [&to_endpoint, &to_callback] {
            store
                .record_delivery(delivery)
                .await
                .expect("record_delivery()");
            store
                .record_attempt(&delivery.id, &conformance::attempt(1, now, false))
                .await
                .expect("record_attempt()");
        }
        store
            .record_attempt(&to_endpoint.id, &conformance::attempt(2, now, true))
            .await
            .expect("record_attempt()");
        store
            .fail_delivery(&to_callback.id, "retry schedule exhausted")
            .await
            .expect("fail_delivery()");

        let endpoint = store
            .endpoint(&tenant, id)
            .await
            .expect("endpoint()")
            .expect("exists");
        assert_eq!(
            (endpoint.secrets.len(), endpoint.failing_since),
            (2, Some(now))
        );
        let log = store
            .deliveries(&tenant, receipt)
            .await
            .expect("deliveries()");
        assert_eq!(
            log.iter().map(|d| d.status).collect::<Vec<_>>(),
            [DeliveryStatus::Delivered, DeliveryStatus::Failed]
        );
        (endpoint, callback, log)
    };
    assert_eq!(callback.len(), 2);

    let store = open(&config).await;
    assert_eq!(
        store
            .endpoint(&tenant, endpoint.id)
            .await
            .expect("endpoint()"),
        Some(endpoint.clone())
    );
    assert_eq!(
        store.endpoints(&tenant).await.expect("endpoints()"),
        [endpoint]
    );
    assert_eq!(
        store
            .callback_secrets(&tenant, WebhookSecret::generate())
            .await
            .expect("callback_secrets()"),
        callback
    );
    assert_eq!(
        store
            .deliveries(&tenant, receipt)
            .await
            .expect("deliveries()"),
        log
    );
}

/// Changing `[status]` is not corruption: a status recorded under another policy stands until
/// the receipt's next event, which is derived with the new policy (but an acceptance is never
/// withdrawn).
#[tokio::test]
async fn a_policy_change_is_not_corruption() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let only_tax = StatusPolicy::new([conformance::registry(conformance::TAX)]);
    let (accepted, validated) = (ReceiptFixture::new(), ReceiptFixture::new());
    {
        let store = SqliteStore::open(&config, only_tax.clone())
            .await
            .expect("open");
        for fx in [&accepted, &validated] {
            store.apply(&fx.validated().into()).await.expect("apply");
        }
        store
            .apply(&accepted.registered(conformance::TAX).into())
            .await
            .expect("apply");
    }
    let store = open(&config).await;
    let read = |fx: &ReceiptFixture| {
        let (store, fx) = (store.clone(), fx.clone());
        async move {
            store
                .receipt(&fx.tenant, fx.receipt_id)
                .await
                .expect("receipt()")
                .expect("exists")
                .status
        }
    };
    assert_eq!(read(&accepted).await, Status::Accepted);
    assert_eq!(
        store
            .apply(&validated.registered(conformance::TAX).into())
            .await
            .expect("apply"),
        Applied::Applied(Transition {
            from: Status::Validated,
            to: Status::Validated
        })
    );
    assert_eq!(
        store
            .apply(&accepted.registered(conformance::LOGISTICS).into())
            .await
            .expect("apply"),
        Applied::Applied(Transition {
            from: Status::Accepted,
            to: Status::Accepted
        })
    );
    drop(store);

    // Even a policy that requires more never withdraws an acceptance.
    let stricter = StatusPolicy::new(
        [conformance::TAX, conformance::LOGISTICS, "customs"].map(conformance::registry),
    );
    let store = SqliteStore::open(&config, stricter).await.expect("open");
    let mut late = accepted.registered(conformance::TAX);
    late.registration.registration_id = "a later number".to_owned();
    assert_eq!(
        store.apply(&late.into()).await.expect("apply"),
        Applied::Applied(Transition {
            from: Status::Accepted,
            to: Status::Accepted
        })
    );
    let record = store
        .receipt(&accepted.tenant, accepted.receipt_id)
        .await
        .expect("receipt()")
        .expect("exists");
    assert_eq!(record.status, Status::Accepted);
}

/// A stored status no policy could derive from the stored state, or undecodable registrations,
/// are corruption.
#[tokio::test]
async fn contradicting_status_and_bad_registrations_are_corrupt() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let store = open(&config).await;
    let (status, registrations) = (ReceiptFixture::new(), ReceiptFixture::new());
    store
        .apply(&status.submitted().into())
        .await
        .expect("apply");
    store
        .apply(&registrations.registered(conformance::TAX).into())
        .await
        .expect("apply");
    let db = libsql::Builder::new_local(&config.path)
        .build()
        .await
        .expect("raw database");
    let conn = db.connect().expect("raw connection");
    for (sql, id) in [
        (
            "UPDATE receipts SET status = 'ACCEPTED' WHERE id = ?1",
            status.receipt_id,
        ),
        (
            "UPDATE receipts SET registrations_json = '{' WHERE id = ?1",
            registrations.receipt_id,
        ),
    ] {
        conn.execute(sql, [id.to_string()])
            .await
            .expect("vandalise");
    }
    for (fx, what) in [
        (&status, "receipts.status"),
        (&registrations, "receipts.registrations_json"),
    ] {
        let err = store
            .receipt(&fx.tenant, fx.receipt_id)
            .await
            .expect_err("corrupt");
        assert!(
            matches!(&err, Error::Corrupt { what: w, .. } if *w == what),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Group commit: concurrent writes share transactions
// ---------------------------------------------------------------------------------------------

/// The four events that take a receipt to ACCEPTED under the default policy, in pipeline order.
fn to_accepted(fx: &ReceiptFixture) -> [ReceiptEvent; 4] {
    [
        fx.submitted().into(),
        fx.validated().into(),
        fx.registered(conformance::TAX).into(),
        fx.registered(conformance::LOGISTICS).into(),
    ]
}

/// Many concurrent applies (500 distinct events over 125 receipts, each delivered twice) are all
/// applied exactly once, and they share transactions: fewer commits than writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_share_transactions() {
    let (_dir, store) = fresh().await;
    let tenant = conformance::unique_tenant();
    let receipts: Vec<ReceiptFixture> = (0..125)
        .map(|_| ReceiptFixture::for_tenant(tenant.clone()))
        .collect();
    let events: Vec<ReceiptEvent> = receipts.iter().flat_map(to_accepted).collect();
    assert_eq!(events.len(), 500);
    let deliveries: Vec<ReceiptEvent> = events.iter().chain(events.iter().rev()).cloned().collect();

    let writes = deliveries.len() as u64;
    let before = store.commits();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(deliveries.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for event in deliveries {
        let (store, start) = (store.clone(), start.clone());
        tasks.spawn(async move {
            start.wait().await;
            let outcome = store.apply(&event).await;
            (event.meta().event_id, outcome)
        });
    }
    let mut applied = std::collections::BTreeMap::new();
    let mut duplicates = 0;
    while let Some(joined) = tasks.join_next().await {
        let (event_id, outcome) = joined.expect("apply task panicked");
        match outcome.unwrap_or_else(|e| panic!("concurrent apply failed: {e}")) {
            Applied::Applied(_) => *applied.entry(event_id).or_insert(0) += 1,
            Applied::Duplicate(_) => duplicates += 1,
            Applied::Ignored => panic!("a fact-stating event was ignored"),
        }
    }
    assert_eq!(applied.len(), events.len(), "every event applied");
    assert!(applied.values().all(|&n| n == 1), "{applied:?}");
    assert_eq!(duplicates, events.len());
    let commits = store.commits() - before;
    assert!(commits < writes, "{commits} commits for {writes} writes");

    for fx in &receipts {
        let record = store
            .receipt(&fx.tenant, fx.receipt_id)
            .await
            .expect("receipt()")
            .expect("exists");
        assert_eq!(record.status, Status::Accepted, "receipt {}", fx.receipt_id);
        assert_eq!((record.version, record.timeline.len()), (4, 4));
    }
}

/// Spawns `writes` on a current-thread runtime and collects their outcomes in spawn order.
/// Every task runs (and hands its write to the writer) before the writer runs again, so the
/// writes form one batch.
async fn one_batch<T: Send + 'static>(
    writes: Vec<std::pin::Pin<Box<dyn Future<Output = T> + Send>>>,
) -> Vec<T> {
    let handles: Vec<_> = writes.into_iter().map(tokio::spawn).collect();
    let mut outcomes = Vec::with_capacity(handles.len());
    for handle in handles {
        outcomes.push(handle.await.expect("write task panicked"));
    }
    outcomes
}

fn apply_later(
    store: &SqliteStore,
    event: ReceiptEvent,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Applied, Error>> + Send>> {
    let store = store.clone();
    Box::pin(async move { store.apply(&event).await })
}

/// A request that fails (a tenant mismatch) is rolled back alone and answered with its error;
/// the other requests of the same transaction commit.
#[tokio::test]
async fn a_failing_request_fails_alone_in_its_batch() {
    let (_dir, store) = fresh().await;
    let owned = ReceiptFixture::new();
    let submitted: ReceiptEvent = owned.submitted().into();
    store.apply(&submitted).await.expect("apply");
    let intruder = conformance::unique_tenant();
    let others: Vec<ReceiptFixture> = (0..10).map(|_| ReceiptFixture::new()).collect();

    // The mismatch comes in the middle, and the owner's own next event right after it.
    let mut writes = Vec::new();
    for fx in &others[..5] {
        writes.push(apply_later(&store, fx.submitted().into()));
    }
    let validated: ReceiptEvent = owned.validated().into();
    writes.push(apply_later(
        &store,
        conformance::with_tenant(&validated, &intruder),
    ));
    writes.push(apply_later(&store, validated.clone()));
    for fx in &others[5..] {
        writes.push(apply_later(&store, fx.submitted().into()));
    }
    let before = store.commits();
    let outcomes = one_batch(writes).await;
    assert_eq!(
        store.commits() - before,
        1,
        "the writes shared one transaction"
    );

    for (i, outcome) in outcomes.iter().enumerate() {
        match (i, outcome) {
            (5, Err(Error::TenantMismatch { .. })) => {}
            (5, other) => panic!("the mismatch was not refused: {other:?}"),
            (_, Ok(Applied::Applied(_))) => {}
            (_, other) => panic!("write {i} failed: {other:?}"),
        }
    }
    let record = store
        .receipt(&owned.tenant, owned.receipt_id)
        .await
        .expect("receipt()")
        .expect("exists");
    assert_eq!((record.status, record.version), (Status::Validated, 2));
    assert_eq!(
        record
            .timeline
            .iter()
            .map(|e| e.event_id)
            .collect::<Vec<_>>(),
        [submitted.meta().event_id, validated.meta().event_id]
    );
    assert_eq!(
        store
            .receipt(&intruder, owned.receipt_id)
            .await
            .expect("receipt()"),
        None
    );
    for fx in &others {
        assert!(
            store
                .receipt(&fx.tenant, fx.receipt_id)
                .await
                .expect("receipt()")
                .is_some(),
            "receipt {}",
            fx.receipt_id
        );
    }
}

/// Writes about one receipt within one transaction behave exactly as if each had been applied
/// on its own, one after another in arrival order: same outcomes, same receipt.
#[tokio::test]
async fn one_receipt_within_a_batch_is_applied_in_arrival_order() {
    let (_dir, store) = fresh().await;
    // submitted, a redelivery of it, validated, tax, a redelivery of validated, logistics.
    let deliveries = |fx: &ReceiptFixture| {
        let [submitted, validated, tax, logistics] = to_accepted(fx);
        [
            submitted.clone(),
            submitted,
            validated.clone(),
            tax,
            validated,
            logistics,
        ]
    };

    let alone = ReceiptFixture::new();
    let mut expected = Vec::new();
    for event in deliveries(&alone) {
        let before = store.commits();
        expected.push(store.apply(&event).await.expect("apply"));
        assert!(store.commits() - before <= 1);
    }
    assert_eq!(
        expected,
        [
            Applied::Applied(Transition {
                from: Status::Received,
                to: Status::Received
            }),
            Applied::Duplicate(Transition {
                from: Status::Received,
                to: Status::Received
            }),
            Applied::Applied(Transition {
                from: Status::Received,
                to: Status::Validated
            }),
            Applied::Applied(Transition {
                from: Status::Validated,
                to: Status::Validated
            }),
            Applied::Duplicate(Transition {
                from: Status::Received,
                to: Status::Validated
            }),
            Applied::Applied(Transition {
                from: Status::Validated,
                to: Status::Accepted
            }),
        ]
    );

    let batched = ReceiptFixture::new();
    let writes = deliveries(&batched)
        .into_iter()
        .map(|event| apply_later(&store, event))
        .collect();
    let before = store.commits();
    let outcomes: Vec<Applied> = one_batch(writes)
        .await
        .into_iter()
        .map(|outcome| outcome.expect("apply"))
        .collect();
    assert_eq!(
        store.commits() - before,
        1,
        "the writes shared one transaction"
    );
    assert_eq!(outcomes, expected);

    let read = |fx: &ReceiptFixture| {
        let (store, fx) = (store.clone(), fx.clone());
        async move {
            store
                .receipt(&fx.tenant, fx.receipt_id)
                .await
                .expect("receipt()")
                .expect("exists")
        }
    };
    let (alone, batched) = (read(&alone).await, read(&batched).await);
    assert_eq!(
        (batched.status, batched.version, batched.timeline.len()),
        (alone.status, alone.version, alone.timeline.len())
    );
    let steps = |r: &receipts_store::ReceiptRecord| {
        r.timeline
            .iter()
            .map(|e| (e.event, e.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(steps(&batched), steps(&alone));
}

/// A write is answered only once it is committed: a second store on the same file (another
/// connection, as another process would have) reads it as soon as the answer is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_answered_only_once_committed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let (writer, reader) = (open(&config).await, open(&config).await);
    let tenant = conformance::unique_tenant();
    let writes = 200;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..writes {
        let (writer, reader) = (writer.clone(), reader.clone());
        let fx = ReceiptFixture::for_tenant(tenant.clone());
        tasks.spawn(async move {
            writer
                .apply(&fx.submitted().into())
                .await
                .unwrap_or_else(|e| panic!("apply {i}: {e}"));
            let record = reader
                .receipt(&fx.tenant, fx.receipt_id)
                .await
                .expect("receipt()");
            assert!(record.is_some(), "write {i} answered before its commit");
            let reservation = conformance::reservation(&fx.tenant, &format!("key-{i}"), b"{}");
            assert_eq!(
                writer.reserve(&reservation).await.expect("reserve"),
                Reserved::New
            );
            assert_eq!(
                reader.reserve(&reservation).await.expect("reserve"),
                Reserved::Existing(reservation),
                "reservation {i} answered before its commit"
            );
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("write task panicked");
    }
    // Not asserted (it depends on timing), but the point of the test: batches were shared.
    println!("{} commits for {} writes", writer.commits(), 2 * writes);
}

/// A caller that goes away after handing over its write does not cancel it: the write is
/// committed (once), and the store goes on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_leaves_its_write_to_complete() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let store = open(&config).await;
    let fx = ReceiptFixture::new();
    let event: ReceiptEvent = fx.submitted().into();

    // Another connection holds the write lock, so the write waits in the writer's queue (or in
    // its BEGIN) while its caller is dropped.
    let (holder, locked) = hold_write_lock(config.path.clone(), Duration::from_millis(500));
    locked.recv().expect("the lock is held");
    let caller = tokio::spawn({
        let (store, event) = (store.clone(), event.clone());
        async move { store.apply(&event).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    caller.abort();
    assert!(
        caller.await.is_err_and(|e| e.is_cancelled()),
        "the caller was still waiting"
    );
    holder.join().expect("holder thread");

    assert_eq!(
        store.apply(&event).await.expect("apply"),
        Applied::Duplicate(Transition {
            from: Status::Received,
            to: Status::Received
        }),
        "the dropped caller's write was committed"
    );
    let record = store
        .receipt(&fx.tenant, fx.receipt_id)
        .await
        .expect("receipt()")
        .expect("exists");
    assert_eq!((record.version, record.timeline.len()), (1, 1));
}

/// Dropping the last clone of a store ends its writer, but only after the writes already
/// queued are committed. (When the last connection to the file closes, SQLite removes the
/// write-ahead log: that is how the test sees the writer's connection go.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_finishes_queued_writes_then_ends_with_the_last_store() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let store = open(&config).await;
    let events = shared_events(10);

    let (holder, locked) = hold_write_lock(config.path.clone(), Duration::from_millis(500));
    locked.recv().expect("the lock is held");
    let callers: Vec<_> = events
        .iter()
        .map(|event| {
            let (store, event) = (store.clone(), event.clone());
            tokio::spawn(async move { store.apply(&event).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Every caller and every clone goes away while the writes wait for the lock.
    for caller in &callers {
        caller.abort();
    }
    for caller in callers {
        assert!(caller.await.is_err_and(|e| e.is_cancelled()));
    }
    drop(store);
    holder.join().expect("holder thread");

    let wal = config.path.with_extension("db-wal");
    let deadline = Instant::now() + Duration::from_secs(10);
    while wal.exists() {
        assert!(
            Instant::now() < deadline,
            "the writer's connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let store = open(&config).await;
    assert_each_event_once(&store, &events).await;
}

/// A store whose runtime has shut down refuses writes with an error; it does not hang.
#[test]
fn a_store_outliving_its_runtime_refuses_writes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    let first = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = first.block_on(open(&config));
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    second.block_on(async {
        let fx = ReceiptFixture::new();
        let err = store
            .apply(&fx.submitted().into())
            .await
            .expect_err("no writer");
        assert!(matches!(err, Error::WriterStopped), "{err}");
        // Reads need no writer.
        assert_eq!(
            store
                .receipt(&fx.tenant, fx.receipt_id)
                .await
                .expect("receipt()"),
            None
        );
        // A store opened on this runtime writes as usual.
        let again = open(&config).await;
        again
            .apply(&fx.submitted().into())
            .await
            .expect("apply on a live runtime");
    });
}

/// A transaction that cannot begin (another process holds the write lock for longer than the
/// busy timeout) fails every write of its batch with the database error; written is nothing,
/// and the same writes succeed once the lock is free.
#[tokio::test]
async fn a_batch_that_cannot_begin_fails_every_write() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = SqliteConfig {
        busy_timeout: Duration::from_millis(50),
        ..config(dir.path())
    };
    let store = open(&config).await;
    let receipts: Vec<ReceiptFixture> = (0..5).map(|_| ReceiptFixture::new()).collect();
    let writes = || {
        receipts
            .iter()
            .map(|fx| apply_later(&store, fx.submitted().into()))
            .collect()
    };

    let (holder, locked) = hold_write_lock(config.path.clone(), Duration::from_millis(600));
    locked.recv().expect("the lock is held");
    for outcome in one_batch(writes()).await {
        let err = outcome.expect_err("the lock is held too long");
        assert!(matches!(err, Error::Database(_)), "{err}");
    }
    holder.join().expect("holder thread");
    for fx in &receipts {
        assert_eq!(
            store
                .receipt(&fx.tenant, fx.receipt_id)
                .await
                .expect("receipt()"),
            None
        );
    }

    let before = store.commits();
    for outcome in one_batch(writes()).await {
        assert!(matches!(outcome, Ok(Applied::Applied(_))), "{outcome:?}");
    }
    assert_eq!(store.commits() - before, 1);
}

/// Webhook writes go through the same group commit as the others: concurrent ones (and an
/// `apply` among them) share one transaction, and one that fails (an attempt of an unknown
/// delivery) fails alone. Two first `callback_secrets` calls in one batch agree.
#[tokio::test]
async fn webhook_writes_share_transactions() {
    type Write = std::pin::Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<StoredSecret>>>;
    let (_dir, store) = fresh().await;
    let fx = ReceiptFixture::new();
    let delivery = conformance::new_delivery(
        &fx.tenant,
        fx.receipt_id,
        Destination::Callback,
        now_millis(),
    );
    let new_endpoint = conformance::new_endpoint(&fx.tenant, None);
    let (first, second) = (WebhookSecret::generate(), WebhookSecret::generate());
    let (seen_first, seen_second) = (Seen::default(), Seen::default());
    let callback = |secret: WebhookSecret, seen: Seen| -> Write {
        let (store, tenant) = (store.clone(), fx.tenant.clone());
        Box::pin(async move {
            let secrets = store.callback_secrets(&tenant, secret).await?;
            seen.lock().expect("lock").extend(secrets);
            Ok(())
        })
    };
    let writes: Vec<Write> = vec![
        {
            let (store, event) = (store.clone(), ReceiptEvent::from(fx.submitted()));
            Box::pin(async move { store.apply(&event).await.map(drop) })
        },
        {
            let (store, delivery) = (store.clone(), delivery.clone());
            Box::pin(async move { store.record_delivery(&delivery).await })
        },
        Box::pin({
            let store = store.clone();
            async move {
                store
                    .record_attempt("msg_unknown", &conformance::attempt(1, now_millis(), true))
                    .await
            }
        }),
        {
            let (store, id) = (store.clone(), delivery.id.clone());
            Box::pin(async move {
                store
                    .record_attempt(&id, &conformance::attempt(1, now_millis(), true))
                    .await
            })
        },
        {
            let (store, new) = (store.clone(), new_endpoint.clone());
            Box::pin(async move { store.create_endpoint(&new).await.map(drop) })
        },
        callback(first.clone(), seen_first.clone()),
        callback(second.clone(), seen_second.clone()),
    ];
    let before = store.commits();
    let outcomes = one_batch(writes).await;
    assert_eq!(
        store.commits() - before,
        1,
        "the writes shared one transaction"
    );
    for (i, outcome) in outcomes.iter().enumerate() {
        match (i, outcome) {
            (2, Err(Error::NotFound { .. })) => {}
            (2, other) => panic!("the unknown delivery was not refused: {other:?}"),
            (_, Ok(())) => {}
            (_, other) => panic!("write {i} failed: {other:?}"),
        }
    }

    let seen_first = seen_first.lock().expect("lock").clone();
    assert_eq!(seen_first, *seen_second.lock().expect("lock"));
    assert_eq!(seen_first.len(), 1);
    assert!([first, second].contains(&seen_first[0].secret));
    assert_eq!(
        store
            .deliveries(&fx.tenant, fx.receipt_id)
            .await
            .expect("deliveries()")
            .iter()
            .map(|d| (d.status, d.attempts.len()))
            .collect::<Vec<_>>(),
        [(DeliveryStatus::Delivered, 1)]
    );
    assert!(
        store
            .endpoint(&fx.tenant, new_endpoint.id)
            .await
            .expect("endpoint()")
            .is_some()
    );
    assert!(
        store
            .receipt(&fx.tenant, fx.receipt_id)
            .await
            .expect("receipt()")
            .is_some()
    );
}
