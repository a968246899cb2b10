//! One signed HTTP attempt at a webhook message: Standard Webhooks headers, no redirects
//! followed, no proxies, the SSRF guard in the resolver, a timeout over the whole exchange, and
//! the start of the response kept for the delivery log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use receipts_domain::WebhookSecret;
use receipts_telemetry::trace;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use standardwebhooks::{HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP};
use tracing::Instrument;

use crate::guard::{AddressPolicy, GuardedResolver, refusal};

/// At most this much of a response body is kept in the delivery log.
pub const EXCERPT_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub latency: Duration,
    pub http_status: Option<u16>,
    pub response_excerpt: Option<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx: the delivery is confirmed.
    Delivered,
    /// Worth trying again: no answer, a timeout, a 3xx or any other status.
    Failed {
        /// `timeout`, `connect`, `connection`, `redirect`, `http-<status>`.
        kind: String,
        error: String,
        retry_after: Option<Duration>,
    },
    /// The destination is not allowed (SSRF guard) or not a usable URL: never sent.
    Refused(String),
}

impl Attempt {
    /// The attempt's outcome as a metric label: `success`, `http_error`, `timeout`, `connect`,
    /// `refused`.
    pub fn label(&self) -> &'static str {
        match &self.outcome {
            Outcome::Delivered => "success",
            Outcome::Refused(_) => "refused",
            Outcome::Failed { kind, .. } if kind == "timeout" => "timeout",
            Outcome::Failed { kind, .. } if kind == "connect" || kind == "connection" => "connect",
            Outcome::Failed { .. } => "http_error",
        }
    }

    pub fn error(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Delivered => None,
            Outcome::Failed { error, .. } => Some(error),
            Outcome::Refused(reason) => Some(reason),
        }
    }
}

/// Sends webhook messages.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl Sender {
    pub fn new(
        policy: AddressPolicy,
        timeout: Duration,
        user_agent: &str,
    ) -> Result<Self, SenderError> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(Arc::clone(&policy))))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { client, policy })
    }

    /// POSTs `payload` to `url`, signed with every one of `secrets` (the current one first; the
    /// others during a rotation), as message `webhook_id`.
    pub async fn send(
        &self,
        url: &str,
        webhook_id: &str,
        payload: &[u8],
        secrets: &[WebhookSecret],
    ) -> Attempt {
        let at = Utc::now();
        let started = Instant::now();
        let finish = |http_status, response_excerpt, outcome| Attempt {
            at,
            latency: started.elapsed(),
            http_status,
            response_excerpt,
            outcome,
        };
        let url = match url::Url::parse(url) {
            Ok(url) => url,
            Err(e) => return finish(None, None, Outcome::Refused(format!("invalid URL: {e}"))),
        };
        if let Err(refused) = self.policy.check_literal(&url) {
            return finish(None, None, Outcome::Refused(refused.to_string()));
        }
        let signature = match sign(webhook_id, at.timestamp(), payload, secrets) {
            Ok(signature) => signature,
            Err(e) => return finish(None, None, Outcome::Refused(e)),
        };
        let span = trace::http_client_span(&reqwest::Method::POST, &url);
        // The partner may continue the receipt's trace from here.
        let traceparent = span.in_scope(trace::outgoing_traceparent);
        let request = self
            .client
            .post(url)
            .header(trace::TRACEPARENT, traceparent)
            .header(CONTENT_TYPE, "application/json")
            .header(HEADER_WEBHOOK_ID, webhook_id)
            .header(HEADER_WEBHOOK_TIMESTAMP, at.timestamp().to_string())
            .header(HEADER_WEBHOOK_SIGNATURE, signature)
            .body(payload.to_vec());
        let mut response = match request.send().instrument(span.clone()).await {
            Ok(response) => response,
            Err(e) => return finish(None, None, transport_failure(&e)),
        };
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        let retry_after = receipts_runtime::http::retry_after(response.headers());
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let excerpt = read_excerpt(&mut response).await;
        let outcome = if status.is_success() {
            Outcome::Delivered
        } else if status.is_redirection() {
            Outcome::Failed {
                kind: "redirect".into(),
                error: format!(
                    "HTTP {}: redirects are not followed (Location: {})",
                    status.as_u16(),
                    location.as_deref().unwrap_or("none")
                ),
                retry_after: None,
            }
        } else {
            Outcome::Failed {
                kind: format!("http-{}", status.as_u16()),
                error: format!("HTTP {}", status.as_u16()),
                retry_after,
            }
        };
        finish(Some(status.as_u16()), excerpt, outcome)
    }
}

/// The `webhook-signature` value: `v1,<base64>` per secret, space-separated.
fn sign(
    webhook_id: &str,
    timestamp: i64,
    payload: &[u8],
    secrets: &[WebhookSecret],
) -> Result<String, String> {
    let signatures = secrets
        .iter()
        .map(|secret| {
            standardwebhooks::Webhook::from_bytes(secret.key())
                .and_then(|webhook| webhook.sign(webhook_id, timestamp, payload))
                .map_err(|e| format!("cannot sign: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if signatures.is_empty() {
        return Err("no signing secret".into());
    }
    Ok(signatures.join(" "))
}

fn transport_failure(error: &reqwest::Error) -> Outcome {
    if let Some(refused) = refusal(error) {
        return Outcome::Refused(refused.to_string());
    }
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "connection"
    };
    Outcome::Failed {
        kind: kind.into(),
        error: error_chain(error),
        retry_after: None,
    }
}

/// An error and its causes, `: `-separated (reqwest's own message says little).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// The first [`EXCERPT_BYTES`] of the body (lossy UTF-8); the rest is not read.
async fn read_excerpt(response: &mut reqwest::Response) -> Option<String> {
    let mut body = Vec::new();
    while body.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(EXCERPT_BYTES);
    (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_signs_and_the_current_one_comes_first() {
        let current = WebhookSecret::generate();
        let previous = WebhookSecret::generate();
        let header = sign(
            "msg_1",
            1_700_000_000,
            b"{}",
            &[current.clone(), previous.clone()],
        )
        .expect("signed");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        let only_current = sign("msg_1", 1_700_000_000, b"{}", &[current]).expect("signed");
        assert_eq!(parts[0], only_current);
        assert!(sign("msg_1", 1, b"{}", &[]).is_err());
    }
}
