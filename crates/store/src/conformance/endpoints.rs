//! [`EndpointStore`](crate::EndpointStore).

use chrono::TimeDelta;
use receipts_domain::event::now_millis;
use receipts_domain::{
    CallbackSecrets, Endpoint, EndpointId, NewEndpoint, TenantId, WebhookEventType, WebhookSecret,
};

use super::unique_tenant;
use crate::{Cas, Error, Stores};

/// A new endpoint of `tenant` with a fresh secret.
pub fn endpoint(tenant: &TenantId, events: Option<Vec<WebhookEventType>>) -> Endpoint {
    Endpoint::new(
        NewEndpoint {
            id: EndpointId::new(),
            tenant_id: tenant.clone(),
            url: "https://hooks.example/receipts".into(),
            description: Some("ops".into()),
            events,
            secret: WebhookSecret::generate(),
        },
        now_millis(),
    )
}

/// Endpoints come back whole (secrets included), are listed per tenant in id order, can be
/// deleted once, and cannot be created twice.
pub async fn endpoints_round_trip_list_in_id_order_and_delete(stores: &Stores) {
    let (tenant, other) = (unique_tenant(), unique_tenant());
    let endpoints = &stores.endpoints;
    let mut a = endpoint(&tenant, Some(vec![WebhookEventType::Validated]));
    a.secrets.rotate(
        WebhookSecret::generate(),
        now_millis() + TimeDelta::hours(1),
        now_millis(),
    );
    let b = endpoint(&other, None);
    let c = endpoint(&tenant, None);
    for e in [&a, &b, &c] {
        endpoints.create_endpoint(e).await.expect("create");
    }
    assert_eq!(
        endpoints.endpoint(a.id).await.expect("read"),
        Some(a.clone())
    );
    let listed = endpoints.endpoints(&tenant).await.expect("list");
    assert_eq!(listed, [a.clone(), c.clone()]);
    assert_eq!(
        endpoints.endpoints(&unique_tenant()).await.expect("list"),
        []
    );

    let again = endpoints.create_endpoint(&a).await.expect_err("exists");
    assert!(matches!(again, Error::AlreadyExists { .. }), "{again}");

    assert!(endpoints.delete_endpoint(a.id).await.expect("delete"));
    assert!(
        !endpoints.delete_endpoint(a.id).await.expect("delete"),
        "once"
    );
    assert_eq!(endpoints.endpoint(a.id).await.expect("read"), None);
    assert_eq!(endpoints.endpoints(&tenant).await.expect("list"), [c]);
}

/// An endpoint is written only on the version it expects.
pub async fn endpoint_writes_compare_versions(stores: &Stores) {
    let endpoints = &stores.endpoints;
    let original = endpoint(&unique_tenant(), None);
    endpoints.create_endpoint(&original).await.expect("create");
    let mut moved = original.clone();
    moved.url = "https://elsewhere.example/".into();
    moved.version = 2;
    assert_eq!(
        endpoints.save_endpoint(&moved, 1).await.expect("save"),
        Cas::Written
    );
    let mut stale = original.clone();
    stale.enabled = false;
    stale.version = 2;
    assert_eq!(
        endpoints.save_endpoint(&stale, 1).await.expect("save"),
        Cas::Conflict
    );
    assert_eq!(
        endpoints.endpoint(original.id).await.expect("read"),
        Some(moved)
    );
    let ghost = endpoint(&unique_tenant(), None);
    assert_eq!(
        endpoints.save_endpoint(&ghost, 1).await.expect("save"),
        Cas::Conflict,
        "no such endpoint"
    );
}

/// A tenant's callback secrets are created by exactly one of many concurrent first writers,
/// then changed only on the version expected; tenants are independent.
pub async fn callback_secrets_are_created_once(stores: &Stores) {
    let tenant = unique_tenant();
    assert_eq!(
        stores
            .endpoints
            .callback_secrets(&tenant)
            .await
            .expect("read"),
        None
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (endpoints, first) = (
            stores.endpoints.clone(),
            CallbackSecrets::new(tenant.clone(), WebhookSecret::generate()),
        );
        tasks.spawn(async move {
            let written = endpoints
                .save_callback_secrets(&first, 0)
                .await
                .expect("save");
            (written, first)
        });
    }
    let mut created = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let (Cas::Written, first) = joined.expect("task") {
            created.push(first);
        }
    }
    assert_eq!(created.len(), 1, "created once");
    let stored = stores
        .endpoints
        .callback_secrets(&tenant)
        .await
        .expect("read")
        .expect("created");
    assert_eq!(stored, created[0]);

    let mut rotated = stored.clone();
    rotated
        .secrets
        .rotate(WebhookSecret::generate(), now_millis(), now_millis());
    rotated.version = 2;
    assert_eq!(
        stores
            .endpoints
            .save_callback_secrets(&rotated, 1)
            .await
            .expect("save"),
        Cas::Written
    );
    assert_eq!(
        stores
            .endpoints
            .save_callback_secrets(&stored, 1)
            .await
            .expect("save"),
        Cas::Conflict
    );
    assert_eq!(
        stores
            .endpoints
            .callback_secrets(&tenant)
            .await
            .expect("read"),
        Some(rotated)
    );
    assert_eq!(
        stores
            .endpoints
            .callback_secrets(&unique_tenant())
            .await
            .expect("read"),
        None
    );
}
