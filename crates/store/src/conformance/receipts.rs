//! [`ReceiptStore`](crate::ReceiptStore) and [`Health`](crate::Health).

use std::collections::BTreeSet;

use receipts_domain::{Order, ReceiptId, ReceiptRecord, ReceiptScan, ReceiptSummary, Status};

use super::{ReceiptFixture, unique_tenant};
use crate::{Cas, Stores};

/// A record comes back exactly as written, whole (status, timeline, registrations, the
/// normalized receipt); an unknown id has none.
pub async fn a_record_round_trips_whole(stores: &Stores) {
    let fx = ReceiptFixture::default();
    let record = fx.accepted();
    assert_eq!(
        stores
            .receipts
            .save_receipt(&record, 0)
            .await
            .expect("save"),
        Cas::Written
    );
    let read = stores
        .receipts
        .receipt(fx.receipt_id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(read, record);
    assert_eq!(read.timeline.len(), 4);
    assert!(
        stores
            .receipts
            .receipt(ReceiptId::new())
            .await
            .expect("read")
            .is_none()
    );
}

/// A write succeeds only on the version it expects: a record cannot be created twice, and an
/// update based on an outdated version is refused and changes nothing.
pub async fn compare_and_set_refuses_a_stale_version(stores: &Stores) {
    let fx = ReceiptFixture::default();
    let submitted = fx.record(&[fx.submitted()]);
    let receipts = &stores.receipts;
    assert_eq!(
        receipts.save_receipt(&submitted, 0).await.expect("save"),
        Cas::Written
    );
    assert_eq!(
        receipts.save_receipt(&submitted, 0).await.expect("save"),
        Cas::Conflict,
        "the record exists"
    );

    let validated = fx.record(&[fx.submitted(), fx.validated()]);
    assert_eq!(validated.version, 2);
    assert_eq!(
        receipts.save_receipt(&validated, 1).await.expect("save"),
        Cas::Written
    );
    let rejected = fx.record(&[fx.submitted(), fx.rejected()]);
    assert_eq!(
        receipts.save_receipt(&rejected, 1).await.expect("save"),
        Cas::Conflict,
        "version 1 is gone"
    );
    assert_eq!(
        receipts.receipt(fx.receipt_id).await.expect("read"),
        Some(validated)
    );
}

/// Of many concurrent writers of the same next version, exactly one succeeds, and the stored
/// record is the one it wrote.
pub async fn of_concurrent_writers_of_one_version_exactly_one_wins(stores: &Stores) {
    let fx = ReceiptFixture::default();
    let first = fx.record(&[fx.submitted()]);
    assert_eq!(
        stores.receipts.save_receipt(&first, 0).await.expect("save"),
        Cas::Written
    );
    let contenders: Vec<_> = (0..16)
        .map(|n| {
            let mut next = fx.record(&[fx.submitted(), fx.validated()]);
            next.receipt_type = Some(format!("contender-{n}"));
            next
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for record in contenders.clone() {
        let receipts = stores.receipts.clone();
        tasks.spawn(async move { (receipts.save_receipt(&record, 1).await, record) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (outcome, record) = joined.expect("task");
        if outcome.expect("save") == Cas::Written {
            winners.push(record);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    assert_eq!(
        stores.receipts.receipt(fx.receipt_id).await.expect("read"),
        winners.pop()
    );
}

/// The backend answers a ping and names itself.
pub async fn the_backend_answers_pings(stores: &Stores) {
    stores.health.ping().await.expect("ping");
    assert!(!stores.health.backend().is_empty());
}

/// Saves the record after `events` of a new receipt of `tenant` (received now: its id says so).
async fn save_new(
    stores: &Stores,
    tenant: &receipts_domain::TenantId,
    events: impl Fn(&ReceiptFixture) -> Vec<receipts_domain::ReceiptEvent>,
) -> ReceiptRecord {
    let fx = ReceiptFixture::for_tenant(tenant.clone());
    let record = fx.record(&events(&fx));
    assert_eq!(
        stores
            .receipts
            .save_receipt(&record, 0)
            .await
            .expect("save"),
        Cas::Written
    );
    record
}

fn whole_range(tenant: &receipts_domain::TenantId, order: Order) -> ReceiptScan {
    ReceiptScan {
        tenant: tenant.clone(),
        after: ReceiptId::from_uuid(uuid::Uuid::nil()),
        before: ReceiptId::from_uuid(uuid::Uuid::max()),
        statuses: BTreeSet::new(),
        receipt_type: None,
        order,
    }
}

/// A scan returns the tenant's ids only, strictly inside its range, in its order, at most its
/// limit; filters on status and type select exactly the matching receipts.
pub async fn receipt_ids_are_scanned_by_tenant_range_order_and_filter(stores: &Stores) {
    let tenant = unique_tenant();
    let mut records = Vec::new();
    for n in 0..6 {
        records.push(
            save_new(stores, &tenant, |fx| match n % 3 {
                0 => vec![fx.submitted()],
                1 => vec![fx.submitted(), fx.rejected()],
                _ => vec![
                    fx.submitted(),
                    fx.validated(),
                    fx.registered("tax"),
                    fx.registered("logistics"),
                ],
            })
            .await,
        );
    }
    save_new(stores, &unique_tenant(), |fx| vec![fx.submitted()]).await;
    let ids: Vec<ReceiptId> = records.iter().map(|r| r.id).collect();
    let receipts = &stores.receipts;

    let asc = receipts
        .scan_receipt_ids(&whole_range(&tenant, Order::Asc), 100)
        .await
        .expect("scan");
    assert_eq!(asc, ids, "the tenant's receipts only, ascending by id");
    let desc = receipts
        .scan_receipt_ids(&whole_range(&tenant, Order::Desc), 4)
        .await
        .expect("scan");
    assert_eq!(desc, ids.iter().rev().take(4).copied().collect::<Vec<_>>());

    let inside = ReceiptScan {
        after: ids[1],
        before: ids[4],
        ..whole_range(&tenant, Order::Asc)
    };
    assert_eq!(
        receipts.scan_receipt_ids(&inside, 100).await.expect("scan"),
        ids[2..4],
        "both bounds excluded"
    );

    let rejected_or_accepted = ReceiptScan {
        statuses: [Status::Rejected, Status::Accepted].into(),
        ..whole_range(&tenant, Order::Asc)
    };
    let expected: Vec<ReceiptId> = records
        .iter()
        .filter(|r| matches!(r.status, Status::Rejected | Status::Accepted))
        .map(|r| r.id)
        .collect();
    assert_eq!(expected.len(), 4);
    assert_eq!(
        receipts
            .scan_receipt_ids(&rejected_or_accepted, 100)
            .await
            .expect("scan"),
        expected
    );
    let other_type = ReceiptScan {
        receipt_type: Some("fuel-receipt/v1".into()),
        ..whole_range(&tenant, Order::Asc)
    };
    assert_eq!(
        receipts
            .scan_receipt_ids(&other_type, 100)
            .await
            .expect("scan"),
        []
    );
    let this_type = ReceiptScan {
        receipt_type: Some("retail-receipt/v1".into()),
        ..whole_range(&tenant, Order::Asc)
    };
    assert_eq!(
        receipts
            .scan_receipt_ids(&this_type, 100)
            .await
            .expect("scan"),
        ids
    );
}

/// Summaries show each receipt as last saved, for the tenant's ids in the range (both ends
/// included), ascending.
pub async fn summaries_show_each_receipt_as_last_saved(stores: &Stores) {
    let tenant = unique_tenant();
    let fx = ReceiptFixture::for_tenant(tenant.clone());
    let received = fx.record(&[fx.submitted()]);
    let receipts = &stores.receipts;
    assert_eq!(
        receipts.save_receipt(&received, 0).await.expect("save"),
        Cas::Written
    );
    let later = save_new(stores, &tenant, |fx| vec![fx.submitted()]).await;
    save_new(stores, &unique_tenant(), |fx| vec![fx.submitted()]).await;
    let rejected = fx.record(&[fx.submitted(), fx.rejected()]);
    assert_eq!(
        receipts.save_receipt(&rejected, 1).await.expect("save"),
        Cas::Written
    );

    let summaries = receipts
        .receipt_summaries(&tenant, received.id, later.id)
        .await
        .expect("summaries");
    assert_eq!(
        summaries,
        [ReceiptSummary::of(&rejected), ReceiptSummary::of(&later)]
    );
    assert_eq!(summaries[0].status, Status::Rejected);
    assert_eq!(summaries[0].received_at, fx.submitted_at);
    assert_eq!(
        receipts
            .receipt_summaries(&tenant, later.id, later.id)
            .await
            .expect("summaries"),
        [ReceiptSummary::of(&later)]
    );
    assert_eq!(
        receipts
            .receipt_summaries(&unique_tenant(), received.id, later.id)
            .await
            .expect("summaries"),
        []
    );
    // A receipt whose submission has not been projected yet shows when its id says.
    let overtaken = save_new(stores, &tenant, |fx| vec![fx.validated()]).await;
    let shown = receipts
        .receipt_summaries(&tenant, overtaken.id, overtaken.id)
        .await
        .expect("summaries");
    assert_eq!(
        shown[0].received_at,
        receipts_domain::listing::received_at(overtaken.id)
    );
}
