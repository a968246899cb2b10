//! Signed delivery of async results to the configured callback URL, with retries.

use std::time::Duration;

use axum::http::header;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::api::Record;
use crate::registry::App;

/// Delivery attempts before giving up.
pub(crate) const CALLBACK_ATTEMPTS: u32 = 5;
/// Wait before the second attempt; doubled after every failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

impl App {
    /// POSTs the result of `record` to `url`, re-signed on every attempt; a non-2xx answer or a
    /// transport error is retried with doubling backoff, then given up (logged).
    pub(crate) async fn deliver_callback(
        &self,
        url: &Url,
        secret: &str,
        record: &Record,
        cancel: &CancellationToken,
    ) {
        let Some(payload) = self.shape.callback(record) else {
            return;
        };
        let body = payload.to_string().into_bytes();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=CALLBACK_ATTEMPTS {
            let mut request = self
                .http
                .post(url.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            let now = chrono::Utc::now().timestamp();
            for (name, value) in self.shape.signature_headers(secret, now, &body) {
                request = request.header(name, value);
            }
            let outcome = tokio::select! {
                () = cancel.cancelled() => return,
                sent = request.send() => sent,
            };
            let failure = match outcome {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(
                        registry = %self.kind,
                        key = %record.key,
                        receipt_ref = %record.receipt_ref,
                        attempt,
                        status = response.status().as_u16(),
                        "callback delivered"
                    );
                    self.count_callback(|stats| stats.delivered += 1);
                    return;
                }
                Ok(response) => format!("HTTP {}", response.status().as_u16()),
                Err(error) => error.to_string(),
            };
            self.count_callback(|stats| stats.failed_attempts += 1);
            if attempt == CALLBACK_ATTEMPTS {
                tracing::error!(
                    registry = %self.kind,
                    key = %record.key,
                    receipt_ref = %record.receipt_ref,
                    attempts = attempt,
                    error = %failure,
                    "callback not delivered; giving up"
                );
                self.count_callback(|stats| stats.given_up += 1);
                return;
            }
            tracing::warn!(
                registry = %self.kind,
                key = %record.key,
                attempt,
                error = %failure,
                retry_in_ms = backoff.as_millis() as u64,
                "callback delivery failed; will retry"
            );
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff *= 2;
        }
    }
}
