//! The events that flow through Kafka. Each kind has its own topic and Avro schema
//! (`proto-schemas/`); every event carries the same envelope fields ([`EventMeta`]).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{CallbackUrl, EventId, IdempotencyKey, NormalizedReceipt, Reason, ReceiptId, TenantId};

/// Envelope fields every event has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    pub event_id: EventId,
    pub receipt_id: ReceiptId,
    pub tenant_id: TenantId,
    pub occurred_at: DateTime<Utc>,
    /// 1 for the first attempt of the step that produced the event.
    pub attempt: u32,
}

impl EventMeta {
    /// Envelope for a new event about `receipt_id`, happening now.
    pub fn new(receipt_id: ReceiptId, tenant_id: TenantId) -> Self {
        Self {
            event_id: EventId::new(),
            receipt_id,
            tenant_id,
            occurred_at: now_millis(),
            attempt: 1,
        }
    }

    /// Envelope for the event that `step` derives from `cause`. The id is a UUIDv7 whose time
    /// and random bits are taken from the cause, so a consumer that processes the same cause
    /// twice (after a crash, before its offset was committed) emits the *same* event id, and the
    /// duplicate is dropped wherever events are deduplicated.
    pub fn derived(cause: &EventMeta, step: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(cause.event_id.as_uuid().as_bytes());
        hash.update(step.as_bytes());
        let digest = hash.finalize();
        let mut random = [0u8; 10];
        random.copy_from_slice(&digest[..10]);
        let millis = u64::try_from(cause.occurred_at.timestamp_millis()).unwrap_or_default();
        let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        Self {
            event_id: EventId::from_uuid(id),
            receipt_id: cause.receipt_id,
            tenant_id: cause.tenant_id.clone(),
            occurred_at: now_millis(),
            attempt: 1,
        }
    }
}

/// The current time truncated to milliseconds, the precision events keep on the wire.
pub fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// A partner submitted a receipt document and the gateway accepted it for processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub meta: EventMeta,
    pub receipt_type: String,
    /// The media type the partner declared, served back with the document.
    pub content_type: String,
    /// The document exactly as received.
    pub document: Vec<u8>,
    pub idempotency_key: IdempotencyKey,
    pub callback_url: Option<CallbackUrl>,
}

/// The validator accepted the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validated {
    pub meta: EventMeta,
    pub receipt_type: String,
    pub receipt: NormalizedReceipt,
}

/// The validator refused the document, with every reason it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub meta: EventMeta,
    pub receipt_type: String,
    pub reasons: Vec<Reason>,
}

/// Any event of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReceiptEvent {
    Submitted(Submitted),
    Validated(Validated),
    Rejected(Rejected),
}

/// The kind of an event; also names its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Submitted,
    Validated,
    Rejected,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [
        EventKind::Submitted,
        EventKind::Validated,
        EventKind::Rejected,
    ];

    /// The topic name (before any deployment prefix), as in ARCHITECTURE.md section 3.
    pub fn topic(self) -> &'static str {
        match self {
            Self::Submitted => "receipts.submitted",
            Self::Validated => "receipts.validated",
            Self::Rejected => "receipts.rejected",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Validated => "validated",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ReceiptEvent {
    pub fn meta(&self) -> &EventMeta {
        match self {
            Self::Submitted(e) => &e.meta,
            Self::Validated(e) => &e.meta,
            Self::Rejected(e) => &e.meta,
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            Self::Submitted(_) => EventKind::Submitted,
            Self::Validated(_) => EventKind::Validated,
            Self::Rejected(_) => EventKind::Rejected,
        }
    }

    pub fn receipt_type(&self) -> &str {
        match self {
            Self::Submitted(e) => &e.receipt_type,
            Self::Validated(e) => &e.receipt_type,
            Self::Rejected(e) => &e.receipt_type,
        }
    }
}

impl From<Submitted> for ReceiptEvent {
    fn from(e: Submitted) -> Self {
        Self::Submitted(e)
    }
}

impl From<Validated> for ReceiptEvent {
    fn from(e: Validated) -> Self {
        Self::Validated(e)
    }
}

impl From<Rejected> for ReceiptEvent {
    fn from(e: Rejected) -> Self {
        Self::Rejected(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_deterministic_v7() {
        let cause = EventMeta::new(
            ReceiptId::new(),
            TenantId::parse("dev").expect("valid tenant"),
        );
        let a = EventMeta::derived(&cause, "validated");
        let b = EventMeta::derived(&cause, "validated");
        let c = EventMeta::derived(&cause, "rejected");
        assert_eq!(a.event_id, b.event_id);
        assert_ne!(a.event_id, c.event_id);
        assert_eq!(a.event_id.as_uuid().get_version_num(), 7);
        assert_eq!(
            (a.receipt_id, &a.tenant_id),
            (cause.receipt_id, &cause.tenant_id)
        );
    }

    #[test]
    fn topics_are_named_as_in_the_architecture() {
        let topics: Vec<_> = EventKind::ALL.iter().map(|k| k.topic()).collect();
        assert_eq!(
            topics,
            [
                "receipts.submitted",
                "receipts.validated",
                "receipts.rejected"
            ]
        );
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
    }
}
