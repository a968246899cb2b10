//! status-projector: applies every receipt event to its receipt record (the receipt state
//! machine of ARCHITECTURE.md section 4, a domain rule) and announces every status change on
//! `receipts.status-changed`. It is the only writer of receipt records.
//!
//! Every status the receipt's timeline shows is announced once it first shows it (one event can
//! reveal several when events arrive out of order). Announcements are published after the
//! record is stored and before the event's offset is stored. A crash in between means a
//! redelivery, which finds the event applied: if the receipt's status rests on that event, every
//! status of its timeline is announced again. Announcements of one status of one receipt share
//! one event id, so a repeated announcement is the same event downstream.
#![forbid(unsafe_code)]

use receipts_avro::SchemaRegistryConfig;
use receipts_core::{Projected, Projector};
use receipts_domain::event::now_millis;
use receipts_domain::{ReceiptEvent, StatusChanged, StatusPolicy, Topic};
use receipts_kafka::{EventHandler, EventProducer, HandlerError, KafkaConfig, MessageContext};
use receipts_runtime::TelemetryConfig;
use receipts_service::{Admin, AdminConfig, Consumer, Service, ServiceConfig, StoreService};
use receipts_store::{StoreConfig, Stores};
use receipts_telemetry::metrics::{
    PROJECTOR_APPLY_DURATION, PROJECTOR_EVENTS, STATUS_CHANGES, TERMINAL_RECEIPTS,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub const SERVICE: &str = "status-projector";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectorConfig {
    pub admin: AdminConfig,
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    /// Which registries ACCEPTED needs; also which registries' topics are consumed.
    pub status: StatusPolicy,
}

impl ServiceConfig for ProjectorConfig {
    fn service(&self) -> String {
        SERVICE.into()
    }

    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }

    fn admin(&self) -> Result<Option<Admin>, receipts_service::Error> {
        Admin::consumer(SERVICE, &self.admin, &self.kafka, &self.schema_registry).map(Some)
    }
}

impl StoreService for ProjectorConfig {
    fn store(&self) -> &StoreConfig {
        &self.store
    }
}

/// Runs the projector until `shutdown` is cancelled.
pub async fn run(
    config: ProjectorConfig,
    stores: Stores,
    shutdown: CancellationToken,
) -> Result<(), receipts_service::Error> {
    let topics = Topic::receipt_topics(&config.status.registries());
    let service = Service::new(SERVICE, &config.kafka, &config.schema_registry)
        .consumes(topics.clone())
        .produces([Topic::StatusChanged])
        .connect()
        .await?;
    tracing::info!(required_registries = ?config.status.required_registries, "projecting receipt events");
    let handler = Handler {
        projector: Projector::new(stores.receipts, config.status),
        producer: service.producer().clone(),
    };
    service
        .run(Consumer::new(SERVICE, topics), handler, shutdown)
        .await
}

struct Handler {
    projector: Projector,
    producer: EventProducer,
}

impl EventHandler for Handler {
    async fn handle(
        &self,
        event: ReceiptEvent,
        _context: &MessageContext,
    ) -> Result<(), HandlerError> {
        let meta = event.meta();
        let started = std::time::Instant::now();
        let projected = self.projector.apply(&event, now_millis()).await?;
        metrics::histogram!(PROJECTOR_APPLY_DURATION, "service" => SERVICE)
            .record(started.elapsed().as_secs_f64());
        let announcements = match projected {
            Projected::Applied {
                record,
                transition,
                changes,
            } => {
                events_counted("applied");
                // Only the one write that moves a receipt into a terminal status counts it.
                if transition.to.is_terminal() && !transition.from.is_terminal() {
                    metrics::counter!(TERMINAL_RECEIPTS, "service" => SERVICE, "status" => transition.to.to_string())
                        .increment(1);
                }
                tracing::info!(
                    receipt_id = %meta.receipt_id,
                    event_id = %meta.event_id,
                    event = %event.kind(),
                    from = %transition.from,
                    to = %transition.to,
                    "event applied"
                );
                changes
                    .into_iter()
                    .map(|change| record.announcement(change))
                    .collect()
            }
            Projected::AlreadyApplied { record } => {
                events_counted("duplicate");
                tracing::debug!(receipt_id = %meta.receipt_id, event_id = %meta.event_id, "event applied before");
                // The first time round may have crashed before announcing: if the receipt's
                // status rests on this event, announce every status its timeline shows again
                // (the same events, by id).
                match event.fact() {
                    Some(fact) if record.status_rests_on(&fact) => record
                        .changes_since(None)
                        .into_iter()
                        .map(|change| record.announcement(change))
                        .collect(),
                    _ => Vec::new(),
                }
            }
            Projected::Ignored => Vec::new(),
        };
        for change in announcements {
            self.announce(change).await?;
        }
        Ok(())
    }
}

impl Handler {
    /// Publishes a status change and waits for the broker's acknowledgement.
    async fn announce(&self, change: StatusChanged) -> Result<(), HandlerError> {
        let (receipt_id, from, to) = (change.meta.receipt_id, change.from, change.to);
        let event_id = change.meta.event_id;
        self.producer.publish(&change.into()).await?;
        tracing::info!(%receipt_id, %event_id, %from, %to, "status changed");
        metrics::counter!(STATUS_CHANGES, "service" => SERVICE, "status" => to.to_string())
            .increment(1);
        Ok(())
    }
}

fn events_counted(outcome: &'static str) {
    metrics::counter!(PROJECTOR_EVENTS, "service" => SERVICE, "outcome" => outcome).increment(1);
}
