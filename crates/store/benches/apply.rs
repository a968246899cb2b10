//! Throughput of `apply` under concurrency, on a temporary file with `synchronous = FULL` (the
//! default: every commit waits for the disk).
//!
//! `cargo bench -p receipts-store --bench apply` applies `RECEIPTS` receipts × 4 events
//! (submitted, validated, registered with tax and with logistics) with 1, 16 and 64 concurrent
//! tasks, each task taking the next receipt and applying its events in order (as the projector
//! does for one key), and prints events per second. `RECEIPTS_BENCH_RECEIPTS` overrides the
//! number of receipts. Figures only: nothing is asserted about speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use receipts_domain::{ReceiptEvent, StatusPolicy};
use receipts_store::conformance::{self, ReceiptFixture};
use receipts_store::{Applied, SqliteConfig, SqliteStore, StatusStore, Synchronous};

const RECEIPTS: usize = 5_000;
const CONCURRENCY: [usize; 3] = [1, 16, 64];

fn main() {
    // `cargo bench` passes `--bench`. Test runners also start bench targets (`cargo test
    // --all-targets` without it, nextest with `--list`): there is nothing to test here, and speed
    // is never measured in a test run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let receipts = std::env::var("RECEIPTS_BENCH_RECEIPTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(RECEIPTS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    for tasks in CONCURRENCY {
        let (events, elapsed, commits) = runtime.block_on(run(receipts, tasks));
        let per_second = events as f64 / elapsed.as_secs_f64();
        println!(
            "apply: {events} events, {tasks:>2} concurrent tasks, synchronous=full: \
             {per_second:>8.0} events/s ({:.2} s, {commits} commits, {:.1} events per commit)",
            elapsed.as_secs_f64(),
            events as f64 / commits.max(1) as f64,
        );
    }
}

/// Applies every event of `receipts` receipts with `tasks` concurrent tasks on a fresh store;
/// returns how many events were applied, how long it took and in how many transactions.
async fn run(receipts: usize, tasks: usize) -> (usize, std::time::Duration, u64) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = SqliteConfig {
        synchronous: Synchronous::Full,
        ..SqliteConfig::new(dir.path().join("bench.db"))
    };
    let store = SqliteStore::open(&config, StatusPolicy::default())
        .await
        .expect("open the store");
    let tenant = conformance::unique_tenant();
    let work: Arc<Vec<[ReceiptEvent; 4]>> = Arc::new(
        (0..receipts)
            .map(|_| {
                let fx = ReceiptFixture::for_tenant(tenant.clone());
                [
                    fx.submitted().into(),
                    fx.validated().into(),
                    fx.registered(conformance::TAX).into(),
                    fx.registered(conformance::LOGISTICS).into(),
                ]
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));

    let commits = store.commits();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (store, work, next) = (store.clone(), Arc::clone(&work), Arc::clone(&next));
        set.spawn(async move {
            let mut applied = 0;
            while let Some(events) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                for event in events {
                    match store.apply(event).await.expect("apply") {
                        Applied::Applied(_) => applied += 1,
                        other => panic!("expected a new event to apply, got {other:?}"),
                    }
                }
            }
            applied
        });
    }
    let mut applied = 0;
    while let Some(done) = set.join_next().await {
        applied += done.expect("bench task");
    }
    let elapsed = started.elapsed();
    assert_eq!(applied, receipts * 4, "every event applied once");
    (applied, elapsed, store.commits() - commits)
}
