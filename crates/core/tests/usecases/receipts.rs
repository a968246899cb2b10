//! `Receipts`: reads, tenant by tenant, with the reservation standing in before the projection.

use receipts_core::{Projector, Receipts};
use receipts_domain::event::now_millis;
use receipts_domain::{ReceiptEvent, ReceiptId, Status, StatusPolicy};
use receipts_store::conformance::reservations::reservation;
use receipts_store::conformance::{ReceiptFixture, unique_tenant};
use receipts_store::{Document, Reserved};

use crate::stores;

#[tokio::test]
async fn a_receipt_is_readable_from_its_reservation_until_projected() {
    let (_dir, stores) = stores().await;
    let receipts = Receipts::new(
        stores.receipts.clone(),
        stores.reservations.clone(),
        stores.documents.clone(),
    );
    let tenant = unique_tenant();
    let reserved = reservation(&tenant, "order-1", b"{}");
    assert_eq!(
        stores
            .reservations
            .reserve(&reserved)
            .await
            .expect("reserve"),
        Reserved::New
    );
    let id = reserved.receipt_id;

    let early = receipts
        .receipt(&tenant, id)
        .await
        .expect("read")
        .expect("readable at once");
    assert_eq!((early.status, early.version), (Status::Received, 0));
    assert_eq!(early.timeline[0].event_id, reserved.event_id);
    assert_eq!(
        receipts.tenant_of(id).await.expect("read"),
        Some(tenant.clone())
    );
    assert_eq!(
        receipts.receipt(&unique_tenant(), id).await.expect("read"),
        None,
        "another tenant's receipt does not exist"
    );

    // Once projected, the record answers.
    let fx = ReceiptFixture {
        tenant: tenant.clone(),
        receipt_id: id,
        submitted_at: reserved.received_at,
    };
    let projector = Projector::new(stores.receipts.clone(), StatusPolicy::default());
    for event in [fx.submitted(), fx.validated()] {
        projector.apply(&event, now_millis()).await.expect("apply");
    }
    let projected = receipts
        .receipt(&tenant, id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(
        (projected.status, projected.version),
        (Status::Validated, 2)
    );
}

#[tokio::test]
async fn documents_and_owners_are_per_tenant() {
    let (_dir, stores) = stores().await;
    let receipts = Receipts::new(
        stores.receipts.clone(),
        stores.reservations.clone(),
        stores.documents.clone(),
    );
    let fx = ReceiptFixture::default();
    let document = Document {
        receipt_id: fx.receipt_id,
        tenant_id: fx.tenant.clone(),
        content_type: "application/json".into(),
        bytes: b"{}".to_vec(),
    };
    stores.documents.put_document(&document).await.expect("put");
    assert_eq!(
        receipts
            .document(&fx.tenant, fx.receipt_id)
            .await
            .expect("read"),
        Some(document)
    );
    assert_eq!(
        receipts
            .document(&unique_tenant(), fx.receipt_id)
            .await
            .expect("read"),
        None
    );

    // A receipt first seen through a registration (no reservation here) has an owner too.
    let registered: ReceiptEvent = fx.registered("tax");
    Projector::new(stores.receipts.clone(), StatusPolicy::default())
        .apply(&registered, now_millis())
        .await
        .expect("apply");
    assert_eq!(
        receipts.tenant_of(fx.receipt_id).await.expect("read"),
        Some(fx.tenant.clone())
    );
    assert_eq!(
        receipts.tenant_of(ReceiptId::new()).await.expect("read"),
        None
    );
}
