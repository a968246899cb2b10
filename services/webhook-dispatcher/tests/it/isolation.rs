//! A destination that hangs holds only its own concurrency slots: every other destination's
//! deliveries go through while its requests are still waiting for an answer.

use std::num::NonZeroU32;
use std::time::Duration;

use receipts_domain::DeliveryStatus;
use receipts_domain::{Destination, Status};
use receipts_webhooks::DestinationLimits;

use crate::support::{Dispatcher, Receiver, Reply, fast_webhooks};

/// More than the consumer's in-flight slots (3 partitions x 32): a design that waited for a
/// busy destination's slot in place would let the hanging endpoint's messages fill them all.
const CHANGES: usize = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_does_not_delay_another() {
    let hanging = Receiver::start(|_| Reply::Hang).await;
    let healthy = Receiver::ok().await;
    let mut webhooks = fast_webhooks();
    // Longer than this test: no request to the hanging endpoint finishes while it runs.
    webhooks.request_timeout = Duration::from_secs(300);
    webhooks.per_destination = DestinationLimits {
        concurrency: NonZeroU32::new(2).expect("nonzero"),
        busy_delay: Duration::from_millis(500),
        ..DestinationLimits::default()
    };
    let dispatcher = Dispatcher::start(webhooks).await;
    let stuck = dispatcher.endpoint(&hanging.url("/slow"), None).await;
    dispatcher.endpoint(&healthy.url("/fast"), None).await;
    let mut receipts = Vec::new();
    for _ in 0..CHANGES {
        receipts.push(dispatcher.change(Status::Accepted, None).await);
    }

    let delivered = healthy.wait_for(CHANGES).await;
    // At this point the hanging endpoint holds at most its two slots, none answered.
    assert!(
        hanging.count() <= 2,
        "{} requests to the hanging endpoint",
        hanging.count()
    );
    let mut pending_to_stuck = 0;
    let stuck_destination = Destination::Endpoint(stuck.id);
    for receipt in &receipts {
        // The receiver has the request; its attempt is logged a moment later.
        let deliveries = dispatcher
            .deliveries_when(*receipt, "the healthy delivery confirmed", |deliveries| {
                deliveries.iter().any(|d| {
                    d.destination != stuck_destination && d.status == DeliveryStatus::Delivered
                })
            })
            .await;
        for delivery in deliveries {
            if delivery.destination == stuck_destination {
                assert_eq!(delivery.status, DeliveryStatus::Pending);
                assert!(delivery.attempts.is_empty(), "no attempt has finished");
                pending_to_stuck += 1;
            }
        }
    }
    assert_eq!(
        pending_to_stuck, CHANGES,
        "every change was planned for both"
    );
    let ids: std::collections::HashSet<String> = delivered.iter().map(|r| r.webhook_id()).collect();
    assert_eq!(ids.len(), CHANGES, "each message once");
    // Requests to the hanging endpoint never finish; the dispatcher is dropped with the test.
}
