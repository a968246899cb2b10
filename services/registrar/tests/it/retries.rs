use mock_registries::{FailFirst, FaultKind, Faults, RegistryKind};
use receipts_domain::registry::failure_code;
use receipts_domain::{ReceiptEvent, Topic};

use crate::helpers::*;

/// 5xx answers are retried along the ladder: each retry no earlier than its step after the
/// previous call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_along_the_ladder() {
    let faults = Faults {
        fail_first: FailFirst {
            count: 3,
            kind: FaultKind::Http503,
        },
        ..Faults::default()
    };
    let steps = [300, 600, 900];
    let h = Harness::start(RegistryKind::Tax, faults, ladder(&steps, 3600)).await;
    let event = validated(1);
    let id = event.meta.receipt_id;
    h.publish(&[event.into()]).await;
    let registered = h.events(&Topic::Registered(h.registry.clone()), 1).await;
    let [ReceiptEvent::Registered(r)] = registered.as_slice() else {
        panic!("{registered:?}")
    };
    assert_eq!(r.registration.attempts, 4);
    let calls = h.calls(id).await;
    let outcomes: Vec<&str> = calls.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(outcomes, ["503", "503", "503", "201"]);
    for (i, step) in steps.iter().enumerate() {
        let gap = calls[i + 1].0 - calls[i].0;
        // Due times are stamped when the retry is scheduled, a moment after the call returned.
        assert!(
            gap >= chrono::Duration::milliseconds(*step as i64 - 50),
            "retry {} after {gap} (step {step} ms)",
            i + 1
        );
    }
    assert_eq!(h.registrations(id).await, 1);
    h.stop().await;
}

/// A 429's Retry-After is a minimum: no call before it, even with a shorter ladder step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let faults = Faults {
        fail_first: FailFirst {
            count: 1,
            kind: FaultKind::Http429,
        },
        retry_after_seconds: 2,
        ..Faults::default()
    };
    let h = Harness::start(RegistryKind::Logistics, faults, ladder(&[100], 3600)).await;
    let event = validated(2);
    let id = event.meta.receipt_id;
    h.publish(&[event.into()]).await;
    h.events(&Topic::Registered(h.registry.clone()), 1).await;
    let calls = h.calls(id).await;
    assert_eq!(
        calls.iter().map(|(_, o)| o.as_str()).collect::<Vec<_>>(),
        ["429", "201"]
    );
    assert!(
        calls[1].0 - calls[0].0 >= chrono::Duration::seconds(2),
        "called again too early: {calls:?}"
    );
    h.stop().await;
}

/// An outage delays receipts; when it ends every receipt is registered, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_delays_but_loses_and_doubles_nothing() {
    let h = Harness::start(
        RegistryKind::Tax,
        Faults {
            outage: true,
            ..Faults::default()
        },
        ladder(&[200, 400, 800], 3600),
    )
    .await;
    let events: Vec<_> = (10..30).map(validated).collect();
    h.publish(
        &events
            .iter()
            .cloned()
            .map(Into::into)
            .collect::<Vec<ReceiptEvent>>(),
    )
    .await;
    // Wait until every receipt has hit the outage at least twice.
    receipts_testkit::eventually("calls during the outage", WAIT, || async {
        for e in &events {
            if h.calls(e.meta.receipt_id).await.len() < 2 {
                return None;
            }
        }
        Some(())
    })
    .await;
    h.put_faults(&Faults::default()).await;
    let registered = h
        .events(&Topic::Registered(h.registry.clone()), events.len())
        .await;
    assert_eq!(
        registered.len(),
        events.len(),
        "each registered event exactly once"
    );
    for e in &events {
        assert_eq!(h.registrations(e.meta.receipt_id).await, 1);
        let calls = h.calls(e.meta.receipt_id).await;
        assert!(calls.iter().filter(|(_, o)| o == "503").count() >= 2);
        assert_eq!(calls.last().map(|(_, o)| o.as_str()), Some("201"));
    }
    h.stop().await;
}

/// Past the horizon the receipt fails with `horizon-exceeded`, and the calls stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_horizon_ends_retries_with_failed() {
    let h = Harness::start(
        RegistryKind::Logistics,
        Faults {
            outage: true,
            ..Faults::default()
        },
        ladder(&[300], 2),
    )
    .await;
    let event = validated(3);
    let id = event.meta.receipt_id;
    h.publish(&[event.into()]).await;
    let failed = h
        .events(&Topic::RegistrationFailed(h.registry.clone()), 1)
        .await;
    let [ReceiptEvent::RegistrationFailed(f)] = failed.as_slice() else {
        panic!("{failed:?}")
    };
    assert_eq!(f.failure.code, failure_code::HORIZON_EXCEEDED);
    assert!(
        f.failure.reason.contains("http-503"),
        "{}",
        f.failure.reason
    );
    let calls = h.calls(id).await.len();
    assert!(calls >= 3, "retried until the horizon: {calls} calls");
    h.wait_until_settled().await;
    assert_eq!(h.calls(id).await.len(), calls, "no call after failing");
    h.stop().await;
}
