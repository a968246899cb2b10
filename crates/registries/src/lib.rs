//! The external registries a receipt is registered with, one adapter per API shape. A registry
//! in a deployment is a name (`tax`, `logistics`, `tax-2`) plus an adapter kind plus its URL and
//! secrets: adding a registry with a known API is configuration, adding a new API is an adapter
//! here.
#![forbid(unsafe_code)]

mod classify;
mod logistics;
mod signature;
mod tax;

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use receipts_domain::Secret;
use receipts_domain::{NormalizedReceipt, ReceiptId, RegistryName};
use receipts_telemetry::metrics::{REGISTRY_CALL_DURATION, REGISTRY_CALLS};
use serde::{Deserialize, Serialize};
use url::Url;

pub use signature::{SignatureError, sign};

/// The API shapes the platform can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdapterKind {
    /// A tax authority's fiscal-receipt API (`POST /api/v1/fiscal-receipts`, `Idempotency-Key`).
    TaxAuthorityV1,
    /// A logistics provider's registration API (`PUT /v2/registrations/{request_id}`).
    LogisticsV2,
}

/// How to reach one registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub name: RegistryName,
    pub kind: AdapterKind,
    pub base_url: Url,
    /// Per request.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Sent as the registry's API credential, when set.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// How long to wait for an asynchronous registry's callback before asking again (with the
    /// same idempotency key).
    #[serde(with = "humantime_serde", default = "default_callback_timeout")]
    pub callback_timeout: Duration,
    /// Secrets the registry signs its callbacks with (several during a rotation). None: the
    /// gateway refuses this registry's callbacks.
    #[serde(default)]
    pub callback_secrets: Vec<Secret>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_callback_timeout() -> Duration {
    Duration::from_secs(120)
}

impl RegistryConfig {
    /// The tax authority as the embedded default runs it (mock on 127.0.0.1:8091).
    pub fn tax_default() -> Self {
        Self::new("tax", AdapterKind::TaxAuthorityV1, "http://127.0.0.1:8091")
    }

    /// The logistics provider as the embedded default runs it (mock on 127.0.0.1:8092).
    pub fn logistics_default() -> Self {
        Self::new(
            "logistics",
            AdapterKind::LogisticsV2,
            "http://127.0.0.1:8092",
        )
    }

    fn new(name: &str, kind: AdapterKind, url: &str) -> Self {
        Self {
            name: RegistryName::parse(name).expect("a literal registry name"),
            kind,
            base_url: Url::parse(url).expect("a literal URL"),
            timeout: default_timeout(),
            api_key: None,
            callback_timeout: default_callback_timeout(),
            callback_secrets: Vec::new(),
        }
    }

    /// How the gateway verifies this registry's callbacks, if it accepts them.
    pub fn callbacks(&self) -> Option<CallbackConfig> {
        (!self.callback_secrets.is_empty()).then(|| CallbackConfig {
            kind: self.kind,
            secrets: self.callback_secrets.clone(),
            tolerance: default_tolerance(),
        })
    }
}

/// The idempotency key of registering `receipt` with `registry`: the same for every attempt and
/// every process, so a retry or a replay after a crash can never register twice.
pub fn idempotency_key(receipt: ReceiptId, registry: &RegistryName) -> String {
    format!("{receipt}-{registry}")
}

/// What to register.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationRequest<'a> {
    pub receipt_id: ReceiptId,
    pub receipt: &'a NormalizedReceipt,
}

/// What the registry answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Registered {
        registration_id: String,
        registered_at: DateTime<Utc>,
    },
    /// Accepted for asynchronous processing: the result comes by callback.
    Pending,
    /// The registry refused the receipt for good.
    Rejected { code: String, reason: String },
}

/// Why a call did not produce an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Worth trying again later: connect errors, timeouts, 5xx, 429, a dropped connection.
    #[error("{kind}: {message}")]
    Retryable {
        kind: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Something only a person can fix (our request is malformed, an idempotency conflict, an
    /// answer we cannot read): dead-letter it.
    #[error("{0}")]
    Fatal(String),
}

/// A client for one registry.
#[derive(Debug, Clone)]
pub struct Registry {
    config: RegistryConfig,
    http: reqwest::Client,
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Result<Self, CallError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CallError::Fatal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { config, http })
    }

    pub fn name(&self) -> &RegistryName {
        &self.config.name
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Registers the receipt (idempotently: calling again with the same request answers the
    /// same registration).
    #[tracing::instrument(name = "register", skip_all, fields(registry = %self.config.name, receipt_id = %request.receipt_id))]
    pub async fn register(&self, request: RegistrationRequest<'_>) -> Result<Outcome, CallError> {
        let key = idempotency_key(request.receipt_id, &self.config.name);
        let started = std::time::Instant::now();
        let outcome = match self.config.kind {
            AdapterKind::TaxAuthorityV1 => {
                tax::register(&self.http, &self.config, &key, request).await
            }
            AdapterKind::LogisticsV2 => {
                logistics::register(&self.http, &self.config, &key, request).await
            }
        };
        match &outcome {
            Ok(o) => tracing::info!(outcome = ?o, "registry answered"),
            Err(e) => tracing::warn!(error = %e, "registry call failed"),
        }
        let label = match &outcome {
            Ok(Outcome::Registered { .. }) => "registered",
            Ok(Outcome::Pending) => "pending",
            Ok(Outcome::Rejected { .. }) => "rejected",
            Err(CallError::Retryable { .. }) => "retryable",
            Err(CallError::Fatal(_)) => "fatal",
        };
        let (service, registry) = (
            format!("{}-registrar", self.config.name),
            self.config.name.to_string(),
        );
        metrics::histogram!(REGISTRY_CALL_DURATION, "service" => service.clone(), "registry" => registry.clone(), "outcome" => label)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!(REGISTRY_CALLS, "service" => service, "registry" => registry, "outcome" => label)
            .increment(1);
        outcome
    }
}

/// How to read one registry's callbacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackConfig {
    pub kind: AdapterKind,
    /// The shared signing secret. Several may be listed during a rotation.
    pub secrets: Vec<Secret>,
    /// How old a callback's signed timestamp may be.
    #[serde(with = "humantime_serde", default = "default_tolerance")]
    pub tolerance: Duration,
}

fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}

/// A verified callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub receipt_id: ReceiptId,
    pub outcome: Outcome,
}

/// Why a callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("unreadable callback: {0}")]
    Body(String),
}

/// Verifies a callback's signature, then reads it.
pub fn read_callback(
    config: &CallbackConfig,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Callback, CallbackError> {
    match config.kind {
        AdapterKind::TaxAuthorityV1 => tax::read_callback(config, headers, body, now),
        AdapterKind::LogisticsV2 => logistics::read_callback(config, headers, body, now),
    }
}
