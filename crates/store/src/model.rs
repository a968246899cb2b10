//! What the store reads and writes.

use chrono::{DateTime, Utc};
use receipts_domain::{
    EventId, EventKind, IdempotencyKey, NormalizedReceipt, Reason, ReceiptId, ReceiptState,
    Registration, RegistrationFailure, RegistryName, RequestFingerprint, Status, TenantId,
    Transition,
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
    /// The event id was already in the timeline; nothing changed. Carries the transition recorded
    /// when the event was first applied, so that a consumer that crashed between applying and
    /// acting on a status change can still act on it when the event is redelivered.
    Duplicate(Transition),
    /// The event states no fact about its receipt (`status_changed`): nothing was written.
    Ignored,
}

/// A receipt as partners see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptRecord {
    pub id: ReceiptId,
    pub tenant_id: TenantId,
    /// The status the last applied event left, derived with the status policy of the store
    /// that applied it.
    pub status: Status,
    #[serde(skip)]
    pub state: ReceiptState,
    /// Incremented by every applied event; the guard for concurrent writers.
    pub version: u64,
    /// Known once an event that carries it (submitted, validated, rejected) has been applied;
    /// a receipt first seen through a registration has none yet.
    pub receipt_type: Option<String>,
    /// Known once the `submitted` event has been applied.
    pub content_type: Option<String>,
    pub callback_url: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Why the receipt was rejected (empty otherwise).
    pub reasons: Vec<Reason>,
    /// The normalized receipt, once validated.
    pub receipt: Option<NormalizedReceipt>,
    /// One per registry that registered the receipt (the first registration reported wins), in
    /// registry-name order.
    pub registrations: Vec<Registration>,
    /// One per registry that failed for good (the first failure reported wins), in
    /// registry-name order.
    pub failures: Vec<RegistrationFailure>,
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
    /// The registry a registration event (`registered`, `registration_failed`) is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryName>,
}

/// A document exactly as the partner sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_entries_serialize_with_the_kind_string_and_the_registry_if_any() {
        let at = DateTime::from_timestamp_millis(1_714_550_400_000).expect("time");
        let mut entry = TimelineEntry {
            event_id: EventId::new(),
            event: EventKind::Validated,
            occurred_at: at,
            recorded_at: at,
            status: Status::Validated,
            registry: None,
        };
        let plain = serde_json::to_value(&entry).expect("serialize");
        assert_eq!(plain["event"], "validated");
        assert_eq!(plain["status"], "VALIDATED");
        assert!(plain.get("registry").is_none(), "{plain}");

        entry.event = EventKind::RegistrationFailed;
        entry.registry = Some(RegistryName::parse("tax").expect("name"));
        let registration = serde_json::to_value(&entry).expect("serialize");
        assert_eq!(registration["event"], "registration_failed");
        assert_eq!(registration["registry"], "tax");
        let keys: Vec<&str> = registration
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys.len(),
            6,
            "event_id, event, occurred_at, recorded_at, status, registry: {keys:?}"
        );
    }
}
