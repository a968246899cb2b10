//! The gateway's HTTP API as the ingester uses it: `POST /v1/receipts/batch` (NDJSON envelopes
//! in, every item's outcome back) and `GET /v1/receipts/{id}`. Kept small and on its own so a
//! shared typed client can replace it.

use std::time::Duration;

use receipts_domain::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// One batch item, as the gateway reads it.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    pub receipt_type: &'a str,
    pub content_type: &'a str,
    pub idempotency_key: &'a str,
    /// The document as issued, as a JSON string.
    pub document: &'a str,
}

/// The gateway's answer to a batch.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchAnswer {
    pub items: Vec<ItemAnswer>,
}

/// One item's outcome.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemAnswer {
    pub index: usize,
    /// 202, or the status of the problem a single submission would have got.
    pub status: u16,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub replayed: bool,
    #[serde(default)]
    pub problem: Option<Value>,
}

impl ItemAnswer {
    /// The item may succeed if sent again (the broker or the store was unavailable for it).
    pub fn is_transient(&self) -> bool {
        self.status >= 500
    }
}

/// A receipt's status, as `GET /v1/receipts/{id}` answers it (the members the ingester reads).
#[derive(Debug, Clone, Deserialize)]
pub struct ReceiptView {
    pub status: String,
    #[serde(default)]
    pub reasons: Value,
    #[serde(default)]
    pub failures: Value,
}

impl ReceiptView {
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "ACCEPTED" | "REJECTED" | "FAILED")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot reach the gateway: {0}")]
    Transport(#[source] reqwest::Error),
    /// 429 or 5xx: the request may succeed later.
    #[error("the gateway answered {status}: {detail}")]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
        detail: String,
    },
    /// Any other 4xx: sending it again will not help (a wrong key, a batch over the gateway's
    /// limits).
    #[error("the gateway refused the request with {status}: {detail}")]
    Refused { status: u16, detail: String },
    #[error("unexpected answer from the gateway: {0}")]
    Answer(String),
}

impl GatewayError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transport(_) | Self::Unavailable { .. })
    }

    /// How long the gateway asked to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The `reason` label of a retry.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Transport(_) => "transport",
            Self::Unavailable { status: 429, .. } => "429",
            Self::Unavailable { status: 503, .. } => "503",
            Self::Unavailable { .. } => "5xx",
            Self::Refused { .. } | Self::Answer(_) => "other",
        }
    }
}

/// A client of one gateway with one API key.
#[derive(Clone)]
pub struct Gateway {
    http: reqwest::Client,
    base: Url,
    key: Secret,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// `base` is the gateway's base URL (`http://127.0.0.1:8080`); `timeout` bounds each request.
    pub fn new(base: &Url, key: Secret, timeout: Duration) -> Result<Self, reqwest::Error> {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!(
                "receipts-folder-ingest/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self { http, base, key })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Result<Url, GatewayError> {
        self.base
            .join(path)
            .map_err(|e| GatewayError::Answer(format!("bad URL {path}: {e}")))
    }

    /// Sends one NDJSON batch body (lines of [`Envelope`]s); the gateway's answer has one
    /// outcome per line, in order.
    pub async fn submit_batch(&self, body: Vec<u8>) -> Result<BatchAnswer, GatewayError> {
        let response = self
            .http
            .post(self.url("v1/receipts/batch")?)
            .bearer_auth(self.key.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body)
            .send()
            .await
            .map_err(GatewayError::Transport)?;
        let response = check(response).await?;
        response.json().await.map_err(|e| {
            GatewayError::Answer(format!("a batch answer that is not the expected JSON: {e}"))
        })
    }

    /// A receipt's status.
    pub async fn receipt(&self, id: &str) -> Result<ReceiptView, GatewayError> {
        let response = self
            .http
            .get(self.url(&format!("v1/receipts/{id}"))?)
            .bearer_auth(self.key.expose())
            .send()
            .await
            .map_err(GatewayError::Transport)?;
        check(response).await?.json().await.map_err(|e| {
            GatewayError::Answer(format!("a receipt that is not the expected JSON: {e}"))
        })
    }

    /// The gateway answers `/livez` (readiness of the folder ingester).
    pub async fn live(&self) -> Result<(), GatewayError> {
        let response = self
            .http
            .get(self.url("livez")?)
            .send()
            .await
            .map_err(GatewayError::Transport)?;
        check(response).await.map(drop)
    }
}

/// The response if it is a success, else its error (with the problem's detail, if any).
async fn check(response: reqwest::Response) -> Result<reqwest::Response, GatewayError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = receipts_runtime::http::retry_after(response.headers());
    let text = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|problem| {
            let title = problem["title"].as_str()?.to_owned();
            Some(match problem["detail"].as_str() {
                Some(detail) => format!("{title}: {detail}"),
                None => title,
            })
        })
        .unwrap_or_else(|| text.chars().take(300).collect());
    let status = status.as_u16();
    if status == 429 || status >= 500 {
        Err(GatewayError::Unavailable {
            status,
            retry_after,
            detail,
        })
    } else {
        Err(GatewayError::Refused { status, detail })
    }
}
