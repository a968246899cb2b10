//! Asynchronous mode: completing an accepted registration after its delay, and the signed
//! delivery of the result to the configured callback URL, with retries.

use std::time::Duration;

use std::sync::Arc;

use axum::http::header;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::api::{Record, RecordState, timestamp};
use crate::config::Faults;
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
            if let Some(traceparent) = &record.traceparent {
                request = request.header("traceparent", traceparent);
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

impl App {
    /// Completes the pending record `key` after the delay of `faults` (the configuration in
    /// effect when it was accepted), then delivers the callback that configuration asks for.
    pub(crate) fn schedule_completion(self: &Arc<Self>, key: String, faults: Arc<Faults>) {
        let app = self.clone();
        let cancel = self.state().generation.clone();
        tokio::spawn(async move {
            let delay = Duration::from_millis(faults.async_mode.delay_ms);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            let Some(record) = app.complete(&key, &faults, &cancel).await else {
                return;
            };
            let mode = &faults.async_mode;
            let target = match (&mode.callback_url, &mode.secret) {
                (Some(url), Some(secret)) => Some((url.clone(), secret.clone())),
                _ => app
                    .default_callback
                    .as_ref()
                    .map(|t| (t.url.clone(), t.secret.clone())),
            };
            if let Some((url, secret)) = target {
                app.deliver_callback(&url, secret.expose(), &record, &cancel)
                    .await;
            }
        });
    }

    async fn complete(
        &self,
        key: &str,
        faults: &Faults,
        cancel: &CancellationToken,
    ) -> Option<Record> {
        let _shared = self.gate.read().await;
        let _key = self.keys.lock(key).await;
        // A reset while this waited: the record may be a new one, with its own completion.
        if cancel.is_cancelled() {
            return None;
        }
        let mut record = self.state().records.get(key).cloned()?;
        if record.state != RecordState::Pending {
            return None;
        }
        let now = Utc::now();
        record.state = match faults.rejection_for(&record.party_id) {
            Some(rule) => RecordState::Rejected {
                reason: rule.reason.clone(),
            },
            None => RecordState::Registered {
                registry_id: self.shape.registry_id(self.next_serial(), now),
                registered_at: timestamp(now),
            },
        };
        if self.persist(&record).await.is_err() {
            // Stays pending; a restart resumes it.
            return None;
        }
        tracing::info!(registry = %self.kind, %key, receipt_ref = %record.receipt_ref, state = ?record.state, "async registration completed");
        self.state().put(record.clone());
        Some(record)
    }
}
