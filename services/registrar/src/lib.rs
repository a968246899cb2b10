//! The registrar: consumes `receipts.validated`, registers each receipt with one registry
//! through its adapter, and reports `receipts.<registry>-registered` or
//! `receipts.<registry>-failed`. Deployed as `tax-registrar` and `logistics-registrar`: the same
//! code with another default `[registry]`. A registry outage never blocks: failed calls go to retry tiers
//! (10 s, 1 min, 10 min, 1 h, then hourly by default) until a horizon (36 h), then the receipt
//! FAILS with `horizon-exceeded`. Every call carries the same idempotency key, so neither a retry
//! nor a crash can register twice.
#![forbid(unsafe_code)]

mod outcome;

use receipts_avro::SchemaRegistryConfig;
use receipts_domain::registry::failure_code;
use receipts_domain::{ReceiptEvent, RegistryName, Topic};
use receipts_kafka::{
    EventHandler, EventProducer, HandlerError, KafkaConfig, MessageContext, RetryPolicy,
    RetryableFailure,
};
use receipts_registries::{CallError, RegistrationRequest, Registry, RegistryConfig};
use receipts_runtime::TelemetryConfig;
use receipts_service::{Admin, AdminConfig, Consumer, Service, ServiceConfig};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use outcome::{failed_event, outcome_event};

/// Everything a registrar reads. The tax and logistics registrars differ only in `registry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarConfig {
    pub registry: RegistryConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub retry: RetryPolicy,
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub schema_registry: SchemaRegistryConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

impl RegistrarConfig {
    pub fn new(registry: RegistryConfig) -> Self {
        Self {
            registry,
            admin: AdminConfig::default(),
            retry: RetryPolicy::default(),
            kafka: KafkaConfig::default(),
            schema_registry: SchemaRegistryConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl Default for RegistrarConfig {
    /// The tax registrar's.
    fn default() -> Self {
        Self::new(RegistryConfig::tax_default())
    }
}

impl ServiceConfig for RegistrarConfig {
    /// `<registry>-registrar` (consumer group, retry and dead-letter topics).
    fn service(&self) -> String {
        service_name(&self.registry.name)
    }

    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }

    /// Ready when the broker, the schema registry and the registry answer.
    fn admin(&self) -> Result<Option<Admin>, receipts_service::Error> {
        Admin::consumer(
            &self.service(),
            &self.admin,
            &self.kafka,
            &self.schema_registry,
        )?
        .with_registry(&self.registry.base_url)
        .map(Some)
    }
}

pub fn service_name(registry: &RegistryName) -> String {
    format!("{registry}-registrar")
}

/// A registrar binary's `main`, with `registry` as its default `[registry]`.
pub fn main(registry: RegistryConfig) -> std::process::ExitCode {
    receipts_service::main_with(RegistrarConfig::new(registry), run)
}

/// Runs the registrar until `shutdown` is cancelled.
pub async fn run(
    config: RegistrarConfig,
    shutdown: CancellationToken,
) -> Result<(), receipts_service::Error> {
    let registry = Registry::new(config.registry.clone()).map_err(|e| {
        receipts_service::Error::setup(
            format!("the client of registry {}", config.registry.name),
            e,
        )
    })?;
    let name = registry.name().clone();
    let service = config.service();
    let connected = Service::new(&service, &config.kafka, &config.schema_registry)
        .consumes([Topic::Validated])
        .produces([
            Topic::Registered(name.clone()),
            Topic::RegistrationFailed(name.clone()),
        ])
        .connect()
        .await?;
    tracing::info!(registry = %name, url = %config.registry.base_url, "registrar starting");
    let handler = Registrar {
        registry,
        producer: connected.producer().clone(),
        horizon: config.retry.horizon,
    };
    let consumer = Consumer::new(service, [Topic::Validated]).with_retry(config.retry);
    connected.run(consumer, handler, shutdown).await
}

/// The registry answered in a way that says our request itself is wrong (a malformed request,
/// a conflict, an answer we cannot read): no retry can help; a person must look.
#[derive(Debug, thiserror::Error)]
#[error("the registry refused the request: {0}")]
struct RegistryRefusedRequest(String);

impl receipts_domain::Failure for RegistryRefusedRequest {
    fn is_transient(&self) -> bool {
        false
    }
}

struct Registrar {
    registry: Registry,
    producer: EventProducer,
    horizon: std::time::Duration,
}

impl Registrar {
    async fn publish(&self, event: ReceiptEvent) -> Result<(), HandlerError> {
        self.producer.publish(&event).await?;
        Ok(())
    }
}

impl EventHandler for Registrar {
    async fn handle(
        &self,
        event: ReceiptEvent,
        context: &MessageContext,
    ) -> Result<(), HandlerError> {
        let ReceiptEvent::Validated(validated) = event else {
            return Ok(());
        };
        let request = RegistrationRequest {
            receipt_id: validated.meta.receipt_id,
            receipt: &validated.receipt,
        };
        let name = self.registry.name();
        let (receipt, tenant) = (validated.meta.receipt_id, validated.meta.tenant_id.clone());
        match self.registry.register(request).await {
            Ok(answer) => match outcome_event(name, receipt, tenant, answer, context.attempt) {
                Some(event) => self.publish(event).await,
                // The result comes by callback; if it does not, ask again (same key) after a while.
                None => Err(HandlerError::Retry(RetryableFailure {
                    kind: "awaiting-callback".into(),
                    message: "the registry accepted the request for asynchronous processing".into(),
                    retry_after: Some(self.registry.config().callback_timeout),
                })),
            },
            Err(CallError::Retryable {
                kind,
                message,
                retry_after,
            }) => Err(HandlerError::Retry(RetryableFailure {
                kind,
                message,
                retry_after,
            })),
            Err(CallError::Fatal(message)) => Err(RegistryRefusedRequest(message).into()),
        }
    }

    async fn exhausted(
        &self,
        event: ReceiptEvent,
        context: &MessageContext,
        last: &RetryableFailure,
    ) -> Result<(), HandlerError> {
        let ReceiptEvent::Validated(validated) = event else {
            return Ok(());
        };
        let horizon = humantime::format_duration(self.horizon);
        let reason = format!(
            "not registered within {horizon}; last failure {}: {}",
            last.kind, last.message
        );
        self.publish(failed_event(
            self.registry.name(),
            validated.meta.receipt_id,
            validated.meta.tenant_id.clone(),
            failure_code::HORIZON_EXCEEDED,
            reason,
            context.attempt,
        ))
        .await
    }
}
