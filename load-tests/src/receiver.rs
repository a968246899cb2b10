//! The generator's webhook receiver: every tenant's endpoint points here. A delivery is accepted
//! only if its Standard Webhooks signature verifies with that tenant's secret; its terminal
//! status and arrival time are handed to the generator.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::sync::mpsc;

/// A terminal status heard of through a webhook.
#[derive(Debug, Clone)]
pub struct Heard {
    pub receipt_id: String,
    pub status: String,
    pub at: Instant,
}

#[derive(Clone)]
struct ReceiverState {
    /// Tenant -> its endpoint's signing secret.
    secrets: Arc<RwLock<HashMap<String, standardwebhooks::Webhook>>>,
    heard: mpsc::UnboundedSender<Heard>,
    /// Deliveries whose signature did not verify.
    forged: Arc<std::sync::atomic::AtomicU64>,
}

/// The running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    state: ReceiverState,
}

impl Receiver {
    /// Listens on a free loopback port; terminal statuses arrive on the returned channel.
    pub async fn start() -> anyhow::Result<(Self, mpsc::UnboundedReceiver<Heard>)> {
        let (heard, rx) = mpsc::unbounded_channel();
        let state = ReceiverState {
            secrets: Arc::default(),
            heard,
            forged: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/hooks/{tenant}", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "webhook receiver stopped");
            }
        });
        Ok((Self { addr, state }, rx))
    }

    /// The endpoint URL for `tenant`.
    pub fn url(&self, tenant: &str) -> String {
        format!("http://{}/hooks/{tenant}", self.addr)
    }

    /// Accepts `tenant`'s deliveries signed with `secret` (`whsec_…`).
    pub fn trust(&self, tenant: &str, secret: &str) -> anyhow::Result<()> {
        let webhook = standardwebhooks::Webhook::new(secret)
            .map_err(|e| anyhow::anyhow!("endpoint secret of {tenant}: {e}"))?;
        self.state
            .secrets
            .write()
            .map_err(|_| anyhow::anyhow!("secrets lock poisoned"))?
            .insert(tenant.to_owned(), webhook);
        Ok(())
    }

    /// Deliveries refused because their signature did not verify.
    pub fn forged(&self) -> u64 {
        self.state.forged.load(std::sync::atomic::Ordering::Relaxed)
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let verified = state
        .secrets
        .read()
        .ok()
        .and_then(|secrets| {
            secrets
                .get(&tenant)
                .map(|w| w.verify(&body, &headers).is_ok())
        })
        .unwrap_or(false);
    if !verified {
        state
            .forged
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let data = &payload["data"];
    if let (Some(id), Some(status)) = (data["id"].as_str(), data["status"].as_str())
        && matches!(status, "ACCEPTED" | "REJECTED" | "FAILED")
    {
        let _ = state.heard.send(Heard {
            receipt_id: id.to_owned(),
            status: status.to_owned(),
            at,
        });
    }
    StatusCode::NO_CONTENT
}
