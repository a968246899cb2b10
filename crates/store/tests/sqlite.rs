//! The SQLite backend: the shared conformance suite, then what is specific to SQLite (files,
//! migrations, several connections and processes on one file).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use receipts_domain::{ReceiptEvent, ReceiptId, Status};
use receipts_store::conformance::{self, ReceiptFixture};
use receipts_store::{
    ApiKey, Applied, ClientId, ClientStore, Error, NewClient, Reserved, Scope, SqliteConfig,
    SqliteStore, StatusStore, Synchronous,
};
use tempfile::TempDir;

/// A store on a fresh file in its own temporary directory (deleted when the `TempDir` drops).
async fn fresh() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&config(dir.path()))
        .await
        .expect("open a fresh store");
    (dir, store)
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
);

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
        let store = SqliteStore::open(&config).await.expect("open");
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

    let store = SqliteStore::open(&config).await.expect("reopen");
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
        let store = SqliteStore::open(&config).await.expect("open");
        store.apply(&event).await.expect("apply");
    }
    let store = SqliteStore::open(&config).await.expect("reopen");
    assert_eq!(
        store.apply(&event).await.expect("apply"),
        Applied::Duplicate
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
    let first = SqliteStore::open(&config).await.expect("open");
    let version = first.schema_version().await.expect("schema version");
    assert!(version >= 1);
    first.apply(&fx.submitted().into()).await.expect("apply");

    // Reopening, also while another store has the file open, migrates nothing twice.
    for _ in 0..3 {
        let again = SqliteStore::open(&config).await.expect("reopen");
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
    let last = SqliteStore::open(&config).await.expect("reopen");
    assert_eq!(
        last.schema_version().await.expect("schema version"),
        version
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config(dir.path());
    drop(SqliteStore::open(&config).await.expect("open"));
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
    match SqliteStore::open(&config).await {
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
    let store = SqliteStore::open(&config).await.expect("open");
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
    match SqliteStore::open(&config).await {
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
    let store = SqliteStore::open(&config).await.expect("open");

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
    let impatient = SqliteStore::open(&SqliteConfig {
        busy_timeout: Duration::from_millis(50),
        ..config.clone()
    })
    .await
    .expect("open");
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
    let a = SqliteStore::open(&config).await.expect("open a");
    let b = SqliteStore::open(&config).await.expect("open b");
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
    let store = SqliteStore::open(&config).await.expect("open");
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
    let store = SqliteStore::open(&SqliteConfig::new(db))
        .await
        .expect("open in the child");
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
    let store = SqliteStore::open(&config).await.expect("open");
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
