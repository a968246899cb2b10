//! One run: receipts sent at their scheduled times, their acknowledgements and terminal statuses
//! timed from those times, then the checks (nothing lost, nothing registered twice).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use receipts_domain::DocumentFormat;
use receipts_validation::types::TypeSet;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use url::Url;

use crate::provision::Tenant;
use crate::receiver::{Heard, Receiver};
use crate::schedule::Schedule;
use crate::summary::{Latency, ProcessSample, Summary, Timeline, Verification};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: String,
    /// The gateway's base URL.
    pub base: Url,
    pub schedule: Schedule,
    /// At most this many receipts.
    pub max: u64,
    /// How long to wait for terminal statuses after the last send, before polling.
    pub drain: Duration,
    /// The mock registries (name, base URL), whose counts are checked at the end.
    pub mocks: Vec<(String, Url)>,
    /// Makes the documents of a run unique (and reproducible).
    pub seed: u64,
    /// Draw a live progress line.
    pub progress: bool,
    /// The platform's process, whose CPU and memory are sampled every second.
    pub platform_pid: Option<u32>,
    /// The platform's Prometheus metrics, whose consumer lag is sampled every second.
    pub metrics_url: Option<Url>,
    /// The receipt types documents are drawn from (every type and format in turn).
    pub types: Arc<TypeSet>,
    /// Measure the 202s only: no waiting for terminal statuses, no registry check (the
    /// `ingest` comparison, and targets that have no pipeline behind them).
    pub acknowledgements_only: bool,
}

/// A receipt acknowledged and not yet heard of.
struct Pending {
    intended: Instant,
    tenant: usize,
}

/// Everything the senders, the listener and the progress line share.
struct Shared {
    start: Instant,
    sent: AtomicU64,
    acknowledged: AtomicU64,
    ended: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    pending: Mutex<HashMap<String, Pending>>,
    /// Terminal statuses heard before the 202 was processed (a fast platform).
    early: Mutex<HashMap<String, Heard>>,
    terminal: Mutex<BTreeMap<String, u64>>,
    /// Accepted receipts, for the registries' check.
    accepted: Mutex<Vec<String>>,
    ack: Mutex<Histogram<u64>>,
    e2e: Mutex<Histogram<u64>>,
    timeline: Mutex<Timeline>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds, up to an hour, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

impl Shared {
    /// The second of the run `at` falls in.
    fn second(&self, at: Instant) -> usize {
        at.saturating_duration_since(self.start).as_secs() as usize
    }

    fn error(&self, kind: String) {
        *lock(&self.errors).entry(kind).or_default() += 1;
    }

    /// A terminal status for an acknowledged receipt.
    fn ended(&self, id: &str, status: &str, intended: Instant, at: Instant) {
        let micros = at.saturating_duration_since(intended).as_micros() as u64;
        let _ = lock(&self.e2e).record(micros.max(1));
        *lock(&self.terminal).entry(status.to_owned()).or_default() += 1;
        if status == "ACCEPTED" {
            lock(&self.accepted).push(id.to_owned());
        }
        self.ended.fetch_add(1, Ordering::Relaxed);
        let (second, sent_in) = (self.second(at), self.second(intended));
        lock(&self.timeline).ended(second, sent_in, micros);
    }

    fn heard(&self, heard: Heard) {
        let pending = lock(&self.pending).remove(&heard.receipt_id);
        match pending {
            Some(p) => self.ended(&heard.receipt_id, &heard.status, p.intended, heard.at),
            // A repeated delivery of one we already counted is not in `pending` either; keeping
            // it as early is harmless (never claimed).
            None => {
                lock(&self.early).insert(heard.receipt_id.clone(), heard);
            }
        }
    }

    fn acknowledged(&self, id: String, intended: Instant, tenant: usize) {
        let now = Instant::now();
        let micros = now.saturating_duration_since(intended).as_micros() as u64;
        let _ = lock(&self.ack).record(micros.max(1));
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
        let (second, sent_in) = (self.second(now), self.second(intended));
        lock(&self.timeline).acknowledged(second, sent_in, micros);
        let early = lock(&self.early).remove(&id);
        match early {
            Some(heard) => self.ended(&id, &heard.status, intended, heard.at),
            None => {
                lock(&self.pending).insert(id, Pending { intended, tenant });
            }
        }
    }
}

/// Runs `options` as `tenants`, hearing terminal statuses through `receiver`.
pub async fn run(
    options: Options,
    tenants: Vec<Tenant>,
    receiver: &Receiver,
    mut heard: mpsc::UnboundedReceiver<Heard>,
) -> anyhow::Result<Summary> {
    anyhow::ensure!(!tenants.is_empty(), "no tenant to send as");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1_024)
        .tcp_nodelay(true)
        .build()?;
    let arrivals = options.schedule.arrivals(options.max);
    let started_at = chrono::Utc::now();
    let start = Instant::now() + Duration::from_millis(50);
    let shared = Arc::new(Shared {
        start,
        sent: AtomicU64::new(0),
        acknowledged: AtomicU64::new(0),
        ended: AtomicU64::new(0),
        errors: Mutex::default(),
        pending: Mutex::default(),
        early: Mutex::default(),
        terminal: Mutex::default(),
        accepted: Mutex::default(),
        ack: Mutex::new(histogram()?),
        e2e: Mutex::new(histogram()?),
        timeline: Mutex::new(Timeline::new()?),
    });
    let listener = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Some(h) = heard.recv().await {
                shared.heard(h);
            }
        })
    };
    let sampler = options
        .platform_pid
        .map(|pid| crate::process::sample_every_second(pid, start));
    let lag_sampler = options
        .metrics_url
        .clone()
        .map(|url| crate::lag::sample_every_second(http.clone(), url, start));
    let progress = progress_line(options.progress, arrivals.len() as u64);
    let ticker = spawn_progress(progress.clone(), Arc::clone(&shared));

    let kinds = options.types.submission_kinds();
    anyhow::ensure!(!kinds.is_empty(), "no receipt type to send");
    let submit_url = options.base.join("v1/receipts")?;
    let tenants = Arc::new(tenants);
    let mut senders = JoinSet::new();
    for (n, offset) in arrivals.iter().enumerate() {
        let intended = start + *offset;
        tokio::time::sleep_until(intended.into()).await;
        let (receipt_type, format) = &kinds[n % kinds.len()];
        let body = options
            .types
            .sample(
                receipt_type,
                *format,
                true,
                options.seed.wrapping_add(n as u64),
            )
            .ok_or_else(|| anyhow::anyhow!("{receipt_type} has no valid {format} sample"))?;
        let document = Document {
            body,
            receipt_type: receipt_type.clone(),
            content_type: match format {
                DocumentFormat::Json => "application/json",
                DocumentFormat::Xml => "application/xml",
            },
            idempotency_key: format!("lt-{}-{n}", options.seed),
        };
        let tenant = n % tenants.len();
        let (http, url, shared, tenants) = (
            http.clone(),
            submit_url.clone(),
            Arc::clone(&shared),
            Arc::clone(&tenants),
        );
        shared.sent.fetch_add(1, Ordering::Relaxed);
        lock(&shared.timeline).sent(shared.second(intended));
        senders.spawn(async move {
            match submit(&http, &url, &tenants[tenant].key, document).await {
                Ok(id) => shared.acknowledged(id, intended, tenant),
                Err(kind) => shared.error(kind),
            }
        });
        // Reap finished senders as we go, so the set stays small.
        while senders.try_join_next().is_some() {}
    }
    while senders.join_next().await.is_some() {}
    let sending = start.elapsed().as_secs_f64().max(0.001);

    // Wait for the remaining terminal statuses, then ask for the rest.
    if options.acknowledgements_only {
        lock(&shared.pending).clear();
    }
    let deadline = Instant::now() + options.drain;
    while !lock(&shared.pending).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut verification = Verification {
        forged_webhooks: receiver.forged(),
        ..Verification::default()
    };
    let leftover: Vec<(String, usize, Instant)> = lock(&shared.pending)
        .drain()
        .map(|(id, p)| (id, p.tenant, p.intended))
        .collect();
    for (id, tenant, intended) in leftover {
        match poll_status(&http, &options.base, &tenants[tenant].key, &id).await {
            Some(status) => {
                verification.polled += 1;
                shared.ended(&id, &status, intended, Instant::now());
            }
            None => verification.unfinished.push(id),
        }
    }
    ticker.abort();
    listener.abort();
    let platform: Vec<ProcessSample> = match sampler {
        Some((task, samples)) => {
            task.abort();
            lock(&samples)
                .iter()
                .map(|&(at_s, cpu_percent, rss_mib)| ProcessSample {
                    at_s,
                    cpu_percent,
                    rss_mib,
                })
                .collect()
        }
        None => Vec::new(),
    };
    let lag = match lag_sampler {
        Some((task, samples)) => {
            task.abort();
            lock(&samples).clone()
        }
        None => Vec::new(),
    };
    progress.finish_and_clear();

    let accepted = lock(&shared.accepted).clone();
    verification.registrations_checked = !options.acknowledgements_only;
    let mocks: &[(String, Url)] = if options.acknowledgements_only {
        &[]
    } else {
        &options.mocks
    };
    for (name, mock) in mocks {
        match registrations(&http, mock).await {
            Some(counts) => {
                let wrong: BTreeMap<String, u64> = accepted
                    .iter()
                    .map(|id| (id.clone(), counts.get(id).copied().unwrap_or(0)))
                    .filter(|(_, count)| *count != 1)
                    .collect();
                verification
                    .registrations_not_once
                    .insert(name.clone(), wrong);
            }
            None => verification.registrations_checked = false,
        }
    }

    let ended = shared.ended.load(Ordering::Relaxed) as f64;
    let summary = Summary {
        scenario: options.scenario.clone(),
        started_at: started_at.to_rfc3339(),
        machine: crate::process::machine(),
        rate_from: options.schedule.from,
        rate_to: options.schedule.to,
        duration_s: options.schedule.over.as_secs_f64(),
        sent: shared.sent.load(Ordering::Relaxed),
        acknowledged: shared.acknowledged.load(Ordering::Relaxed),
        errors: lock(&shared.errors).clone(),
        terminal: lock(&shared.terminal).clone(),
        acknowledgement: Latency::of(&lock(&shared.ack)),
        end_to_end: Latency::of(&lock(&shared.e2e)),
        seconds: lock(&shared.timeline).seconds(),
        sent_per_s: shared.sent.load(Ordering::Relaxed) as f64 / sending,
        acknowledged_per_s: shared.acknowledged.load(Ordering::Relaxed) as f64 / sending,
        terminal_per_s: ended / start.elapsed().as_secs_f64().max(0.001),
        platform_rss_max_mib: platform.iter().map(|p| p.rss_mib).reduce(f64::max),
        platform_cpu_mean_percent: (!platform.is_empty())
            .then(|| platform.iter().map(|p| p.cpu_percent).sum::<f64>() / platform.len() as f64),
        findings: BTreeMap::new(),
        platform,
        lag,
        verification,
    };
    Ok(summary)
}

/// One receipt as it is sent.
struct Document {
    body: Vec<u8>,
    receipt_type: String,
    content_type: &'static str,
    idempotency_key: String,
}

/// Submits one receipt: its id on a 202, else the kind of failure.
async fn submit(
    http: &reqwest::Client,
    url: &Url,
    key: &str,
    document: Document,
) -> Result<String, String> {
    let response = http
        .post(url.clone())
        .bearer_auth(key)
        .header("Content-Type", document.content_type)
        .header("Receipt-Type", &document.receipt_type)
        .header("Idempotency-Key", &document.idempotency_key)
        .body(document.body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timeout".to_owned()
            } else {
                "connection".to_owned()
            }
        })?;
    let status = response.status();
    if status != reqwest::StatusCode::ACCEPTED {
        return Err(format!("http-{}", status.as_u16()));
    }
    let body: serde_json::Value = response.json().await.map_err(|_| "unreadable-202")?;
    body["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "202-without-id".to_owned())
}

/// The receipt's status if it is terminal.
async fn poll_status(http: &reqwest::Client, base: &Url, key: &str, id: &str) -> Option<String> {
    let url = base.join(&format!("v1/receipts/{id}")).ok()?;
    let body = get_json(http.get(url).bearer_auth(key)).await?;
    body["status"]
        .as_str()
        .filter(|s| matches!(*s, "ACCEPTED" | "REJECTED" | "FAILED"))
        .map(str::to_owned)
}

/// A mock registry's registrations: receipt id -> times registered.
async fn registrations(http: &reqwest::Client, mock: &Url) -> Option<HashMap<String, u64>> {
    let stats = get_json(http.get(mock.join("admin/stats").ok()?)).await?;
    serde_json::from_value(stats["registrations"].clone()).ok()
}

/// The JSON body of `request`'s answer, if any.
async fn get_json(request: reqwest::RequestBuilder) -> Option<serde_json::Value> {
    request.send().await.ok()?.json().await.ok()
}

fn progress_line(visible: bool, total: u64) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Redraws the progress line four times a second: sent, acknowledged, terminal, errors and the
/// rate of the last second.
fn spawn_progress(bar: ProgressBar, shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = (Instant::now(), 0u64);
        let mut rate = 0.0;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let sent = shared.sent.load(Ordering::Relaxed);
            if last.0.elapsed() >= Duration::from_secs(1) {
                rate = (sent - last.1) as f64 / last.0.elapsed().as_secs_f64();
                last = (Instant::now(), sent);
            }
            let errors: u64 = lock(&shared.errors).values().sum();
            bar.set_position(sent);
            bar.set_message(format!(
                "sent {sent}  acknowledged {}  terminal {}  errors {errors}  {rate:.0}/s",
                shared.acknowledged.load(Ordering::Relaxed),
                shared.ended.load(Ordering::Relaxed),
            ));
        }
    })
}
