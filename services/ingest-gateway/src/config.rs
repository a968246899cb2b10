use std::net::SocketAddr;

use receipts_avro::SchemaRegistryConfig;
use receipts_kafka::KafkaConfig;
use receipts_runtime::TelemetryConfig;
use receipts_store::SqliteConfig;
use serde::{Deserialize, Serialize};
use url::Url;

/// The gateway's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// The externally visible base URL, used in `status_url` and `Location`.
    pub public_url: Url,
    /// Largest accepted receipt document.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: Url::parse("http://127.0.0.1:8080")
                .unwrap_or_else(|_| unreachable!("literal URL parses")),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Everything the ingest gateway binary reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    pub gateway: HttpConfig,
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub store: SqliteConfig,
    pub telemetry: TelemetryConfig,
}
