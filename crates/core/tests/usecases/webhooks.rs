//! `Webhooks`: endpoints, secrets and deliveries as the rules change them, stored.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use receipts_core::{Error, Webhooks};
use receipts_domain::{
    DeliveryAttempt, DeliveryError, DeliveryStatus, Destination, EndpointHealth, EndpointId,
    EndpointPatch, NewDelivery, NewEndpoint, ReceiptId, TenantId, WebhookEventType, WebhookSecret,
};
use receipts_store::conformance::unique_tenant;

use crate::stores;

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_714_550_400, 0).expect("time") + TimeDelta::minutes(minutes)
}

fn webhooks(stores: &receipts_store::Stores) -> Webhooks {
    Webhooks::new(stores.endpoints.clone(), stores.deliveries.clone())
}

fn new_endpoint(tenant: &TenantId) -> NewEndpoint {
    NewEndpoint {
        id: EndpointId::new(),
        tenant_id: tenant.clone(),
        url: "https://hooks.example/".into(),
        description: None,
        events: None,
        secret: WebhookSecret::generate(),
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn endpoint_health_is_stored_and_disables_once() {
    let (_dir, stores) = stores().await;
    let hooks = webhooks(&stores);
    let tenant = unique_tenant();
    let endpoint = hooks
        .create_endpoint(new_endpoint(&tenant), at(0))
        .await
        .expect("create");
    let id = endpoint.id;
    let result = |succeeded, minute| {
        hooks.record_endpoint_result(id, succeeded, at(minute), HOUR, at(minute))
    };

    assert_eq!(
        result(true, 0).await.expect("record"),
        EndpointHealth::Healthy
    );
    let stored = hooks
        .endpoint(&tenant, id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(stored.version, 1, "nothing changed, nothing written");

    let stored = async || {
        hooks
            .endpoint(&tenant, id)
            .await
            .expect("read")
            .expect("found")
    };
    for (minute, health) in [(1, EndpointHealth::Failing), (30, EndpointHealth::Failing)] {
        assert_eq!(result(false, minute).await.expect("record"), health);
    }
    let failing = stored().await;
    assert_eq!((failing.failing_since, failing.version), (Some(at(1)), 2));
    for (minute, health) in [
        (62, EndpointHealth::DisabledNow),
        (63, EndpointHealth::Failing),
    ] {
        assert_eq!(
            result(false, minute).await.expect("record"),
            health,
            "minute {minute}"
        );
    }
    let disabled = stored().await;
    assert!(!disabled.enabled);
    assert!(disabled.disabled_reason.is_some());
    assert_eq!(
        hooks
            .subscribed_endpoints(&tenant, WebhookEventType::Accepted)
            .await
            .expect("read"),
        [],
        "a disabled endpoint is sent nothing"
    );

    let enabled = hooks
        .update_endpoint(
            &tenant,
            id,
            &EndpointPatch {
                enabled: Some(true),
                ..EndpointPatch::default()
            },
            at(70),
        )
        .await
        .expect("update")
        .expect("found");
    assert!(enabled.enabled && enabled.failing_since.is_none());

    // A result for an endpoint deleted meanwhile changes nothing.
    assert!(hooks.delete_endpoint(&tenant, id).await.expect("delete"));
    assert_eq!(
        result(false, 80).await.expect("record"),
        EndpointHealth::Healthy
    );
}

#[tokio::test]
async fn another_tenants_endpoint_does_not_exist() {
    let (_dir, stores) = stores().await;
    let hooks = webhooks(&stores);
    let (tenant, intruder) = (unique_tenant(), unique_tenant());
    let endpoint = hooks
        .create_endpoint(new_endpoint(&tenant), at(0))
        .await
        .expect("create");
    assert_eq!(
        hooks.endpoint(&intruder, endpoint.id).await.expect("read"),
        None
    );
    assert_eq!(
        hooks
            .update_endpoint(&intruder, endpoint.id, &EndpointPatch::default(), at(1))
            .await
            .expect("update"),
        None
    );
    assert_eq!(
        hooks
            .rotate_endpoint_secret(
                &intruder,
                endpoint.id,
                WebhookSecret::generate(),
                at(2),
                at(1)
            )
            .await
            .expect("rotate"),
        None
    );
    assert!(
        !hooks
            .delete_endpoint(&intruder, endpoint.id)
            .await
            .expect("delete")
    );
    assert_eq!(
        hooks.endpoint(&tenant, endpoint.id).await.expect("read"),
        Some(endpoint),
        "untouched"
    );
}

#[tokio::test]
async fn rotation_keeps_the_previous_secret_for_the_grace_period() {
    let (_dir, stores) = stores().await;
    let hooks = webhooks(&stores);
    let tenant = unique_tenant();
    let endpoint = hooks
        .create_endpoint(new_endpoint(&tenant), at(0))
        .await
        .expect("create");
    let next = WebhookSecret::generate();
    let rotated = hooks
        .rotate_endpoint_secret(&tenant, endpoint.id, next.clone(), at(60), at(1))
        .await
        .expect("rotate")
        .expect("found");
    let stored = hooks
        .endpoint(&tenant, endpoint.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(stored, rotated);
    let live = stored.live_secrets(at(2));
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].secret, next);
    assert_eq!(stored.live_secrets(at(60)).len(), 1);
}

/// Of many concurrent first askers, exactly one initial secret wins and every caller gets it;
/// a rotation keeps it signing for the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_secrets_are_created_once_and_rotated() {
    let (_dir, stores) = stores().await;
    let hooks = webhooks(&stores);
    let tenant = unique_tenant();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (hooks, tenant) = (hooks.clone(), tenant.clone());
        tasks.spawn(async move {
            hooks
                .callback_secrets(&tenant, WebhookSecret::generate(), at(0))
                .await
                .expect("secrets")
        });
    }
    let mut seen = Vec::new();
    while let Some(secrets) = tasks.join_next().await {
        let secrets = secrets.expect("task");
        assert_eq!(secrets.len(), 1);
        seen.push(secrets[0].secret.clone());
    }
    assert!(
        seen.iter().all(|s| *s == seen[0]),
        "every caller got the one secret"
    );

    let next = WebhookSecret::generate();
    let rotated = hooks
        .rotate_callback_secret(&tenant, next.clone(), at(30), at(1))
        .await
        .expect("rotate");
    let secrets: Vec<&WebhookSecret> = rotated.iter().map(|s| &s.secret).collect();
    assert_eq!(secrets, [&next, &seen[0]]);
    let later = hooks
        .callback_secrets(&tenant, WebhookSecret::generate(), at(31))
        .await
        .expect("secrets");
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].secret, next);
}

fn attempt(number: u32, succeeded: bool, minute: i64) -> DeliveryAttempt {
    DeliveryAttempt {
        number,
        at: at(minute),
        url: "https://partner.example/cb".into(),
        http_status: Some(if succeeded { 200 } else { 503 }),
        latency_ms: 5,
        response_excerpt: None,
        error: None,
        succeeded,
    }
}

#[tokio::test]
async fn a_delivery_moves_through_its_states_and_series() {
    let (_dir, stores) = stores().await;
    let hooks = webhooks(&stores);
    let tenant = unique_tenant();
    let receipt = ReceiptId::new();
    let new = NewDelivery {
        id: "msg_00112233445566778899aabbccddeeff".into(),
        tenant_id: tenant.clone(),
        receipt_id: receipt,
        destination: Destination::Callback,
        url: "https://partner.example/cb".into(),
        event_type: WebhookEventType::Accepted,
        payload: br#"{"type":"receipt.accepted"}"#.to_vec(),
        created_at: at(0),
    };
    let recorded = hooks.record_delivery(new.clone()).await.expect("record");
    let mut again = new.clone();
    again.payload = b"{}".to_vec();
    assert_eq!(
        hooks.record_delivery(again).await.expect("record"),
        recorded,
        "recorded once: the first stays"
    );

    let id = recorded.id.clone();
    hooks
        .record_attempt(&id, 1, &attempt(1, false, 1), at(1))
        .await
        .expect("attempt");
    hooks
        .fail_delivery(&id, 1, "gave up", at(2))
        .await
        .expect("fail");
    let failed = hooks
        .delivery(&tenant, &id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(failed.delivery.status, DeliveryStatus::Failed);
    assert_eq!(failed.attempts.len(), 1);

    let series = failed.delivery.next_series(&failed.attempts);
    assert_eq!(series, 2);
    let reopened = hooks
        .reopen_delivery(&id, series, at(3))
        .await
        .expect("reopen")
        .expect("found");
    assert_eq!(reopened.status, DeliveryStatus::Pending);
    assert!(matches!(
        hooks.reopen_delivery(&id, series + 1, at(4)).await,
        Err(Error::Delivery(DeliveryError::StillPending))
    ));
    hooks
        .record_attempt(&id, series, &attempt(2, true, 5), at(5))
        .await
        .expect("attempt");
    let delivered = hooks
        .delivery(&tenant, &id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(delivered.delivery.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.attempts.len(), 2);

    assert_eq!(
        hooks.delivery(&unique_tenant(), &id).await.expect("read"),
        None
    );
    assert_eq!(
        hooks
            .deliveries(&unique_tenant(), receipt)
            .await
            .expect("read"),
        []
    );
    assert_eq!(
        hooks
            .deliveries(&tenant, receipt)
            .await
            .expect("read")
            .len(),
        1
    );
}
