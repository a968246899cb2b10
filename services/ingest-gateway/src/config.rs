use receipts_validation::types::ReceiptTypesConfig;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use receipts_avro::SchemaRegistryConfig;
use receipts_domain::{RegistryName, Secret};
use receipts_kafka::KafkaConfig;
use receipts_registries::CallbackConfig;
use receipts_runtime::TelemetryConfig;
use receipts_service::{ServiceConfig, StoreService};
use receipts_store::StoreConfig;
use receipts_webhooks::WebhookConfig;
use serde::{Deserialize, Serialize};
use url::Url;

/// The gateway's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// The externally visible base URL, used in `status_url` and `Location`. Unset: the
    /// address the gateway actually listens on.
    pub public_url: Option<Url>,
    /// Largest accepted receipt document.
    pub max_body_bytes: usize,
    /// Longest a request may take end to end (a slow upload gets 408).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Submissions one gateway works on at once; beyond it a submission is refused at once with
    /// 503 `overloaded` and `Retry-After` instead of queueing (bounded memory and latency under
    /// overload; a healthy gateway at 1,000/s has a few dozen in flight, an overloaded one on
    /// one machine about a second of arrivals).
    pub max_in_flight_submissions: usize,
    /// Items of one `POST /v1/receipts/batch` (more: 413 `batch-too-large`, nothing recorded).
    pub max_batch_items: usize,
    /// Bytes of one batch body; each item's document is also held to `max_body_bytes`.
    pub max_batch_bytes: usize,
    /// The key list cursors are sealed with (HMAC-SHA256), shared by every gateway of a
    /// deployment. Unset: a random key per process (cursors then break on restart).
    pub cursor_key: Option<Secret>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            max_in_flight_submissions: 1024,
            max_batch_items: 1000,
            max_batch_bytes: 16 * 1024 * 1024,
            cursor_key: None,
        }
    }
}

/// Everything the ingest gateway binary reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    pub gateway: HttpConfig,
    /// Shared with the webhook-dispatcher: the gateway applies `allow_private` to endpoint URLs
    /// at registration and `secret_grace` to rotations.
    pub webhooks: WebhookConfig,
    /// Registries that may report outcomes to `POST /v1/registries/{name}/callbacks`, with how
    /// to verify them (section `[registry_callbacks.<name>]`).
    pub registry_callbacks: BTreeMap<RegistryName, CallbackConfig>,
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    /// The receipt types submissions may name.
    pub receipt_types: ReceiptTypesConfig,
}

impl ServiceConfig for GatewayConfig {
    fn service(&self) -> String {
        crate::SERVICE.into()
    }

    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

impl StoreService for GatewayConfig {
    fn store(&self) -> &StoreConfig {
        &self.store
    }
}
