//! With the production default (no private network allow-listed), messages to private,
//! link-local (metadata) and loopback destinations are refused at send time, without a
//! request and without retries; the refusal is logged and announced.

use std::time::Duration;

use rdkafka::Message;
use receipts_domain::DeliveryStatus;
use receipts_domain::{ReceiptEvent, Status, Topic};
use receipts_kafka::TopicNames;

use crate::support::{Dispatcher, Receiver, WAIT, fast_webhooks};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_metadata_and_loopback_destinations_are_refused_unless_allow_listed() {
    // A real receiver on loopback, reached by name: it must get nothing.
    let local = Receiver::ok().await;
    let mut webhooks = fast_webhooks();
    webhooks.allow_private = Vec::new();
    webhooks.request_timeout = Duration::from_secs(3);
    let dispatcher = Dispatcher::start(webhooks).await;
    let cases = [
        ("http://10.0.0.1/hooks".to_owned(), "private"),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "link-local (metadata)",
        ),
        (
            format!("http://localhost:{}/hooks", local.addr.port()),
            "loopback",
        ),
        (format!("http://[::1]:{}/", local.addr.port()), "loopback"),
    ];
    let mut receipts = Vec::new();
    for (url, _) in &cases {
        receipts.push(dispatcher.change(Status::Accepted, Some(url)).await);
    }
    for (receipt, (url, range)) in receipts.iter().zip(&cases) {
        let deliveries = dispatcher
            .deliveries_when(*receipt, &format!("{url} refused"), |d| {
                d.len() == 1 && d[0].status == DeliveryStatus::Failed
            })
            .await;
        let delivery = &deliveries[0];
        assert_eq!(delivery.attempts.len(), 1, "{url}: no retries");
        let attempt = &delivery.attempts[0];
        assert_eq!(attempt.http_status, None);
        let error = attempt.error.as_deref().unwrap_or_default();
        assert!(
            error.contains(&format!("a {range} address")),
            "{url}: {error}"
        );
        let reason = delivery.failure_reason.as_deref().unwrap_or_default();
        assert!(reason.starts_with("refused"), "{url}: {reason}");
    }
    assert_eq!(local.count(), 0, "nothing reached the loopback receiver");

    let names = TopicNames::new(&dispatcher.env.kafka);
    let failed = dispatcher
        .env
        .read_topic(&names.of(&Topic::WebhookFailed), cases.len(), WAIT);
    assert_eq!(failed.len(), cases.len());
    let codec = dispatcher.env.codec();
    for message in &failed {
        let event = codec
            .decode(message.payload().expect("payload"))
            .await
            .expect("decodes");
        assert!(matches!(event, ReceiptEvent::WebhookFailed(_)), "{event:?}");
    }
    dispatcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_listed_network_is_reachable() {
    let local = Receiver::ok().await;
    let dispatcher = Dispatcher::start(fast_webhooks()).await;
    let receipt = dispatcher
        .change(
            Status::Accepted,
            Some(&format!("http://localhost:{}/hooks", local.addr.port())),
        )
        .await;
    local.wait_for(1).await;
    dispatcher
        .deliveries_when(receipt, "delivered to localhost", |d| {
            d.len() == 1 && d[0].status == DeliveryStatus::Delivered
        })
        .await;
    dispatcher.stop().await;
}
