//! What the store reads and writes.

use chrono::{DateTime, Utc};
use receipts_domain::{
    EventId, EventKind, IdempotencyKey, NormalizedReceipt, Reason, ReceiptId, ReceiptState,
    RequestFingerprint, Status, TenantId, Transition,
};
use serde::Serialize;

/// An idempotency record: the first submission under a (tenant, key) pair, with the ids it was
/// given so that a replay can re-produce exactly the same `submitted` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub tenant_id: TenantId,
    pub idempotency_key: IdempotencyKey,
    pub fingerprint: RequestFingerprint,
    pub receipt_id: ReceiptId,
    pub event_id: EventId,
    pub received_at: DateTime<Utc>,
}

/// Result of [`crate::StatusStore::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// The key was free and is now taken by the given reservation.
    New,
    /// The key was already taken by this earlier reservation.
    Existing(Reservation),
}

/// Result of [`crate::StatusStore::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event was new; the receipt moved (or stayed) as the transition says.
    Applied(Transition),
    /// The event id was already in the timeline; nothing changed.
    Duplicate,
}

/// A receipt as partners see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptRecord {
    pub id: ReceiptId,
    pub tenant_id: TenantId,
    pub status: Status,
    #[serde(skip)]
    pub state: ReceiptState,
    /// Incremented by every applied event; the guard for concurrent writers.
    pub version: u64,
    pub receipt_type: String,
    /// Known once the `submitted` event has been applied.
    pub content_type: Option<String>,
    pub callback_url: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Why the receipt was rejected (empty otherwise).
    pub reasons: Vec<Reason>,
    /// The normalized receipt, once validated.
    pub receipt: Option<NormalizedReceipt>,
    /// Every event applied, each once, in the order they occurred.
    pub timeline: Vec<TimelineEntry>,
}

/// One event in a receipt's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub event_id: EventId,
    pub event: EventKind,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    /// The receipt's status right after this event was applied.
    pub status: Status,
}

/// A document exactly as the partner sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub content_type: String,
    pub bytes: Vec<u8>,
}
