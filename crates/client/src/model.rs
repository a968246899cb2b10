//! What the API sends and takes, as docs/api.md describes it. Members the client does not know
//! yet are kept in `extra` maps where an object may grow, so printing a value as JSON loses
//! nothing.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A receipt's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Received,
    Validated,
    Accepted,
    Rejected,
    Failed,
    /// A status this client does not know (a newer API).
    #[serde(other)]
    Unknown,
}

impl Status {
    pub const KNOWN: [Status; 5] = [
        Self::Received,
        Self::Validated,
        Self::Accepted,
        Self::Rejected,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "RECEIVED",
            Self::Validated => "VALIDATED",
            Self::Accepted => "ACCEPTED",
            Self::Rejected => "REJECTED",
            Self::Failed => "FAILED",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// ACCEPTED, REJECTED and FAILED never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Accepted | Self::Rejected | Self::Failed)
    }

    /// Case-insensitive.
    pub fn parse(s: &str) -> Option<Self> {
        Self::KNOWN
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    pub id: String,
    pub status: Status,
    pub status_url: String,
    /// The idempotency key replayed an earlier submission (`Idempotent-Replayed: true`): no new
    /// receipt.
    #[serde(default)]
    pub replayed: bool,
}

/// A receipt: status, reasons, registrations, timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: String,
    pub status: Status,
    pub receipt_type: Option<String>,
    pub content_type: Option<String>,
    pub callback_url: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub reasons: Vec<Reason>,
    /// The normalized receipt, once validated.
    #[serde(default)]
    pub receipt: Option<Value>,
    #[serde(default)]
    pub registrations: Vec<Registration>,
    #[serde(default)]
    pub failures: Vec<RegistrationFailure>,
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why a receipt was rejected: where (JSON Pointer or XPath), a stable code, a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub path: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub registry: String,
    pub registration_id: String,
    pub registered_at: DateTime<Utc>,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationFailure {
    pub registry: String,
    /// `rejected-by-registry` or `horizon-exceeded`.
    pub code: String,
    pub reason: String,
    pub failed_at: DateTime<Utc>,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub event: String,
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
}

/// A receipt's original document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub content_type: Option<String>,
    pub bytes: bytes::Bytes,
}

/// One receipt in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptSummary {
    pub id: String,
    pub status: Status,
    pub receipt_type: Option<String>,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status_url: String,
}

/// One page of `GET /v1/receipts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptPage {
    pub receipts: Vec<ReceiptSummary>,
    /// Continues the list; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Newest first (the default) or oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Desc,
    Asc,
}

/// The filters of `GET /v1/receipts`; absent ones are the API's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    /// Received at or after (default: 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// Received before (default: now).
    pub to: Option<DateTime<Utc>>,
    /// Any of these statuses (empty: any).
    pub statuses: Vec<Status>,
    pub receipt_type: Option<String>,
    pub order: Option<Order>,
    /// Receipts per page, 1 to 10,000 (default 100).
    pub limit: Option<usize>,
}

impl ListFilter {
    /// The query parameters of a first page (a later page sends only its cursor and limit).
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut query = Vec::new();
        if let Some(from) = self.from {
            query.push(("from", time(from)));
        }
        if let Some(to) = self.to {
            query.push(("to", time(to)));
        }
        if !self.statuses.is_empty() {
            let statuses: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
            query.push(("status", statuses.join(",")));
        }
        if let Some(receipt_type) = &self.receipt_type {
            query.push(("type", receipt_type.clone()));
        }
        if let Some(order) = self.order {
            let order = match order {
                Order::Desc => "desc",
                Order::Asc => "asc",
            };
            query.push(("order", order.to_owned()));
        }
        if let Some(limit) = self.limit {
            query.push(("limit", limit.to_string()));
        }
        query
    }
}

/// One receipt of a batch (docs/bulk.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    pub receipt_type: String,
    pub content_type: String,
    pub idempotency_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The document as issued (JSON or XML text).
    pub document: String,
}

/// The answer to a batch: every item's outcome, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchOutcome {
    pub accepted: usize,
    pub refused: usize,
    pub items: Vec<BatchItemOutcome>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItemOutcome {
    pub index: usize,
    /// 202, or the status of the item's problem.
    pub status: u16,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub receipt_status: Option<Status>,
    #[serde(default)]
    pub status_url: Option<String>,
    #[serde(default)]
    pub replayed: bool,
    #[serde(default)]
    pub problem: Option<crate::Problem>,
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// `None`: every terminal status change.
    pub events: Option<Vec<String>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new endpoint, with its signing secret (shown only now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub secret: WebhookSecret,
}

/// What `POST /v1/webhook-endpoints` takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewEndpoint {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Any of `receipt.accepted`, `receipt.rejected`, `receipt.failed`, `receipt.validated`;
    /// `None`: every terminal status change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
}

/// A change to an endpoint: `None` leaves a field as it is; `Some(None)` resets `description`
/// or `events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EndpointPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Option<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

impl EndpointPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A rotated endpoint secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RotatedSecret {
    pub secret: WebhookSecret,
    /// Until when the previous secret still signs.
    pub previous_valid_until: DateTime<Utc>,
}

/// What an endpoint did with a test message (`POST /v1/webhook-endpoints/{id}/test`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointTest {
    /// The test message's `webhook-id` (`msg_test_…`).
    pub webhook_id: String,
    /// Whether the endpoint answered 2xx.
    pub delivered: bool,
    /// The endpoint's answer; `None` when there was none (refused address, timeout, no
    /// connection).
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// The first 1 KiB of the answer.
    pub response_excerpt: Option<String>,
    /// Why it was not delivered.
    pub error: Option<String>,
}

/// The tenant's `Callback-Url` signing secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackSecrets {
    pub secret: WebhookSecret,
    #[serde(default)]
    pub previous: Vec<PreviousSecret>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret: WebhookSecret,
    pub valid_until: Option<DateTime<Utc>>,
}

/// A webhook signing secret (`whsec_…`): printed by `Debug` as `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// One webhook message about a receipt, with every attempt to deliver it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The `webhook-id`.
    pub id: String,
    pub receipt_id: String,
    pub destination: Destination,
    pub url: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub attempts: Vec<DeliveryAttempt>,
}

/// `{"kind": "endpoint", "id": "ep_…"}` or `{"kind": "callback"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => f.write_str(id),
            None => f.write_str(&self.kind),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub number: u32,
    pub at: DateTime<Utc>,
    pub url: String,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub succeeded: bool,
}

/// A receipt type a submission may name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeSummary {
    /// `name/version`: the `Receipt-Type` value.
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    /// `active` or `deprecated`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_since: Option<chrono::NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<chrono::NaiveDate>,
    /// Accepted `Content-Type`s.
    pub media_types: Vec<String>,
    /// Other names for one media type each.
    #[serde(default)]
    pub aliases: Vec<TypeAlias>,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeAlias {
    pub id: String,
    pub media_type: String,
}

/// A receipt type with its JSON Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeDetail {
    #[serde(flatten)]
    pub summary: TypeSummary,
    pub schema: Value,
}

#[derive(Deserialize)]
pub(crate) struct EndpointList {
    pub endpoints: Vec<Endpoint>,
}

#[derive(Deserialize)]
pub(crate) struct DeliveryList {
    pub deliveries: Vec<Delivery>,
}

#[derive(Deserialize)]
pub(crate) struct TypeList {
    pub receipt_types: Vec<TypeSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_and_unknown_ones_are_kept_apart() {
        assert_eq!(Status::parse("rejected"), Some(Status::Rejected));
        assert_eq!(Status::parse("DONE"), None);
        let s: Status = serde_json::from_str("\"ARCHIVED\"").expect("json");
        assert_eq!(s, Status::Unknown);
        assert!(Status::Failed.is_terminal() && !Status::Validated.is_terminal());
    }

    #[test]
    fn list_filters_become_the_apis_parameters() {
        let filter = ListFilter {
            from: Some("2026-01-01T00:00:00Z".parse().expect("time")),
            statuses: vec![Status::Rejected, Status::Failed],
            receipt_type: Some("retail-receipt/v1".into()),
            order: Some(Order::Asc),
            limit: Some(50),
            ..Default::default()
        };
        assert_eq!(
            filter.query(),
            vec![
                ("from", "2026-01-01T00:00:00.000Z".to_owned()),
                ("status", "REJECTED,FAILED".to_owned()),
                ("type", "retail-receipt/v1".to_owned()),
                ("order", "asc".to_owned()),
                ("limit", "50".to_owned()),
            ]
        );
        assert!(ListFilter::default().query().is_empty());
    }

    #[test]
    fn patches_send_only_what_changes() {
        let patch = EndpointPatch {
            events: Some(None),
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&patch).expect("json"),
            serde_json::json!({"events": null, "enabled": false})
        );
        assert!(EndpointPatch::default().is_empty());
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let secret: WebhookSecret = serde_json::from_str("\"whsec_abc\"").expect("json");
        assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
        assert_eq!(secret.expose(), "whsec_abc");
    }
}
