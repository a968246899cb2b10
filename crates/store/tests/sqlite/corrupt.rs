//! Bad stored data is reported as `Error::Corrupt` (permanent), never a panic.

use receipts_domain::ReceiptId;
use receipts_store::conformance::ReceiptFixture;
use receipts_store::{DeliveryStore, EndpointStore, Error, ReceiptStore, ReservationStore};

use crate::{db, fresh};

async fn raw(dir: &std::path::Path) -> libsql::Connection {
    libsql::Builder::new_local(db(dir))
        .build()
        .await
        .expect("raw database")
        .connect()
        .expect("raw connection")
}

fn assert_corrupt<T: std::fmt::Debug>(result: receipts_store::Result<T>) {
    match result {
        Err(e @ Error::Corrupt { .. }) => assert!(!e.is_transient(), "{e}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let (dir, store) = fresh().await;
    let fx = ReceiptFixture::default();
    let _ = store.save_receipt(&fx.accepted(), 0).await.expect("save");
    let conn = raw(dir.path()).await;

    // Not JSON at all.
    conn.execute(
        "UPDATE receipt_records SET record = 'garbage' WHERE id = ?1",
        [fx.receipt_id.to_string()],
    )
    .await
    .expect("corrupt it");
    assert_corrupt(store.receipt(fx.receipt_id).await);

    // JSON of another shape; a version that disagrees with the row's.
    let other = ReceiptFixture::default();
    let _ = store
        .save_receipt(&other.accepted(), 0)
        .await
        .expect("save");
    conn.execute(
        "UPDATE receipt_records SET version = 7 WHERE id = ?1",
        [other.receipt_id.to_string()],
    )
    .await
    .expect("corrupt it");
    assert_corrupt(store.receipt(other.receipt_id).await);

    // A value of the wrong type where a lookup reads it.
    let id = ReceiptId::new();
    conn.execute(
        "INSERT INTO reservations (tenant_id, idempotency_key, receipt_id, record)
         VALUES ('t', 'k', ?1, '{\"tenant_id\": 42}')",
        [id.to_string()],
    )
    .await
    .expect("insert a bad row");
    assert_corrupt(store.reservation_of(id).await);

    conn.execute(
        "INSERT INTO delivery_records (id, tenant_id, receipt_id, created_at, version, record)
         VALUES ('msg_bad', 't', 'r', 0, 1, '[]')",
        (),
    )
    .await
    .expect("insert a bad row");
    assert_corrupt(store.delivery("msg_bad").await);
    conn.execute(
        "INSERT INTO callback_secret_records (tenant_id, version, record) VALUES ('acme', 1, '{}')",
        (),
    )
    .await
    .expect("insert a bad row");
    assert_corrupt(
        store
            .callback_secrets(&receipts_domain::TenantId::parse("acme").expect("tenant"))
            .await,
    );
}
