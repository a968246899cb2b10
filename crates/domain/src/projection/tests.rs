use proptest::prelude::*;

use super::*;
use crate::IdempotencyKey;
use crate::event::{Registered, RegistrationFailed, Rejected, Submitted, Validated};

fn registry(name: &str) -> RegistryName {
    RegistryName::parse(name).expect("registry name")
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_714_550_400 + seconds, 0).expect("time")
}

/// When everything in these tests is recorded.
fn now() -> DateTime<Utc> {
    at(3600)
}

fn policy() -> StatusPolicy {
    StatusPolicy::default()
}

fn sample_receipt() -> NormalizedReceipt {
    serde_json::from_value(serde_json::json!({
        "receipt_number": "R-2024-0001",
        "issued_at": "2024-05-01T10:15:00+02:00",
        "seller": { "tax_id": "DE136695976", "country": "DE", "name": "Muster GmbH" },
        "buyer": null,
        "currency": "EUR",
        "lines": [],
        "totals": { "net_amount": "4.20", "vat_amount": "0.80", "gross_amount": "5.00" },
        "payments": [{ "method": "card", "amount": "5.00" }]
    }))
    .expect("a valid normalized receipt")
}

/// The events of one receipt of tenant `acme`, occurring in pipeline order.
struct Fixture {
    receipt: ReceiptId,
    tenant: TenantId,
}

impl Fixture {
    fn new() -> Self {
        Self {
            receipt: ReceiptId::new(),
            tenant: TenantId::parse("acme").expect("tenant"),
        }
    }

    fn meta(&self, seconds: i64) -> EventMeta {
        EventMeta {
            event_id: EventId::new(),
            receipt_id: self.receipt,
            tenant_id: self.tenant.clone(),
            occurred_at: at(seconds),
            attempt: 1,
        }
    }

    fn submitted(&self) -> ReceiptEvent {
        Submitted {
            meta: self.meta(0),
            receipt_type: "retail-receipt/v1".into(),
            content_type: "application/json".into(),
            document: b"{}".to_vec(),
            idempotency_key: IdempotencyKey::parse("k-1").expect("key"),
            callback_url: Some(CallbackUrl::parse("https://partner.example/cb").expect("url")),
        }
        .into()
    }

    fn validated(&self) -> ReceiptEvent {
        Validated {
            meta: self.meta(1),
            receipt_type: "retail-receipt/v1".into(),
            receipt: sample_receipt(),
            extension: None,
        }
        .into()
    }

    fn rejected(&self) -> ReceiptEvent {
        Rejected {
            meta: self.meta(1),
            receipt_type: "retail-receipt/v1".into(),
            reasons: vec![Reason::new(
                "/total",
                "total-mismatch",
                "the total is wrong",
            )],
        }
        .into()
    }

    fn registered(&self, name: &str) -> ReceiptEvent {
        Registered {
            meta: self.meta(2),
            registration: Registration {
                registry: registry(name),
                registration_id: format!("{name}-1"),
                registered_at: at(2),
                attempts: 1,
            },
        }
        .into()
    }

    fn failed(&self, name: &str) -> ReceiptEvent {
        RegistrationFailed {
            meta: self.meta(2),
            failure: RegistrationFailure {
                registry: registry(name),
                code: "rejected-by-registry".into(),
                reason: "no".into(),
                failed_at: at(2),
                attempts: 1,
            },
        }
        .into()
    }
}

/// Applies `events` in the given order, each at [`now`]; the record after each.
fn apply_all(events: &[ReceiptEvent]) -> Vec<ReceiptRecord> {
    let mut current: Option<ReceiptRecord> = None;
    let mut records = Vec::new();
    for event in events {
        match ReceiptRecord::project(current.as_ref(), event, &policy(), now()).expect("projects") {
            Projection::Applied { record, .. } => current = Some(*record),
            Projection::AlreadyApplied | Projection::Ignored => {}
        }
        if let Some(record) = &current {
            records.push(record.clone());
        }
    }
    records
}

fn last(events: &[ReceiptEvent]) -> ReceiptRecord {
    apply_all(events).pop().expect("a record")
}

fn applied(current: Option<&ReceiptRecord>, event: &ReceiptEvent) -> (ReceiptRecord, Transition) {
    match ReceiptRecord::project(current, event, &policy(), now()).expect("projects") {
        Projection::Applied { record, transition } => (*record, transition),
        other => panic!("expected Applied, got {other:?}"),
    }
}

#[test]
fn the_first_event_creates_the_receipt_with_its_data() {
    let fx = Fixture::new();
    let (record, transition) = applied(None, &fx.submitted());
    assert_eq!((record.id, &record.tenant_id), (fx.receipt, &fx.tenant));
    assert_eq!(record.version, 1);
    assert_eq!(record.status, Status::Received);
    assert_eq!(
        (transition.from, transition.to),
        (Status::Received, Status::Received)
    );
    assert_eq!(record.receipt_type.as_deref(), Some("retail-receipt/v1"));
    assert_eq!(record.content_type.as_deref(), Some("application/json"));
    assert_eq!(record.received_at, Some(at(0)));
    assert_eq!(record.updated_at, now());
    assert_eq!(record.timeline.len(), 1);
    assert_eq!(record.timeline[0].recorded_at, now());

    // A registration may come first: no type yet, the registry in the timeline.
    let (record, _) = applied(None, &fx.registered("tax"));
    assert_eq!(record.receipt_type, None);
    assert_eq!(record.timeline[0].registry, Some(registry("tax")));
    assert_eq!(record.registrations.len(), 1);
}

#[test]
fn the_happy_path_ends_accepted() {
    let fx = Fixture::new();
    let records = apply_all(&[
        fx.submitted(),
        fx.validated(),
        fx.registered("tax"),
        fx.registered("logistics"),
    ]);
    let statuses: Vec<Status> = records.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Received,
            Status::Validated,
            Status::Validated,
            Status::Accepted
        ]
    );
    let accepted = records.last().expect("record");
    assert_eq!(accepted.version, 4);
    assert!(accepted.receipt.is_some());
    let names: Vec<&str> = accepted
        .registrations
        .iter()
        .map(|r| r.registry.as_str())
        .collect();
    assert_eq!(names, ["logistics", "tax"], "registry-name order");
    assert_eq!(accepted.state().status(&policy()), Status::Accepted);
}

#[test]
fn a_rejection_is_terminal_with_its_reasons() {
    let fx = Fixture::new();
    let record = last(&[fx.submitted(), fx.rejected(), fx.validated()]);
    assert_eq!(record.status, Status::Rejected);
    assert_eq!(record.reasons.len(), 1);
    assert_eq!(
        record.version, 3,
        "the late validation still enters the timeline"
    );
}

#[test]
fn a_registry_failure_fails_the_receipt_and_accepted_is_never_left() {
    let fx = Fixture::new();
    let failed = last(&[fx.submitted(), fx.validated(), fx.failed("tax")]);
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(failed.failures[0].registry, registry("tax"));

    // A registry contradicting itself after the receipt was ACCEPTED changes nothing.
    let accepted = last(&[
        fx.submitted(),
        fx.validated(),
        fx.registered("tax"),
        fx.registered("logistics"),
        fx.failed("tax"),
    ]);
    assert_eq!(accepted.status, Status::Accepted);
    assert!(
        accepted
            .timeline
            .iter()
            .skip_while(|e| e.status != Status::Accepted)
            .all(|e| e.status == Status::Accepted)
    );
}

#[test]
fn an_applied_event_is_already_applied_however_it_comes_back() {
    let fx = Fixture::new();
    let submitted = fx.submitted();
    let (record, _) = applied(None, &submitted);
    assert_eq!(
        ReceiptRecord::project(Some(&record), &submitted, &policy(), now()),
        Ok(Projection::AlreadyApplied)
    );
    // Same event id with other data (a registrar's answer and a registry's callback).
    let mut changed = submitted.clone();
    if let ReceiptEvent::Submitted(s) = &mut changed {
        s.content_type = "application/xml".into();
    }
    assert_eq!(
        ReceiptRecord::project(Some(&record), &changed, &policy(), now()),
        Ok(Projection::AlreadyApplied)
    );
}

#[test]
fn the_first_report_of_each_registry_wins() {
    let fx = Fixture::new();
    let first = fx.registered("tax");
    let mut second = fx.registered("tax");
    if let ReceiptEvent::Registered(r) = &mut second {
        r.registration.registration_id = "tax-2".into();
    }
    let record = last(&[fx.submitted(), first, second]);
    assert_eq!(record.registrations.len(), 1);
    assert_eq!(record.registrations[0].registration_id, "tax-1");
    assert_eq!(record.timeline.len(), 3);
}

#[test]
fn events_of_another_tenant_or_receipt_are_refused() {
    let fx = Fixture::new();
    let (record, _) = applied(None, &fx.submitted());
    let mut intruder = fx.validated();
    if let ReceiptEvent::Validated(v) = &mut intruder {
        v.meta.tenant_id = TenantId::parse("other").expect("tenant");
    }
    assert!(matches!(
        ReceiptRecord::project(Some(&record), &intruder, &policy(), now()),
        Err(ProjectionError::TenantMismatch { .. })
    ));
    let elsewhere = Fixture::new().validated();
    assert!(matches!(
        ReceiptRecord::project(Some(&record), &elsewhere, &policy(), now()),
        Err(ProjectionError::OtherReceipt { .. })
    ));
}

#[test]
fn events_stating_no_fact_are_ignored() {
    let fx = Fixture::new();
    let (record, _) = applied(None, &fx.submitted());
    let change: ReceiptEvent = record.announcement(record.current_change()).into();
    assert_eq!(
        ReceiptRecord::project(None, &change, &policy(), now()),
        Ok(Projection::Ignored)
    );
}

#[test]
fn the_policy_decides_what_accepted_needs() {
    let fx = Fixture::new();
    let only_tax = StatusPolicy::new([registry("tax")]);
    let mut current = None;
    for event in [fx.submitted(), fx.validated(), fx.registered("tax")] {
        if let Projection::Applied { record, .. } =
            ReceiptRecord::project(current.as_ref(), &event, &only_tax, now()).expect("projects")
        {
            current = Some(*record);
        }
    }
    assert_eq!(current.expect("record").status, Status::Accepted);
}

#[test]
fn announcements_are_one_per_status_reached() {
    let fx = Fixture::new();
    let records = apply_all(&[fx.submitted(), fx.validated(), fx.registered("tax")]);
    let (validated, still_validated) = (&records[1], &records[2]);
    assert_eq!(
        validated.changes_since(Some(&records[0])),
        [Transition {
            from: Status::Received,
            to: Status::Validated
        }]
    );
    assert_eq!(still_validated.changes_since(Some(validated)), []);
    let a = validated.announcement(validated.current_change());
    let b = still_validated.announcement(still_validated.current_change());
    assert_eq!(
        a.meta.event_id, b.meta.event_id,
        "same receipt, same status"
    );
    assert_eq!((a.from, a.to), (Status::Received, Status::Validated));
    assert_eq!(a.callback_url, validated.callback_url);
    let accepted = last(&[
        fx.submitted(),
        fx.validated(),
        fx.registered("tax"),
        fx.registered("logistics"),
    ]);
    assert_ne!(
        accepted
            .announcement(accepted.current_change())
            .meta
            .event_id,
        a.meta.event_id
    );
    assert_eq!(accepted.reached_from(), Status::Validated);
    assert_eq!(records[0].reached_from(), Status::Received);
}

#[test]
fn a_late_validation_reveals_every_status_it_passes() {
    let fx = Fixture::new();
    let before = last(&[
        fx.submitted(),
        fx.registered("tax"),
        fx.registered("logistics"),
    ]);
    assert_eq!(before.status, Status::Received);
    let (after, transition) = applied(Some(&before), &fx.validated());
    assert_eq!(
        (transition.from, transition.to),
        (Status::Received, Status::Accepted)
    );
    let changes: Vec<(Status, Status)> = after
        .changes_since(Some(&before))
        .iter()
        .map(|t| (t.from, t.to))
        .collect();
    assert_eq!(
        changes,
        [
            (Status::Received, Status::Validated),
            (Status::Validated, Status::Accepted)
        ],
        "the timeline shows VALIDATED, so it is announced too"
    );
    assert_eq!(
        after.changes_since(None).len(),
        2,
        "a first record announces what it reached"
    );
}

/// Under load the `submitted` topic may lag behind the others: the outcome waits for the
/// submission, whose callback URL must hear it.
#[test]
fn nothing_moves_before_the_submission_and_its_callback_url_hear_the_outcome() {
    let fx = Fixture::new();
    let submitted = fx.submitted();
    let others = [
        fx.validated(),
        fx.registered("tax"),
        fx.registered("logistics"),
    ];
    let before = last(&others);
    assert_eq!(before.status, Status::Received);
    assert_eq!(before.changes_since(None), [], "nothing to announce yet");
    let (after, transition) = applied(Some(&before), &submitted);
    assert_eq!(
        (transition.from, transition.to),
        (Status::Received, Status::Accepted)
    );
    let announced: Vec<_> = after
        .changes_since(Some(&before))
        .into_iter()
        .map(|change| after.announcement(change))
        .collect();
    assert_eq!(
        announced.iter().map(|a| (a.from, a.to)).collect::<Vec<_>>(),
        [
            (Status::Received, Status::Validated),
            (Status::Validated, Status::Accepted)
        ]
    );
    assert!(
        announced
            .iter()
            .all(|a| a.callback_url.is_some() && a.callback_url == after.callback_url)
    );
    let in_order: Vec<ReceiptEvent> = [submitted].into_iter().chain(others).collect();
    assert_eq!(after, last(&in_order), "as if delivered in order");
}

#[test]
fn a_status_rests_on_the_facts_that_reach_it() {
    let fx = Fixture::new();
    let tax = Fact::Registered(registry("tax"));
    let accepted = last(&[
        fx.submitted(),
        fx.validated(),
        fx.registered("tax"),
        fx.registered("logistics"),
    ]);
    assert!(accepted.status_rests_on(&Fact::Validated));
    assert!(accepted.status_rests_on(&tax));
    assert!(
        accepted.status_rests_on(&Fact::Submitted),
        "a late submission may be what released ACCEPTED"
    );
    let validated = last(&[fx.submitted(), fx.validated()]);
    assert!(validated.status_rests_on(&Fact::Validated));
    assert!(!validated.status_rests_on(&tax));
    let failed = last(&[fx.submitted(), fx.validated(), fx.failed("tax")]);
    assert!(failed.status_rests_on(&Fact::RegistrationFailed(registry("tax"))));
    assert!(!failed.status_rests_on(&Fact::Validated));
    let received = last(&[fx.submitted()]);
    assert!(!received.status_rests_on(&Fact::Submitted));
}

/// A consistent set of events one receipt can have: one submission; a validation or a
/// rejection (or neither yet); once validated, per registry a registration, a failure or
/// neither yet.
fn receipt_events() -> impl Strategy<Value = Vec<ReceiptEvent>> {
    (0..3u8, 0..3u8, 0..3u8).prop_map(|(validation, tax, logistics)| {
        let fx = Fixture::new();
        let mut events = vec![fx.submitted()];
        match validation {
            0 => return events,
            1 => {
                events.push(fx.rejected());
                return events;
            }
            _ => events.push(fx.validated()),
        }
        for (name, outcome) in [("tax", tax), ("logistics", logistics)] {
            match outcome {
                1 => events.push(fx.registered(name)),
                2 => events.push(fx.failed(name)),
                _ => {}
            }
        }
        events
    })
}

/// `events` as Kafka may deliver them: each at least once, some several times, in any order
/// (every event travels on a topic of its own, so nothing orders them; copies are identical).
fn delivered(
    events: Vec<ReceiptEvent>,
) -> impl Strategy<Value = (Vec<ReceiptEvent>, Vec<ReceiptEvent>)> {
    let n = events.len();
    (
        Just(events),
        prop::collection::vec(0..n, 0..2 * n),
        Just(()).prop_perturb(move |_, mut rng| {
            let mut order: Vec<usize> = (0..3 * n).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            order
        }),
    )
        .prop_map(|(events, extra, order)| {
            let copies: Vec<ReceiptEvent> = events
                .iter()
                .cloned()
                .chain(extra.into_iter().map(|i| events[i].clone()))
                .collect();
            // `order` is a permutation of more indices than there are copies.
            let shuffled: Vec<ReceiptEvent> = order
                .into_iter()
                .filter(|&i| i < copies.len())
                .map(|i| copies[i].clone())
                .collect();
            (events, shuffled)
        })
}

proptest! {
    /// Any duplication and any order of a receipt's events ends in the same record, timeline
    /// included, as delivery in order; and no terminal status is ever left on the way.
    #[test]
    fn delivery_order_and_duplicates_do_not_matter(
        (in_order, shuffled) in receipt_events().prop_flat_map(delivered)
    ) {
        let expected = last(&in_order);
        let records = apply_all(&shuffled);
        prop_assert_eq!(records.last(), Some(&expected));
        prop_assert_eq!(expected.version as usize, in_order.len());
        let mut terminal = None;
        for record in &records {
            if let Some(status) = terminal {
                prop_assert_eq!(record.status, status, "a terminal status was left");
            } else if record.status.is_terminal() {
                terminal = Some(record.status);
            }
        }
        let statuses: Vec<Status> = expected.timeline.iter().map(|e| e.status).collect();
        let mut sorted = statuses.clone();
        sorted.sort_by_key(|s| rank(*s));
        prop_assert_eq!(statuses, sorted, "timeline statuses only move forward");
    }
}

/// How far along the pipeline a status is.
fn rank(status: Status) -> u8 {
    match status {
        Status::Received => 0,
        Status::Validated => 1,
        Status::Rejected | Status::Accepted | Status::Failed => 2,
    }
}

/// The gateway's reservation of `submitted`.
fn reservation_of(fx: &Fixture, submitted: &ReceiptEvent) -> Reservation {
    let ReceiptEvent::Submitted(s) = submitted else {
        panic!("a submission")
    };
    Reservation {
        tenant_id: fx.tenant.clone(),
        idempotency_key: s.idempotency_key.clone(),
        fingerprint: crate::RequestFingerprint::of(
            &s.receipt_type,
            crate::DocumentFormat::Json,
            s.callback_url.as_ref().map(CallbackUrl::as_str),
            &s.document,
        ),
        receipt_id: fx.receipt,
        event_id: s.meta.event_id,
        received_at: s.meta.occurred_at,
        receipt_type: s.receipt_type.clone(),
        content_type: s.content_type.clone(),
        callback_url: s.callback_url.clone(),
    }
}

#[test]
fn a_reservation_shows_what_the_projected_submission_will() {
    let fx = Fixture::new();
    let submitted = fx.submitted();
    let reservation = reservation_of(&fx, &submitted);
    let mut early = ReceiptRecord::received(&reservation);
    assert_eq!(early.version, 0, "never stored");
    let (projected, _) = applied(None, &submitted);
    // Only the bookkeeping differs: when it was recorded, and the version.
    early.version = projected.version;
    early.updated_at = projected.updated_at;
    early.timeline[0].recorded_at = projected.timeline[0].recorded_at;
    assert_eq!(early, projected);
}

#[test]
fn a_record_overtaking_its_submission_shows_the_submissions_facts_from_the_reservation() {
    let fx = Fixture::new();
    let submitted = fx.submitted();
    let reservation = reservation_of(&fx, &submitted);
    let (overtaken, _) = applied(None, &fx.validated());
    assert!(!overtaken.has_submission());
    let shown = overtaken.clone().with_submission(&reservation);
    let (complete, _) = applied(Some(&overtaken), &submitted);
    assert!(shown.has_submission());
    assert_eq!(shown.receipt_type, complete.receipt_type);
    assert_eq!(shown.content_type, complete.content_type);
    assert_eq!(shown.callback_url, complete.callback_url);
    assert_eq!(shown.received_at, complete.received_at);
    assert_eq!(
        shown.timeline, overtaken.timeline,
        "the timeline stays as projected"
    );
    assert_eq!(
        complete.clone().with_submission(&reservation),
        complete,
        "a record with its submission is shown as it is"
    );
}
