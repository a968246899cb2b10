//! The naive baseline of the `ingest` scenario: an axum handler that produces each body to the
//! same broker with the same durability as the gateway (idempotent producer, `acks=all`) and
//! answers 202. No authentication, parsing, idempotency or validation: the gap between it and
//! the gateway is what those cost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::task::JoinHandle;

/// The running baseline; dropping it stops it.
pub struct Baseline {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Baseline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the baseline on a free loopback port, producing to `topic` (created with `partitions`
/// if missing) on `bootstrap`.
pub async fn start(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<Baseline> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    let admin: AdminClient<_> = config.create()?;
    // An existing topic is fine: only the produce rate is measured.
    admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    let producer: FutureProducer = config
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()?;
    let state = Arc::new((producer, topic.to_owned()));
    let app = axum::Router::new()
        .route("/v1/receipts", axum::routing::post(submit))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "baseline stopped");
        }
    });
    Ok(Baseline { addr, task })
}

async fn submit(
    State(state): State<Arc<(FutureProducer, String)>>,
    body: Bytes,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let (producer, topic) = &*state;
    let id = uuid::Uuid::now_v7().to_string();
    let record = FutureRecord::to(topic).key(&id).payload(body.as_ref());
    match producer.send(record, Duration::from_secs(10)).await {
        Ok(_) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "id": id })),
        ),
        Err((error, _)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": error.to_string() })),
        ),
    }
}
