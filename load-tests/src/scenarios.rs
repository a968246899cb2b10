//! What some scenarios do beside the load: a registry outage through the mock's control API, a
//! tenant endpoint that hangs, and list pages read while receipts pour in. Each runs as a task
//! next to the generator and reports what it saw.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::JoinHandle;
use url::Url;

use crate::provision::{self, Tenant};
use crate::summary::Latency;

/// When a registry was down, in seconds from the start of the run.
#[derive(Debug, Clone, Serialize)]
pub struct OutageReport {
    pub registry: String,
    pub down_at_s: f64,
    pub up_at_s: f64,
}

/// Takes the mock registry at `mock` down `after` the start for `window`, through its control
/// API (`PUT /admin/faults` with `outage: true`), then restores the faults it had before (the
/// latency setting, for instance).
pub fn registry_outage(
    http: reqwest::Client,
    name: String,
    mock: Url,
    after: Duration,
    window: Duration,
) -> JoinHandle<anyhow::Result<OutageReport>> {
    let start = Instant::now();
    tokio::spawn(async move {
        let faults_url = mock.join("admin/faults")?;
        let before: serde_json::Value = http
            .get(faults_url.clone())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut down = before.clone();
        down["outage"] = serde_json::Value::Bool(true);
        tokio::time::sleep_until((start + after).into()).await;
        put_faults(&http, &faults_url, &down).await?;
        let down_at_s = start.elapsed().as_secs_f64();
        tracing::info!(registry = %name, "registry down");
        tokio::time::sleep(window).await;
        put_faults(&http, &faults_url, &before).await?;
        tracing::info!(registry = %name, "registry back");
        Ok(OutageReport {
            registry: name,
            down_at_s,
            up_at_s: start.elapsed().as_secs_f64(),
        })
    })
}

/// PUTs `faults`, retrying a failed send a few times: the control call must not be lost to a
/// pooled keep-alive connection the mock closed while the run went on.
async fn put_faults(
    http: &reqwest::Client,
    url: &Url,
    faults: &serde_json::Value,
) -> anyhow::Result<()> {
    let mut attempt = 1;
    let response = loop {
        match http.put(url.clone()).json(faults).send().await {
            Ok(response) => break response,
            Err(error) if attempt < 5 => {
                tracing::warn!(%error, attempt, "PUT {url} failed; retrying");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error.into()),
        }
    };
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "PUT {url}: {status} {}",
        response.text().await.unwrap_or_default()
    );
    Ok(())
}

/// A webhook endpoint that accepts connections and never answers.
pub struct HangingEndpoint {
    pub url: Url,
    task: JoinHandle<()>,
    connections: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl HangingEndpoint {
    /// Listens on a free loopback port (its own origin, apart from the receiver's).
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = Url::parse(&format!("http://{}/hang", listener.local_addr()?))?;
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = std::sync::Arc::clone(&connections);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // Holding the socket open without reading or answering is what hangs the caller.
                held.push(stream);
            }
        });
        Ok(Self {
            url,
            task,
            connections,
        })
    }

    /// Connections the platform opened to it so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Registers this endpoint for `tenant`, beside its working one.
    pub async fn subscribe(
        &self,
        http: &reqwest::Client,
        base: &Url,
        tenant: &Tenant,
    ) -> anyhow::Result<()> {
        provision::endpoint(
            http,
            base,
            tenant,
            self.url.as_str(),
            "load-tests: an endpoint that never answers",
        )
        .await
        .map(drop)
    }
}

impl Drop for HangingEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// List pages read during the run.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    pub page_limit: u32,
    pub pages: u64,
    pub rows: u64,
    pub errors: u64,
    pub latency: Latency,
}

/// Reads `limit`-row pages of `tenant`'s receipts, newest first, one after another until
/// `until`, timing each.
pub fn lister(
    http: reqwest::Client,
    base: Url,
    tenant: Tenant,
    limit: u32,
    until: Duration,
) -> JoinHandle<anyhow::Result<ListReport>> {
    tokio::spawn(async move {
        let mut url = base.join("v1/receipts")?;
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
        let mut report = ListReport {
            page_limit: limit,
            pages: 0,
            rows: 0,
            errors: 0,
            latency: Latency::default(),
        };
        let deadline = Instant::now() + until;
        while Instant::now() < deadline {
            let started = Instant::now();
            let page = http
                .get(url.clone())
                .bearer_auth(&tenant.key)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            let body: Option<serde_json::Value> = match page {
                Ok(response) => response.json().await.ok(),
                Err(_) => None,
            };
            match body {
                Some(body) => {
                    let _ = latency.record(started.elapsed().as_micros().max(1) as u64);
                    report.pages += 1;
                    report.rows += body["receipts"].as_array().map_or(0, Vec::len) as u64;
                }
                None => {
                    report.errors += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        report.latency = Latency::of(&latency);
        Ok(report)
    })
}
