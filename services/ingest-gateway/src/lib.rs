//! ingest-gateway: the partners' HTTP API. It writes only idempotency reservations and
//! documents: a submission becomes a `submitted` event on Kafka (acks=all, idempotent producer),
//! and reads come from the records the status projector maintains.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod batch;
mod body;
pub mod callbacks;
pub mod config;
pub mod list;
pub mod openapi;
pub mod problem;
pub mod receipt_types;
pub mod routes;
pub mod webhooks;

use axum::serve::ListenerExt;
use receipts_domain::Topic;
use receipts_service::Service;
use receipts_store::Stores;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use app::{AppState, router};
pub use config::{GatewayConfig, HttpConfig};

pub const SERVICE: &str = "ingest-gateway";

/// Serves the API on `listener` until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn run(
    config: GatewayConfig,
    stores: Stores,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), receipts_service::Error> {
    // What the gateway produces: submissions, redeliveries, and registry outcomes reported by
    // callback.
    let mut produced = vec![Topic::Submitted, Topic::WebhookDeliveries];
    for registry in config.registry_callbacks.keys() {
        produced.push(Topic::Registered(registry.clone()));
        produced.push(Topic::RegistrationFailed(registry.clone()));
    }
    let service = Service::new(SERVICE, &config.kafka, &config.schema_registry)
        .produces(produced)
        .connect()
        .await?;
    let producer = service.producer().clone();
    let local_addr = listener.local_addr()?;
    let mut state = AppState::new(
        stores,
        producer.clone(),
        &config.gateway,
        &config.webhooks,
        local_addr,
    )
    .with_callbacks(config.registry_callbacks.clone())
    .with_receipt_types(receipts_service::receipt_types::open(
        &config.receipt_types,
        &shutdown,
    )?);
    state.readiness = state.readiness.schema_registry(&config.schema_registry)?;
    tracing::info!(%local_addr, public_url = %state.public_url, "ingest gateway listening");
    // Responses are streamed in several writes (lists); with Nagle's algorithm on, each small
    // write waits for the client's delayed acknowledgement (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    producer.flush(std::time::Duration::from_secs(5));
    Ok(())
}
