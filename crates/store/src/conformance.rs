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
    CallbackUrl, DocumentFormat, EventId, EventKind, EventMeta, IdempotencyKey, NormalizedReceipt,
    Reason, ReceiptEvent, ReceiptId, ReceiptState, Registered, Registration, RegistrationFailed,
    RegistrationFailure, RegistryName, Rejected, RequestFingerprint, Status, StatusChanged,
    StatusPolicy, Submitted, TenantId, Transition, Validated,
};
use uuid::Uuid;

use crate::{
    ApiClient, ApiKey, Applied, ClientId, ClientStore, Error, NewClient, ReceiptRecord,
    Reservation, Reserved, Scope, StatusStore, StoredDocument,
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
        }
    }
}

/// The kinds of event that state a fact about their receipt (all but `status_changed`).
pub fn fact_kinds() -> impl Iterator<Item = EventKind> {
    EventKind::ALL
        .into_iter()
        .filter(|&k| k != EventKind::StatusChanged)
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
            EventKind::StatusChanged => unreachable!("not a fact"),
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
            ReceiptEvent::StatusChanged(_) => unreachable!("not a fact"),
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
