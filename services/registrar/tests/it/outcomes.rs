use std::collections::HashSet;
use std::time::Duration;

use mock_registries::{AsyncMode, CallbackTarget, Faults, RegistryKind, RejectRule};
use receipts_domain::registry::failure_code;
use receipts_domain::{ReceiptEvent, Topic};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receipt_is_registered_once_with_an_id_from_the_registry() {
    for kind in [RegistryKind::Tax, RegistryKind::Logistics] {
        let h = Harness::start(kind, Faults::default(), ladder(&[200], 3600)).await;
        let events: Vec<_> = (0..10).map(validated).collect();
        let ids: HashSet<_> = events.iter().map(|e| e.meta.receipt_id).collect();
        h.publish(
            &events
                .iter()
                .cloned()
                .map(Into::into)
                .collect::<Vec<ReceiptEvent>>(),
        )
        .await;
        let registered = h.events(&Topic::Registered(h.registry.clone()), 10).await;
        let mut seen = HashSet::new();
        for event in &registered {
            let ReceiptEvent::Registered(r) = event else {
                panic!("{event:?}")
            };
            assert_eq!(r.registration.registry, h.registry);
            assert_eq!(r.meta.tenant_id, tenant());
            assert_eq!(r.registration.attempts, 1);
            assert!(!r.registration.registration_id.is_empty());
            seen.insert(r.meta.receipt_id);
        }
        assert_eq!(seen, ids, "{kind}: every receipt");
        for id in &ids {
            assert_eq!(h.registrations(*id).await, 1, "{kind}: registered once");
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_rejection_fails_the_receipt_with_the_registrys_reason_and_stops() {
    let faults = Faults {
        reject: vec![RejectRule {
            tax_id: BLACKLISTED.into(),
            reason: "seller blacklisted by the authority".into(),
        }],
        ..Faults::default()
    };
    let h = Harness::start(RegistryKind::Tax, faults, ladder(&[200], 3600)).await;
    let event = blacklisted(1);
    let id = event.meta.receipt_id;
    h.publish(&[event.into()]).await;
    let failed = h
        .events(&Topic::RegistrationFailed(h.registry.clone()), 1)
        .await;
    let [ReceiptEvent::RegistrationFailed(f)] = failed.as_slice() else {
        panic!("{failed:?}")
    };
    assert_eq!(f.meta.receipt_id, id);
    assert_eq!(f.failure.code, failure_code::REJECTED_BY_REGISTRY);
    assert!(
        f.failure
            .reason
            .contains("seller blacklisted by the authority"),
        "{}",
        f.failure.reason
    );
    h.wait_until_settled().await;
    assert_eq!(
        h.calls(id).await.len(),
        1,
        "no further calls after a rejection"
    );
    assert_eq!(h.registrations(id).await, 0);
    h.stop().await;
}

/// An asynchronous registry answers 202; the result arrives by callback (here to a receiver
/// that is not the platform, so the registrar never hears of it) and the registrar asks again
/// after its callback timeout, with the same key: registered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_that_never_arrives_is_followed_up_with_the_same_key() {
    let faults = Faults {
        async_mode: AsyncMode {
            enabled: true,
            delay_ms: 100,
            ..AsyncMode::default()
        },
        ..Faults::default()
    };
    let nowhere = CallbackTarget {
        url: "http://127.0.0.1:9/lost".parse().expect("url"),
        secret: receipts_domain::Secret::new("s"),
    };
    let h = Harness::start_with(
        RegistryKind::Logistics,
        faults,
        ladder(&[200], 3600),
        Some(nowhere),
        |r| {
            r.callback_timeout = Duration::from_secs(1);
        },
    )
    .await;
    let event = validated(7);
    let id = event.meta.receipt_id;
    h.publish(&[event.into()]).await;
    let registered = h.events(&Topic::Registered(h.registry.clone()), 1).await;
    let [ReceiptEvent::Registered(r)] = registered.as_slice() else {
        panic!("{registered:?}")
    };
    assert_eq!(r.meta.receipt_id, id);
    assert_eq!(r.registration.attempts, 2, "the 202, then the follow-up");
    let calls = h.calls(id).await;
    assert_eq!(calls.len(), 2);
    assert!(
        calls[1].0 - calls[0].0 >= chrono::Duration::milliseconds(1000),
        "waited for the callback timeout: {calls:?}"
    );
    assert_eq!(h.registrations(id).await, 1);
    h.stop().await;
}
