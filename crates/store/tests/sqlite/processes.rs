//! Two processes on one file: this test binary re-run with `CHILD_DB` set is the second.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use receipts_domain::{ReceiptId, Reservation};
use receipts_store::conformance::reservations::reservation;
use receipts_store::conformance::unique_tenant;
use receipts_store::{ReservationStore, Reserved};

use crate::{db, fresh, open_at};

const CHILD_DB: &str = "RECEIPTS_STORE_TEST_CHILD_DB";
const CHILD_WORK: &str = "RECEIPTS_STORE_TEST_CHILD_WORK";
const KEYS: usize = 150;

/// Both processes reserve the same keys (with different receipts) at the same time, in opposite
/// orders: no "database is locked", every key is taken exactly once, and both processes agree on
/// which reservation holds each key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_reserve_the_same_keys() {
    if let (Some(db), Some(work)) = (std::env::var_os(CHILD_DB), std::env::var_os(CHILD_WORK)) {
        return child(PathBuf::from(db), PathBuf::from(work)).await;
    }
    let (dir, store) = fresh().await;
    let tenant = unique_tenant();
    let keys: Vec<String> = (0..KEYS).map(|n| format!("key-{n}")).collect();
    let work = dir.path().join("work.json");
    std::fs::write(
        &work,
        serde_json::to_vec(&(tenant.as_str(), &keys)).expect("encode"),
    )
    .expect("write the work");
    let ready = dir.path().join("child-ready");
    let exe = std::env::current_exe().expect("test binary");
    let child = tokio::spawn(
        tokio::process::Command::new(exe)
            .args([
                "--exact",
                "processes::two_processes_reserve_the_same_keys",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, db(dir.path()))
            .env(CHILD_WORK, &work)
            .kill_on_drop(true)
            .output(),
    );
    // Start once the child has opened the store, so the two really overlap.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the child process did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut mine = Vec::new();
    for key in &keys {
        let r = reservation(&tenant, key, b"parent");
        mine.push(holder(store.reserve(&r).await.expect("parent reserves"), r));
    }
    let output = child.await.expect("join").expect("run the child");
    assert!(
        output.status.success(),
        "child failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Vec<ReceiptId> = serde_json::from_slice(
        &std::fs::read(work.with_extension("out")).expect("child's answers"),
    )
    .expect("decode");
    let mut theirs_in_key_order = theirs;
    theirs_in_key_order.reverse();
    assert_eq!(
        mine, theirs_in_key_order,
        "both processes see the same holder of every key"
    );
    for id in mine {
        assert!(store.reservation_of(id).await.expect("read").is_some());
    }
}

fn holder(reserved: Reserved, mine: Reservation) -> ReceiptId {
    match reserved {
        Reserved::New => mine.receipt_id,
        Reserved::Existing(earlier) => earlier.receipt_id,
    }
}

async fn child(db: PathBuf, work: PathBuf) {
    let (tenant, keys): (String, Vec<String>) =
        serde_json::from_slice(&std::fs::read(&work).expect("read the work")).expect("decode");
    let tenant = receipts_domain::TenantId::parse(&tenant).expect("tenant");
    let store = open_at(&db).await;
    std::fs::write(work.with_file_name("child-ready"), b"").expect("signal readiness");
    let mut answers = Vec::new();
    for key in keys.iter().rev() {
        let r = reservation(&tenant, key, b"child");
        answers.push(holder(store.reserve(&r).await.expect("child reserves"), r));
    }
    std::fs::write(
        work.with_extension("out"),
        serde_json::to_vec(&answers).expect("encode"),
    )
    .expect("write the answers");
}
