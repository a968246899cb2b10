//! Pages of `GET /v1/receipts` from a store of 400,000 receipts (issue 9).
//!
//! `cargo bench -p ingest-gateway --bench list_pages` opens a SQLite store (`synchronous =
//! FULL`) in a temporary directory and seeds it, in reception order and through the store's
//! group commit: tenant `acme` with `ACME` receipts spread evenly over the last 30 days, 20
//! other tenants with `NOISE` each over the same days, and tenant `sparse` with `SPARSE` spread
//! over 20 years. Ids are UUIDv7 carrying each receipt's reception time, as the gateway mints
//! them. It serves the real router on a loopback port from a 2-worker runtime (the machine's 2
//! cores) and, from one client on its own thread, times (`RUNS` runs each unless said):
//!
//! - (a) the first 10,000-receipt page of `acme` over its 30 days, JSON, whole body read;
//! - (b) page 20 of the same list (reached once through `next_cursor`), fetched again and again;
//! - (c) the first page again as NDJSON;
//! - (d) a walk through all of `acme` by cursor (once), checking every receipt comes exactly once;
//! - (e) 20 years (the longest interval allowed) of `sparse`;
//!
//! then (a), (b), (c) and (e) again from the same router serving sockets with `TCP_NODELAY`
//! (the gateway's own listener leaves Nagle's algorithm on); and then, in process without
//! HTTP, the two store reads a page is made of (its id scan and its summaries) and the
//! serialization of its summaries, to show where a page's time goes.
//! It prints p50/p90/p99/max (nearest rank: of 50 runs the p99 is the 50th, the maximum) and
//! how long seeding took. Figures only: nothing is asserted about speed.
//! `RECEIPTS_BENCH_SCALE` (default 1.0) scales every receipt count, for a quick try.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::StreamExt;
use ingest_gateway::{AppState, router};
use receipts_domain::event::now_millis;
use receipts_domain::listing::received_at;
use receipts_domain::{ApiKey, ListRequest, ReceiptId, ReceiptRecord, Scope, TenantId};
use receipts_store::conformance::ReceiptFixture;
use receipts_store::{Cas, SqliteOptions, SqliteStore, Stores};
use serde::Deserialize;

const ACME: usize = 300_000;
const NOISE_TENANTS: usize = 20;
const NOISE: usize = 5_000;
const SPARSE: usize = 200;
/// The days `acme` and the noise tenants are spread over.
const WINDOW_DAYS: i64 = 30;
/// The longest interval a query may cover (20 years of 365.25 days).
const SPARSE_DAYS: i64 = 20 * 365 + 5;
/// Receipts per page: the most a page may hold.
const PAGE: usize = 10_000;
/// The page fetched again and again by cursor.
const DEEP_PAGE: usize = 20;
const RUNS: usize = 50;
/// Saves in flight while seeding (the store group-commits them).
const SAVERS: usize = 256;

fn main() {
    if !support::is_bench_run() {
        return;
    }
    let scale: f64 = std::env::var("RECEIPTS_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let count = |n: usize| ((n as f64 * scale).round() as usize).max(1);
    let counts = Counts {
        acme: count(ACME),
        noise: count(NOISE),
        sparse: count(SPARSE),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "list_pages: {cores} cores, scale {scale}: acme {}, {NOISE_TENANTS} tenants x {}, sparse {}",
        counts.acme, counts.noise, counts.sparse
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let server = runtime.block_on(setup(dir.path(), now, &counts));
    let client = Client::new(server.base.clone());
    let mut table = Vec::new();

    // (a) The first page of acme's 30 days.
    let to = now + TimeDelta::minutes(1);
    let window = format!(
        "from={}&to={}",
        rfc3339(now - TimeDelta::days(WINDOW_DAYS) - TimeDelta::minutes(1)),
        rfc3339(to)
    );
    let first = format!("/v1/receipts?limit={PAGE}&{window}");
    let (_, body) = client.get(&first, &server.acme_key, false);
    let page: Page = serde_json::from_slice(&body).expect("a JSON page");
    println!(
        "first page: {} receipts, {} bytes of JSON",
        page.receipts.len(),
        body.len()
    );
    let times = client.repeat(&first, &server.acme_key, false);
    table.push(Row::of("(a) first page, JSON", &times));

    // (b) A deep page, reached once by cursor.
    let (deep, deep_page) = client.follow(&first, &server.acme_key, DEEP_PAGE);
    if deep_page < DEEP_PAGE {
        println!("acme has only {deep_page} pages: timing page {deep_page} instead of {DEEP_PAGE}");
    }
    let times = client.repeat(&deep, &server.acme_key, false);
    table.push(Row::of(
        &format!("(b) page {deep_page} by cursor, JSON"),
        &times,
    ));

    // (c) The first page as NDJSON.
    let (_, body) = client.get(&first, &server.acme_key, true);
    println!(
        "first page as NDJSON: {} lines, {} bytes",
        body.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        body.len()
    );
    let times = client.repeat(&first, &server.acme_key, true);
    table.push(Row::of("(c) first page, NDJSON", &times));

    // (d) A walk through all of acme.
    let walk = client.walk(&first, &server.acme_key);
    if walk.seen != counts.acme || walk.repeated > 0 {
        println!(
            "WALK WRONG: {} distinct receipts of {} seeded, {} seen more than once",
            walk.seen, counts.acme, walk.repeated
        );
    } else {
        println!(
            "walk: each of the {} receipts seen exactly once, in {} pages",
            walk.seen,
            walk.pages.len()
        );
    }
    table.push(Row::of(
        &format!("(d) walk, per page ({} pages)", walk.pages.len()),
        &walk.pages,
    ));
    table.push(Row::of("(d) walk, total (once)", &[walk.total]));

    // (e) 20 years of the sparse tenant.
    let sparse = format!(
        "/v1/receipts?limit={PAGE}&from={}&to={}",
        rfc3339(to - TimeDelta::days(SPARSE_DAYS)),
        rfc3339(to)
    );
    let (_, body) = client.get(&sparse, &server.sparse_key, false);
    let page: Page = serde_json::from_slice(&body).expect("a JSON page");
    println!(
        "sparse, 20 years: {} receipts of {} seeded",
        page.receipts.len(),
        counts.sparse
    );
    let times = client.repeat(&sparse, &server.sparse_key, false);
    table.push(Row::of("(e) sparse tenant, 20 years", &times));
    drop(client);

    // The same requests from a server socket with Nagle's algorithm off.
    let client = Client::new(server.nodelay_base.clone());
    for (label, path, key, ndjson) in [
        ("(a) first page, JSON", &first, &server.acme_key, false),
        ("(b) deep page, JSON", &deep, &server.acme_key, false),
        ("(c) first page, NDJSON", &first, &server.acme_key, true),
        (
            "(e) sparse tenant, 20 years",
            &sparse,
            &server.sparse_key,
            false,
        ),
    ] {
        client.get(path, key, ndjson);
        let times = client.repeat(path, key, ndjson);
        table.push(Row::of(&format!("{label}, TCP_NODELAY"), &times));
    }
    drop(client);

    // Where a first page's time goes, without HTTP.
    table.extend(runtime.block_on(in_process(&server.state, now, to)));

    println!();
    println!(
        "{:<44} {:>5} {:>9} {:>9} {:>9} {:>9}",
        "GET /v1/receipts", "runs", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for row in &table {
        println!(
            "{:<44} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            row.label, row.runs, row.p50, row.p90, row.p99, row.max
        );
    }
    println!("machine: {cores} cores (std::thread::available_parallelism)");
}

struct Counts {
    acme: usize,
    noise: usize,
    sparse: usize,
}

/// The gateway serving the seeded store, and the keys of the two tenants measured.
struct Server {
    state: AppState,
    base: String,
    /// The same router, serving sockets with `TCP_NODELAY`.
    nodelay_base: String,
    acme_key: String,
    sparse_key: String,
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("tenant")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Seeds the store, creates a key per tenant and starts the gateway.
async fn setup(dir: &Path, now: DateTime<Utc>, counts: &Counts) -> Server {
    let path = dir.join("bench.db");
    let sqlite = SqliteStore::open(&path, &SqliteOptions::default())
        .await
        .expect("open store");
    let mut tenants = vec![tenant("acme"), tenant("sparse")];
    tenants.extend((1..=NOISE_TENANTS).map(|n| tenant(&format!("noise-{n:02}"))));
    seed(&sqlite, &tenants, now, counts).await;
    let stores = Stores::of(sqlite);
    let size: u64 = ["bench.db", "bench.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!("database: {:.0} MiB", size as f64 / (1024.0 * 1024.0));

    let mut keys = Vec::new();
    for tenant in &tenants {
        let key = ApiKey::generate();
        stores
            .clients
            .create_client(
                &key.new_client(tenant.clone(), Scope::Read, None),
                now_millis(),
            )
            .await
            .expect("client");
        keys.push(key.expose().to_owned());
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = support::read_only_state(stores, addr);
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // The same router on a socket with Nagle's algorithm off, as the gateway's `run` serves it
    // (the plain socket above shows what that saves).
    let nodelay = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let nodelay_addr = nodelay.local_addr().expect("addr");
    let nodelay = nodelay.tap_io(|tcp| tcp.set_nodelay(true).expect("TCP_NODELAY"));
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(nodelay, app).await });
    Server {
        state,
        base: format!("http://{addr}"),
        nodelay_base: format!("http://{nodelay_addr}"),
        acme_key: keys[0].clone(),
        sparse_key: keys[1].clone(),
    }
}

/// One receipt to seed: its tenant (an index into the tenants) and reception time.
struct Seed {
    tenant: usize,
    at_ms: i64,
}

/// `n` receipts of `tenant` spread evenly over the `span` before `end`.
fn spread(
    tenant: usize,
    n: usize,
    end: DateTime<Utc>,
    span: TimeDelta,
) -> impl Iterator<Item = Seed> {
    let (end, span) = (end.timestamp_millis(), span.num_milliseconds());
    (0..n).map(move |i| Seed {
        tenant,
        at_ms: end - span + (i as i64 * span) / n as i64,
    })
}

/// Saves every receipt, oldest first (as they would have arrived), `SAVERS` at a time.
async fn seed(sqlite: &SqliteStore, tenants: &[TenantId], now: DateTime<Utc>, counts: &Counts) {
    let stores = Stores::of(sqlite.clone());
    let window = TimeDelta::days(WINDOW_DAYS);
    let mut seeds: Vec<Seed> = spread(0, counts.acme, now, window)
        // All of them inside the 20 years a query may cover, a day to spare.
        .chain(spread(
            1,
            counts.sparse,
            now,
            TimeDelta::days(SPARSE_DAYS - 1),
        ))
        .chain((2..tenants.len()).flat_map(|t| spread(t, counts.noise, now, window)))
        .collect();
    seeds.sort_by_key(|s| s.at_ms);
    let total = seeds.len();
    let saved = AtomicUsize::new(0);
    let started = Instant::now();
    futures::stream::iter(seeds.into_iter().enumerate())
        .for_each_concurrent(SAVERS, |(n, s)| {
            let store = Arc::clone(&stores.receipts);
            let record = record(tenants[s.tenant].clone(), s.at_ms, n as u64);
            let saved = &saved;
            async move {
                let cas = store.save_receipt(&record, 0).await.expect("save");
                assert_eq!(cas, Cas::Written, "a fresh receipt");
                let done = saved.fetch_add(1, Ordering::Relaxed) + 1;
                if done.is_multiple_of(100_000) {
                    println!(
                        "  seeded {done} of {total} in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        })
        .await;
    let took = started.elapsed();
    println!(
        "seeded {total} receipts in {:.1} s: {:.0} receipts/s ({} commits)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        sqlite.commits()
    );
}

/// The record of receipt number `n`, received at `at_ms`: mostly accepted, some rejected, some
/// still in flight.
fn record(tenant: TenantId, at_ms: i64, n: u64) -> ReceiptRecord {
    let receipt_id = uuid_v7(at_ms, n);
    let submitted_at = DateTime::from_timestamp_millis(at_ms).expect("a time");
    debug_assert_eq!(received_at(receipt_id), submitted_at);
    let fx = ReceiptFixture {
        tenant,
        receipt_id,
        submitted_at,
    };
    match n % 20 {
        0 | 1 => fx.record(&[fx.submitted(), fx.rejected()]),
        2 => fx.record(&[fx.submitted()]),
        3 => fx.record(&[fx.submitted(), fx.validated()]),
        _ => fx.record(&[
            fx.submitted(),
            fx.validated(),
            fx.registered("tax"),
            fx.registered("logistics"),
        ]),
    }
}

/// A UUIDv7 (RFC 9562) whose timestamp is `at_ms` and whose random bits are derived from `n`
/// (its low 32 bits kept whole, so that no two seeded ids are equal). Spelled out here rather
/// than with `uuid::Uuid::new_v7` because `uuid` is not a dependency of this crate.
fn uuid_v7(at_ms: i64, n: u64) -> ReceiptId {
    // splitmix64: well-spread bits from a counter.
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let random = z ^ (z >> 31);
    let ms = u128::from(u64::try_from(at_ms).expect("after 1970")) & ((1 << 48) - 1);
    let rand_a = u128::from(random >> 52); // 12 bits
    let rand_b = (u128::from(random & ((1 << 30) - 1)) << 32) | u128::from(n & 0xffff_ffff);
    let bits = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b;
    ReceiptId::parse(&format!("{bits:032x}")).expect("a UUID")
}

/// What the bench reads of a JSON page.
#[derive(Deserialize)]
struct Page {
    receipts: Vec<Listed>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
}

/// The outcome of a walk through every page.
struct Walk {
    pages: Vec<Duration>,
    total: Duration,
    seen: usize,
    repeated: usize,
}

/// One HTTP client on a runtime of its own, on the calling thread.
struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(base: String) -> Self {
        Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("client runtime"),
            http: reqwest::Client::new(),
            base,
        }
    }

    /// GETs `path` and reads the whole body: the time to the body's end, and the body.
    fn get(&self, path: &str, key: &str, ndjson: bool) -> (Duration, Vec<u8>) {
        self.runtime.block_on(self.fetch(path, key, ndjson))
    }

    async fn fetch(&self, path: &str, key: &str, ndjson: bool) -> (Duration, Vec<u8>) {
        let accept = if ndjson {
            "application/x-ndjson"
        } else {
            "application/json"
        };
        let sent = Instant::now();
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("accept", accept)
            .send()
            .await
            .expect("GET");
        let status = response.status();
        let body = response.bytes().await.expect("body");
        let took = sent.elapsed();
        assert!(
            status.is_success(),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        (took, body.to_vec())
    }

    /// `RUNS` timed GETs of `path`.
    fn repeat(&self, path: &str, key: &str, ndjson: bool) -> Vec<Duration> {
        (0..RUNS).map(|_| self.get(path, key, ndjson).0).collect()
    }

    /// The path of page `page` of the list `first` starts (or of its last page, if it has
    /// fewer), and its number.
    fn follow(&self, first: &str, key: &str, page: usize) -> (String, usize) {
        let mut path = first.to_owned();
        let mut number = 1;
        while number < page {
            let (_, body) = self.get(&path, key, false);
            let listed: Page = serde_json::from_slice(&body).expect("a JSON page");
            let Some(cursor) = listed.next_cursor else {
                break;
            };
            path = format!("/v1/receipts?limit={PAGE}&cursor={cursor}");
            number += 1;
        }
        (path, number)
    }

    /// Every page of the list `first` starts, by cursor.
    fn walk(&self, first: &str, key: &str) -> Walk {
        let mut ids = HashSet::new();
        let mut repeated = 0;
        let mut pages = Vec::new();
        let started = Instant::now();
        let mut path = Some(first.to_owned());
        while let Some(next) = path {
            let (took, body) = self.get(&next, key, false);
            pages.push(took);
            let page: Page = serde_json::from_slice(&body).expect("a JSON page");
            for receipt in page.receipts {
                if !ids.insert(receipt.id) {
                    repeated += 1;
                }
            }
            path = page
                .next_cursor
                .map(|cursor| format!("/v1/receipts?limit={PAGE}&cursor={cursor}"));
        }
        Walk {
            pages,
            total: started.elapsed(),
            seen: ids.len(),
            repeated,
        }
    }
}

/// The first page of acme again, in process: its id scan, its summaries and their
/// serialization, each timed apart, `RUNS` times.
async fn in_process(state: &AppState, now: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Row> {
    let acme = tenant("acme");
    let query = ListRequest {
        from: Some(now - TimeDelta::days(WINDOW_DAYS) - TimeDelta::minutes(1)),
        to: Some(to),
        ..Default::default()
    }
    .resolve(Utc::now())
    .expect("query");
    let (mut scans, mut reads, mut serializations) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let started = Instant::now();
        let page = state
            .receipts
            .page(&acme, &query, None, PAGE)
            .await
            .expect("page");
        scans.push(started.elapsed());
        let started = Instant::now();
        let summaries: Vec<_> = state
            .receipts
            .summaries(acme.clone(), page.ids, query.order)
            .map(|s| s.expect("summary"))
            .collect()
            .await;
        reads.push(started.elapsed());
        let started = Instant::now();
        let bytes: usize = summaries
            .iter()
            .map(|s| serde_json::to_vec(s).expect("json").len())
            .sum();
        serializations.push(started.elapsed());
        assert!(bytes > 0, "summaries serialized");
    }
    vec![
        Row::of("in process: the page's id scan", &scans),
        Row::of("in process: its summaries, read", &reads),
        Row::of("in process: its summaries, to JSON", &serializations),
    ]
}

/// One line of the table: milliseconds.
struct Row {
    label: String,
    runs: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Row {
    fn of(label: &str, times: &[Duration]) -> Self {
        let mut sorted = times.to_vec();
        sorted.sort();
        let at = |q: f64| {
            let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index].as_secs_f64() * 1000.0
        };
        Self {
            label: label.to_owned(),
            runs: sorted.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}
