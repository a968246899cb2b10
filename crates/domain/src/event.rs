//! The events that flow through Kafka. Each kind has its own topic and Avro schema
//! (`proto-schemas/`); every event carries the same envelope fields ([`EventMeta`]).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::registry::{Registration, RegistrationFailure, RegistryName};
use crate::state::Fact;
use crate::webhook::{Destination, WebhookEventType};
use crate::{
    CallbackUrl, EventId, IdempotencyKey, NormalizedReceipt, Reason, ReceiptId, Status, TenantId,
};

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
        let id = stable_id(cause.event_id.as_uuid(), cause.occurred_at, step);
        Self {
            event_id: id,
            receipt_id: cause.receipt_id,
            tenant_id: cause.tenant_id.clone(),
            occurred_at: now_millis(),
            attempt: 1,
        }
    }

    /// Envelope for the one event of kind `step` a receipt can have, whoever emits it: the id
    /// depends only on the receipt and `step`, so the same outcome reported along two paths (a
    /// registrar's call and the registry's callback) is one event.
    pub fn for_receipt(
        receipt_id: ReceiptId,
        tenant_id: TenantId,
        step: &str,
        attempt: u32,
    ) -> Self {
        let uuid = receipt_id.as_uuid();
        let created = uuid
            .get_timestamp()
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                DateTime::from_timestamp(i64::try_from(secs).unwrap_or_default(), nanos)
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        Self {
            event_id: stable_id(uuid, created, step),
            receipt_id,
            tenant_id,
            occurred_at: now_millis(),
            attempt,
        }
    }
}

/// A UUIDv7 with `at`'s time and random bits taken from `seed` and `step`.
fn stable_id(seed: uuid::Uuid, at: DateTime<Utc>, step: &str) -> EventId {
    let mut hash = Sha256::new();
    hash.update(seed.as_bytes());
    hash.update(step.as_bytes());
    let digest = hash.finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or_default();
    EventId::from_uuid(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
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
    /// The typed core every receipt type maps to.
    pub receipt: NormalizedReceipt,
    /// The type-specific fields outside the core (a JSON object), if the type has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<serde_json::Value>,
}

/// The validator refused the document, with every reason it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub meta: EventMeta,
    pub receipt_type: String,
    pub reasons: Vec<Reason>,
}

/// A registry registered the receipt (`meta.attempt`: the calls it took).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub meta: EventMeta,
    pub registration: Registration,
}

/// Registering with a registry failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationFailed {
    pub meta: EventMeta,
    pub failure: RegistrationFailure,
}

impl Registered {
    /// The one `<registry>-registered` event of a receipt: its id depends only on the receipt
    /// and the registry, so the registrar and the registry's callback report the same event.
    pub fn new(receipt_id: ReceiptId, tenant_id: TenantId, registration: Registration) -> Self {
        let step = format!("{}-registered", registration.registry);
        let meta = EventMeta::for_receipt(receipt_id, tenant_id, &step, registration.attempts);
        Self { meta, registration }
    }
}

impl RegistrationFailed {
    /// The one `<registry>-failed` event of a receipt (see [`Registered::new`]).
    pub fn new(receipt_id: ReceiptId, tenant_id: TenantId, failure: RegistrationFailure) -> Self {
        let step = format!("{}-failed", failure.registry);
        let meta = EventMeta::for_receipt(receipt_id, tenant_id, &step, failure.attempts);
        Self { meta, failure }
    }
}

/// The receipt's status changed; carries what a partner needs to know about the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChanged {
    pub meta: EventMeta,
    pub from: Status,
    pub to: Status,
    pub receipt_type: String,
    pub callback_url: Option<CallbackUrl>,
    /// Validation reasons, when rejected.
    pub reasons: Vec<Reason>,
    pub registrations: Vec<Registration>,
    pub failures: Vec<RegistrationFailure>,
}

/// A webhook message to deliver (or redeliver) to one destination. Keyed by its delivery id
/// rather than the receipt id, so that deliveries to a slow endpoint never queue behind one
/// another's receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRequested {
    pub meta: EventMeta,
    /// The `webhook-id`, stable for every attempt.
    pub delivery_id: String,
    pub destination: Destination,
    pub url: String,
    pub event_type: WebhookEventType,
    /// The exact body every attempt sends.
    pub payload: Vec<u8>,
}

/// A webhook message could not be delivered within its retry schedule (or was refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookFailed {
    pub meta: EventMeta,
    pub delivery_id: String,
    pub destination: Destination,
    pub url: String,
    pub event_type: WebhookEventType,
    pub reason: String,
}

/// Any event of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReceiptEvent {
    Submitted(Submitted),
    Validated(Validated),
    Rejected(Rejected),
    Registered(Registered),
    RegistrationFailed(RegistrationFailed),
    StatusChanged(StatusChanged),
    WebhookRequested(WebhookRequested),
    WebhookFailed(WebhookFailed),
}

/// The kind of an event.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Submitted,
    Validated,
    Rejected,
    Registered,
    RegistrationFailed,
    StatusChanged,
    WebhookRequested,
    WebhookFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::Submitted,
        EventKind::Validated,
        EventKind::Rejected,
        EventKind::Registered,
        EventKind::RegistrationFailed,
        EventKind::StatusChanged,
        EventKind::WebhookRequested,
        EventKind::WebhookFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Validated => "validated",
            Self::Rejected => "rejected",
            Self::Registered => "registered",
            Self::RegistrationFailed => "registration_failed",
            Self::StatusChanged => "status_changed",
            Self::WebhookRequested => "webhook_requested",
            Self::WebhookFailed => "webhook_failed",
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

/// Which topic an event goes to (ARCHITECTURE.md section 3), before any deployment prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    Submitted,
    Validated,
    Rejected,
    /// `receipts.<registry>-registered`
    Registered(RegistryName),
    /// `receipts.<registry>-failed`
    RegistrationFailed(RegistryName),
    StatusChanged,
    /// Webhook messages to deliver: `receipts.webhook-deliveries`.
    WebhookDeliveries,
    /// Webhook messages given up on: `receipts.webhook-failed`.
    WebhookFailed,
}

impl Topic {
    pub fn name(&self) -> String {
        match self {
            Self::Submitted => "receipts.submitted".into(),
            Self::Validated => "receipts.validated".into(),
            Self::Rejected => "receipts.rejected".into(),
            Self::Registered(r) => format!("receipts.{r}-registered"),
            Self::RegistrationFailed(r) => format!("receipts.{r}-failed"),
            Self::StatusChanged => "receipts.status-changed".into(),
            Self::WebhookDeliveries => "receipts.webhook-deliveries".into(),
            Self::WebhookFailed => "receipts.webhook-failed".into(),
        }
    }

    /// The kind of the events on this topic.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Submitted => EventKind::Submitted,
            Self::Validated => EventKind::Validated,
            Self::Rejected => EventKind::Rejected,
            Self::Registered(_) => EventKind::Registered,
            Self::RegistrationFailed(_) => EventKind::RegistrationFailed,
            Self::StatusChanged => EventKind::StatusChanged,
            Self::WebhookDeliveries => EventKind::WebhookRequested,
            Self::WebhookFailed => EventKind::WebhookFailed,
        }
    }

    /// Every topic a receipt's own events (those that change its state) travel on, for the
    /// given registries.
    pub fn receipt_topics(registries: &[RegistryName]) -> Vec<Topic> {
        let mut topics = vec![Self::Submitted, Self::Validated, Self::Rejected];
        for r in registries {
            topics.push(Self::Registered(r.clone()));
            topics.push(Self::RegistrationFailed(r.clone()));
        }
        topics
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl ReceiptEvent {
    pub fn meta(&self) -> &EventMeta {
        match self {
            Self::Submitted(e) => &e.meta,
            Self::Validated(e) => &e.meta,
            Self::Rejected(e) => &e.meta,
            Self::Registered(e) => &e.meta,
            Self::RegistrationFailed(e) => &e.meta,
            Self::StatusChanged(e) => &e.meta,
            Self::WebhookRequested(e) => &e.meta,
            Self::WebhookFailed(e) => &e.meta,
        }
    }

    /// The Kafka key: the receipt id, except for webhook messages (their delivery id).
    pub fn key(&self) -> String {
        match self {
            Self::WebhookRequested(e) => e.delivery_id.clone(),
            other => other.meta().receipt_id.to_string(),
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            Self::Submitted(_) => EventKind::Submitted,
            Self::Validated(_) => EventKind::Validated,
            Self::Rejected(_) => EventKind::Rejected,
            Self::Registered(_) => EventKind::Registered,
            Self::RegistrationFailed(_) => EventKind::RegistrationFailed,
            Self::StatusChanged(_) => EventKind::StatusChanged,
            Self::WebhookRequested(_) => EventKind::WebhookRequested,
            Self::WebhookFailed(_) => EventKind::WebhookFailed,
        }
    }

    pub fn topic(&self) -> Topic {
        match self {
            Self::Submitted(_) => Topic::Submitted,
            Self::Validated(_) => Topic::Validated,
            Self::Rejected(_) => Topic::Rejected,
            Self::Registered(e) => Topic::Registered(e.registration.registry.clone()),
            Self::RegistrationFailed(e) => Topic::RegistrationFailed(e.failure.registry.clone()),
            Self::StatusChanged(_) => Topic::StatusChanged,
            Self::WebhookRequested(_) => Topic::WebhookDeliveries,
            Self::WebhookFailed(_) => Topic::WebhookFailed,
        }
    }

    /// The fact this event states about its receipt, if it changes the receipt's state.
    pub fn fact(&self) -> Option<Fact> {
        match self {
            Self::Submitted(_) => Some(Fact::Submitted),
            Self::Validated(_) => Some(Fact::Validated),
            Self::Rejected(_) => Some(Fact::Rejected),
            Self::Registered(e) => Some(Fact::Registered(e.registration.registry.clone())),
            Self::RegistrationFailed(e) => {
                Some(Fact::RegistrationFailed(e.failure.registry.clone()))
            }
            Self::StatusChanged(_) | Self::WebhookRequested(_) | Self::WebhookFailed(_) => None,
        }
    }

    /// The receipt type, where the event carries it.
    pub fn receipt_type(&self) -> Option<&str> {
        match self {
            Self::Submitted(e) => Some(&e.receipt_type),
            Self::Validated(e) => Some(&e.receipt_type),
            Self::Rejected(e) => Some(&e.receipt_type),
            Self::StatusChanged(e) => Some(&e.receipt_type),
            Self::Registered(_)
            | Self::RegistrationFailed(_)
            | Self::WebhookRequested(_)
            | Self::WebhookFailed(_) => None,
        }
    }
}

macro_rules! into_event {
    ($($variant:ident),*) => {
        $(impl From<$variant> for ReceiptEvent {
            fn from(e: $variant) -> Self {
                Self::$variant(e)
            }
        })*
    };
}
into_event!(
    Submitted,
    Validated,
    Rejected,
    Registered,
    RegistrationFailed,
    StatusChanged,
    WebhookRequested,
    WebhookFailed
);

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
    fn per_receipt_ids_depend_on_receipt_and_step_only() {
        let tenant = TenantId::parse("dev").expect("tenant");
        let receipt = ReceiptId::new();
        let a = EventMeta::for_receipt(receipt, tenant.clone(), "tax-registered", 1);
        let b = EventMeta::for_receipt(receipt, tenant.clone(), "tax-registered", 3);
        let c = EventMeta::for_receipt(receipt, tenant.clone(), "logistics-registered", 1);
        let d = EventMeta::for_receipt(ReceiptId::new(), tenant, "tax-registered", 1);
        assert_eq!(a.event_id, b.event_id);
        assert_ne!(a.event_id, c.event_id);
        assert_ne!(a.event_id, d.event_id);
        assert_eq!(a.event_id.as_uuid().get_version_num(), 7);
        assert_eq!(b.attempt, 3);
    }

    #[test]
    fn topics_are_named_as_in_the_architecture() {
        let tax = RegistryName::parse("tax").expect("name");
        let names: Vec<String> = Topic::receipt_topics(std::slice::from_ref(&tax))
            .iter()
            .map(Topic::name)
            .collect();
        assert_eq!(
            names,
            [
                "receipts.submitted",
                "receipts.validated",
                "receipts.rejected",
                "receipts.tax-registered",
                "receipts.tax-failed"
            ]
        );
        assert_eq!(Topic::StatusChanged.name(), "receipts.status-changed");
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
    }
}
