//! status-projector: folds every receipt event into the status store (the receipt state
//! machine of ARCHITECTURE.md section 4). Applying is idempotent and version-guarded in the
//! store, so redelivered, late and out-of-order events are harmless.
#![forbid(unsafe_code)]

use std::sync::Arc;

use receipts_avro::{EventCodec, SchemaRegistryConfig};
use receipts_domain::{EventKind, ReceiptEvent};
use receipts_kafka::{
    ConsumerSpec, EventHandler, EventProducer, HandlerError, KafkaConfig, MessageContext,
    TopicNames, TopicSpec, ensure_topics, run_consumer,
};
use receipts_runtime::TelemetryConfig;
use receipts_store::{Applied, SqliteConfig, StatusStore};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub const SERVICE: &str = "status-projector";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectorConfig {
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub store: SqliteConfig,
    pub telemetry: TelemetryConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kafka(#[from] receipts_kafka::Error),
    #[error(transparent)]
    Codec(#[from] receipts_avro::Error),
    #[error(transparent)]
    Store(#[from] receipts_store::Error),
}

/// Runs the projector until `shutdown` is cancelled.
pub async fn run(
    config: ProjectorConfig,
    store: Arc<dyn StatusStore>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let topics = TopicNames::new(&config.kafka);
    let consumed: Vec<String> = EventKind::ALL.iter().map(|&k| topics.event(k)).collect();
    let specs: Vec<TopicSpec> = consumed
        .iter()
        .map(|t| TopicSpec::new(&config.kafka, t.clone()))
        .collect();
    ensure_topics(&config.kafka, &specs).await?;
    let codec = Arc::new(EventCodec::new(&config.schema_registry)?);
    let producer = EventProducer::new(&config.kafka, SERVICE, codec)?;
    let spec = ConsumerSpec::new(SERVICE, consumed);
    run_consumer(
        config.kafka,
        spec,
        producer,
        Arc::new(Projector { store }),
        shutdown,
    )
    .await?;
    Ok(())
}

struct Projector {
    store: Arc<dyn StatusStore>,
}

impl EventHandler for Projector {
    async fn handle(
        &self,
        event: ReceiptEvent,
        _context: &MessageContext,
    ) -> Result<(), HandlerError> {
        let meta = event.meta();
        match self.store.apply(&event).await {
            Ok(Applied::Applied(transition)) => {
                tracing::info!(
                    receipt_id = %meta.receipt_id,
                    event = %event.kind(),
                    from = %transition.from,
                    to = %transition.to,
                    "event applied"
                );
                Ok(())
            }
            Ok(Applied::Duplicate) => {
                tracing::debug!(receipt_id = %meta.receipt_id, event_id = %meta.event_id, "duplicate event ignored");
                Ok(())
            }
            // An event naming another tenant than its receipt's can never be applied.
            Err(error @ receipts_store::Error::TenantMismatch { .. }) => {
                Err(HandlerError::Poison(error.to_string()))
            }
            Err(error) => Err(HandlerError::Transient(error.to_string())),
        }
    }
}
