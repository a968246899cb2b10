//! [`ReservationStore`](crate::ReservationStore).

use receipts_domain::event::now_millis;
use receipts_domain::{
    DocumentFormat, EventId, IdempotencyKey, ReceiptId, RequestFingerprint, Reservation, TenantId,
};

use super::unique_tenant;
use crate::{Reserved, Stores};

/// A reservation of `key` for a request with body `body`.
pub fn reservation(tenant: &TenantId, key: &str, body: &[u8]) -> Reservation {
    Reservation {
        tenant_id: tenant.clone(),
        idempotency_key: IdempotencyKey::parse(key).expect("a valid key"),
        fingerprint: RequestFingerprint::of("retail-receipt/v1", DocumentFormat::Json, None, body),
        receipt_id: ReceiptId::new(),
        event_id: EventId::new(),
        received_at: now_millis(),
        receipt_type: "retail-receipt/v1".into(),
        content_type: "application/json".into(),
        callback_url: None,
    }
}

/// The first reservation of a (tenant, key) wins; later ones get it back unchanged, whatever
/// they carry; the same key of another tenant is independent; a reservation is found by the
/// receipt id it gave out.
pub async fn the_first_reservation_of_a_key_wins(stores: &Stores) {
    let (tenant, other) = (unique_tenant(), unique_tenant());
    let first = reservation(&tenant, "order-1", b"{}");
    let reservations = &stores.reservations;
    assert_eq!(
        reservations.reserve(&first).await.expect("reserve"),
        Reserved::New
    );
    let second = reservation(&tenant, "order-1", b"{\"other\": true}");
    assert_eq!(
        reservations.reserve(&second).await.expect("reserve"),
        Reserved::Existing(Box::new(first.clone()))
    );
    let elsewhere = reservation(&other, "order-1", b"{}");
    assert_eq!(
        reservations.reserve(&elsewhere).await.expect("reserve"),
        Reserved::New
    );

    assert_eq!(
        reservations
            .reservation_of(first.receipt_id)
            .await
            .expect("read"),
        Some(first)
    );
    assert_eq!(
        reservations
            .reservation_of(second.receipt_id)
            .await
            .expect("read"),
        None,
        "the refused reservation left nothing"
    );
}

/// Concurrent reservations of one key: exactly one is new, and every other caller gets that one.
pub async fn concurrent_reservations_of_one_key_agree(stores: &Stores) {
    let tenant = unique_tenant();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let (reservations, r) = (
            stores.reservations.clone(),
            reservation(&tenant, "contended", format!("{n}").as_bytes()),
        );
        tasks.spawn(async move { (reservations.reserve(&r).await.expect("reserve"), r) });
    }
    let mut new = Vec::new();
    let mut existing = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            (Reserved::New, r) => new.push(r),
            (Reserved::Existing(earlier), _) => existing.push(*earlier),
        }
    }
    assert_eq!(new.len(), 1, "exactly one reservation is new");
    assert_eq!(existing.len(), 19);
    assert!(existing.iter().all(|r| *r == new[0]));
}
