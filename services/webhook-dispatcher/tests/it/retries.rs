//! Failed attempts are retried along the schedule (short here) until one succeeds; Retry-After
//! stretches a wait; a redirect is a failure; an exhausted schedule fails the delivery with an
//! event; an endpoint that only fails for long enough is disabled with a reason.

use std::time::Duration;

use rdkafka::Message;
use receipts_domain::DeliveryStatus;
use receipts_domain::{Destination, ReceiptEvent, Status, Topic};
use receipts_kafka::{RetryPolicy, TopicNames};

use crate::support::{Dispatcher, Receiver, Reply, WAIT, fast_webhooks, tenant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_along_the_schedule_until_success() {
    let receiver = Receiver::start(|n| match n {
        0 => Reply::Status(500),
        1 => Reply::Full(503, vec![], "maintenance".into()),
        2 => Reply::Status(404),
        _ => Reply::Full(200, vec![], "thanks".into()),
    })
    .await;
    let dispatcher = Dispatcher::start(fast_webhooks()).await;
    let endpoint = dispatcher.endpoint(&receiver.url("/hooks"), None).await;
    let receipt = dispatcher.change(Status::Accepted, None).await;

    let requests = receiver.wait_for(4).await;
    let ids: Vec<String> = requests.iter().map(|r| r.webhook_id()).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one webhook-id: {ids:?}"
    );
    assert!(
        requests.iter().all(|r| r.body == requests[0].body),
        "the same body every time"
    );
    // The schedule is a floor (300, 600, 900 ms, no jitter): never earlier.
    for (gap, step) in requests.windows(2).zip([300, 600, 900]) {
        let waited = gap[1].at - gap[0].at;
        assert!(
            waited >= Duration::from_millis(step),
            "waited {waited:?} before a retry due after {step} ms"
        );
    }

    let deliveries = dispatcher
        .deliveries_when(receipt, "the delivery confirmed", |d| {
            d.len() == 1 && d[0].status == DeliveryStatus::Delivered
        })
        .await;
    let delivery = &deliveries[0];
    assert_eq!(delivery.id, ids[0]);
    assert_eq!(delivery.url, receiver.url("/hooks"));
    let log: Vec<(u32, Option<u16>, bool)> = delivery
        .attempts
        .iter()
        .map(|a| (a.number, a.http_status, a.succeeded))
        .collect();
    assert_eq!(
        log,
        [
            (1, Some(500), false),
            (2, Some(503), false),
            (3, Some(404), false),
            (4, Some(200), true)
        ]
    );
    assert_eq!(
        delivery.attempts[1].response_excerpt.as_deref(),
        Some("maintenance")
    );
    assert_eq!(
        delivery.attempts[3].response_excerpt.as_deref(),
        Some("thanks")
    );
    assert_eq!(delivery.attempts[0].error.as_deref(), Some("HTTP 500"));
    assert!(
        delivery
            .attempts
            .iter()
            .all(|a| a.url == receiver.url("/hooks"))
    );
    let healthy = dispatcher
        .webhooks
        .endpoint(&tenant(), endpoint.id)
        .await
        .expect("read")
        .expect("endpoint");
    assert_eq!(
        healthy.failing_since, None,
        "a success clears the failing streak"
    );
    dispatcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let receiver = Receiver::start(|n| match n {
        0 => Reply::Full(429, vec![("retry-after", "2".into())], String::new()),
        _ => Reply::Status(204),
    })
    .await;
    let dispatcher = Dispatcher::start(fast_webhooks()).await;
    dispatcher.endpoint(&receiver.url("/"), None).await;
    dispatcher.change(Status::Rejected, None).await;
    let requests = receiver.wait_for(2).await;
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_secs(2),
        "the 429 asked for 2 s and the schedule's step is 300 ms; waited {waited:?}"
    );
    dispatcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_a_failure_and_an_exhausted_schedule_fails_the_delivery() {
    let elsewhere = Receiver::ok().await;
    let target = elsewhere.url("/moved");
    let receiver = Receiver::start(move |_| {
        Reply::Full(302, vec![("location", target.clone())], String::new())
    })
    .await;
    let dispatcher = Dispatcher::start(fast_webhooks()).await;
    dispatcher.endpoint(&receiver.url("/old"), None).await;
    let receipt = dispatcher.change(Status::Failed, None).await;

    let deliveries = dispatcher
        .deliveries_when(receipt, "the delivery failed", |d| {
            d.len() == 1 && d[0].status == DeliveryStatus::Failed
        })
        .await;
    let delivery = &deliveries[0];
    assert_eq!(delivery.attempts.len(), 4, "max_attempts = 4");
    for attempt in &delivery.attempts {
        assert_eq!(attempt.http_status, Some(302));
        assert!(!attempt.succeeded);
        let error = attempt.error.as_deref().unwrap_or_default();
        assert!(error.contains("redirects are not followed"), "{error}");
    }
    let reason = delivery.failure_reason.as_deref().unwrap_or_default();
    assert!(reason.contains("gave up after 4 attempts"), "{reason}");
    assert_eq!(receiver.count(), 4);
    assert_eq!(elsewhere.count(), 0, "the redirect was not followed");

    let names = TopicNames::new(&dispatcher.env.kafka);
    let failed = dispatcher
        .env
        .read_topic(&names.of(&Topic::WebhookFailed), 1, WAIT);
    assert_eq!(failed.len(), 1);
    let codec = dispatcher.env.codec();
    let event = codec
        .decode(failed[0].payload().expect("payload"))
        .await
        .expect("decodes");
    let ReceiptEvent::WebhookFailed(event) = event else {
        panic!("a webhook-failed event, got {event:?}")
    };
    assert_eq!(event.delivery_id, delivery.id);
    assert_eq!(event.meta.receipt_id, receipt);
    assert_eq!(event.reason, reason);
    dispatcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_only_fails_for_long_enough_is_disabled_with_a_reason() {
    let receiver = Receiver::start(|_| Reply::Status(500)).await;
    let mut webhooks = fast_webhooks();
    webhooks.disable_after = Duration::from_millis(500);
    webhooks.retry = RetryPolicy {
        max_attempts: Some(20),
        ..webhooks.retry
    };
    let dispatcher = Dispatcher::start(webhooks).await;
    let endpoint = dispatcher.endpoint(&receiver.url("/down"), None).await;
    let receipt = dispatcher.change(Status::Accepted, None).await;

    let deliveries = dispatcher
        .deliveries_when(receipt, "the delivery given up", |d| {
            d.len() == 1 && d[0].status == DeliveryStatus::Failed
        })
        .await;
    let reason = deliveries[0].failure_reason.as_deref().unwrap_or_default();
    assert!(reason.contains("the endpoint was disabled"), "{reason}");
    assert!(
        deliveries[0].attempts.len() < 20,
        "stopped before the schedule ended"
    );
    let disabled = dispatcher
        .webhooks
        .endpoint(&tenant(), endpoint.id)
        .await
        .expect("read")
        .expect("endpoint");
    assert!(!disabled.enabled);
    let shown = disabled.disabled_reason.unwrap_or_default();
    assert!(shown.contains("failed"), "a tenant-visible reason: {shown}");

    // Nothing more goes to a disabled endpoint; a healthy one shows the change was handled.
    let before = receiver.count();
    let healthy = Receiver::ok().await;
    let other = dispatcher.endpoint(&healthy.url("/up"), None).await;
    let next = dispatcher.change(Status::Rejected, None).await;
    healthy.wait_for(1).await;
    let planned = dispatcher
        .webhooks
        .deliveries(&tenant(), next)
        .await
        .expect("deliveries");
    let destinations: Vec<_> = planned
        .iter()
        .map(|d| d.delivery.destination.clone())
        .collect();
    assert_eq!(destinations, [Destination::Endpoint(other.id)]);
    assert_eq!(receiver.count(), before);
    dispatcher.stop().await;
}
