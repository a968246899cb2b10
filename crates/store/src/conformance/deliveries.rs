//! [`DeliveryStore`](crate::DeliveryStore).

use chrono::{DateTime, TimeDelta, Utc};
use receipts_domain::event::now_millis;
use receipts_domain::{
    Delivery, DeliveryAttempt, DeliveryStatus, Destination, EndpointId, NewDelivery, ReceiptId,
    TenantId, WebhookEventType,
};

use super::unique_tenant;
use crate::{Cas, Stores};

/// A delivery of `receipt` to `destination`, created at `created_at`.
pub fn delivery(
    tenant: &TenantId,
    receipt: ReceiptId,
    destination: Destination,
    created_at: DateTime<Utc>,
) -> Delivery {
    Delivery::new(NewDelivery {
        id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        tenant_id: tenant.clone(),
        receipt_id: receipt,
        destination,
        url: "https://hooks.example/receipts".into(),
        event_type: WebhookEventType::Accepted,
        payload: br#"{"type":"receipt.accepted","data":{"status":"ACCEPTED"}}"#.to_vec(),
        created_at,
    })
}

/// An attempt numbered `number` at `at`: a 200 if it `succeeded`, else a 503 with a body.
pub fn attempt(number: u32, at: DateTime<Utc>, succeeded: bool) -> DeliveryAttempt {
    DeliveryAttempt {
        number,
        at,
        url: "https://hooks.example/receipts".into(),
        http_status: Some(if succeeded { 200 } else { 503 }),
        latency_ms: 42,
        response_excerpt: (!succeeded).then(|| "try again later".to_owned()),
        error: (!succeeded).then(|| "http-503".to_owned()),
        succeeded,
    }
}

/// A delivery is recorded once (the first record stays); a receipt's deliveries are listed in
/// (creation time, id) order, and only its own.
pub async fn deliveries_are_recorded_once_and_listed_in_order(stores: &Stores) {
    let tenant = unique_tenant();
    let (receipt, elsewhere) = (ReceiptId::new(), ReceiptId::new());
    let at = now_millis();
    let later = delivery(
        &tenant,
        receipt,
        Destination::Callback,
        at + TimeDelta::seconds(5),
    );
    let first = delivery(
        &tenant,
        receipt,
        Destination::Endpoint(EndpointId::new()),
        at,
    );
    let unrelated = delivery(&tenant, elsewhere, Destination::Callback, at);
    let deliveries = &stores.deliveries;
    for d in [&later, &first, &unrelated] {
        assert!(deliveries.record_delivery(d).await.expect("record"), "new");
    }
    let mut copy = first.clone();
    copy.url = "https://changed.example/".into();
    assert!(
        !deliveries.record_delivery(&copy).await.expect("record"),
        "not new"
    );
    assert_eq!(
        deliveries.delivery(&first.id).await.expect("read"),
        Some(first.clone())
    );
    assert_eq!(
        deliveries.delivery("msg_unknown").await.expect("read"),
        None
    );
    assert_eq!(
        deliveries.deliveries_of(receipt).await.expect("list"),
        [first, later]
    );
    assert_eq!(
        deliveries
            .deliveries_of(ReceiptId::new())
            .await
            .expect("list"),
        []
    );
}

/// A delivery is written only on the version it expects.
pub async fn delivery_writes_compare_versions(stores: &Stores) {
    let d = delivery(
        &unique_tenant(),
        ReceiptId::new(),
        Destination::Callback,
        now_millis(),
    );
    let deliveries = &stores.deliveries;
    assert!(deliveries.record_delivery(&d).await.expect("record"));
    let mut failed = d.clone();
    failed.fail(1, "gave up", now_millis());
    failed.version = 2;
    assert_eq!(
        deliveries.save_delivery(&failed, 1).await.expect("save"),
        Cas::Written
    );
    let mut stale = d.clone();
    stale.status = DeliveryStatus::Delivered;
    stale.version = 2;
    assert_eq!(
        deliveries.save_delivery(&stale, 1).await.expect("save"),
        Cas::Conflict
    );
    assert_eq!(
        deliveries.delivery(&d.id).await.expect("read"),
        Some(failed)
    );
}

/// Attempts are kept per (delivery, number), listed in number order; writing a number again
/// replaces it; attempts need no delivery record.
pub async fn attempts_are_upserted_by_number(stores: &Stores) {
    let deliveries = &stores.deliveries;
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let at = now_millis();
    for n in [3, 1, 2] {
        deliveries
            .put_attempt(&id, &attempt(n, at + TimeDelta::seconds(n.into()), false))
            .await
            .expect("put");
    }
    let replaced = attempt(2, at + TimeDelta::minutes(1), true);
    deliveries.put_attempt(&id, &replaced).await.expect("put");
    let attempts = deliveries.attempts(&id).await.expect("list");
    let numbers: Vec<u32> = attempts.iter().map(|a| a.number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(attempts[1], replaced);
    assert_eq!(attempts[0], attempt(1, at + TimeDelta::seconds(1), false));
    assert_eq!(deliveries.attempts("msg_none").await.expect("list"), []);
}
