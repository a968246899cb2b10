//! The operations side of a service: Prometheus metrics for HTTP servers, and the small admin
//! listener consumer services run (`/livez`, `/readyz`, `/metrics`).
//!
//! - `/livez` answers 200 while the process serves: it checks no dependency, so a broker outage
//!   does not get every pod restarted.
//! - `/readyz` answers 200 when every dependency check passes, else 503; the body names each
//!   check and its error. Checks run at most once per [`CHECK_EVERY`]; probes in between get the
//!   last result.
//! - `/metrics` renders every series of the process (Prometheus text format).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use receipts_avro::SchemaRegistryConfig;
use receipts_kafka::{BrokerProbe, KafkaConfig};
use receipts_store::Health;
use receipts_telemetry::metrics::{
    HTTP_REQUEST_DURATION, HTTP_REQUESTS, HTTP_REQUESTS_IN_FLIGHT, Recorder,
};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::Error;

/// How often readiness checks really run.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long one dependency may take to answer a readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `[admin]`: the admin listener of a consumer service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Where `/livez`, `/readyz` and `/metrics` are served.
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
        }
    }
}

/// A dependency check: Ok, or why the dependency cannot be used.
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A service's readiness: named dependency checks, run at most once per [`CHECK_EVERY`].
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
    last: Arc<Mutex<Option<(Instant, Report)>>>,
}

/// The outcome of every check: its name, and its error if it failed.
pub type Report = BTreeMap<&'static str, Result<(), String>>;

impl Readiness {
    /// Adds a check named `name`.
    pub fn check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((
            name,
            Arc::new(move || Box::pin(check()) as BoxFuture<'static, _>),
        ));
        self
    }

    /// The Kafka cluster answers a metadata request.
    pub fn broker(self, kafka: &KafkaConfig, service: &str) -> Result<Self, Error> {
        let probe = BrokerProbe::new(kafka, &format!("{service}-readiness"))?;
        Ok(self.check("broker", move || {
            let probe = probe.clone();
            async move { probe.check(CHECK_TIMEOUT).await }
        }))
    }

    /// The schema registry answers `GET /subjects` with a success.
    pub fn schema_registry(self, config: &SchemaRegistryConfig) -> Result<Self, Error> {
        let url = format!("{}/subjects", config.url.as_str().trim_end_matches('/'));
        let auth = config.username.clone().map(|user| {
            let password = config.password.as_ref().map(|p| p.expose().to_owned());
            (user, password)
        });
        let http = http_client()?;
        Ok(self.check("schema_registry", move || {
            let mut request = http.get(&url);
            if let Some((user, password)) = &auth {
                request = request.basic_auth(user, password.as_ref());
            }
            async move {
                let response = request.send().await.map_err(|e| e.to_string())?;
                match response.status() {
                    status if status.is_success() => Ok(()),
                    status => Err(format!("answered {status}")),
                }
            }
        }))
    }

    /// The store answers a ping.
    pub fn store(self, health: Arc<dyn Health>) -> Self {
        self.check("store", move || {
            let health = Arc::clone(&health);
            async move { health.ping().await.map_err(|e| e.to_string()) }
        })
    }

    /// The registry at `base_url` answers HTTP at all (any status: it is reachable).
    pub fn registry(self, base_url: &Url) -> Result<Self, Error> {
        let (url, http) = (base_url.clone(), http_client()?);
        Ok(self.check("registry", move || {
            let request = http.get(url.clone());
            async move { request.send().await.map(drop).map_err(|e| e.to_string()) }
        }))
    }

    /// Every check's outcome, at most [`CHECK_EVERY`] old.
    pub async fn report(&self) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < CHECK_EVERY
        {
            return report.clone();
        }
        let outcomes = futures::future::join_all(self.checks.iter().map(|(name, check)| {
            let check = Arc::clone(check);
            async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                };
                (*name, outcome)
            }
        }))
        .await;
        let report: Report = outcomes.into_iter().collect();
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

fn http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(CHECK_TIMEOUT)
        .build()
        .map_err(|e| Error::setup("the readiness HTTP client", e))
}

/// `/livez`: the process serves.
pub async fn livez() -> &'static str {
    "ok"
}

/// `/readyz`: 200 when every check passes, else 503; the body names each check.
pub async fn readyz(State(readiness): State<Readiness>) -> Response {
    let report = readiness.report().await;
    let ready = report.values().all(Result::is_ok);
    let body: serde_json::Map<String, serde_json::Value> = report
        .into_iter()
        .map(|(name, outcome)| {
            let value = match outcome {
                Ok(()) => serde_json::json!({ "ok": true }),
                Err(error) => serde_json::json!({ "ok": false, "error": error }),
            };
            (name.to_owned(), value)
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// `/metrics`: every series of the process.
pub async fn metrics(State(recorder): State<Recorder>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        recorder.render(),
    )
        .into_response()
}

/// Records every request of a router: count by route template and status, duration, in flight.
/// Add it with `Router::layer(axum::middleware::from_fn_with_state(service, http_metrics))`, after
/// the routes (so the matched route is known).
pub async fn http_metrics(
    State(service): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let in_flight = metrics::gauge!(HTTP_REQUESTS_IN_FLIGHT, "service" => service);
    in_flight.increment(1.0);
    let started = Instant::now();
    let response = next.run(request).await;
    in_flight.decrement(1.0);
    metrics::histogram!(HTTP_REQUEST_DURATION, "service" => service, "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "service" => service, "method" => method, "route" => route, "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

/// The admin router: `/livez`, `/readyz` and `/metrics`.
pub fn router(readiness: Readiness, recorder: Recorder) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz).with_state(readiness))
        .route("/metrics", get(metrics).with_state(recorder))
}

/// Serves the admin router on `listen` until `shutdown`.
pub async fn serve(
    listen: SocketAddr,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let recorder = receipts_telemetry::metrics::install();
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Error::setup(format!("the admin listener on {listen}"), e))?;
    tracing::info!(%listen, "admin listener: /livez, /readyz, /metrics");
    axum::serve(listener, router(readiness, recorder))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}
