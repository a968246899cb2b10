//! [`ReceiptStore`](crate::ReceiptStore) and [`Health`](crate::Health).

use receipts_domain::ReceiptId;

use super::ReceiptFixture;
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
