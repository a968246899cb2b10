//! webhook-dispatcher: tells partners about status changes (ARCHITECTURE.md section 7).
//!
//! Two consumers run side by side. The fan-out (`webhook-dispatcher-fanout`) turns each change
//! on `receipts.status-changed` into one message per destination on
//! `receipts.webhook-deliveries`, logged as a pending delivery. The delivery consumer
//! (`webhook-dispatcher`) sends each message, signed per Standard Webhooks, within its
//! destination's rate limit and concurrency cap, retrying failures on its own retry tiers
//! (5 s ... 10 h), and gives up with an event on `receipts.webhook-failed`.
#![forbid(unsafe_code)]

mod delivery;
mod fanout;
pub mod limits;
pub mod payload;

use receipts_avro::SchemaRegistryConfig;
use receipts_core::Webhooks;
use receipts_domain::Topic;
use receipts_kafka::KafkaConfig;
use receipts_runtime::TelemetryConfig;
use receipts_service::{Admin, AdminConfig, Consumer, Service, ServiceConfig, StoreService};
use receipts_store::{StoreConfig, Stores};
use receipts_webhooks::{AddressPolicy, Sender, WebhookConfig};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::delivery::Deliverer;
use crate::fanout::Fanout;
use crate::limits::Limiter;

/// The delivery consumer's name (consumer group, retry and dead-letter topics).
pub const SERVICE: &str = "webhook-dispatcher";
/// The fan-out consumer's name.
pub const FANOUT: &str = "webhook-dispatcher-fanout";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatcherConfig {
    pub admin: AdminConfig,
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    pub webhooks: WebhookConfig,
}

impl ServiceConfig for DispatcherConfig {
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

impl StoreService for DispatcherConfig {
    fn store(&self) -> &StoreConfig {
        &self.store
    }
}

/// Runs both consumers until `shutdown` is cancelled.
pub async fn run(
    config: DispatcherConfig,
    stores: Stores,
    shutdown: CancellationToken,
) -> Result<(), receipts_service::Error> {
    let service = Service::new(SERVICE, &config.kafka, &config.schema_registry)
        .consumes([Topic::StatusChanged, Topic::WebhookDeliveries])
        .produces([Topic::WebhookDeliveries, Topic::WebhookFailed])
        .connect()
        .await?;
    let webhooks = &config.webhooks;
    let sender = Sender::new(
        AddressPolicy::new(webhooks.allow_private.clone()),
        webhooks.request_timeout,
        &webhooks.user_agent,
    )
    .map_err(|e| receipts_service::Error::setup("the webhook HTTP client", e))?;
    tracing::info!(
        request_timeout = ?webhooks.request_timeout,
        allow_private = ?webhooks.allow_private,
        concurrency = webhooks.per_destination.concurrency,
        rate_per_second = webhooks.per_destination.rate_per_second,
        "dispatching webhooks"
    );
    let core = Webhooks::new(stores.endpoints, stores.deliveries);
    let fanout = Fanout {
        webhooks: core.clone(),
        producer: service.producer().clone(),
        public_url: webhooks.public_url.clone(),
    };
    let deliverer = Deliverer {
        webhooks: core,
        producer: service.producer().clone(),
        sender,
        limiter: Limiter::new(webhooks.per_destination.clone()),
        disable_after: webhooks.disable_after,
    };
    tokio::try_join!(
        service.run(
            Consumer::new(FANOUT, [Topic::StatusChanged]),
            fanout,
            shutdown.clone(),
        ),
        service.run(
            Consumer::new(SERVICE, [Topic::WebhookDeliveries]).with_retry(webhooks.retry.clone()),
            deliverer,
            shutdown,
        ),
    )?;
    Ok(())
}
