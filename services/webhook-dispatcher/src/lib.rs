//! webhook-dispatcher: tells partners about status changes (ARCHITECTURE.md section 7).
//!
//! Two consumers run side by side. The fan-out (`webhook-dispatcher-fanout`) turns each change
//! on `receipts.status-changed` into one message per destination on
//! `receipts.webhook-deliveries`, logged as a pending delivery. The delivery consumer
//! (`webhook-dispatcher`) sends each message, signed per Standard Webhooks, within its
//! destination's rate limit and concurrency cap, retrying failures on its own retry tiers
//! (5 s ... 10 h), and gives up with an event on `receipts.webhook-failed`.
#![forbid(unsafe_code)]

pub mod config;
mod delivery;
mod fanout;
pub mod guard;
pub mod limits;
pub mod payload;
pub mod sender;

use std::sync::Arc;

use receipts_avro::EventCodec;
use receipts_domain::Topic;
use receipts_kafka::{
    ConsumerSpec, EventProducer, TopicNames, TopicSpec, ensure_topics, run_consumer,
};
use receipts_store::WebhookStore;
use tokio_util::sync::CancellationToken;

pub use config::{DispatcherConfig, WebhookConfig};

use crate::delivery::Deliverer;
use crate::fanout::Fanout;
use crate::guard::AddressPolicy;
use crate::limits::Limiter;
use crate::sender::{Sender, SenderError};

/// The delivery consumer's name (consumer group, retry and dead-letter topics).
pub const SERVICE: &str = "webhook-dispatcher";
/// The fan-out consumer's name.
pub const FANOUT: &str = "webhook-dispatcher-fanout";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kafka(#[from] receipts_kafka::Error),
    #[error(transparent)]
    Codec(#[from] receipts_avro::Error),
    #[error(transparent)]
    Store(#[from] receipts_store::Error),
    #[error(transparent)]
    Sender(#[from] SenderError),
}

/// Runs both consumers until `shutdown` is cancelled.
pub async fn run(
    config: DispatcherConfig,
    store: Arc<dyn WebhookStore>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let names = TopicNames::new(&config.kafka);
    let status_changed = names.of(&Topic::StatusChanged);
    let deliveries = names.of(&Topic::WebhookDeliveries);
    let specs: Vec<TopicSpec> = [
        status_changed.clone(),
        deliveries.clone(),
        names.of(&Topic::WebhookFailed),
    ]
    .into_iter()
    .map(|t| TopicSpec::new(&config.kafka, t))
    .collect();
    ensure_topics(&config.kafka, &specs).await?;
    let codec = Arc::new(EventCodec::new(&config.schema_registry)?);
    let producer = EventProducer::new(&config.kafka, SERVICE, codec)?;
    producer
        .register_schemas(&[Topic::WebhookDeliveries, Topic::WebhookFailed])
        .await?;
    let webhooks = &config.webhooks;
    let sender = Sender::new(
        AddressPolicy::new(webhooks.allow_private.clone()),
        webhooks.request_timeout,
        &webhooks.user_agent,
    )?;
    tracing::info!(
        request_timeout = ?webhooks.request_timeout,
        allow_private = ?webhooks.allow_private,
        concurrency = webhooks.per_destination.concurrency,
        rate_per_second = webhooks.per_destination.rate_per_second,
        "dispatching webhooks"
    );

    let fanout = Fanout {
        store: Arc::clone(&store),
        producer: producer.clone(),
        public_url: webhooks.public_url.clone(),
    };
    let deliverer = Deliverer {
        store,
        producer: producer.clone(),
        sender,
        limiter: Limiter::new(webhooks.per_destination.clone()),
        disable_after: webhooks.disable_after,
    };
    let fanout_spec = ConsumerSpec::new(FANOUT, vec![status_changed]);
    let delivery_spec =
        ConsumerSpec::new(SERVICE, vec![deliveries]).with_retry(webhooks.retry.clone());
    tokio::try_join!(
        run_consumer(
            config.kafka.clone(),
            fanout_spec,
            producer.clone(),
            Arc::new(fanout),
            shutdown.clone(),
        ),
        run_consumer(
            config.kafka.clone(),
            delivery_spec,
            producer,
            Arc::new(deliverer),
            shutdown,
        ),
    )?;
    Ok(())
}
