//! Latency of `GET /v1/receipts/{id}` while the status projection is written at full speed.
//!
//! `cargo bench -p ingest-gateway --bench get_latency` opens a SQLite store (`synchronous =
//! FULL`) in a temporary directory, fills it with `RECEIPTS` accepted receipts, serves the real
//! router on a loopback port from a 2-worker runtime (the machine's 2 cores), and then measures
//! GETs of random receipts from `READERS` concurrent clients (on their own thread) for
//! `SECONDS`, twice: with the store otherwise idle, and while `WRITERS` tasks on the server's
//! runtime apply events (4 per receipt, as the projector does) as fast as the store takes them.
//! A third round adds another process's writes: a connection of its own takes the database's
//! write lock for 100 ms of every 300 ms, as a second service or `receipts clients` on the same
//! file would, so the projection's writes wait for it. It prints p50/p90/p99/max of the GETs and
//! the applies per second. Figures only: nothing is asserted about speed.
//! `RECEIPTS_BENCH_SECONDS` overrides the duration.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ingest_gateway::router;
use receipts_core::Projector;
use receipts_domain::event::now_millis;
use receipts_domain::{ApiKey, ReceiptEvent, ReceiptId, Scope, StatusPolicy};
use receipts_store::conformance::{self, ReceiptFixture};
use receipts_store::{SqliteOptions, SqliteStore, Stores};

const RECEIPTS: usize = 2_000;
const READERS: usize = 8;
const WRITERS: usize = 32;
const SECONDS: u64 = 10;

fn main() {
    if !support::is_bench_run() {
        return;
    }
    let seconds = std::env::var("RECEIPTS_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SECONDS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let (store, key, ids, base) = runtime.block_on(setup(dir.path()));
    let duration = Duration::from_secs(seconds);

    let idle = measure(&base, &key, &ids, duration);
    report("idle store", &idle, None);

    run_busy(&runtime, &store, &key, &ids, &base, duration, None);
    let locker = LockHolder::start(dir.path().join("bench.db"));
    run_busy(
        &runtime,
        &store,
        &key,
        &ids,
        &base,
        duration,
        Some("another process writing"),
    );
    locker.stop();
}

/// GET latencies while `WRITERS` tasks apply events as fast as the store takes them.
fn run_busy(
    runtime: &tokio::runtime::Runtime,
    store: &Stores,
    key: &str,
    ids: &[ReceiptId],
    base: &str,
    duration: Duration,
    also: Option<&str>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let applied = Arc::new(AtomicUsize::new(0));
    let writers = runtime.spawn(write_load(
        projector(store),
        Arc::clone(&stop),
        Arc::clone(&applied),
    ));
    let started = Instant::now();
    let busy = measure(base, key, ids, duration);
    let rate = applied.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(writers).expect("writers");
    let label = match also {
        Some(also) => format!("projection at full speed, {also}"),
        None => "projection at full speed".to_owned(),
    };
    report(&label, &busy, Some(rate));
}

/// Another connection to the database that takes its write lock for 100 ms of every 300 ms,
/// on a thread of its own, until stopped.
struct LockHolder {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl LockHolder {
    fn start(path: std::path::PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("lock holder runtime");
            runtime.block_on(async move {
                let db = libsql::Builder::new_local(&path)
                    .build()
                    .await
                    .expect("database");
                let conn = db.connect().expect("connection");
                conn.busy_timeout(Duration::from_secs(5))
                    .expect("busy timeout");
                while !flag.load(Ordering::Relaxed) {
                    conn.execute("BEGIN IMMEDIATE", ()).await.expect("lock");
                    std::thread::sleep(Duration::from_millis(100));
                    conn.execute("COMMIT", ()).await.expect("unlock");
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        });
        Self { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("lock holder");
    }
}

/// What the status projector applies events with.
fn projector(stores: &Stores) -> Projector {
    Projector::new(stores.receipts.clone(), StatusPolicy::default())
}

/// A store with `RECEIPTS` accepted receipts and a read key, and the gateway serving it.
async fn setup(dir: &std::path::Path) -> (Stores, String, Vec<ReceiptId>, String) {
    let store = Stores::of(
        SqliteStore::open(&dir.join("bench.db"), &SqliteOptions::default())
            .await
            .expect("open store"),
    );
    let tenant = conformance::unique_tenant();
    let key = ApiKey::generate();
    store
        .clients
        .create_client(
            &key.new_client(tenant.clone(), Scope::Read, None),
            now_millis(),
        )
        .await
        .expect("client");
    let mut ids = Vec::with_capacity(RECEIPTS);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..RECEIPTS {
        let fx = ReceiptFixture::for_tenant(tenant.clone());
        ids.push(fx.receipt_id);
        let projector = projector(&store);
        set.spawn(async move {
            for event in events(&fx) {
                projector.apply(&event, now_millis()).await.expect("apply");
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("filled");
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = support::read_only_state(store.clone(), addr);
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    (
        store,
        key.expose().to_owned(),
        ids,
        format!("http://{addr}"),
    )
}

/// The events the projector applies for one accepted receipt.
fn events(fx: &ReceiptFixture) -> [ReceiptEvent; 4] {
    [
        fx.submitted(),
        fx.validated(),
        fx.registered("tax"),
        fx.registered("logistics"),
    ]
}

/// Applies the events of fresh receipts from `WRITERS` tasks until `stop`.
async fn write_load(projector: Projector, stop: Arc<AtomicBool>, applied: Arc<AtomicUsize>) {
    let tenant = conformance::unique_tenant();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let (projector, stop, applied, tenant) = (
            projector.clone(),
            Arc::clone(&stop),
            Arc::clone(&applied),
            tenant.clone(),
        );
        set.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let fx = ReceiptFixture::for_tenant(tenant.clone());
                for event in events(&fx) {
                    projector.apply(&event, now_millis()).await.expect("apply");
                    applied.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("writer");
    }
}

/// GET latencies of random receipts from `READERS` clients on a runtime of their own.
fn measure(base: &str, key: &str, ids: &[ReceiptId], duration: Duration) -> Vec<Duration> {
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let http = reqwest::Client::new();
    client.block_on(async {
        let deadline = Instant::now() + duration;
        let mut set = tokio::task::JoinSet::new();
        for reader in 0..READERS {
            let (http, key) = (http.clone(), key.to_owned());
            let urls: Vec<String> = ids
                .iter()
                .skip(reader)
                .step_by(READERS)
                .map(|id| format!("{base}/v1/receipts/{id}"))
                .collect();
            set.spawn(async move {
                let mut latencies = Vec::new();
                for url in urls.iter().cycle() {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let sent = Instant::now();
                    let response = http.get(url).bearer_auth(&key).send().await.expect("GET");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.expect("body");
                    latencies.push(sent.elapsed());
                }
                latencies
            });
        }
        let mut all = Vec::new();
        while let Some(latencies) = set.join_next().await {
            all.extend(latencies.expect("reader"));
        }
        all
    })
}

fn report(label: &str, latencies: &[Duration], applies_per_second: Option<f64>) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let at = |q: f64| {
        let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index].as_secs_f64() * 1000.0
    };
    let applies = applies_per_second
        .map(|r| format!(", {r:.0} events applied/s"))
        .unwrap_or_default();
    println!(
        "GET /v1/receipts/{{id}}, {label}: {} requests, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms{applies}",
        sorted.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
    );
}
