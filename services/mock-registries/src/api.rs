//! What the two registries share: the stored record, a parsed submission, an answer, and the
//! [`Shape`] each registry implements to give them its own paths, fields and error bodies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::config::FaultKind;

/// One idempotency key's registration as the registry keeps it (and journals it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    pub key: String,
    pub receipt_ref: String,
    /// The seller tax id (tax) or `sender.vat_id` (logistics) reject rules are matched against.
    pub party_id: String,
    /// The submission's fields; a different one under the same key is a conflict.
    pub request: Value,
    pub accepted_at: DateTime<Utc>,
    pub state: RecordState,
    /// The registering call's `traceparent`, sent back with the callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum RecordState {
    /// Accepted in async mode, not yet completed.
    Pending,
    Registered {
        /// Fiscal number (tax) or registration id (logistics).
        registry_id: String,
        /// RFC 3339, UTC, milliseconds: kept as text so every replay is byte-identical.
        registered_at: String,
    },
    /// Refused by a reject rule (stored only in async mode; a synchronous rejection is not a
    /// registration and is simply repeated).
    Rejected { reason: String },
}

/// A valid submission.
#[derive(Debug, Clone)]
pub(crate) struct Submission {
    pub receipt_ref: String,
    pub party_id: String,
    pub request: Value,
}

/// An HTTP answer; its status is also the call's recorded outcome.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<u64>,
}

impl Answer {
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            retry_after: None,
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A field-level problem with a request: (`field`, `reason`).
pub(crate) type Problem = (String, String);

/// The parts in which the two registries differ.
pub(crate) trait Shape: Send + Sync + 'static {
    /// The body field holding the platform's receipt id.
    fn receipt_ref_field(&self) -> &'static str;
    /// How errors name the idempotency key.
    fn key_field(&self) -> &'static str;
    /// The serial number inside a registry id, when ids are sequential.
    fn serial_of(&self, _registry_id: &str) -> Option<u64> {
        None
    }
    /// Parses and validates a registration body.
    fn parse(&self, body: &Value) -> Result<Submission, Vec<Problem>>;
    /// Fiscal number or registration id for the `serial`-th registration.
    fn registry_id(&self, serial: u64, at: DateTime<Utc>) -> String;
    /// 400: malformed request.
    fn invalid(&self, problems: &[Problem]) -> Answer;
    /// 201 (`created`) or 200: the registration.
    fn registered(&self, record: &Record, created: bool) -> Answer;
    /// 202: accepted, still processing.
    fn pending(&self, record: &Record) -> Answer;
    /// Permanent rejection.
    fn rejected(&self, key: &str, receipt_ref: &str, reason: &str) -> Answer;
    /// 409: the key was used with another payload.
    fn conflict(&self) -> Answer;
    /// 404: unknown key.
    fn not_found(&self) -> Answer;
    /// An injected HTTP fault (500, 503, or 429 with `Retry-After`).
    fn fault(&self, kind: FaultKind, retry_after_seconds: u64) -> Answer;
    /// The callback payload for a completed record (`None` while pending).
    fn callback(&self, record: &Record) -> Option<Value>;
    /// The signature headers for a callback `body` sent at unix time `timestamp`.
    fn signature_headers(
        &self,
        secret: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Vec<(&'static str, String)>;

    /// The answer for an existing record, replayed.
    fn replay(&self, record: &Record) -> Answer {
        match &record.state {
            RecordState::Pending => self.pending(record),
            RecordState::Registered { .. } => self.registered(record, false),
            RecordState::Rejected { reason } => {
                self.rejected(&record.key, &record.receipt_ref, reason)
            }
        }
    }
}

/// Lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"`: both registries sign this way, they
/// differ only in the headers that carry it.
pub(crate) fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// RFC 3339, UTC, milliseconds, `Z`.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads typed fields out of a JSON body, collecting every problem (by dotted path) instead of
/// stopping at the first.
pub(crate) struct Fields<'a> {
    root: &'a Value,
    pub problems: Vec<Problem>,
}

impl<'a> Fields<'a> {
    pub fn new(root: &'a Value) -> Self {
        let mut problems = Vec::new();
        if !root.is_object() {
            problems.push(("body".into(), "must be a JSON object".into()));
        }
        Self { root, problems }
    }

    fn get(&mut self, path: &str) -> Option<&'a Value> {
        let mut value = self.root;
        for part in path.split('.') {
            match value.get(part) {
                Some(next) if !next.is_null() => value = next,
                _ => {
                    if self.root.is_object() {
                        self.problem(path, "is required");
                    }
                    return None;
                }
            }
        }
        Some(value)
    }

    fn problem(&mut self, path: &str, reason: &str) {
        self.problems.push((path.into(), reason.into()));
    }

    /// A non-empty string of at most 256 characters.
    pub fn text(&mut self, path: &str) -> Option<String> {
        let value = self.get(path)?;
        match value.as_str().map(str::trim) {
            None => self.problem(path, "must be a string"),
            Some("") => self.problem(path, "must not be empty"),
            Some(text) if text.chars().count() > 256 => {
                self.problem(path, "must be at most 256 characters")
            }
            Some(text) => return Some(text.to_owned()),
        }
        None
    }

    /// A decimal amount as a string: `-?digits[.digits]`.
    pub fn decimal(&mut self, path: &str) -> Option<String> {
        let text = self.text(path)?;
        let digits = text.strip_prefix('-').unwrap_or(&text);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if all_digits(whole) && all_digits(fraction) {
            Some(text)
        } else {
            self.problem(path, "must be a decimal amount as a string, e.g. \"12.34\"");
            None
        }
    }

    /// `len` uppercase ASCII letters (ISO 4217 currency, ISO 3166 country).
    pub fn code(&mut self, path: &str, len: usize, what: &str) -> Option<String> {
        let text = self.text(path)?;
        if text.len() == len && text.bytes().all(|b| b.is_ascii_uppercase()) {
            Some(text)
        } else {
            self.problem(path, &format!("must be {what}"));
            None
        }
    }

    /// An RFC 3339 timestamp, kept as sent.
    pub fn timestamp(&mut self, path: &str) -> Option<String> {
        let text = self.text(path)?;
        if DateTime::parse_from_rfc3339(&text).is_ok() {
            Some(text)
        } else {
            self.problem(path, "must be an RFC 3339 timestamp");
            None
        }
    }

    /// A non-negative integer.
    pub fn count(&mut self, path: &str) -> Option<u64> {
        let value = self.get(path)?;
        match value.as_u64() {
            Some(count) => Some(count),
            None => {
                self.problem(path, "must be a non-negative integer");
                None
            }
        }
    }
}

/// Why an idempotency key is unusable, if it is.
pub(crate) fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        Err("must not be empty")
    } else if key.len() > 255 {
        Err("must be at most 255 characters")
    } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
        Err("must be printable ASCII without spaces")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_collect_every_problem() {
        let body = json!({"a": "", "n": -1, "amount": "1,5", "cur": "eur", "at": "yesterday",
                          "nested": {"ok": "x"}});
        let mut fields = Fields::new(&body);
        assert_eq!(fields.text("nested.ok").as_deref(), Some("x"));
        assert!(fields.text("a").is_none());
        assert!(fields.count("n").is_none());
        assert!(fields.decimal("amount").is_none());
        assert!(fields.code("cur", 3, "a currency").is_none());
        assert!(fields.timestamp("at").is_none());
        assert!(fields.text("missing.deep").is_none());
        let paths: Vec<_> = fields.problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["a", "n", "amount", "cur", "at", "missing.deep"]);
    }

    #[test]
    fn decimals() {
        for ok in ["0", "12.34", "-1.5", "100"] {
            let body = json!({ "v": ok });
            assert!(Fields::new(&body).decimal("v").is_some(), "{ok}");
        }
        for bad in ["", ".5", "5.", "1e3", "12,3", "--1", "abc"] {
            let body = json!({ "v": bad });
            assert!(Fields::new(&body).decimal("v").is_none(), "{bad}");
        }
        let number = json!({ "v": 12.34 });
        assert!(Fields::new(&number).decimal("v").is_none());
    }

    #[test]
    fn keys() {
        assert!(check_key("01J0-receipt:tax").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key(&"k".repeat(256)).is_err());
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // Expected value computed independently, with Python's `hmac` module.
        let signature = sign("secret", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            signature,
            "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
        assert_ne!(signature, sign("secret", 1_700_000_001, br#"{"a":1}"#));
        assert_ne!(signature, sign("other", 1_700_000_000, br#"{"a":1}"#));
    }
}
