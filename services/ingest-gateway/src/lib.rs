//! ingest-gateway: the partners' HTTP API. It stores nothing of its own beyond idempotency
//! records: a submission becomes a `submitted` event on Kafka (acks=all, idempotent producer), and
//! reads come from the status store the projector maintains.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
mod body;
pub mod callbacks;
pub mod config;
pub mod problem;
pub mod routes;
pub mod webhooks;

use std::sync::Arc;

use receipts_avro::EventCodec;
use receipts_domain::Topic;
use receipts_kafka::{EventProducer, TopicNames, TopicSpec, ensure_topics};
use receipts_store::Stores;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use app::{AppState, router};
pub use config::{GatewayConfig, HttpConfig};

pub const SERVICE: &str = "ingest-gateway";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kafka(#[from] receipts_kafka::Error),
    #[error(transparent)]
    Codec(#[from] receipts_avro::Error),
    #[error(transparent)]
    Service(#[from] receipts_service::Error),
    #[error(transparent)]
    Store(#[from] receipts_store::Error),
    #[error("serving HTTP: {0}")]
    Serve(#[from] std::io::Error),
}

/// Serves the API on `listener` until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn run(
    config: GatewayConfig,
    stores: Stores,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    // What the gateway produces: submissions, redeliveries, and registry outcomes reported by
    // callback.
    let mut produced = vec![Topic::Submitted, Topic::WebhookDeliveries];
    for registry in config.registry_callbacks.keys() {
        produced.push(Topic::Registered(registry.clone()));
        produced.push(Topic::RegistrationFailed(registry.clone()));
    }
    let names = TopicNames::new(&config.kafka);
    let specs: Vec<TopicSpec> = produced
        .iter()
        .map(|t| TopicSpec::new(&config.kafka, names.of(t)))
        .collect();
    ensure_topics(&config.kafka, &specs).await?;
    let codec = Arc::new(EventCodec::new(&config.schema_registry)?);
    let producer = EventProducer::new(&config.kafka, SERVICE, codec)?;
    producer.register_schemas(&produced).await?;
    let local_addr = listener.local_addr()?;
    let state = AppState::new(
        stores,
        producer.clone(),
        &config.gateway,
        &config.webhooks,
        local_addr,
    )
    .with_callbacks(config.registry_callbacks.clone());
    tracing::info!(%local_addr, public_url = %state.public_url, "ingest gateway listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    producer.flush(std::time::Duration::from_secs(5));
    Ok(())
}
