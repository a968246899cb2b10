//! Files: where the store lives, that it keeps what it was told, and its schema version.

use receipts_domain::event::now_millis;
use receipts_domain::{ApiKey, ReceiptId, Scope, WebhookSecret};
use receipts_store::conformance::deliveries::{attempt, delivery};
use receipts_store::conformance::endpoints::endpoint;
use receipts_store::conformance::reservations::reservation;
use receipts_store::conformance::{ReceiptFixture, unique_tenant};
use receipts_store::{
    ClientStore, DeliveryStore, Document, DocumentStore, EndpointStore, Error, ReceiptStore,
    ReservationStore, SqliteOptions, SqliteStore,
};

use crate::{db, fresh, open_at};

#[tokio::test]
async fn open_creates_directories_and_uses_wal() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("nested/deeper/receipts.db");
    let store = open_at(&path).await;
    assert!(path.exists());
    assert_eq!(store.path(), path);
    assert_eq!(store.schema_version().await.expect("version"), 5);
    let fx = ReceiptFixture::default();
    let _ = store.save_receipt(&fx.accepted(), 0).await.expect("write");
    assert!(
        path.with_extension("db-wal").exists(),
        "write-ahead log in use"
    );
}

#[tokio::test]
async fn open_names_the_path_it_cannot_use() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").expect("write");
    let path = blocker.join("receipts.db");
    match SqliteStore::open(&path, &SqliteOptions::default()).await {
        Err(e @ Error::Open { .. }) => {
            assert!(e.to_string().contains("receipts.db"), "{e}");
            assert!(!e.is_transient());
        }
        other => panic!("expected an Open error, got {other:?}"),
    }
}

/// Everything written is there for a store opened again on the file, exactly.
#[tokio::test]
async fn data_survives_close_and_reopen() {
    let (dir, store) = fresh().await;
    let tenant = unique_tenant();
    let fx = ReceiptFixture::for_tenant(tenant.clone());
    let record = fx.accepted();
    let _ = store.save_receipt(&record, 0).await.expect("receipt");
    let reserved = reservation(&tenant, "order-1", b"{}");
    store.reserve(&reserved).await.expect("reservation");
    let document = Document {
        receipt_id: fx.receipt_id,
        tenant_id: tenant.clone(),
        content_type: "application/json".into(),
        bytes: b"{\"x\": 1}".to_vec(),
    };
    store.put_document(&document).await.expect("document");
    let client = ApiKey::generate().new_client(tenant.clone(), Scope::Read, None);
    let client = store
        .create_client(&client, now_millis())
        .await
        .expect("client");
    let mut hook = endpoint(&tenant, None);
    hook.secrets
        .rotate(WebhookSecret::generate(), now_millis(), now_millis());
    store.create_endpoint(&hook).await.expect("endpoint");
    let sent = delivery(
        &tenant,
        fx.receipt_id,
        receipts_domain::Destination::Callback,
        now_millis(),
    );
    store.record_delivery(&sent).await.expect("delivery");
    let tried = attempt(1, now_millis(), true);
    store.put_attempt(&sent.id, &tried).await.expect("attempt");
    drop(store);

    let store = open_at(&db(dir.path())).await;
    assert_eq!(
        store.receipt(fx.receipt_id).await.expect("read"),
        Some(record)
    );
    assert_eq!(
        store
            .reservation_of(reserved.receipt_id)
            .await
            .expect("read"),
        Some(reserved)
    );
    assert_eq!(
        store.document(fx.receipt_id).await.expect("read"),
        Some(document)
    );
    assert_eq!(store.clients(Some(&tenant)).await.expect("read"), [client]);
    assert_eq!(store.endpoint(hook.id).await.expect("read"), Some(hook));
    assert_eq!(
        store.delivery(&sent.id).await.expect("read"),
        Some(sent.clone())
    );
    assert_eq!(store.attempts(&sent.id).await.expect("read"), [tried]);
    assert_eq!(store.receipt(ReceiptId::new()).await.expect("read"), None);
}

/// Opening again migrates nothing; a database written by a newer build is refused, untouched.
#[tokio::test]
async fn migrations_run_once_and_a_newer_schema_is_refused() {
    let (dir, store) = fresh().await;
    drop(store);
    let store = open_at(&db(dir.path())).await;
    assert_eq!(store.schema_version().await.expect("version"), 5);
    drop(store);

    let raw = libsql::Builder::new_local(db(dir.path()))
        .build()
        .await
        .expect("raw database");
    raw.connect()
        .expect("connect")
        .execute("PRAGMA user_version = 99", ())
        .await
        .expect("pretend a newer build wrote it");
    match SqliteStore::open(&db(dir.path()), &SqliteOptions::default()).await {
        Err(e @ Error::Open { .. }) => assert!(e.to_string().contains("newer"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
