//! The delivery log: one webhook message to one destination, and its state. A delivery is
//! pending until an attempt succeeds (delivered) or the dispatcher gives up (failed); its owner
//! may ask for it again, which starts a new *series* of attempts.
//!
//! Every message on the delivery topic names the series it belongs to (the attempt number the
//! series starts at). A message of a finished series, or of an older one, is a stale copy and is
//! not sent; a message of a newer series than the log knows is a redelivery whose reopening was
//! not recorded, and is sent. So a redelivery can be queued first and recorded second without
//! anything to undo when the second step fails.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Destination, WebhookEventType};
use crate::{ReceiptId, TenantId};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// One webhook message to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The `webhook-id` (stable for every attempt).
    pub id: String,
    pub tenant_id: TenantId,
    pub receipt_id: ReceiptId,
    pub destination: Destination,
    pub url: String,
    pub event_type: WebhookEventType,
    /// The exact body every attempt sends (JSON, so UTF-8).
    #[serde(with = "utf8_bytes")]
    pub payload: Vec<u8>,
    pub status: DeliveryStatus,
    /// Why it failed for good (when `failed`).
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The number of the first attempt of the current series: 1, and one past every earlier
    /// attempt for each redelivery.
    pub series: u32,
    /// Incremented by every change; stores compare it before writing.
    pub version: u64,
}

/// What planning a message to a destination records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: String,
    pub tenant_id: TenantId,
    pub receipt_id: ReceiptId,
    pub destination: Destination,
    pub url: String,
    pub event_type: WebhookEventType,
    pub payload: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// One HTTP attempt, recorded under its number.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt; a redelivery's series continues the numbering.
    pub number: u32,
    pub at: DateTime<Utc>,
    pub url: String,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// The start of the response body (at most 1 KiB).
    pub response_excerpt: Option<String>,
    /// Why it failed without (or despite) a response: timeout, connection refused, redirect, ...
    pub error: Option<String>,
    pub succeeded: bool,
}

/// A change the delivery's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("the delivery is still pending")]
    StillPending,
}

impl Delivery {
    pub fn new(new: NewDelivery) -> Self {
        Self {
            id: new.id,
            tenant_id: new.tenant_id,
            receipt_id: new.receipt_id,
            destination: new.destination,
            url: new.url,
            event_type: new.event_type,
            payload: new.payload,
            status: DeliveryStatus::Pending,
            failure_reason: None,
            created_at: new.created_at,
            updated_at: new.created_at,
            series: 1,
            version: 1,
        }
    }

    /// Whether a message of the series starting at `series` is to be sent: the current series
    /// while it is pending, or a newer one.
    pub fn accepts(&self, series: u32) -> bool {
        series > self.series || (series == self.series && self.status == DeliveryStatus::Pending)
    }

    /// Records the outcome of an attempt of the series starting at `series`: a success delivers
    /// it; a failure leaves it pending (retries follow). A newer series becomes the current one;
    /// an attempt of an older series changes nothing.
    pub fn record_attempt(&mut self, series: u32, attempt: &DeliveryAttempt, now: DateTime<Utc>) {
        if series < self.series {
            return;
        }
        self.series = series;
        self.status = if attempt.succeeded {
            DeliveryStatus::Delivered
        } else {
            DeliveryStatus::Pending
        };
        self.failure_reason = None;
        self.updated_at = now;
    }

    /// Gives up on the series starting at `series`, for `reason`. Giving up on an older series
    /// than the current one changes nothing.
    pub fn fail(&mut self, series: u32, reason: &str, now: DateTime<Utc>) {
        if series < self.series {
            return;
        }
        self.series = series;
        self.status = DeliveryStatus::Failed;
        self.failure_reason = Some(reason.to_owned());
        self.updated_at = now;
    }

    /// The series a redelivery starts: after every attempt made so far (`attempts`).
    pub fn next_series(&self, attempts: &[DeliveryAttempt]) -> u32 {
        let last = attempts.iter().map(|a| a.number).max().unwrap_or(0);
        self.series.max(last).saturating_add(1)
    }

    /// Starts the series `series` (a manual redelivery): pending again. Refused while the
    /// current series is pending.
    pub fn reopen(&mut self, series: u32, now: DateTime<Utc>) -> Result<(), DeliveryError> {
        if self.status == DeliveryStatus::Pending {
            return Err(DeliveryError::StillPending);
        }
        self.series = self.series.max(series);
        self.status = DeliveryStatus::Pending;
        self.failure_reason = None;
        self.updated_at = now;
        Ok(())
    }
}

/// UTF-8 bytes as a string, so stored JSON stays readable and compact.
mod utf8_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text = std::str::from_utf8(bytes).map_err(serde::ser::Error::custom)?;
        s.serialize_str(text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        String::deserialize(d).map(String::into_bytes)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_714_550_400, 0).expect("time") + TimeDelta::seconds(seconds)
    }

    fn delivery() -> Delivery {
        Delivery::new(NewDelivery {
            id: "msg_1".into(),
            tenant_id: TenantId::parse("acme").expect("tenant"),
            receipt_id: ReceiptId::new(),
            destination: Destination::Callback,
            url: "https://partner.example/cb".into(),
            event_type: WebhookEventType::Accepted,
            payload: b"{\"type\":\"receipt.accepted\"}".to_vec(),
            created_at: at(0),
        })
    }

    fn attempt(number: u32, succeeded: bool) -> DeliveryAttempt {
        DeliveryAttempt {
            number,
            at: at(i64::from(number)),
            url: "https://partner.example/cb".into(),
            http_status: Some(if succeeded { 200 } else { 503 }),
            latency_ms: 12,
            response_excerpt: None,
            error: None,
            succeeded,
        }
    }

    #[test]
    fn attempts_until_delivered() {
        let mut d = delivery();
        assert!(d.accepts(1));
        d.record_attempt(1, &attempt(1, false), at(1));
        assert_eq!(d.status, DeliveryStatus::Pending);
        d.record_attempt(1, &attempt(2, true), at(2));
        assert_eq!(d.status, DeliveryStatus::Delivered);
        assert!(
            !d.accepts(1),
            "a copy of a delivered message is not sent again"
        );
        assert_eq!(d.updated_at, at(2));
    }

    #[test]
    fn giving_up_then_redelivering_starts_a_new_series() {
        let mut d = delivery();
        let attempts = [attempt(1, false), attempt(2, false)];
        for a in &attempts {
            d.record_attempt(1, a, a.at);
        }
        d.fail(1, "gave up", at(3));
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(d.failure_reason.as_deref(), Some("gave up"));
        assert!(!d.accepts(1));

        let series = d.next_series(&attempts);
        assert_eq!(series, 3);
        assert!(d.accepts(series), "queued before its reopening is recorded");
        d.reopen(series, at(4)).expect("reopens");
        assert_eq!(
            (d.status, d.failure_reason.as_deref()),
            (DeliveryStatus::Pending, None)
        );
        assert_eq!(d.reopen(series, at(5)), Err(DeliveryError::StillPending));
        assert!(d.accepts(series) && !d.accepts(1));

        // A late result of the old series changes nothing.
        d.fail(1, "late", at(6));
        d.record_attempt(1, &attempt(2, true), at(6));
        assert_eq!(d.status, DeliveryStatus::Pending);
        d.record_attempt(series, &attempt(3, true), at(7));
        assert_eq!(d.status, DeliveryStatus::Delivered);
    }

    #[test]
    fn a_redelivery_whose_reopening_was_lost_is_still_made() {
        let mut d = delivery();
        d.fail(1, "endpoint deleted", at(1));
        let series = d.next_series(&[]);
        assert_eq!(series, 2);
        // The message was queued; recording the reopening failed.
        assert!(d.accepts(series));
        d.record_attempt(series, &attempt(2, false), at(2));
        assert_eq!((d.series, d.status), (2, DeliveryStatus::Pending));
    }

    #[test]
    fn stored_form_keeps_the_payload_compact_and_exact() {
        let d = delivery();
        let json = serde_json::to_string(&d).expect("serializes");
        assert!(
            json.contains(r#""payload":"{\"type\":\"receipt.accepted\"}""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Delivery>(&json).expect("reads"), d);
    }
}
