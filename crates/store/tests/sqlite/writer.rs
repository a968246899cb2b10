//! The writer thread: group commit, one job failing alone, answers only after the commit, the
//! busy timeout, and that no SQLite call blocks the caller's runtime.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use receipts_domain::event::now_millis;
use receipts_domain::{ApiKey, Scope};
use receipts_store::conformance::reservations::reservation;
use receipts_store::conformance::{ReceiptFixture, unique_tenant};
use receipts_store::{
    Cas, ClientStore, Error, ReceiptStore, ReservationStore, Reserved, SqliteOptions, SqliteStore,
};

use crate::{db, fresh, open_at};

/// Many concurrent writes all land, and they share transactions: fewer commits than writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_transactions() {
    let (_dir, store) = fresh().await;
    let tenant = unique_tenant();
    let before = store.commits();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..400 {
        let (store, r) = (
            store.clone(),
            reservation(&tenant, &format!("key-{n}"), b"{}"),
        );
        tasks.spawn(async move { store.reserve(&r).await });
    }
    while let Some(joined) = tasks.join_next().await {
        assert_eq!(joined.expect("task").expect("reserve"), Reserved::New);
    }
    let commits = store.commits() - before;
    assert!(commits < 400, "{commits} commits for 400 writes");
}

/// A job that fails (a client whose key hash is taken) is rolled back alone and answered with
/// its error; another job of the same transaction commits. The writer is kept busy (waiting for
/// another process's lock) while the two are queued, so that they form one batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_fails_alone_in_its_batch() {
    let (dir, store) = fresh().await;
    let tenant = unique_tenant();
    let taken = ApiKey::generate().new_client(tenant.clone(), Scope::Read, None);
    store
        .create_client(&taken, now_millis())
        .await
        .expect("create");
    let clash = receipts_domain::NewClient {
        id: receipts_domain::ClientId::new(),
        ..taken.clone()
    };
    let fine = ApiKey::generate().new_client(tenant.clone(), Scope::Read, None);
    let commits = store.commits();

    let (holder, locked) = hold_write_lock(db(dir.path()), Duration::from_millis(500));
    locked.recv().expect("the lock is held");
    let busy = tokio::spawn({
        let (store, r) = (store.clone(), reservation(&tenant, "first", b"{}"));
        async move { store.reserve(&r).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let failing = tokio::spawn({
        let store = store.clone();
        async move { store.create_client(&clash, now_millis()).await }
    });
    let succeeding = tokio::spawn({
        let (store, fine) = (store.clone(), fine.clone());
        async move { store.create_client(&fine, now_millis()).await }
    });
    let failed = failing.await.expect("task");
    assert!(
        matches!(failed, Err(Error::AlreadyExists { .. })),
        "{failed:?}"
    );
    assert_eq!(
        succeeding.await.expect("task").expect("created").id,
        fine.id
    );
    busy.await.expect("task").expect("reserved");
    holder.join().expect("holder thread");
    let transactions = store.commits() - commits;
    assert!(
        transactions <= 2,
        "the two jobs shared a transaction: {transactions} commits"
    );
    assert_eq!(store.clients(Some(&tenant)).await.expect("list").len(), 2);
}

/// A write is answered only once committed: another store on the file (another connection, as
/// another process would have) reads it as soon as the answer is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_answered_only_once_committed() {
    let (dir, store) = fresh().await;
    let other = open_at(&db(dir.path())).await;
    for _ in 0..20 {
        let fx = ReceiptFixture::default();
        let record = fx.accepted();
        assert_eq!(
            store.save_receipt(&record, 0).await.expect("save"),
            Cas::Written
        );
        assert_eq!(
            other.receipt(fx.receipt_id).await.expect("read"),
            Some(record)
        );
    }
}

/// A caller that goes away after handing over its write does not cancel it. (The writer waits
/// for another process's lock meanwhile, so the caller is gone before the write is done.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_leaves_its_write_to_complete() {
    let (dir, store) = fresh().await;
    let fx = ReceiptFixture::default();
    let record = fx.accepted();
    let (holder, locked) = hold_write_lock(db(dir.path()), Duration::from_millis(400));
    locked.recv().expect("the lock is held");
    let write = tokio::spawn({
        let (store, record) = (store.clone(), record.clone());
        async move { store.save_receipt(&record, 0).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    write.abort();
    holder.join().expect("holder thread");
    eventually(|| {
        let store = store.clone();
        async move { store.receipt(fx.receipt_id).await.ok().flatten() }
    })
    .await;
    assert_eq!(
        store.save_receipt(&record, 0).await.expect("save"),
        Cas::Conflict,
        "it was written once"
    );
}

async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    // Generous: on a loaded machine a commit or the closing checkpoint can wait seconds for
    // the disk.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Dropping the last clone of a store ends its threads, but only after the writes already
/// queued are committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_threads_finish_queued_writes_then_end_with_the_last_store() {
    let (dir, store) = fresh().await;
    let stopped = store.stopped();
    let tenant = unique_tenant();
    let reservations: Vec<_> = (0..50)
        .map(|n| reservation(&tenant, &format!("k-{n}"), b"{}"))
        .collect();
    let mut tasks = Vec::new();
    for r in reservations.clone() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.reserve(&r).await }));
    }
    assert!(!stopped.is_stopped(), "a live store keeps its threads");
    drop(store);
    for task in tasks {
        task.await.expect("task").expect("reserved before the end");
    }
    eventually(|| {
        let ended = stopped.is_stopped();
        async move { ended.then_some(()) }
    })
    .await;
    let store = open_at(&db(dir.path())).await;
    for r in &reservations {
        assert_eq!(
            store
                .reservation_of(r.receipt_id)
                .await
                .expect("read")
                .as_ref(),
            Some(r)
        );
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

/// A write waits for another process's lock up to the busy timeout, then succeeds; past a short
/// busy timeout it fails as transient, half-writes nothing, and the store recovers.
#[tokio::test]
async fn writes_wait_for_the_lock_up_to_the_busy_timeout() {
    let (dir, store) = fresh().await;
    let (holder, locked) = hold_write_lock(db(dir.path()), Duration::from_millis(400));
    locked.recv().expect("the lock is held");
    let fx = ReceiptFixture::default();
    let _ = store
        .save_receipt(&fx.accepted(), 0)
        .await
        .expect("the write waits for the lock");
    holder.join().expect("holder thread");

    let impatient = SqliteStore::open(
        &db(dir.path()),
        &SqliteOptions {
            busy_timeout: Duration::from_millis(50),
            ..SqliteOptions::default()
        },
    )
    .await
    .expect("open");
    let (holder, locked) = hold_write_lock(db(dir.path()), Duration::from_millis(600));
    locked.recv().expect("the lock is held");
    let other = ReceiptFixture::default();
    let error = impatient
        .save_receipt(&other.accepted(), 0)
        .await
        .expect_err("the lock is held too long");
    assert!(error.is_transient(), "{error}");
    assert!(matches!(error, Error::Backend { .. }), "{error}");
    holder.join().expect("holder thread");
    assert_eq!(store.receipt(other.receipt_id).await.expect("read"), None);
    assert_eq!(
        impatient
            .save_receipt(&other.accepted(), 0)
            .await
            .expect("save"),
        Cas::Written
    );
}

/// While a write waits for another process's lock, the caller's runtime goes on: on a
/// single-threaded runtime a timer keeps ticking. (Were SQLite called on the runtime's thread,
/// the busy wait would stop it.)
#[tokio::test(flavor = "current_thread")]
async fn a_waiting_write_does_not_block_the_callers_runtime() {
    let (dir, store) = fresh().await;
    let (holder, locked) = hold_write_lock(db(dir.path()), Duration::from_millis(1500));
    locked.recv().expect("the lock is held");
    let fx = ReceiptFixture::default();
    let write = tokio::spawn({
        let store = store.clone();
        let record = fx.accepted();
        async move { store.save_receipt(&record, 0).await }
    });
    let mut ticks = 0;
    while !write.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        ticks += 1;
    }
    assert_eq!(write.await.expect("task").expect("save"), Cas::Written);
    holder.join().expect("holder thread");
    assert!(
        ticks >= 5,
        "the runtime was blocked: {ticks} ticks while the write waited"
    );
}
