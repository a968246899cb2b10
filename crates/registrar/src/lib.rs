//! The generic registrar: consumes `receipts.validated`, registers each receipt with one
//! registry through its adapter, and reports `receipts.<registry>-registered` or
//! `receipts.<registry>-failed`. A registry outage never blocks: failed calls go to retry tiers
//! (10 s, 1 min, 10 min, 1 h, then hourly by default) until a horizon (36 h), then the receipt
//! FAILS with `horizon-exceeded`. Every call carries the same idempotency key, so neither a retry
//! nor a crash can register twice.
#![forbid(unsafe_code)]

use std::sync::Arc;

use receipts_avro::{EventCodec, SchemaRegistryConfig};
use receipts_domain::event::now_millis;
use receipts_domain::registry::failure_code;
use receipts_domain::{
    ReceiptEvent, Registered, Registration, RegistrationFailed, RegistrationFailure, RegistryName,
    Topic, Validated,
};
use receipts_kafka::{
    ConsumerSpec, EventHandler, EventProducer, HandlerError, KafkaConfig, MessageContext,
    RetryPolicy, RetryableFailure, TopicNames, TopicSpec, ensure_topics, run_consumer,
};
use receipts_registries::{CallError, Outcome, RegistrationRequest, Registry, RegistryConfig};
use receipts_runtime::TelemetryConfig;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Everything a registrar reads. The tax and logistics registrars differ only in `registry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarConfig {
    pub registry: RegistryConfig,
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
            retry: RetryPolicy::default(),
            kafka: KafkaConfig::default(),
            schema_registry: SchemaRegistryConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }

    /// The service's name: `<registry>-registrar` (consumer group, retry and dead-letter topics).
    pub fn service(&self) -> String {
        service_name(&self.registry.name)
    }
}

pub fn service_name(registry: &RegistryName) -> String {
    format!("{registry}-registrar")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kafka(#[from] receipts_kafka::Error),
    #[error(transparent)]
    Codec(#[from] receipts_avro::Error),
    #[error("registry client: {0}")]
    Registry(#[from] CallError),
}

/// Runs the registrar until `shutdown` is cancelled.
pub async fn run(config: RegistrarConfig, shutdown: CancellationToken) -> Result<(), Error> {
    let registry = Registry::new(config.registry.clone())?;
    let name = registry.name().clone();
    let topics = TopicNames::new(&config.kafka);
    let produced = [
        Topic::Registered(name.clone()),
        Topic::RegistrationFailed(name.clone()),
    ];
    let specs: Vec<TopicSpec> = produced
        .iter()
        .chain(std::iter::once(&Topic::Validated))
        .map(|t| TopicSpec::new(&config.kafka, topics.of(t)))
        .collect();
    ensure_topics(&config.kafka, &specs).await?;
    let codec = Arc::new(EventCodec::new(&config.schema_registry)?);
    let service = config.service();
    let producer = EventProducer::new(&config.kafka, &service, codec)?;
    producer.register_schemas(&produced).await?;
    tracing::info!(registry = %name, url = %config.registry.base_url, "registrar starting");
    let spec = ConsumerSpec::new(service, vec![topics.of(&Topic::Validated)])
        .with_retry(config.retry.clone());
    let handler = Arc::new(Registrar {
        registry,
        producer: producer.clone(),
        horizon: config.retry.horizon,
    });
    run_consumer(config.kafka, spec, producer, handler, shutdown).await?;
    Ok(())
}

struct Registrar {
    registry: Registry,
    producer: EventProducer,
    horizon: std::time::Duration,
}

impl Registrar {
    async fn publish(&self, event: ReceiptEvent) -> Result<(), HandlerError> {
        self.producer
            .publish(&event)
            .await
            .map(drop)
            .map_err(|e| HandlerError::Transient(e.to_string()))
    }

    fn failed(
        &self,
        validated: &Validated,
        attempt: u32,
        code: &str,
        reason: String,
    ) -> ReceiptEvent {
        let failure = RegistrationFailure {
            registry: self.registry.name().clone(),
            code: code.into(),
            reason,
            failed_at: now_millis(),
            attempts: attempt,
        };
        RegistrationFailed::new(
            validated.meta.receipt_id,
            validated.meta.tenant_id.clone(),
            failure,
        )
        .into()
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
        match self.registry.register(request).await {
            Ok(Outcome::Registered {
                registration_id,
                registered_at,
            }) => {
                let registration = Registration {
                    registry: name.clone(),
                    registration_id,
                    registered_at,
                    attempts: context.attempt,
                };
                let (receipt, tenant) =
                    (validated.meta.receipt_id, validated.meta.tenant_id.clone());
                self.publish(Registered::new(receipt, tenant, registration).into())
                    .await
            }
            Ok(Outcome::Rejected { code, reason }) => {
                let reason = format!("{code}: {reason}");
                self.publish(self.failed(
                    &validated,
                    context.attempt,
                    failure_code::REJECTED_BY_REGISTRY,
                    reason,
                ))
                .await
            }
            // The result comes by callback; if it does not, ask again (same key) after a while.
            Ok(Outcome::Pending) => Err(HandlerError::Retry(RetryableFailure {
                kind: "awaiting-callback".into(),
                message: "the registry accepted the request for asynchronous processing".into(),
                retry_after: Some(self.registry.config().callback_timeout),
            })),
            Err(CallError::Retryable {
                kind,
                message,
                retry_after,
            }) => Err(HandlerError::Retry(RetryableFailure {
                kind,
                message,
                retry_after,
            })),
            Err(CallError::Fatal(message)) => Err(HandlerError::Poison(message)),
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
        self.publish(self.failed(
            &validated,
            context.attempt,
            failure_code::HORIZON_EXCEEDED,
            reason,
        ))
        .await
    }
}
