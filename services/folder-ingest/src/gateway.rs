//! The gateway as the ingester uses it, through the shared typed client (`receipts-client`):
//! `POST /v1/receipts/batch` with an NDJSON body the ingester writes itself, `GET
//! /v1/receipts/{id}` and `/livez`. The client never retries here: the ingester's own loop
//! retries with backoff for as long as `give_up_after`, counting each retry in its metrics.

use std::time::Duration;

use receipts_client::{ApiKey, BatchItemOutcome, Client, Error, RetryPolicy};
use receipts_domain::Secret;
use serde::Serialize;
use url::Url;

/// One batch item, as the gateway reads it (borrowed: the ingester writes the line itself).
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    pub receipt_type: &'a str,
    pub content_type: &'a str,
    pub idempotency_key: &'a str,
    /// The document as issued, as a JSON string.
    pub document: &'a str,
}

/// A client of the gateway at `base` with `key` (none when empty); `timeout` bounds each
/// request.
pub fn client(base: &Url, key: &Secret, timeout: Duration) -> Result<Client, Error> {
    let key = match key.expose() {
        "" => None,
        key => Some(ApiKey::new(key)?),
    };
    Client::new(base.clone(), key)?
        .with_retry(RetryPolicy::none())
        .with_timeout(timeout)
}

/// The request may succeed if sent again: no answer, 429 or 5xx.
pub fn is_transient(error: &Error) -> bool {
    match error {
        Error::Transport { .. } => true,
        Error::Problem(problem) => problem.status == 429 || problem.status >= 500,
        Error::Decode { .. } | Error::Invalid(_) => false,
    }
}

/// The gateway will never take the request: a wrong key, a batch over its limits.
pub fn is_refused(error: &Error) -> bool {
    matches!(error, Error::Problem(_)) && !is_transient(error)
}

/// The `reason` label of a retry.
pub fn retry_reason(error: &Error) -> &'static str {
    match error.status() {
        None if is_transient(error) => "transport",
        Some(429) => "429",
        Some(503) => "503",
        Some(status) if status >= 500 => "5xx",
        _ => "other",
    }
}

/// The item may succeed if sent again (the broker or the store was unavailable for it).
pub fn item_is_transient(item: &BatchItemOutcome) -> bool {
    item.status >= 500
}

#[cfg(test)]
mod tests {
    use receipts_client::Problem;

    use super::*;

    fn problem(status: u16) -> Error {
        Error::Problem(Box::new(Problem::from_response(status, None, b"")))
    }

    #[test]
    fn which_failures_are_retried() {
        for status in [429, 500, 503] {
            assert!(is_transient(&problem(status)), "{status}");
            assert!(!is_refused(&problem(status)), "{status}");
        }
        for status in [400, 401, 403, 413] {
            assert!(!is_transient(&problem(status)), "{status}");
            assert!(is_refused(&problem(status)), "{status}");
        }
        assert_eq!(retry_reason(&problem(503)), "503");
        assert_eq!(retry_reason(&problem(502)), "5xx");
        assert_eq!(retry_reason(&problem(429)), "429");
        assert!(!is_transient(&Error::Invalid("x".into())));
    }
}
