//! The conformance suite every store backend must pass (ARCHITECTURE.md section 5).
//!
//! One `pub async fn` per property, generic over the backend, so each backend's test module calls
//! the same functions against its own store (one `#[tokio::test]` per function; see
//! `tests/sqlite.rs`). Every function names its own tenants and receipts with fresh random ids,
//! so the functions may share one database and run in parallel. They panic on a violation, like
//! any test.
//!
//! Stores are opened with [`StatusPolicy::default`] (tax and logistics required), except by the
//! functions that take a factory to open stores with policies of their own.
//!
//! Compiled for this crate's tests and, for other crates, behind the `conformance` feature.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use receipts_domain::event::now_millis;
use receipts_domain::{
    CallbackUrl, Destination, DocumentFormat, EndpointId, EventId, EventKind, EventMeta,
    IdempotencyKey, NormalizedReceipt, Reason, ReceiptEvent, ReceiptId, ReceiptState, Registered,
    Registration, RegistrationFailed, RegistrationFailure, RegistryName, Rejected,
    RequestFingerprint, Status, StatusChanged, StatusPolicy, Submitted, TenantId, Transition,
    Validated, WebhookEventType, WebhookFailed, WebhookRequested, WebhookSecret,
};
use uuid::Uuid;

use crate::{
    ApiClient, ApiKey, Applied, ClientId, ClientStore, DISABLED_BY_OWNER, Delivery,
    DeliveryAttempt, DeliveryStatus, Endpoint, EndpointHealth, EndpointPatch, Error, NewClient,
    NewDelivery, NewEndpoint, ReceiptRecord, Reservation, Reserved, Scope, StatusStore,
    StoredDocument, StoredSecret, WebhookStore, auto_disabled_reason,
};

// ---------------------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------------------

/// The receipt type every fixture event names.
pub const RECEIPT_TYPE: &str = "retail-receipt/v1";

/// The document fixture submissions carry, unless told otherwise.
pub const SAMPLE_DOCUMENT: &[u8] = br#"{"receipt_number": "R-2024-0001",  "total": "5.00"}"#;

/// The registries of [`StatusPolicy::default`], which stores under test are opened with unless a
/// function says otherwise.
pub const TAX: &str = "tax";
pub const LOGISTICS: &str = "logistics";

/// A registry name.
pub fn registry(name: &str) -> RegistryName {
    RegistryName::parse(name).expect("valid registry name")
}

/// A tenant id no other test uses.
pub fn unique_tenant() -> TenantId {
    TenantId::parse(&format!("conformance-{}", Uuid::new_v4().simple()))
        .expect("generated tenant ids are valid")
}

/// A valid normalized receipt.
pub fn sample_receipt() -> NormalizedReceipt {
    serde_json::from_value(serde_json::json!({
        "receipt_number": "R-2024-0001",
        "issued_at": "2024-05-01T10:15:00+02:00",
        "seller": { "tax_id": "DE136695976", "country": "DE", "name": "Muster GmbH" },
        "buyer": null,
        "currency": "EUR",
        "lines": [{
            "description": "Kaffee",
            "quantity": "2",
            "unit_price": "2.50",
            "vat_rate": "19",
            "net_amount": "4.20",
            "vat_amount": "0.80",
            "gross_amount": "5.00"
        }],
        "totals": { "net_amount": "4.20", "vat_amount": "0.80", "gross_amount": "5.00" },
        "payments": [{ "method": "card", "amount": "5.00" }]
    }))
    .expect("the sample receipt is a valid NormalizedReceipt")
}

/// Reasons a rejection fixture gives.
pub fn sample_reasons() -> Vec<Reason> {
    vec![
        Reason::new(
            "/totals/gross_amount",
            "totals.mismatch",
            "gross total is not the sum of the lines",
        ),
        Reason::new(
            "/seller/tax_id",
            "tax_id.invalid",
            "the seller's VAT number fails its check digit",
        ),
    ]
}

/// Builds the events of one receipt. Events get fresh ids and occur in pipeline order: the
/// submission at `submitted_at`, validation outcomes one second later, registration outcomes
/// two seconds later.
#[derive(Debug, Clone)]
pub struct ReceiptFixture {
    pub tenant: TenantId,
    pub receipt_id: ReceiptId,
    pub submitted_at: DateTime<Utc>,
}

impl Default for ReceiptFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl ReceiptFixture {
    /// A new receipt of a new tenant.
    pub fn new() -> Self {
        Self::for_tenant(unique_tenant())
    }

    /// A new receipt of `tenant`.
    pub fn for_tenant(tenant: TenantId) -> Self {
        // Milliseconds: the precision events keep on the wire and stores keep on disk.
        Self {
            tenant,
            receipt_id: ReceiptId::new(),
            submitted_at: now_millis(),
        }
    }

    /// An envelope with a fresh event id, `offset` after the submission.
    pub fn meta(&self, offset: TimeDelta) -> EventMeta {
        EventMeta {
            event_id: EventId::new(),
            receipt_id: self.receipt_id,
            tenant_id: self.tenant.clone(),
            occurred_at: self.submitted_at + offset,
            attempt: 1,
        }
    }

    pub fn submitted(&self) -> Submitted {
        self.submitted_with("application/json", SAMPLE_DOCUMENT.to_vec())
    }

    pub fn submitted_with(&self, content_type: &str, document: Vec<u8>) -> Submitted {
        Submitted {
            meta: self.meta(TimeDelta::zero()),
            receipt_type: RECEIPT_TYPE.to_owned(),
            content_type: content_type.to_owned(),
            document,
            idempotency_key: IdempotencyKey::parse(&format!("order-{}", self.receipt_id))
                .expect("valid idempotency key"),
            callback_url: Some(
                CallbackUrl::parse("https://partner.example/hooks/receipts").expect("valid URL"),
            ),
        }
    }

    pub fn validated(&self) -> Validated {
        Validated {
            meta: self.meta(TimeDelta::seconds(1)),
            receipt_type: RECEIPT_TYPE.to_owned(),
            receipt: sample_receipt(),
        }
    }

    pub fn rejected(&self) -> Rejected {
        Rejected {
            meta: self.meta(TimeDelta::seconds(1)),
            receipt_type: RECEIPT_TYPE.to_owned(),
            reasons: sample_reasons(),
        }
    }

    /// `name` registered the receipt (registration id `<name>-<receipt id>`) at the first
    /// attempt.
    pub fn registered(&self, name: &str) -> Registered {
        let meta = self.meta(TimeDelta::seconds(2));
        Registered {
            registration: Registration {
                registry: registry(name),
                registration_id: format!("{name}-{}", self.receipt_id),
                registered_at: meta.occurred_at,
                attempts: meta.attempt,
            },
            meta,
        }
    }

    /// `name` refused the receipt, at the second attempt. (On the wire a registration's
    /// attempts are the event's `meta.attempt`, so the two agree.)
    pub fn registration_failed(&self, name: &str) -> RegistrationFailed {
        let meta = EventMeta {
            attempt: 2,
            ..self.meta(TimeDelta::seconds(2))
        };
        RegistrationFailed {
            failure: RegistrationFailure {
                registry: registry(name),
                code: receipts_domain::registry::failure_code::REJECTED_BY_REGISTRY.to_owned(),
                reason: format!("{name} refused the seller's tax id"),
                failed_at: meta.occurred_at,
                attempts: meta.attempt,
            },
            meta,
        }
    }

    /// A status change (which states no new fact: stores ignore it).
    pub fn status_changed(&self) -> StatusChanged {
        StatusChanged {
            meta: self.meta(TimeDelta::seconds(3)),
            from: Status::Received,
            to: Status::Validated,
            receipt_type: RECEIPT_TYPE.to_owned(),
            callback_url: None,
            reasons: Vec::new(),
            registrations: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// An event of `kind`; registration outcomes are the tax registry's.
    pub fn event(&self, kind: EventKind) -> ReceiptEvent {
        match kind {
            EventKind::Submitted => self.submitted().into(),
            EventKind::Validated => self.validated().into(),
            EventKind::Rejected => self.rejected().into(),
            EventKind::Registered => self.registered(TAX).into(),
            EventKind::RegistrationFailed => self.registration_failed(TAX).into(),
            EventKind::StatusChanged => self.status_changed().into(),
            EventKind::WebhookRequested => ReceiptEvent::WebhookRequested(self.webhook_requested()),
            EventKind::WebhookFailed => ReceiptEvent::WebhookFailed(self.webhook_failed()),
        }
    }

    /// A webhook message announcing the acceptance to the receipt's `Callback-Url` (states no
    /// fact: stores ignore it).
    pub fn webhook_requested(&self) -> WebhookRequested {
        WebhookRequested {
            meta: self.meta(TimeDelta::seconds(4)),
            delivery_id: format!("msg_{}", self.receipt_id.as_uuid().simple()),
            destination: Destination::Callback,
            url: "https://partner.example/hooks/receipts".to_owned(),
            event_type: WebhookEventType::Accepted,
            payload: br#"{"type": "receipt.accepted"}"#.to_vec(),
        }
    }

    /// That webhook message given up on (states no fact: stores ignore it).
    pub fn webhook_failed(&self) -> WebhookFailed {
        let requested = self.webhook_requested();
        WebhookFailed {
            meta: self.meta(TimeDelta::seconds(5)),
            delivery_id: requested.delivery_id,
            destination: requested.destination,
            url: requested.url,
            event_type: requested.event_type,
            reason: "the retry schedule is exhausted".to_owned(),
        }
    }
}

/// The kinds of event that state a fact about their receipt (all but the status change and the
/// webhook messages).
pub fn fact_kinds() -> impl Iterator<Item = EventKind> {
    EventKind::ALL.into_iter().filter(|&k| {
        !matches!(
            k,
            EventKind::StatusChanged | EventKind::WebhookRequested | EventKind::WebhookFailed
        )
    })
}

/// An event's envelope, to change.
pub fn meta_mut(event: &mut ReceiptEvent) -> &mut EventMeta {
    match event {
        ReceiptEvent::Submitted(e) => &mut e.meta,
        ReceiptEvent::Validated(e) => &mut e.meta,
        ReceiptEvent::Rejected(e) => &mut e.meta,
        ReceiptEvent::Registered(e) => &mut e.meta,
        ReceiptEvent::RegistrationFailed(e) => &mut e.meta,
        ReceiptEvent::StatusChanged(e) => &mut e.meta,
        ReceiptEvent::WebhookRequested(e) => &mut e.meta,
        ReceiptEvent::WebhookFailed(e) => &mut e.meta,
    }
}

/// The same event (same event id, same data) about another receipt.
pub fn retarget(event: &ReceiptEvent, receipt_id: ReceiptId) -> ReceiptEvent {
    let mut event = event.clone();
    meta_mut(&mut event).receipt_id = receipt_id;
    event
}

/// The same event about the same receipt, claimed by another tenant.
pub fn with_tenant(event: &ReceiptEvent, tenant: &TenantId) -> ReceiptEvent {
    let mut event = event.clone();
    meta_mut(&mut event).tenant_id = tenant.clone();
    event
}

/// A reservation of `key` for a request with body `body`.
pub fn reservation(tenant: &TenantId, key: &str, body: &[u8]) -> Reservation {
    Reservation {
        tenant_id: tenant.clone(),
        idempotency_key: IdempotencyKey::parse(key).expect("valid idempotency key"),
        fingerprint: RequestFingerprint::of(RECEIPT_TYPE, DocumentFormat::Json, None, body),
        receipt_id: ReceiptId::new(),
        event_id: EventId::new(),
        received_at: now_millis(),
    }
}

/// What must be equal between two receipts that saw the same events in different orders:
/// everything but ids, wall-clock times and the per-entry "status after this event".
#[derive(Debug, PartialEq)]
struct Converged {
    status: Status,
    state: ReceiptState,
    version: u64,
    receipt_type: Option<String>,
    content_type: Option<String>,
    callback_url: Option<String>,
    received_at: Option<DateTime<Utc>>,
    reasons: Vec<Reason>,
    receipt: Option<NormalizedReceipt>,
    registrations: Vec<Registration>,
    failures: Vec<RegistrationFailure>,
    timeline: BTreeSet<TimelineKey>,
}

/// A timeline entry without its wall-clock and order-dependent parts.
type TimelineKey = (EventId, EventKind, DateTime<Utc>, Option<RegistryName>);

fn converged(record: &ReceiptRecord) -> Converged {
    Converged {
        status: record.status,
        state: record.state.clone(),
        version: record.version,
        receipt_type: record.receipt_type.clone(),
        content_type: record.content_type.clone(),
        callback_url: record.callback_url.clone(),
        received_at: record.received_at,
        reasons: record.reasons.clone(),
        receipt: record.receipt.clone(),
        registrations: record.registrations.clone(),
        failures: record.failures.clone(),
        timeline: record
            .timeline
            .iter()
            .map(|e| (e.event_id, e.event, e.occurred_at, e.registry.clone()))
            .collect(),
    }
}

async fn apply<S: StatusStore>(store: &S, event: impl Into<ReceiptEvent>) -> Applied {
    let event = event.into();
    store
        .apply(&event)
        .await
        .unwrap_or_else(|e| panic!("apply {} failed: {e}", event.kind()))
}

async fn record<S: StatusStore>(store: &S, tenant: &TenantId, id: ReceiptId) -> ReceiptRecord {
    store
        .receipt(tenant, id)
        .await
        .expect("receipt() works")
        .expect("the receipt exists")
}

fn applied(from: Status, to: Status) -> Applied {
    Applied::Applied(Transition { from, to })
}

fn duplicate(from: Status, to: Status) -> Applied {
    Applied::Duplicate(Transition { from, to })
}

fn is_duplicate(applied: Applied) -> bool {
    matches!(applied, Applied::Duplicate(_))
}

fn assert_timeline_ordered(record: &ReceiptRecord) {
    assert!(
        record
            .timeline
            .windows(2)
            .all(|w| w[0].occurred_at <= w[1].occurred_at),
        "timeline not ordered by occurrence: {:?}",
        record.timeline
    );
}

/// Every permutation of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut all = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut p = rest.clone();
            p.insert(at, n - 1);
            all.push(p);
        }
    }
    all
}

// ---------------------------------------------------------------------------------------------
// Idempotency records
// ---------------------------------------------------------------------------------------------

/// The first reservation of a (tenant, key) wins; later ones get it back unchanged, whatever
/// they carry; the same key of another tenant is independent.
pub async fn reserve_is_first_writer_wins<S: StatusStore>(store: &S) {
    let tenant = unique_tenant();
    let first = reservation(&tenant, "order-42", b"{\"a\": 1}");
    assert_eq!(store.reserve(&first).await.expect("reserve"), Reserved::New);

    // Same key, different request: the first one comes back, fingerprint and ids included.
    let second = reservation(&tenant, "order-42", b"{\"a\": 2}");
    assert_ne!(second.fingerprint, first.fingerprint);
    assert_eq!(
        store.reserve(&second).await.expect("reserve"),
        Reserved::Existing(first.clone())
    );
    // The very same request again: the same answer.
    assert_eq!(
        store.reserve(&first).await.expect("reserve"),
        Reserved::Existing(first.clone())
    );

    // Another key of the same tenant is free.
    let other_key = reservation(&tenant, "order-43", b"{\"a\": 1}");
    assert_eq!(
        store.reserve(&other_key).await.expect("reserve"),
        Reserved::New
    );

    // The same key of another tenant is free, and then taken for that tenant only.
    let other_tenant = unique_tenant();
    let theirs = reservation(&other_tenant, "order-42", b"{\"a\": 2}");
    assert_eq!(
        store.reserve(&theirs).await.expect("reserve"),
        Reserved::New
    );
    let theirs_again = reservation(&other_tenant, "order-42", b"{\"a\": 3}");
    assert_eq!(
        store.reserve(&theirs_again).await.expect("reserve"),
        Reserved::Existing(theirs)
    );
    assert_eq!(
        store.reserve(&second).await.expect("reserve"),
        Reserved::Existing(first)
    );
}

// ---------------------------------------------------------------------------------------------
// Applying events
// ---------------------------------------------------------------------------------------------

/// Whatever fact-stating event of a receipt arrives first creates it, at version 1, with that
/// event's data; a registration creates it without a receipt type.
pub async fn apply_creates_receipt_from_any_first_event<S: StatusStore>(store: &S) {
    for kind in fact_kinds() {
        let fx = ReceiptFixture::new();
        let event = fx.event(kind);
        let expected = match kind {
            EventKind::Submitted | EventKind::Registered => Status::Received,
            EventKind::Validated => Status::Validated,
            EventKind::Rejected => Status::Rejected,
            EventKind::RegistrationFailed => Status::Failed,
            EventKind::StatusChanged | EventKind::WebhookRequested | EventKind::WebhookFailed => {
                unreachable!("not a fact")
            }
        };
        assert_eq!(
            apply(store, event.clone()).await,
            applied(Status::Received, expected),
            "{kind}"
        );

        let r = record(store, &fx.tenant, fx.receipt_id).await;
        assert_eq!((r.id, &r.tenant_id), (fx.receipt_id, &fx.tenant), "{kind}");
        assert_eq!((r.status, r.version), (expected, 1), "{kind}");
        let mut state = ReceiptState::default();
        state.apply(
            &event.fact().expect("a fact-stating event"),
            &StatusPolicy::default(),
        );
        assert_eq!(r.state, state, "{kind}");
        assert_eq!(
            r.receipt_type.as_deref(),
            event.receipt_type(),
            "{kind}: the type only if the event names one"
        );
        assert_eq!(r.timeline.len(), 1, "{kind}");
        let entry = &r.timeline[0];
        assert_eq!(
            (entry.event_id, entry.event, entry.occurred_at, entry.status),
            (
                event.meta().event_id,
                kind,
                event.meta().occurred_at,
                expected
            ),
            "{kind}"
        );

        let document = store
            .document(&fx.tenant, fx.receipt_id)
            .await
            .expect("document()");
        if !matches!(event, ReceiptEvent::Submitted(_)) {
            assert_eq!(
                document, None,
                "{kind}: no document before the submission is recorded"
            );
            assert_eq!((r.content_type.as_ref(), r.received_at), (None, None));
        }
        if !matches!(event, ReceiptEvent::Registered(_)) {
            assert!(r.registrations.is_empty(), "{kind}");
        }
        if !matches!(event, ReceiptEvent::RegistrationFailed(_)) {
            assert!(r.failures.is_empty(), "{kind}");
        }
        match &event {
            ReceiptEvent::Submitted(e) => {
                assert_eq!(r.content_type.as_deref(), Some(e.content_type.as_str()));
                assert_eq!(
                    r.callback_url.as_deref(),
                    e.callback_url.as_ref().map(CallbackUrl::as_str)
                );
                assert_eq!(r.received_at, Some(e.meta.occurred_at));
                assert_eq!((r.receipt.as_ref(), r.reasons.as_slice()), (None, &[][..]));
                assert_eq!(
                    document,
                    Some(StoredDocument {
                        content_type: e.content_type.clone(),
                        bytes: e.document.clone()
                    })
                );
            }
            ReceiptEvent::Validated(e) => {
                assert_eq!(r.receipt.as_ref(), Some(&e.receipt));
            }
            ReceiptEvent::Rejected(e) => {
                assert_eq!(r.reasons, e.reasons);
                assert_eq!(r.receipt, None);
            }
            ReceiptEvent::Registered(e) => {
                assert_eq!(r.registrations, std::slice::from_ref(&e.registration));
                assert_eq!(entry.registry.as_ref(), Some(&e.registration.registry));
            }
            ReceiptEvent::RegistrationFailed(e) => {
                assert_eq!(r.failures, std::slice::from_ref(&e.failure));
                assert_eq!(entry.registry.as_ref(), Some(&e.failure.registry));
            }
            ReceiptEvent::StatusChanged(_)
            | ReceiptEvent::WebhookRequested(_)
            | ReceiptEvent::WebhookFailed(_) => unreachable!("not a fact"),
        }
    }
}

/// The happy path: RECEIVED, then VALIDATED with the normalized receipt.
pub async fn submitted_then_validated<S: StatusStore>(store: &S) {
    let fx = ReceiptFixture::new();
    let (submitted, validated) = (fx.submitted(), fx.validated());
    assert_eq!(
        apply(store, submitted.clone()).await,
        applied(Status::Received, Status::Received)
    );
    let after_submit = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!(
        (after_submit.status, after_submit.version),
        (Status::Received, 1)
    );

    assert_eq!(
        apply(store, validated.clone()).await,
        applied(Status::Received, Status::Validated)
    );
    let r = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!((r.status, r.version), (Status::Validated, 2));
    assert_eq!(
        r.state,
        ReceiptState {
            submitted: true,
            validated: true,
            ..ReceiptState::default()
        }
    );
    assert_eq!(r.receipt_type.as_deref(), Some(RECEIPT_TYPE));
    assert_eq!(r.receipt, Some(validated.receipt));
    assert!(r.reasons.is_empty());
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        r.callback_url.as_deref(),
        submitted.callback_url.as_ref().map(CallbackUrl::as_str)
    );
    assert_eq!(r.received_at, Some(submitted.meta.occurred_at));
    assert!(r.updated_at >= after_submit.updated_at);
    let timeline: Vec<_> = r
        .timeline
        .iter()
        .map(|e| (e.event_id, e.event, e.status))
        .collect();
    assert_eq!(
        timeline,
        [
            (
                submitted.meta.event_id,
                EventKind::Submitted,
                Status::Received
            ),
            (
                validated.meta.event_id,
                EventKind::Validated,
                Status::Validated
            ),
        ]
    );
}

/// The sad path: RECEIVED, then REJECTED with every reason; a late validation changes nothing.
pub async fn submitted_then_rejected<S: StatusStore>(store: &S) {
    let fx = ReceiptFixture::new();
    let (submitted, rejected) = (fx.submitted(), fx.rejected());
    assert_eq!(
        apply(store, submitted.clone()).await,
        applied(Status::Received, Status::Received)
    );
    assert_eq!(
        apply(store, rejected.clone()).await,
        applied(Status::Received, Status::Rejected)
    );
    let r = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!((r.status, r.version), (Status::Rejected, 2));
    assert_eq!(r.reasons, rejected.reasons);
    assert_eq!(r.receipt, None);
    let statuses: Vec<_> = r.timeline.iter().map(|e| (e.event, e.status)).collect();
    assert_eq!(
        statuses,
        [
            (EventKind::Submitted, Status::Received),
            (EventKind::Rejected, Status::Rejected)
        ]
    );

    // Rejection is terminal: a validation arriving afterwards is recorded but moves nothing.
    assert_eq!(
        apply(store, fx.validated()).await,
        applied(Status::Rejected, Status::Rejected)
    );
    let r = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!(
        (r.status, r.version, r.timeline.len()),
        (Status::Rejected, 3, 3)
    );
}

/// Redelivering an event (same event id, even with different data) changes nothing at all.
pub async fn duplicate_event_changes_nothing<S: StatusStore>(store: &S) {
    let fx = ReceiptFixture::new();
    let (submitted, validated) = (fx.submitted(), fx.validated());
    apply(store, submitted.clone()).await;
    apply(store, validated.clone()).await;
    let before = record(store, &fx.tenant, fx.receipt_id).await;
    let document_before = store
        .document(&fx.tenant, fx.receipt_id)
        .await
        .expect("document()");

    // Each answer carries the transition the event caused the first time.
    assert_eq!(
        apply(store, validated.clone()).await,
        duplicate(Status::Received, Status::Validated)
    );
    assert_eq!(
        apply(store, submitted.clone()).await,
        duplicate(Status::Received, Status::Received)
    );
    // A redelivery is recognised by its id alone.
    let mut altered = submitted.clone();
    altered.document = b"{\"tampered\": true}".to_vec();
    altered.content_type = "application/xml".to_owned();
    assert_eq!(
        apply(store, altered).await,
        duplicate(Status::Received, Status::Received)
    );

    let after = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!(
        after, before,
        "a duplicate must not change the receipt, its version or its timeline"
    );
    assert_eq!(after.version, 2);
    assert_eq!(
        store
            .document(&fx.tenant, fx.receipt_id)
            .await
            .expect("document()"),
        document_before
    );
}

/// The validation outcome may overtake the submission (different topics): the receipt ends
/// exactly as if they had arrived in order.
pub async fn out_of_order_matches_in_order<S: StatusStore>(store: &S) {
    let fx = ReceiptFixture::new();
    let submitted = ReceiptEvent::from(fx.submitted());
    let validated = ReceiptEvent::from(fx.validated());

    apply(store, submitted.clone()).await;
    apply(store, validated.clone()).await;
    let in_order = record(store, &fx.tenant, fx.receipt_id).await;

    let late = ReceiptFixture::for_tenant(fx.tenant.clone());
    assert_eq!(
        apply(store, retarget(&validated, late.receipt_id)).await,
        applied(Status::Received, Status::Validated)
    );
    assert_eq!(
        apply(store, retarget(&submitted, late.receipt_id)).await,
        applied(Status::Validated, Status::Validated)
    );
    let out_of_order = record(store, &fx.tenant, late.receipt_id).await;

    assert_eq!(converged(&out_of_order), converged(&in_order));
    assert_eq!(out_of_order.status, Status::Validated);
    // The timeline is in order of occurrence, each entry with the status it left behind.
    let timeline: Vec<_> = out_of_order
        .timeline
        .iter()
        .map(|e| (e.event, e.status))
        .collect();
    assert_eq!(
        timeline,
        [
            (EventKind::Submitted, Status::Validated),
            (EventKind::Validated, Status::Validated)
        ]
    );
    let document = store
        .document(&fx.tenant, late.receipt_id)
        .await
        .expect("document()");
    assert_eq!(document.map(|d| d.bytes), Some(SAMPLE_DOCUMENT.to_vec()));
}

/// Every order of the same events (one of them delivered twice) ends in the same receipt.
pub async fn every_permutation_converges<S: StatusStore>(store: &S) {
    let fx = ReceiptFixture::new();
    let validated = ReceiptEvent::from(fx.validated());
    let mut rejected = fx.rejected();
    rejected.meta.occurred_at += TimeDelta::seconds(1);
    let events = [
        ReceiptEvent::from(fx.submitted()),
        validated.clone(),
        rejected.into(),
        validated,
    ];

    let mut outcomes = Vec::new();
    for order in permutations(events.len()) {
        let receipt_id = ReceiptId::new();
        let mut duplicates = 0;
        for &i in &order {
            if is_duplicate(apply(store, retarget(&events[i], receipt_id)).await) {
                duplicates += 1;
            }
        }
        assert_eq!(duplicates, 1, "order {order:?}");
        let r = record(store, &fx.tenant, receipt_id).await;
        assert_timeline_ordered(&r);
        outcomes.push((order, converged(&r)));
    }
    assert_eq!(outcomes.len(), 24);
    let (_, first) = &outcomes[0];
    assert_eq!(first.status, Status::Rejected);
    assert_eq!((first.version, first.timeline.len()), (3, 3));
    for (order, outcome) in &outcomes {
        assert_eq!(outcome, first, "order {order:?} diverged");
    }
}

// ---------------------------------------------------------------------------------------------
// Registrations (stores opened with the default policy: tax and logistics required)
// ---------------------------------------------------------------------------------------------

/// The names of the registries in `registrations`, in the order given.
fn registry_names(registrations: &[Registration]) -> Vec<&str> {
    registrations.iter().map(|r| r.registry.as_str()).collect()
}

/// ACCEPTED once the receipt is valid and every required registry registered it, in any order;
/// registrations projected before the validation count too.
pub async fn accepted_once_every_required_registry_registered<S: StatusStore>(store: &S) {
    use Status::{Accepted, Received, Validated};
    let fx = ReceiptFixture::new();
    assert_eq!(
        apply(store, fx.submitted()).await,
        applied(Received, Received)
    );
    assert_eq!(
        apply(store, fx.validated()).await,
        applied(Received, Validated)
    );
    assert_eq!(
        apply(store, fx.registered(TAX)).await,
        applied(Validated, Validated),
        "one registry is not enough"
    );
    assert_eq!(
        apply(store, fx.registered(LOGISTICS)).await,
        applied(Validated, Accepted)
    );
    let r = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!((r.status, r.version), (Accepted, 4));
    assert_eq!(registry_names(&r.registrations), [LOGISTICS, TAX]);
    assert!(r.failures.is_empty());
    let timeline: Vec<_> = r
        .timeline
        .iter()
        .map(|e| {
            (
                e.event,
                e.status,
                e.registry.as_ref().map(RegistryName::as_str),
            )
        })
        .collect();
    assert_eq!(
        timeline,
        [
            (EventKind::Submitted, Received, None),
            (EventKind::Validated, Validated, None),
            (EventKind::Registered, Validated, Some(TAX)),
            (EventKind::Registered, Accepted, Some(LOGISTICS)),
        ]
    );

    // Registrations can overtake the validation (other topics): the receipt is not accepted
    // before it is known to be valid, and is the moment it is.
    let early = ReceiptFixture::for_tenant(fx.tenant.clone());
    assert_eq!(
        apply(store, early.registered(LOGISTICS)).await,
        applied(Received, Received)
    );
    assert_eq!(
        apply(store, early.registered(TAX)).await,
        applied(Received, Received),
        "registered but not known to be valid"
    );
    assert_eq!(
        apply(store, early.submitted()).await,
        applied(Received, Received)
    );
    assert_eq!(
        apply(store, early.validated()).await,
        applied(Received, Accepted)
    );
    let r = record(store, &early.tenant, early.receipt_id).await;
    assert_eq!((r.status, r.version), (Accepted, 4));
    assert_eq!(r.receipt_type.as_deref(), Some(RECEIPT_TYPE));
    assert_eq!(registry_names(&r.registrations), [LOGISTICS, TAX]);
}

/// FAILED as soon as one registry failed for good, with the failure; FAILED is terminal.
pub async fn failed_when_a_registry_failed<S: StatusStore>(store: &S) {
    use Status::{Failed, Received, Validated};
    let fx = ReceiptFixture::new();
    apply(store, fx.submitted()).await;
    apply(store, fx.validated()).await;
    let tax = fx.registered(TAX);
    assert_eq!(
        apply(store, tax.clone()).await,
        applied(Validated, Validated)
    );
    let refused = fx.registration_failed(LOGISTICS);
    assert_eq!(
        apply(store, refused.clone()).await,
        applied(Validated, Failed)
    );
    let r = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!((r.status, r.version), (Failed, 4));
    assert_eq!(r.failures, std::slice::from_ref(&refused.failure));
    assert_eq!(r.registrations, [tax.registration]);
    let last = r.timeline.last().expect("a timeline");
    assert_eq!(
        (last.event, last.status, last.registry.as_ref()),
        (
            EventKind::RegistrationFailed,
            Failed,
            Some(&refused.failure.registry)
        )
    );

    // Terminal: a registration reported afterwards is recorded, and changes no status.
    assert_eq!(
        apply(store, fx.registered(LOGISTICS)).await,
        applied(Failed, Failed)
    );
    assert_eq!(
        record(store, &fx.tenant, fx.receipt_id).await.status,
        Failed
    );

    // A failure can overtake the validation, and even the submission.
    let early = ReceiptFixture::for_tenant(fx.tenant.clone());
    assert_eq!(
        apply(store, early.registration_failed(TAX)).await,
        applied(Received, Failed)
    );
    assert_eq!(
        apply(store, early.validated()).await,
        applied(Failed, Failed)
    );
    assert_eq!(
        apply(store, early.submitted()).await,
        applied(Failed, Failed)
    );
    let r = record(store, &early.tenant, early.receipt_id).await;
    assert_eq!((r.status, r.failures.len()), (Failed, 1));
}

/// REJECTED beats FAILED beats ACCEPTED, whichever arrives last.
pub async fn rejected_beats_failed_beats_accepted<S: StatusStore>(store: &S) {
    use Status::{Accepted, Failed, Rejected, Validated};
    let fx = ReceiptFixture::new();
    apply(store, fx.validated()).await;
    apply(store, fx.registered(TAX)).await;
    assert_eq!(
        apply(store, fx.registered(LOGISTICS)).await,
        applied(Validated, Accepted)
    );
    assert_eq!(
        apply(store, fx.registration_failed(LOGISTICS)).await,
        applied(Accepted, Failed)
    );
    assert_eq!(apply(store, fx.rejected()).await, applied(Failed, Rejected));
    let r = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!(r.status, Rejected);
    // The data of every fact is kept, whatever the status.
    assert_eq!(registry_names(&r.registrations), [LOGISTICS, TAX]);
    assert_eq!(
        (r.failures.len(), r.reasons.len()),
        (1, sample_reasons().len())
    );

    // The other way round: nothing after a rejection moves it.
    let other = ReceiptFixture::for_tenant(fx.tenant.clone());
    apply(store, other.rejected()).await;
    for event in [
        ReceiptEvent::from(other.validated()),
        other.registration_failed(TAX).into(),
        other.registered(LOGISTICS).into(),
    ] {
        assert_eq!(apply(store, event).await, applied(Rejected, Rejected));
    }
    // And nothing but a rejection moves FAILED.
    let failed = ReceiptFixture::for_tenant(fx.tenant.clone());
    apply(store, failed.registration_failed(TAX)).await;
    for event in [
        ReceiptEvent::from(failed.validated()),
        failed.registered(TAX).into(),
        failed.registered(LOGISTICS).into(),
    ] {
        assert_eq!(apply(store, event).await, applied(Failed, Failed));
    }
}

/// The store's policy decides which registries ACCEPTED needs. `open` opens a store of the
/// backend under test with the given policy (the stores may share one database).
pub async fn the_policy_decides_what_accepted_needs<S, F, Fut>(mut open: F)
where
    S: StatusStore,
    F: FnMut(StatusPolicy) -> Fut,
    Fut: Future<Output = S>,
{
    use Status::{Accepted, Validated};
    let only_tax = open(StatusPolicy::new([registry(TAX)])).await;
    let fx = ReceiptFixture::new();
    apply(&only_tax, fx.submitted()).await;
    apply(&only_tax, fx.validated()).await;
    assert_eq!(
        apply(&only_tax, fx.registered(TAX)).await,
        applied(Validated, Accepted),
        "tax alone is enough"
    );
    assert_eq!(
        apply(&only_tax, fx.registered(LOGISTICS)).await,
        applied(Accepted, Accepted),
        "a registration no one requires changes nothing"
    );
    assert_eq!(
        record(&only_tax, &fx.tenant, fx.receipt_id).await.status,
        Accepted
    );

    let default = open(StatusPolicy::default()).await;
    let fx = ReceiptFixture::new();
    apply(&default, fx.validated()).await;
    assert_eq!(
        apply(&default, fx.registered(TAX)).await,
        applied(Validated, Validated)
    );
    assert_eq!(
        apply(&default, fx.registered(LOGISTICS)).await,
        applied(Validated, Accepted)
    );

    let customs = "customs";
    let three = open(StatusPolicy::new([TAX, LOGISTICS, customs].map(registry))).await;
    let fx = ReceiptFixture::new();
    apply(&three, fx.validated()).await;
    apply(&three, fx.registered(TAX)).await;
    assert_eq!(
        apply(&three, fx.registered(LOGISTICS)).await,
        applied(Validated, Validated)
    );
    assert_eq!(
        apply(&three, fx.registered(customs)).await,
        applied(Validated, Accepted)
    );
    let r = record(&three, &fx.tenant, fx.receipt_id).await;
    assert_eq!(registry_names(&r.registrations), [customs, LOGISTICS, TAX]);
}

/// The first registration (and the first failure) reported per registry is the one kept;
/// later reports with other event ids still enter the timeline.
pub async fn registrations_and_failures_first_wins<S: StatusStore>(store: &S) {
    use Status::{Accepted, Failed, Validated};
    let fx = ReceiptFixture::new();
    let tax = fx.registered(TAX);
    let mut tax_again = fx.registered(TAX);
    tax_again.registration.registration_id = "tax-a-second-number".to_owned();
    tax_again.registration.attempts = 3;
    tax_again.meta.occurred_at += TimeDelta::seconds(1);
    let logistics = fx.registered(LOGISTICS);
    apply(store, fx.submitted()).await;
    apply(store, fx.validated()).await;
    assert_eq!(
        apply(store, tax.clone()).await,
        applied(Validated, Validated)
    );
    assert_eq!(
        apply(store, tax_again.clone()).await,
        applied(Validated, Validated),
        "another event id: not a duplicate"
    );
    assert_eq!(
        apply(store, logistics.clone()).await,
        applied(Validated, Accepted)
    );
    let r = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!(r.registrations, [logistics.registration, tax.registration]);
    assert_eq!(r.version, 5);
    let tax_entries: Vec<EventId> = r
        .timeline
        .iter()
        .filter(|e| e.registry.as_ref().is_some_and(|n| n.as_str() == TAX))
        .map(|e| e.event_id)
        .collect();
    assert_eq!(tax_entries, [tax.meta.event_id, tax_again.meta.event_id]);

    let fx = ReceiptFixture::new();
    let refused = fx.registration_failed(TAX);
    let mut gave_up = fx.registration_failed(TAX);
    gave_up.failure.code = receipts_domain::registry::failure_code::HORIZON_EXCEEDED.to_owned();
    gave_up.failure.reason = "not reachable within 36h".to_owned();
    let logistics_refused = fx.registration_failed(LOGISTICS);
    apply(store, fx.validated()).await;
    assert_eq!(
        apply(store, refused.clone()).await,
        applied(Validated, Failed)
    );
    assert_eq!(apply(store, gave_up).await, applied(Failed, Failed));
    assert_eq!(
        apply(store, logistics_refused.clone()).await,
        applied(Failed, Failed)
    );
    let r = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!(r.failures, [logistics_refused.failure, refused.failure]);
    assert!(r.registrations.is_empty());
    assert_eq!(r.timeline.len(), 4);
}

/// A redelivered event answers with the transition it caused when first applied, not with the
/// receipt's current status.
pub async fn duplicate_carries_the_original_transition<S: StatusStore>(store: &S) {
    use Status::{Accepted, Received, Validated};
    let fx = ReceiptFixture::new();
    let events: [ReceiptEvent; 4] = [
        fx.submitted().into(),
        fx.validated().into(),
        fx.registered(TAX).into(),
        fx.registered(LOGISTICS).into(),
    ];
    let transitions = [
        (Received, Received),
        (Received, Validated),
        (Validated, Validated),
        (Validated, Accepted),
    ];
    for (event, (from, to)) in events.iter().zip(transitions) {
        assert_eq!(apply(store, event.clone()).await, applied(from, to));
    }
    let before = record(store, &fx.tenant, fx.receipt_id).await;
    for (event, (from, to)) in events.iter().zip(transitions).rev() {
        assert_eq!(
            apply(store, event.clone()).await,
            duplicate(from, to),
            "{}",
            event.kind()
        );
    }
    assert_eq!(record(store, &fx.tenant, fx.receipt_id).await, before);
}

/// An event that states no fact (`status_changed`) is ignored: it creates no receipt, enters no
/// timeline and changes nothing.
pub async fn status_changed_is_ignored<S: StatusStore>(store: &S) {
    let fx = ReceiptFixture::new();
    let changed = ReceiptEvent::from(fx.status_changed());
    assert_eq!(apply(store, changed.clone()).await, Applied::Ignored);
    assert_eq!(
        store
            .receipt(&fx.tenant, fx.receipt_id)
            .await
            .expect("receipt()"),
        None
    );
    assert_eq!(
        store.tenant_of(fx.receipt_id).await.expect("tenant_of()"),
        None
    );

    apply(store, fx.submitted()).await;
    let before = record(store, &fx.tenant, fx.receipt_id).await;
    for _ in 0..2 {
        assert_eq!(apply(store, changed.clone()).await, Applied::Ignored);
    }
    assert_eq!(record(store, &fx.tenant, fx.receipt_id).await, before);
}

/// `tenant_of` names the owner of any receipt, however it was created; unknown ids are `None`.
pub async fn tenant_of_finds_the_owner<S: StatusStore>(store: &S) {
    assert_eq!(
        store
            .tenant_of(ReceiptId::new())
            .await
            .expect("tenant_of()"),
        None
    );
    let (submitted, registered) = (ReceiptFixture::new(), ReceiptFixture::new());
    apply(store, submitted.submitted()).await;
    apply(store, registered.registered(LOGISTICS)).await;
    for fx in [&submitted, &registered] {
        assert_eq!(
            store.tenant_of(fx.receipt_id).await.expect("tenant_of()"),
            Some(fx.tenant.clone())
        );
    }
}

/// Every order of a full happy path (submitted, validated, registered with tax and with
/// logistics, and the validation redelivered) ends in the same ACCEPTED receipt, reaching
/// ACCEPTED exactly once.
pub async fn every_permutation_of_a_registration_converges<S: StatusStore>(store: &S) {
    let fx = ReceiptFixture::new();
    let validated = ReceiptEvent::from(fx.validated());
    let events = [
        ReceiptEvent::from(fx.submitted()),
        validated.clone(),
        fx.registered(TAX).into(),
        fx.registered(LOGISTICS).into(),
        validated,
    ];

    let mut outcomes = Vec::new();
    for order in permutations(events.len()) {
        let receipt_id = ReceiptId::new();
        let (mut duplicates, mut accepted) = (0, 0);
        for &i in &order {
            match apply(store, retarget(&events[i], receipt_id)).await {
                Applied::Applied(t) if t.changed() && t.to == Status::Accepted => accepted += 1,
                Applied::Applied(_) => {}
                Applied::Duplicate(_) => duplicates += 1,
                Applied::Ignored => panic!("order {order:?}: a fact was ignored"),
            }
        }
        assert_eq!((duplicates, accepted), (1, 1), "order {order:?}");
        let r = record(store, &fx.tenant, receipt_id).await;
        assert_timeline_ordered(&r);
        outcomes.push((order, converged(&r)));
    }
    assert_eq!(outcomes.len(), 120);
    let (_, first) = &outcomes[0];
    assert_eq!(first.status, Status::Accepted);
    assert_eq!((first.version, first.timeline.len()), (4, 4));
    assert_eq!(registry_names(&first.registrations), [LOGISTICS, TAX]);
    for (order, outcome) in &outcomes {
        assert_eq!(outcome, first, "order {order:?} diverged");
    }
}

// ---------------------------------------------------------------------------------------------
// Tenancy and documents
// ---------------------------------------------------------------------------------------------

/// A receipt and its document are visible to their own tenant only; unknown ids are `None`.
pub async fn receipts_are_tenant_isolated<S: StatusStore>(store: &S) {
    let fx = ReceiptFixture::new();
    let stranger = unique_tenant();
    apply(store, fx.submitted()).await;

    assert!(
        store
            .receipt(&fx.tenant, fx.receipt_id)
            .await
            .expect("receipt()")
            .is_some()
    );
    assert!(
        store
            .document(&fx.tenant, fx.receipt_id)
            .await
            .expect("document()")
            .is_some()
    );
    assert_eq!(
        store
            .receipt(&stranger, fx.receipt_id)
            .await
            .expect("receipt()"),
        None
    );
    assert_eq!(
        store
            .document(&stranger, fx.receipt_id)
            .await
            .expect("document()"),
        None
    );

    let unknown = ReceiptId::new();
    assert_eq!(
        store.receipt(&fx.tenant, unknown).await.expect("receipt()"),
        None
    );
    assert_eq!(
        store
            .document(&fx.tenant, unknown)
            .await
            .expect("document()"),
        None
    );
}

/// An event naming another tenant than the receipt's is refused and changes nothing.
pub async fn tenant_mismatch_is_refused<S: StatusStore>(store: &S) {
    let fx = ReceiptFixture::new();
    let intruder = unique_tenant();
    apply(store, fx.submitted()).await;
    let before = record(store, &fx.tenant, fx.receipt_id).await;

    let foreign = with_tenant(&fx.validated().into(), &intruder);
    for _ in 0..2 {
        // Twice: a refused event is not recorded, so it is refused again rather than a duplicate.
        match store.apply(&foreign).await {
            Err(Error::TenantMismatch {
                receipt_id,
                event_tenant,
                stored_tenant,
            }) => {
                assert_eq!(
                    (receipt_id, &event_tenant, &stored_tenant),
                    (fx.receipt_id, &intruder, &fx.tenant)
                );
            }
            other => panic!("expected TenantMismatch, got {other:?}"),
        }
    }
    assert_eq!(record(store, &fx.tenant, fx.receipt_id).await, before);
    assert_eq!(
        store
            .receipt(&intruder, fx.receipt_id)
            .await
            .expect("receipt()"),
        None
    );

    // The same event from the right tenant still applies.
    let own = with_tenant(&foreign, &fx.tenant);
    assert_eq!(
        apply(store, own).await,
        applied(Status::Received, Status::Validated)
    );
}

/// Documents come back exactly as submitted, byte for byte, whatever the bytes are.
pub async fn documents_are_byte_exact<S: StatusStore>(store: &S) {
    let mut every_byte: Vec<u8> = (0..=255).collect();
    every_byte.extend_from_slice(b"\xef\xbb\xbf<?xml?>\r\n\x00\xff\xfe trailing  \n");
    let documents = [
        (
            "application/xml; charset=utf-8",
            b"\xef\xbb\xbf<r a='1'>\r\n  <b/>\t</r>\n".to_vec(),
        ),
        ("application/octet-stream", every_byte),
        (
            "application/json",
            b"{\"sig\": \"\xc3\xa4\", \"pad\": \"    \"}   ".to_vec(),
        ),
        ("application/json", vec![b'x'; 256 * 1024]),
    ];
    for (content_type, bytes) in documents {
        let fx = ReceiptFixture::new();
        apply(store, fx.submitted_with(content_type, bytes.clone())).await;
        let stored = store
            .document(&fx.tenant, fx.receipt_id)
            .await
            .expect("document()")
            .expect("a document");
        assert_eq!(stored.content_type, content_type);
        assert!(
            stored.bytes == bytes,
            "document of {} bytes changed in storage",
            bytes.len()
        );
    }
}

/// The document is there once the submission is recorded, not before, even if the receipt is.
pub async fn document_needs_submission<S: StatusStore>(store: &S) {
    let fx = ReceiptFixture::new();
    apply(store, fx.validated()).await;
    assert!(
        store
            .receipt(&fx.tenant, fx.receipt_id)
            .await
            .expect("receipt()")
            .is_some()
    );
    assert_eq!(
        store
            .document(&fx.tenant, fx.receipt_id)
            .await
            .expect("document()"),
        None
    );
    apply(store, fx.submitted()).await;
    let stored = store
        .document(&fx.tenant, fx.receipt_id)
        .await
        .expect("document()");
    assert_eq!(stored.map(|d| d.bytes), Some(SAMPLE_DOCUMENT.to_vec()));
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

/// 50 concurrent `apply` calls for one receipt (25 distinct events, each delivered twice):
/// every distinct event is applied exactly once and the version counts them.
pub async fn concurrent_applies_keep_each_event_once<S: StatusStore + Clone>(store: &S) {
    const DISTINCT: usize = 25;
    let fx = ReceiptFixture::new();
    let mut events: Vec<ReceiptEvent> = Vec::with_capacity(DISTINCT);
    let kinds: Vec<EventKind> = fact_kinds().collect();
    for i in 0..DISTINCT {
        let offset = TimeDelta::milliseconds(i64::try_from(i).unwrap_or_default());
        let mut event = fx.event(kinds[i % kinds.len()]);
        meta_mut(&mut event).occurred_at = fx.submitted_at + offset;
        events.push(event);
    }
    let distinct: BTreeSet<EventId> = events.iter().map(|e| e.meta().event_id).collect();

    let deliveries: Vec<ReceiptEvent> = events.iter().chain(events.iter().rev()).cloned().collect();
    let start = Arc::new(tokio::sync::Barrier::new(deliveries.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for event in deliveries {
        let (store, start) = (store.clone(), start.clone());
        tasks.spawn(async move {
            start.wait().await;
            let outcome = store.apply(&event).await;
            (event.meta().event_id, outcome)
        });
    }
    let mut applied_per_event: BTreeMap<EventId, usize> = BTreeMap::new();
    let mut duplicates = 0;
    while let Some(joined) = tasks.join_next().await {
        let (event_id, outcome) = joined.expect("apply task panicked");
        match outcome {
            Ok(Applied::Applied(_)) => *applied_per_event.entry(event_id).or_default() += 1,
            Ok(Applied::Duplicate(_)) => duplicates += 1,
            Ok(Applied::Ignored) => panic!("a fact-stating event was ignored"),
            Err(e) => panic!("concurrent apply failed: {e}"),
        }
    }
    assert_eq!(duplicates, DISTINCT);
    assert_eq!(
        applied_per_event.keys().copied().collect::<BTreeSet<_>>(),
        distinct
    );
    assert!(
        applied_per_event.values().all(|&n| n == 1),
        "{applied_per_event:?}"
    );

    let r = record(store, &fx.tenant, fx.receipt_id).await;
    assert_eq!(r.version, DISTINCT as u64);
    assert_eq!(r.timeline.len(), DISTINCT);
    assert_eq!(
        r.timeline
            .iter()
            .map(|e| e.event_id)
            .collect::<BTreeSet<_>>(),
        distinct
    );
    assert_timeline_ordered(&r);
    assert_eq!(r.status, Status::Rejected);
}

// ---------------------------------------------------------------------------------------------
// API clients
// ---------------------------------------------------------------------------------------------

fn new_client(tenant: &TenantId, scope: Scope, label: Option<&str>) -> (ApiKey, NewClient) {
    let key = ApiKey::generate();
    let client = NewClient {
        id: ClientId::new(),
        tenant_id: tenant.clone(),
        scope,
        key_hash: key.hash(),
        key_prefix: key.display_prefix(),
        label: label.map(str::to_owned),
    };
    (key, client)
}

async fn create<S: ClientStore>(store: &S, client: &NewClient) -> ApiClient {
    let created = store.create_client(client).await.expect("create_client");
    assert_eq!(
        (
            created.id,
            &created.tenant_id,
            created.scope,
            &created.key_prefix,
            &created.label
        ),
        (
            client.id,
            &client.tenant_id,
            client.scope,
            &client.key_prefix,
            &client.label
        )
    );
    assert!(created.is_active());
    // Distinct creation times, so "oldest first" is well defined on every backend.
    tokio::time::sleep(Duration::from_millis(3)).await;
    created
}

/// Clients can be created, found by key hash, listed oldest first (all or per tenant) and
/// revoked once; a revoked client is still found, marked revoked.
pub async fn clients_create_lookup_list_revoke<S: ClientStore>(store: &S) {
    let (tenant, other) = (unique_tenant(), unique_tenant());
    let (key_a, new_a) = new_client(&tenant, Scope::ReadWrite, Some("shop A"));
    let (_, new_b) = new_client(&tenant, Scope::Read, None);
    let (_, new_c) = new_client(&other, Scope::Read, Some("auditor"));
    let a = create(store, &new_a).await;
    let b = create(store, &new_b).await;
    let c = create(store, &new_c).await;

    let found = store
        .client_by_key_hash(&crate::api_key::hash_key(key_a.expose()))
        .await
        .expect("lookup");
    assert_eq!(found.as_ref(), Some(&a));
    assert_eq!(
        store
            .client_by_key_hash(&new_c.key_hash)
            .await
            .expect("lookup"),
        Some(c.clone())
    );
    assert_eq!(
        store
            .client_by_key_hash(&ApiKey::generate().hash())
            .await
            .expect("lookup"),
        None
    );

    assert_eq!(
        store.list_clients(Some(&tenant)).await.expect("list"),
        [a.clone(), b.clone()]
    );
    assert_eq!(
        store.list_clients(Some(&other)).await.expect("list"),
        std::slice::from_ref(&c)
    );
    assert_eq!(
        store
            .list_clients(Some(&unique_tenant()))
            .await
            .expect("list"),
        []
    );
    // Other tests may have clients in the same store: ours appear, oldest first.
    let all = store.list_clients(None).await.expect("list");
    let ours: Vec<_> = all
        .iter()
        .filter(|x| [a.id, b.id, c.id].contains(&x.id))
        .cloned()
        .collect();
    assert_eq!(ours, [a.clone(), b.clone(), c.clone()]);
    assert!(
        all.windows(2).all(|w| w[0].created_at <= w[1].created_at),
        "list is not oldest first"
    );

    assert!(store.revoke_client(a.id).await.expect("revoke"));
    assert!(
        !store.revoke_client(a.id).await.expect("revoke"),
        "revoking twice"
    );
    assert!(
        !store.revoke_client(ClientId::new()).await.expect("revoke"),
        "revoking an unknown client"
    );

    let revoked = store
        .client_by_key_hash(&new_a.key_hash)
        .await
        .expect("lookup")
        .expect("still found");
    assert!(!revoked.is_active());
    let revoked_at = revoked.revoked_at.expect("revoked_at is set");
    assert!(revoked_at >= a.created_at);
    assert_eq!(
        ApiClient {
            revoked_at: None,
            ..revoked.clone()
        },
        a
    );
    assert_eq!(
        store.list_clients(Some(&tenant)).await.expect("list"),
        [revoked, b]
    );
    assert!(
        store
            .client_by_key_hash(&new_b.key_hash)
            .await
            .expect("lookup")
            .is_some_and(|x| x.is_active())
    );
}

/// Two clients can never share a key hash (nor an id).
pub async fn duplicate_client_key_is_refused<S: ClientStore>(store: &S) {
    let tenant = unique_tenant();
    let (_, first) = new_client(&tenant, Scope::ReadWrite, None);
    let created = create(store, &first).await;

    let same_key = NewClient {
        id: ClientId::new(),
        tenant_id: unique_tenant(),
        ..first.clone()
    };
    let err = store
        .create_client(&same_key)
        .await
        .expect_err("a second client with the same key hash");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");

    let (_, other_key) = new_client(&tenant, Scope::Read, None);
    let same_id = NewClient {
        id: first.id,
        ..other_key
    };
    let err = store
        .create_client(&same_id)
        .await
        .expect_err("a second client with the same id");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");

    assert_eq!(
        store
            .client_by_key_hash(&first.key_hash)
            .await
            .expect("lookup"),
        Some(created.clone())
    );
    assert_eq!(
        store.list_clients(Some(&tenant)).await.expect("list"),
        [created]
    );
}

// ---------------------------------------------------------------------------------------------
// Webhooks: endpoints, secrets, delivery log
// ---------------------------------------------------------------------------------------------

/// A new endpoint of `tenant` with a fresh secret.
pub fn new_endpoint(tenant: &TenantId, events: Option<Vec<WebhookEventType>>) -> NewEndpoint {
    let id = EndpointId::new();
    NewEndpoint {
        id,
        tenant_id: tenant.clone(),
        url: format!("https://partner.example/hooks/{id}"),
        description: Some("order updates".to_owned()),
        events,
        secret: WebhookSecret::generate(),
    }
}

/// Creates `new` and checks what comes back.
async fn create_endpoint<S: WebhookStore>(store: &S, new: &NewEndpoint) -> Endpoint {
    let created = store.create_endpoint(new).await.expect("create_endpoint");
    assert_eq!(
        (
            created.id,
            &created.tenant_id,
            &created.url,
            &created.description,
            &created.events
        ),
        (
            new.id,
            &new.tenant_id,
            &new.url,
            &new.description,
            &new.events
        )
    );
    assert!(created.enabled);
    assert_eq!(
        (&created.disabled_reason, created.failing_since),
        (&None, None)
    );
    assert_eq!(
        created.secrets,
        [StoredSecret {
            secret: new.secret.clone(),
            expires_at: None
        }]
    );
    assert_eq!(created.created_at, created.updated_at);
    // Distinct creation times, so "oldest first" is well defined on every backend.
    tokio::time::sleep(Duration::from_millis(3)).await;
    created
}

async fn endpoint_of<S: WebhookStore>(store: &S, tenant: &TenantId, id: EndpointId) -> Endpoint {
    store
        .endpoint(tenant, id)
        .await
        .expect("endpoint()")
        .expect("the endpoint exists")
}

async fn subscribed<S: WebhookStore>(
    store: &S,
    tenant: &TenantId,
    event: WebhookEventType,
) -> Vec<EndpointId> {
    store
        .subscribed_endpoints(tenant, event)
        .await
        .expect("subscribed_endpoints()")
        .into_iter()
        .map(|e| e.id)
        .collect()
}

fn secret(secret: &WebhookSecret, expires_at: Option<DateTime<Utc>>) -> StoredSecret {
    StoredSecret {
        secret: secret.clone(),
        expires_at,
    }
}

/// Endpoints can be created, read (by tenant and id, by id alone, listed oldest first), updated
/// and deleted; another tenant's endpoint does not exist for anyone else, whatever they try.
pub async fn webhook_endpoints_crud_and_tenant_isolation<S: WebhookStore>(store: &S) {
    let (tenant, other) = (unique_tenant(), unique_tenant());
    let a = create_endpoint(store, &new_endpoint(&tenant, None)).await;
    let new_b = NewEndpoint {
        description: None,
        ..new_endpoint(&tenant, Some(vec![WebhookEventType::Accepted]))
    };
    let b = create_endpoint(store, &new_b).await;
    let c = create_endpoint(store, &new_endpoint(&other, None)).await;

    assert_eq!(endpoint_of(store, &tenant, a.id).await, a);
    assert_eq!(
        store.endpoint_by_id(b.id).await.expect("endpoint_by_id()"),
        Some(b.clone())
    );
    assert_eq!(
        store.endpoints(&tenant).await.expect("endpoints()"),
        [a.clone(), b.clone()]
    );
    assert_eq!(
        store.endpoints(&other).await.expect("endpoints()"),
        std::slice::from_ref(&c)
    );
    assert_eq!(
        store
            .endpoints(&unique_tenant())
            .await
            .expect("endpoints()"),
        []
    );

    let err = store
        .create_endpoint(&NewEndpoint {
            tenant_id: other.clone(),
            ..new_b.clone()
        })
        .await
        .expect_err("a second endpoint with the same id");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(endpoint_of(store, &tenant, b.id).await, b);

    // Another tenant's endpoint, and an unknown one, are not there for anyone.
    for (who, id) in [
        (&other, a.id),
        (&tenant, c.id),
        (&tenant, EndpointId::new()),
    ] {
        assert_eq!(store.endpoint(who, id).await.expect("endpoint()"), None);
        let patch = EndpointPatch {
            url: Some("https://attacker.example/".to_owned()),
            enabled: Some(false),
            ..EndpointPatch::default()
        };
        assert_eq!(
            store
                .update_endpoint(who, id, &patch)
                .await
                .expect("update_endpoint()"),
            None
        );
        assert_eq!(
            store
                .rotate_endpoint_secret(who, id, WebhookSecret::generate(), now_millis())
                .await
                .expect("rotate_endpoint_secret()"),
            None
        );
        assert!(
            !store
                .delete_endpoint(who, id)
                .await
                .expect("delete_endpoint()")
        );
    }
    assert_eq!(
        store
            .endpoint_by_id(EndpointId::new())
            .await
            .expect("endpoint_by_id()"),
        None
    );
    assert_eq!(endpoint_of(store, &tenant, a.id).await, a);
    assert_eq!(endpoint_of(store, &other, c.id).await, c);
    assert_eq!(
        subscribed(store, &other, WebhookEventType::Accepted).await,
        [c.id]
    );

    // Updates change what they name and nothing else.
    let patch = EndpointPatch {
        url: Some("https://partner.example/v2/hooks".to_owned()),
        description: Some(None),
        ..EndpointPatch::default()
    };
    let updated = store
        .update_endpoint(&tenant, a.id, &patch)
        .await
        .expect("update_endpoint()")
        .expect("found");
    assert!(updated.updated_at >= a.updated_at);
    assert_eq!(
        updated,
        Endpoint {
            url: "https://partner.example/v2/hooks".to_owned(),
            description: None,
            updated_at: updated.updated_at,
            ..a.clone()
        }
    );
    assert_eq!(endpoint_of(store, &tenant, a.id).await, updated);
    let described = store
        .update_endpoint(
            &tenant,
            a.id,
            &EndpointPatch {
                description: Some(Some("all outcomes".to_owned())),
                ..EndpointPatch::default()
            },
        )
        .await
        .expect("update_endpoint()")
        .expect("found");
    assert_eq!(described.description.as_deref(), Some("all outcomes"));
    assert_eq!(described.url, updated.url);
    let unchanged = store
        .update_endpoint(&tenant, a.id, &EndpointPatch::default())
        .await
        .expect("update_endpoint()")
        .expect("found");
    assert_eq!(
        unchanged,
        Endpoint {
            updated_at: unchanged.updated_at,
            ..described.clone()
        }
    );

    // Deleting takes it out of every read, once.
    assert!(
        store
            .delete_endpoint(&tenant, a.id)
            .await
            .expect("delete_endpoint()")
    );
    assert!(
        !store
            .delete_endpoint(&tenant, a.id)
            .await
            .expect("delete_endpoint()")
    );
    assert_eq!(
        store.endpoint(&tenant, a.id).await.expect("endpoint()"),
        None
    );
    assert_eq!(
        store.endpoint_by_id(a.id).await.expect("endpoint_by_id()"),
        None
    );
    assert_eq!(
        store.endpoints(&tenant).await.expect("endpoints()"),
        std::slice::from_ref(&b)
    );
    assert_eq!(
        store
            .update_endpoint(&tenant, a.id, &EndpointPatch::default())
            .await
            .expect("update_endpoint()"),
        None
    );
}

/// `events` round-trips (`None`, a list, an empty list); `subscribed_endpoints` returns the
/// enabled endpoints that want the event: without `events`, every terminal one.
pub async fn webhook_endpoint_events_and_subscriptions<S: WebhookStore>(store: &S) {
    use WebhookEventType::{Accepted, Failed, Rejected, Validated};
    let tenant = unique_tenant();
    let default = create_endpoint(store, &new_endpoint(&tenant, None)).await;
    let explicit = create_endpoint(
        store,
        &new_endpoint(&tenant, Some(vec![Validated, Rejected])),
    )
    .await;
    let nothing = create_endpoint(store, &new_endpoint(&tenant, Some(Vec::new()))).await;
    let disabled = create_endpoint(store, &new_endpoint(&tenant, None)).await;
    let disabled = store
        .update_endpoint(
            &tenant,
            disabled.id,
            &EndpointPatch {
                enabled: Some(false),
                ..EndpointPatch::default()
            },
        )
        .await
        .expect("update_endpoint()")
        .expect("found");
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some(DISABLED_BY_OWNER));

    assert_eq!(endpoint_of(store, &tenant, default.id).await.events, None);
    assert_eq!(
        endpoint_of(store, &tenant, explicit.id).await.events,
        Some(vec![Validated, Rejected])
    );
    assert_eq!(
        endpoint_of(store, &tenant, nothing.id).await.events,
        Some(Vec::new())
    );

    assert_eq!(subscribed(store, &tenant, Validated).await, [explicit.id]);
    assert_eq!(subscribed(store, &tenant, Accepted).await, [default.id]);
    assert_eq!(
        subscribed(store, &tenant, Rejected).await,
        [default.id, explicit.id]
    );
    assert_eq!(subscribed(store, &tenant, Failed).await, [default.id]);
    assert_eq!(subscribed(store, &unique_tenant(), Accepted).await, []);
    let full = store
        .subscribed_endpoints(&tenant, Rejected)
        .await
        .expect("subscribed_endpoints()");
    assert_eq!(
        full,
        [
            endpoint_of(store, &tenant, default.id).await,
            endpoint_of(store, &tenant, explicit.id).await
        ]
    );

    // Back to the default; and from the default to a list.
    let reset = store
        .update_endpoint(
            &tenant,
            explicit.id,
            &EndpointPatch {
                events: Some(None),
                ..EndpointPatch::default()
            },
        )
        .await
        .expect("update_endpoint()")
        .expect("found");
    assert_eq!(reset.events, None);
    store
        .update_endpoint(
            &tenant,
            default.id,
            &EndpointPatch {
                events: Some(Some(vec![Failed, Validated])),
                ..EndpointPatch::default()
            },
        )
        .await
        .expect("update_endpoint()")
        .expect("found");
    assert_eq!(
        endpoint_of(store, &tenant, default.id).await.events,
        Some(vec![Failed, Validated])
    );
    assert_eq!(subscribed(store, &tenant, Validated).await, [default.id]);
    assert_eq!(subscribed(store, &tenant, Accepted).await, [explicit.id]);
    assert_eq!(
        subscribed(store, &tenant, Failed).await,
        [default.id, explicit.id]
    );

    // Enabled again by its owner: subscribed again.
    let enabled = store
        .update_endpoint(
            &tenant,
            disabled.id,
            &EndpointPatch {
                enabled: Some(true),
                ..EndpointPatch::default()
            },
        )
        .await
        .expect("update_endpoint()")
        .expect("found");
    assert!(enabled.enabled);
    assert_eq!(enabled.disabled_reason, None);
    assert_eq!(
        subscribed(store, &tenant, Accepted).await,
        [explicit.id, disabled.id]
    );
}

/// Rotation makes the new secret current; the previous current one is returned (after it)
/// until its grace period ends and never after; secrets rotated out earlier keep their own
/// expiry.
pub async fn webhook_endpoint_secret_rotation<S: WebhookStore>(store: &S) {
    let tenant = unique_tenant();
    let new = new_endpoint(&tenant, None);
    let s0 = new.secret.clone();
    let endpoint = create_endpoint(store, &new).await;
    let id = endpoint.id;
    let now = now_millis();
    let (hour, two_hours) = (now + TimeDelta::hours(1), now + TimeDelta::hours(2));

    let s1 = WebhookSecret::generate();
    let rotated = store
        .rotate_endpoint_secret(&tenant, id, s1.clone(), hour)
        .await
        .expect("rotate_endpoint_secret()")
        .expect("found");
    let expected = [secret(&s1, None), secret(&s0, Some(hour))];
    assert_eq!(rotated.secrets, expected);
    assert_eq!(endpoint_of(store, &tenant, id).await.secrets, expected);
    assert_eq!(
        store
            .endpoint_by_id(id)
            .await
            .expect("endpoint_by_id()")
            .map(|e| e.secrets),
        Some(expected.to_vec())
    );

    // Only the current secret's expiry is set; the one rotated out before keeps its own.
    let s2 = WebhookSecret::generate();
    let rotated = store
        .rotate_endpoint_secret(&tenant, id, s2.clone(), two_hours)
        .await
        .expect("rotate_endpoint_secret()")
        .expect("found");
    let expected = [
        secret(&s2, None),
        secret(&s1, Some(two_hours)),
        secret(&s0, Some(hour)),
    ];
    assert_eq!(rotated.secrets, expected);
    assert_eq!(
        store.endpoints(&tenant).await.expect("endpoints()")[0].secrets,
        expected
    );

    // An expiry in the past ends the previous secret at once.
    let s3 = WebhookSecret::generate();
    let rotated = store
        .rotate_endpoint_secret(&tenant, id, s3.clone(), now - TimeDelta::seconds(1))
        .await
        .expect("rotate_endpoint_secret()")
        .expect("found");
    let expected = [
        secret(&s3, None),
        secret(&s1, Some(two_hours)),
        secret(&s0, Some(hour)),
    ];
    assert_eq!(rotated.secrets, expected);
    assert_eq!(endpoint_of(store, &tenant, id).await.secrets, expected);

    // A grace period that ends while nobody writes: returned until then, not after.
    let s4 = WebhookSecret::generate();
    let soon = now_millis() + TimeDelta::milliseconds(800);
    store
        .rotate_endpoint_secret(&tenant, id, s4.clone(), soon)
        .await
        .expect("rotate_endpoint_secret()")
        .expect("found");
    assert_eq!(
        endpoint_of(store, &tenant, id).await.secrets,
        [
            secret(&s4, None),
            secret(&s3, Some(soon)),
            secret(&s1, Some(two_hours)),
            secret(&s0, Some(hour)),
        ]
    );
    let wait = (soon - now_millis()).to_std().unwrap_or_default() + Duration::from_millis(20);
    tokio::time::sleep(wait).await;
    let expected = [
        secret(&s4, None),
        secret(&s1, Some(two_hours)),
        secret(&s0, Some(hour)),
    ];
    assert_eq!(endpoint_of(store, &tenant, id).await.secrets, expected);
    assert_eq!(
        store
            .subscribed_endpoints(&tenant, WebhookEventType::Accepted)
            .await
            .expect("subscribed_endpoints()")[0]
            .secrets,
        expected
    );
}

/// `callback_secrets` creates the tenant's current secret from `initial` once, whoever asks
/// first (also when many ask at once), and returns it ever after; rotation works as for
/// endpoints; tenants are independent.
pub async fn webhook_callback_secrets_get_or_create<S: WebhookStore + Clone>(store: &S) {
    const CALLERS: usize = 16;
    let tenant = unique_tenant();
    let initials: Vec<WebhookSecret> = (0..CALLERS).map(|_| WebhookSecret::generate()).collect();
    let start = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let mut tasks = tokio::task::JoinSet::new();
    for initial in initials.clone() {
        let (store, start, tenant) = (store.clone(), start.clone(), tenant.clone());
        tasks.spawn(async move {
            start.wait().await;
            store.callback_secrets(&tenant, initial).await
        });
    }
    let mut answers = Vec::with_capacity(CALLERS);
    while let Some(joined) = tasks.join_next().await {
        answers.push(
            joined
                .expect("callback_secrets task panicked")
                .expect("callback_secrets()"),
        );
    }
    let first = answers[0].clone();
    assert!(
        answers.iter().all(|a| *a == first),
        "concurrent first calls disagree"
    );
    assert_eq!(first.len(), 1, "exactly one secret");
    assert_eq!(first[0].expires_at, None, "and it is current");
    assert!(initials.contains(&first[0].secret));
    let current = first[0].secret.clone();

    // Later calls change nothing.
    assert_eq!(
        store
            .callback_secrets(&tenant, WebhookSecret::generate())
            .await
            .expect("callback_secrets()"),
        first
    );

    // Rotation.
    let hour = now_millis() + TimeDelta::hours(1);
    let next = WebhookSecret::generate();
    let expected = [secret(&next, None), secret(&current, Some(hour))];
    assert_eq!(
        store
            .rotate_callback_secret(&tenant, next.clone(), hour)
            .await
            .expect("rotate_callback_secret()"),
        expected
    );
    assert_eq!(
        store
            .callback_secrets(&tenant, WebhookSecret::generate())
            .await
            .expect("callback_secrets()"),
        expected
    );
    let last = WebhookSecret::generate();
    let expected = [secret(&last, None), secret(&current, Some(hour))];
    assert_eq!(
        store
            .rotate_callback_secret(&tenant, last.clone(), now_millis() - TimeDelta::seconds(1))
            .await
            .expect("rotate_callback_secret()"),
        expected
    );
    assert_eq!(
        store
            .callback_secrets(&tenant, WebhookSecret::generate())
            .await
            .expect("callback_secrets()"),
        expected
    );

    // Other tenants have their own.
    let other = unique_tenant();
    let theirs = WebhookSecret::generate();
    assert_eq!(
        store
            .callback_secrets(&other, theirs.clone())
            .await
            .expect("callback_secrets()"),
        [secret(&theirs, None)]
    );
    // Rotating for a tenant without secrets just makes one.
    let fresh = unique_tenant();
    let first_one = WebhookSecret::generate();
    assert_eq!(
        store
            .rotate_callback_secret(&fresh, first_one.clone(), hour)
            .await
            .expect("rotate_callback_secret()"),
        [secret(&first_one, None)]
    );
    assert_eq!(
        store
            .callback_secrets(&tenant, WebhookSecret::generate())
            .await
            .expect("callback_secrets()"),
        expected,
        "untouched by the others"
    );
}

/// A success clears `failing_since`; a failure sets it if unset; a failure more than
/// `disable_after` after it disables the endpoint with a reason naming the period (once);
/// enabling it again clears both.
pub async fn webhook_endpoint_health<S: WebhookStore>(store: &S) {
    let tenant = unique_tenant();
    let endpoint = create_endpoint(store, &new_endpoint(&tenant, None)).await;
    let bystander = create_endpoint(store, &new_endpoint(&tenant, None)).await;
    let id = endpoint.id;
    let period = Duration::from_secs(3600);
    let result = async |succeeded: bool, at: DateTime<Utc>| {
        store
            .record_endpoint_result(id, succeeded, at, period)
            .await
            .expect("record_endpoint_result()")
    };
    let failing_since = async || endpoint_of(store, &tenant, id).await.failing_since;
    let t0 = now_millis();
    let minutes = |m: i64| TimeDelta::minutes(m);

    assert_eq!(result(true, t0).await, EndpointHealth::Healthy);
    assert_eq!(failing_since().await, None);
    assert_eq!(result(false, t0).await, EndpointHealth::Failing);
    assert_eq!(failing_since().await, Some(t0));
    assert_eq!(
        result(false, t0 + minutes(30)).await,
        EndpointHealth::Failing
    );
    assert_eq!(failing_since().await, Some(t0), "set only if unset");
    assert_eq!(
        result(true, t0 + minutes(31)).await,
        EndpointHealth::Healthy
    );
    assert_eq!(failing_since().await, None, "a success clears it");

    let t1 = t0 + minutes(40);
    assert_eq!(result(false, t1).await, EndpointHealth::Failing);
    assert_eq!(
        result(false, t1 + minutes(60)).await,
        EndpointHealth::Failing,
        "exactly the period is not longer than it"
    );
    assert!(endpoint_of(store, &tenant, id).await.enabled);
    assert_eq!(
        result(false, t1 + minutes(60) + TimeDelta::seconds(1)).await,
        EndpointHealth::DisabledNow
    );
    let disabled = endpoint_of(store, &tenant, id).await;
    assert!(!disabled.enabled);
    assert_eq!(disabled.failing_since, Some(t1));
    assert_eq!(
        disabled.disabled_reason,
        Some(auto_disabled_reason(period, t1))
    );
    assert!(
        disabled
            .disabled_reason
            .as_deref()
            .is_some_and(|r| r.contains("1h")),
        "{:?} names the period",
        disabled.disabled_reason
    );
    assert_eq!(
        subscribed(store, &tenant, WebhookEventType::Accepted).await,
        [bystander.id]
    );
    // Disabled once: later failures only fail.
    assert_eq!(
        result(false, t1 + minutes(120)).await,
        EndpointHealth::Failing
    );
    assert_eq!(
        endpoint_of(store, &tenant, id).await.disabled_reason,
        disabled.disabled_reason
    );

    // Enabled again by its owner: healthy, reason gone.
    let enabled = store
        .update_endpoint(
            &tenant,
            id,
            &EndpointPatch {
                enabled: Some(true),
                ..EndpointPatch::default()
            },
        )
        .await
        .expect("update_endpoint()")
        .expect("found");
    assert!(enabled.enabled);
    assert_eq!(
        (enabled.disabled_reason, enabled.failing_since),
        (None, None)
    );
    assert_eq!(endpoint_of(store, &tenant, id).await.failing_since, None);
    assert_eq!(
        subscribed(store, &tenant, WebhookEventType::Accepted).await,
        [id, bystander.id]
    );

    // Disabled by its owner while failing: the owner's reason.
    assert_eq!(
        result(false, t1 + minutes(200)).await,
        EndpointHealth::Failing
    );
    let by_owner = store
        .update_endpoint(
            &tenant,
            id,
            &EndpointPatch {
                enabled: Some(false),
                ..EndpointPatch::default()
            },
        )
        .await
        .expect("update_endpoint()")
        .expect("found");
    assert_eq!(by_owner.disabled_reason.as_deref(), Some(DISABLED_BY_OWNER));

    // The other endpoint never noticed; an unknown endpoint changes nothing.
    assert_eq!(endpoint_of(store, &tenant, bystander.id).await, bystander);
    assert_eq!(
        store
            .record_endpoint_result(EndpointId::new(), false, t0, Duration::ZERO)
            .await
            .expect("record_endpoint_result()"),
        EndpointHealth::Healthy
    );
}

/// A delivery of `receipt` to `destination`, created at `created_at`.
pub fn new_delivery(
    tenant: &TenantId,
    receipt: ReceiptId,
    destination: Destination,
    created_at: DateTime<Utc>,
) -> NewDelivery {
    let id = receipts_domain::webhook::webhook_id(EventId::new(), &destination);
    NewDelivery {
        payload: format!(
            r#"{{"type":"receipt.accepted","data":{{"id":"{receipt}","webhook":"{id}"}}}}"#
        )
        .into_bytes(),
        id,
        tenant_id: tenant.clone(),
        receipt_id: receipt,
        destination,
        url: "https://partner.example/hooks/receipts".to_owned(),
        event_type: WebhookEventType::Accepted,
        created_at,
    }
}

/// An attempt numbered `number` at `at`: a 200 if it `succeeded`, else a 503 with a body.
pub fn attempt(number: u32, at: DateTime<Utc>, succeeded: bool) -> DeliveryAttempt {
    DeliveryAttempt {
        number,
        at,
        url: "https://partner.example/hooks/receipts".to_owned(),
        http_status: Some(if succeeded { 200 } else { 503 }),
        latency_ms: 42 + u64::from(number),
        response_excerpt: Some(if succeeded { "ok" } else { "try later" }.to_owned()),
        error: (!succeeded).then(|| "HTTP 503".to_owned()),
        succeeded,
    }
}

async fn delivery_of<S: WebhookStore>(store: &S, tenant: &TenantId, id: &str) -> Delivery {
    store
        .delivery(tenant, id)
        .await
        .expect("delivery()")
        .expect("the delivery exists")
}

/// The delivery log: recording is idempotent; attempts are upserted by number and come back in
/// order; a successful attempt delivers, `fail_delivery` fails, `reopen_delivery` reopens; only
/// the owner sees it; it outlives its endpoint.
pub async fn webhook_delivery_log<S: WebhookStore>(store: &S) {
    let (tenant, other) = (unique_tenant(), unique_tenant());
    let receipt = ReceiptId::new();
    let endpoint = create_endpoint(store, &new_endpoint(&tenant, None)).await;
    let t0 = now_millis();
    let to_endpoint = new_delivery(&tenant, receipt, Destination::Endpoint(endpoint.id), t0);
    let to_callback = new_delivery(
        &tenant,
        receipt,
        Destination::Callback,
        t0 + TimeDelta::milliseconds(1),
    );
    // Recorded in the other order: the log is oldest first all the same.
    store
        .record_delivery(&to_callback)
        .await
        .expect("record_delivery()");
    store
        .record_delivery(&to_endpoint)
        .await
        .expect("record_delivery()");
    let as_recorded = |new: &NewDelivery| Delivery {
        id: new.id.clone(),
        tenant_id: new.tenant_id.clone(),
        receipt_id: new.receipt_id,
        destination: new.destination.clone(),
        url: new.url.clone(),
        event_type: new.event_type,
        payload: new.payload.clone(),
        status: DeliveryStatus::Pending,
        failure_reason: None,
        created_at: new.created_at,
        updated_at: new.created_at,
        attempts: Vec::new(),
    };
    let fresh = [as_recorded(&to_endpoint), as_recorded(&to_callback)];
    let mut log = store
        .deliveries(&tenant, receipt)
        .await
        .expect("deliveries()");
    for d in &mut log {
        assert!(d.updated_at >= d.created_at);
        d.updated_at = d.created_at;
    }
    assert_eq!(log, fresh);

    // Recording again (even with other data) changes nothing.
    store
        .record_delivery(&NewDelivery {
            payload: b"something else".to_vec(),
            url: "https://elsewhere.example/".to_owned(),
            ..to_endpoint.clone()
        })
        .await
        .expect("record_delivery() again");
    let before = delivery_of(store, &tenant, &to_endpoint.id).await;
    assert_eq!(before.payload, to_endpoint.payload);
    assert_eq!(before.url, to_endpoint.url);

    // Attempts: in number order whatever the recording order; a number recorded again
    // replaces the earlier record; failures leave it pending.
    let at = |s: i64| t0 + TimeDelta::seconds(s);
    let second = DeliveryAttempt {
        http_status: None,
        response_excerpt: None,
        error: Some("timed out after 15s".to_owned()),
        ..attempt(2, at(5), false)
    };
    store
        .record_attempt(&to_endpoint.id, &second)
        .await
        .expect("record_attempt()");
    store
        .record_attempt(&to_endpoint.id, &attempt(1, at(0), false))
        .await
        .expect("record_attempt()");
    let d = delivery_of(store, &tenant, &to_endpoint.id).await;
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.attempts, [attempt(1, at(0), false), second.clone()]);
    let second_again = DeliveryAttempt {
        url: "https://partner.example/hooks/receipts?again".to_owned(),
        ..attempt(2, at(6), false)
    };
    store
        .record_attempt(&to_endpoint.id, &second_again)
        .await
        .expect("record_attempt() again");
    assert_eq!(
        delivery_of(store, &tenant, &to_endpoint.id).await.attempts,
        [attempt(1, at(0), false), second_again.clone()]
    );
    store
        .record_attempt(&to_endpoint.id, &attempt(3, at(300), true))
        .await
        .expect("record_attempt()");
    let delivered = delivery_of(store, &tenant, &to_endpoint.id).await;
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.failure_reason, None);
    assert_eq!(
        delivered.attempts,
        [
            attempt(1, at(0), false),
            second_again,
            attempt(3, at(300), true)
        ]
    );
    assert!(delivered.updated_at >= before.updated_at);

    // Failed for good, reopened by hand, then delivered by the next series.
    store
        .record_attempt(&to_callback.id, &attempt(1, at(0), false))
        .await
        .expect("record_attempt()");
    store
        .fail_delivery(&to_callback.id, "retry schedule exhausted")
        .await
        .expect("fail_delivery()");
    let failed = delivery_of(store, &tenant, &to_callback.id).await;
    assert_eq!(
        (failed.status, failed.failure_reason.as_deref()),
        (DeliveryStatus::Failed, Some("retry schedule exhausted"))
    );
    store
        .reopen_delivery(&to_callback.id)
        .await
        .expect("reopen_delivery()");
    let reopened = delivery_of(store, &tenant, &to_callback.id).await;
    assert_eq!(
        (reopened.status, reopened.failure_reason),
        (DeliveryStatus::Pending, None)
    );
    assert_eq!(reopened.attempts, [attempt(1, at(0), false)]);
    store
        .record_attempt(&to_callback.id, &attempt(2, at(900), true))
        .await
        .expect("record_attempt()");
    assert_eq!(
        delivery_of(store, &tenant, &to_callback.id).await.status,
        DeliveryStatus::Delivered
    );
    // A failure after a failure reason was recorded, then a success: delivered, no reason.
    store
        .fail_delivery(&to_callback.id, "manual")
        .await
        .expect("fail_delivery()");
    store
        .record_attempt(&to_callback.id, &attempt(3, at(901), true))
        .await
        .expect("record_attempt()");
    let d = delivery_of(store, &tenant, &to_callback.id).await;
    assert_eq!(
        (d.status, d.failure_reason),
        (DeliveryStatus::Delivered, None)
    );

    // Only the owner sees the log; other receipts have their own.
    assert_eq!(
        store
            .deliveries(&other, receipt)
            .await
            .expect("deliveries()"),
        []
    );
    assert_eq!(
        store
            .delivery(&other, &to_endpoint.id)
            .await
            .expect("delivery()"),
        None
    );
    assert_eq!(
        store
            .deliveries(&tenant, ReceiptId::new())
            .await
            .expect("deliveries()"),
        []
    );
    assert_eq!(
        store
            .delivery(&tenant, "msg_unknown")
            .await
            .expect("delivery()"),
        None
    );

    // Writes about a delivery that was never recorded are errors, and record nothing.
    let err = store
        .record_attempt("msg_unknown", &attempt(1, t0, true))
        .await
        .expect_err("an attempt of an unknown delivery");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = store
        .fail_delivery("msg_unknown", "nope")
        .await
        .expect_err("failing an unknown delivery");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = store
        .reopen_delivery("msg_unknown")
        .await
        .expect_err("reopening an unknown delivery");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    // The log outlives the endpoint.
    let log = store
        .deliveries(&tenant, receipt)
        .await
        .expect("deliveries()");
    assert!(
        store
            .delete_endpoint(&tenant, endpoint.id)
            .await
            .expect("delete_endpoint()")
    );
    assert_eq!(
        store
            .deliveries(&tenant, receipt)
            .await
            .expect("deliveries()"),
        log
    );
    assert_eq!(log[0].destination, Destination::Endpoint(endpoint.id));
    assert_eq!(log.len(), 2);
}
