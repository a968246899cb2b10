//! status-projector: folds every receipt event into the status store (the receipt state
//! machine of ARCHITECTURE.md section 4) and announces every status change on
//! `receipts.status-changed`. Applying is idempotent and version-guarded in the store, so
//! redelivered, late and out-of-order events are harmless.
//!
//! A status change is published after the event is applied and before the event's offset is
//! stored. A crash in between means a redelivery, which the store reports as a duplicate carrying
//! the transition recorded the first time: the change is published then. Its id is derived from
//! the event that caused it, so a re-publication is the same event, deduplicated downstream.
#![forbid(unsafe_code)]

use std::sync::Arc;

use receipts_avro::{EventCodec, SchemaRegistryConfig};
use receipts_domain::{
    CallbackUrl, EventMeta, ReceiptEvent, StatusChanged, StatusPolicy, Topic, Transition,
};
use receipts_kafka::{
    ConsumerSpec, EventHandler, EventProducer, HandlerError, KafkaConfig, MessageContext,
    TopicNames, TopicSpec, ensure_topics, run_consumer,
};
use receipts_runtime::TelemetryConfig;
use receipts_store::{Applied, SqliteConfig, StatusStore};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub const SERVICE: &str = "status-projector";

/// The step name status-change event ids are derived with.
const STATUS_CHANGED_STEP: &str = "status-changed";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectorConfig {
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub store: SqliteConfig,
    pub telemetry: TelemetryConfig,
    /// Which registries ACCEPTED needs; also which registries' topics are consumed. The store
    /// handed to [`run`] must have been opened with the same policy.
    pub status: StatusPolicy,
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
    let names = TopicNames::new(&config.kafka);
    let consumed: Vec<String> = Topic::receipt_topics(&config.status.registries())
        .iter()
        .map(|t| names.of(t))
        .collect();
    let specs: Vec<TopicSpec> = consumed
        .iter()
        .cloned()
        .chain([names.of(&Topic::StatusChanged)])
        .map(|t| TopicSpec::new(&config.kafka, t))
        .collect();
    ensure_topics(&config.kafka, &specs).await?;
    let codec = Arc::new(EventCodec::new(&config.schema_registry)?);
    let producer = EventProducer::new(&config.kafka, SERVICE, codec)?;
    producer.register_schemas(&[Topic::StatusChanged]).await?;
    tracing::info!(
        required_registries = ?config.status.required_registries,
        topics = ?consumed,
        "projecting receipt events"
    );
    let spec = ConsumerSpec::new(SERVICE, consumed);
    let projector = Projector {
        store,
        producer: producer.clone(),
    };
    run_consumer(config.kafka, spec, producer, Arc::new(projector), shutdown).await?;
    Ok(())
}

struct Projector {
    store: Arc<dyn StatusStore>,
    producer: EventProducer,
}

impl EventHandler for Projector {
    async fn handle(
        &self,
        event: ReceiptEvent,
        _context: &MessageContext,
    ) -> Result<(), HandlerError> {
        let meta = event.meta();
        let transition = match self.store.apply(&event).await {
            Ok(Applied::Applied(transition)) => {
                tracing::info!(
                    receipt_id = %meta.receipt_id,
                    event_id = %meta.event_id,
                    event = %event.kind(),
                    from = %transition.from,
                    to = %transition.to,
                    "event applied"
                );
                transition
            }
            Ok(Applied::Duplicate(transition)) => {
                tracing::debug!(
                    receipt_id = %meta.receipt_id,
                    event_id = %meta.event_id,
                    event = %event.kind(),
                    from = %transition.from,
                    to = %transition.to,
                    "duplicate event"
                );
                transition
            }
            Ok(Applied::Ignored) => {
                tracing::debug!(
                    receipt_id = %meta.receipt_id,
                    event_id = %meta.event_id,
                    event = %event.kind(),
                    "event states no fact, ignored"
                );
                return Ok(());
            }
            // An event naming another tenant than its receipt's can never be applied.
            Err(error @ receipts_store::Error::TenantMismatch { .. }) => {
                return Err(HandlerError::Poison(error.to_string()));
            }
            Err(error) => return Err(HandlerError::Transient(error.to_string())),
        };
        if transition.changed() {
            self.publish_status_change(&event, transition).await?;
        }
        Ok(())
    }
}

impl Projector {
    /// Publishes the change `event` caused, with what the receipt looks like now, and waits for
    /// the broker's acknowledgement.
    async fn publish_status_change(
        &self,
        event: &ReceiptEvent,
        transition: Transition,
    ) -> Result<(), HandlerError> {
        let meta = event.meta();
        let record = self
            .store
            .receipt(&meta.tenant_id, meta.receipt_id)
            .await
            .map_err(|error| HandlerError::Transient(error.to_string()))?
            .ok_or_else(|| {
                HandlerError::Transient(format!(
                    "receipt {} not found right after applying its event",
                    meta.receipt_id
                ))
            })?;
        let callback_url = match record.callback_url.as_deref().map(CallbackUrl::parse) {
            None => None,
            Some(Ok(url)) => Some(url),
            // Stored from a parsed URL, so this cannot happen short of corruption; the change is
            // still worth announcing.
            Some(Err(error)) => {
                tracing::warn!(receipt_id = %meta.receipt_id, %error, "stored callback URL does not parse; announced without it");
                None
            }
        };
        let changed = StatusChanged {
            meta: EventMeta::derived(meta, STATUS_CHANGED_STEP),
            from: transition.from,
            to: transition.to,
            receipt_type: record.receipt_type.unwrap_or_default(),
            callback_url,
            reasons: record.reasons,
            registrations: record.registrations,
            failures: record.failures,
        };
        let status_event_id = changed.meta.event_id;
        self.producer
            .publish(&changed.into())
            .await
            .map_err(|error| HandlerError::Transient(error.to_string()))?;
        tracing::info!(
            receipt_id = %meta.receipt_id,
            tenant_id = %meta.tenant_id,
            cause_event_id = %meta.event_id,
            event = %event.kind(),
            status_event_id = %status_event_id,
            from = %transition.from,
            to = %transition.to,
            "status changed"
        );
        Ok(())
    }
}
