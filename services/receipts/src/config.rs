use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ingest_gateway::HttpConfig;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mock_registries::MocksConfig;
use receipts_avro::SchemaRegistryConfig;
use receipts_domain::StatusPolicy;
use receipts_kafka::{KafkaConfig, RetryPolicy};
use receipts_registries::RegistryConfig;
use receipts_runtime::{LogFormat, TelemetryConfig};
use receipts_store::StoreConfig;
use receipts_validation::types::ReceiptTypesConfig;
use receipts_webhooks::WebhookConfig;
use registrar::RegistrarConfig;
use serde::{Deserialize, Serialize};
use webhook_dispatcher::DispatcherConfig;

/// The types directory of a checkout, used when none is configured.
const DEFAULT_RECEIPT_TYPES: &str = "receipt-types";

/// What `receipts up` starts in-process besides the services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// Start a tansu broker listening at `kafka.bootstrap_servers` (a single loopback address).
    pub broker: bool,
    pub broker_storage: PathBuf,
    /// Serve the schema registry at `schema_registry.url`.
    pub schema_registry: bool,
    pub schema_registry_storage: PathBuf,
    /// Start the mock tax and logistics registries (`[mocks]`); the registries named `tax` and
    /// `logistics` are then served by them.
    pub mock_registries: bool,
    /// Where the development API key (tenant `dev`, read-write) is written on first start.
    pub dev_api_key_file: PathBuf,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            broker: true,
            broker_storage: PathBuf::from("data/broker.db"),
            schema_registry: true,
            schema_registry_storage: PathBuf::from("data/schema-registry.json"),
            mock_registries: true,
            dev_api_key_file: PathBuf::from("data/dev-api-key"),
        }
    }
}

/// Everything `receipts up` reads: the shared sections every service also reads, plus `embedded`
/// and `mocks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformConfig {
    pub embedded: EmbeddedConfig,
    /// The mock registries (with `embedded.mock_registries`).
    pub mocks: MocksConfig,
    /// The registries receipts are registered with; one registrar runs per entry.
    pub registries: Vec<RegistryConfig>,
    /// The registrars' retry tiers and horizon.
    pub retry: RetryPolicy,
    /// Which registries a receipt needs to be ACCEPTED.
    pub status: StatusPolicy,
    pub gateway: HttpConfig,
    /// Webhook delivery (dispatcher) and management (gateway).
    pub webhooks: WebhookConfig,
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    /// The receipt types (unset dir: `./receipt-types` when it exists, else the built-in ones).
    pub receipt_types: ReceiptTypesConfig,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        let mut mocks = MocksConfig::default();
        mocks.tax.state_file = Some(PathBuf::from("data/mock-tax.jsonl"));
        mocks.logistics.state_file = Some(PathBuf::from("data/mock-logistics.jsonl"));
        Self {
            embedded: EmbeddedConfig::default(),
            mocks,
            registries: vec![
                RegistryConfig::tax_default(),
                RegistryConfig::logistics_default(),
            ],
            retry: RetryPolicy::default(),
            status: StatusPolicy::default(),
            gateway: HttpConfig::default(),
            // A developer's receiver on this machine works; every other private address stays
            // refused, as in production.
            webhooks: WebhookConfig {
                allow_private: vec![
                    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
                    IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
                ],
                ..WebhookConfig::default()
            },
            // The embedded broker answers a waiting fetch as soon as data arrives (its long
            // poll), so librdkafka's 500 ms wait costs no latency and keeps idle CPU near 2 %.
            kafka: KafkaConfig::default(),
            schema_registry: SchemaRegistryConfig::default(),
            store: StoreConfig::default(),
            telemetry: TelemetryConfig {
                log_format: LogFormat::Pretty,
                ..TelemetryConfig::default()
            },
            receipt_types: ReceiptTypesConfig::default(),
        }
    }
}

impl PlatformConfig {
    /// Moves every file the platform keeps under `dir`.
    pub fn with_data_dir(mut self, dir: &Path) -> Self {
        self.embedded.broker_storage = dir.join("broker.db");
        self.embedded.schema_registry_storage = dir.join("schema-registry.json");
        self.embedded.dev_api_key_file = dir.join("dev-api-key");
        self.store.url = StoreConfig::sqlite(dir.join("receipts.db")).url;
        self.mocks.tax.state_file = Some(dir.join("mock-tax.jsonl"));
        self.mocks.logistics.state_file = Some(dir.join("mock-logistics.jsonl"));
        self
    }

    pub fn validator(&self) -> validator::ValidatorConfig {
        validator::ValidatorConfig {
            // In one process the gateway serves every service's metrics and health (so for
            // every service config built here, the admin listener is never started).
            admin: receipts_service::AdminConfig::default(),
            kafka: self.kafka.clone(),
            schema_registry: self.schema_registry.clone(),
            telemetry: self.telemetry.clone(),
            receipt_types: self.receipt_types(),
        }
    }

    /// The receipt types of every validating service: the configured directory, else the
    /// repository's `receipt-types/` when run from a checkout.
    pub fn receipt_types(&self) -> ReceiptTypesConfig {
        let mut config = self.receipt_types.clone();
        if config.dir.is_none() && Path::new(DEFAULT_RECEIPT_TYPES).is_dir() {
            config.dir = Some(PathBuf::from(DEFAULT_RECEIPT_TYPES));
        }
        config
    }

    pub fn projector(&self) -> status_projector::ProjectorConfig {
        status_projector::ProjectorConfig {
            admin: receipts_service::AdminConfig::default(),
            kafka: self.kafka.clone(),
            schema_registry: self.schema_registry.clone(),
            store: self.store.clone(),
            status: self.status.clone(),
            telemetry: self.telemetry.clone(),
        }
    }

    pub fn gateway(&self) -> ingest_gateway::GatewayConfig {
        ingest_gateway::GatewayConfig {
            gateway: self.gateway.clone(),
            webhooks: self.webhooks.clone(),
            registry_callbacks: self
                .registries
                .iter()
                .filter_map(|r| r.callbacks().map(|c| (r.name.clone(), c)))
                .collect(),
            kafka: self.kafka.clone(),
            schema_registry: self.schema_registry.clone(),
            store: self.store.clone(),
            telemetry: self.telemetry.clone(),
            receipt_types: self.receipt_types(),
        }
    }

    pub fn dispatcher(&self) -> DispatcherConfig {
        DispatcherConfig {
            admin: receipts_service::AdminConfig::default(),
            kafka: self.kafka.clone(),
            schema_registry: self.schema_registry.clone(),
            store: self.store.clone(),
            telemetry: self.telemetry.clone(),
            webhooks: self.webhooks.clone(),
        }
    }

    pub fn registrar(&self, registry: &RegistryConfig) -> RegistrarConfig {
        RegistrarConfig {
            registry: registry.clone(),
            admin: receipts_service::AdminConfig::default(),
            retry: self.retry.clone(),
            kafka: self.kafka.clone(),
            schema_registry: self.schema_registry.clone(),
            telemetry: self.telemetry.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The documented example configuration lists every default, so it cannot drift from the code.
    #[test]
    fn the_example_file_matches_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../receipts.example.toml");
        let loaded: PlatformConfig =
            receipts_runtime::load_config(Some(&example)).expect("example parses");
        assert_eq!(loaded, PlatformConfig::default());
    }

    /// ... and documents every setting: each key of the defaults appears in the file.
    #[test]
    fn the_example_file_lists_every_setting() {
        fn keys(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, value) in map {
                        keys(value, &format!("{prefix}.{key}"), out);
                    }
                }
                // Unset options are documented as comments.
                serde_json::Value::Null => {}
                _ => out.push(prefix.to_owned()),
            }
        }
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../receipts.example.toml");
        use figment::providers::Format as _;
        let file: serde_json::Value =
            figment::Figment::from(figment::providers::Toml::file(example))
                .extract()
                .expect("example parses");
        let defaults = serde_json::to_value(PlatformConfig::default()).expect("serializes");
        let (mut in_file, mut in_defaults) = (Vec::new(), Vec::new());
        keys(&file, "", &mut in_file);
        keys(&defaults, "", &mut in_defaults);
        in_file.sort();
        in_defaults.sort();
        // The logistics mock's faults are documented once, with the tax mock's; a mock's kind
        // is fixed by its section.
        let exempt = |k: &str| {
            k.starts_with(".mocks.logistics.faults.")
                || matches!(k, ".mocks.tax.kind" | ".mocks.logistics.kind")
        };
        let missing: Vec<_> = in_defaults
            .iter()
            .filter(|k| !in_file.contains(k) && !exempt(k))
            .collect();
        assert!(
            missing.is_empty(),
            "not in receipts.example.toml: {missing:?}"
        );
    }
}
