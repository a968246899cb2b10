//! State survives a restart: same ids, same versions.

use serde_json::json;

use crate::helpers::{RECEIPT_V1, RECEIPT_V2, spawn_app};

#[tokio::test]
async fn ids_and_versions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory that does not exist yet: open creates it.
    let path = dir.path().join("data/schema-registry.json");

    let app = spawn_app(&path).await;
    let id1 = app.register("receipts.submitted-value", RECEIPT_V1).await;
    let id2 = app.register("receipts.submitted-value", RECEIPT_V2).await;
    let id3 = app.register("receipts.status-key", r#""string""#).await;
    assert_eq!(
        app.register("receipts.validated-value", RECEIPT_V2).await,
        id2
    );
    app.stop().await;
    assert!(path.is_file());
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("file is JSON");
    assert_eq!(on_disk["schemas"].as_array().map(Vec::len), Some(3));

    // A new registry on the same file, behind a new listener.
    let app = spawn_app(&path).await;
    assert_eq!(
        app.get(&format!("/schemas/ids/{id1}")).await,
        (200, json!({ "schema": RECEIPT_V1 }))
    );
    assert_eq!(
        app.get(&format!("/schemas/ids/{id3}")).await,
        (200, json!({ "schema": r#""string""# }))
    );
    assert_eq!(
        app.get("/subjects").await,
        (
            200,
            json!([
                "receipts.status-key",
                "receipts.submitted-value",
                "receipts.validated-value"
            ])
        )
    );
    assert_eq!(
        app.get("/subjects/receipts.submitted-value/versions").await,
        (200, json!([1, 2]))
    );
    let (_, latest) = app
        .get("/subjects/receipts.validated-value/versions/latest")
        .await;
    assert_eq!(
        (&latest["version"], &latest["id"]),
        (&json!(1), &json!(id2))
    );
    // Known schemas are still recognized, in their subject and in others...
    assert_eq!(
        app.register("receipts.submitted-value", RECEIPT_V1).await,
        id1
    );
    assert_eq!(
        app.register("receipts.rejected-value", RECEIPT_V1).await,
        id1
    );
    assert_eq!(
        app.get("/subjects/receipts.submitted-value/versions").await,
        (200, json!([1, 2]))
    );
    // ... and new ones continue the sequence.
    let v1_with_note = r#"{"type":"record","name":"ReceiptSubmitted","namespace":"receipts.events","fields":[
        {"name":"event_id","type":"string"},
        {"name":"receipt_id","type":"string"},
        {"name":"note","type":["null","string"],"default":null}
    ]}"#;
    let id4 = app.register("receipts.rejected-value", v1_with_note).await;
    assert_eq!(id4, 4);
    app.stop().await;

    let app = spawn_app(&path).await;
    assert_eq!(
        app.get("/subjects/receipts.rejected-value/versions").await,
        (200, json!([1, 2]))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_corrupt_file_is_an_error_not_an_empty_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sr.json");
    std::fs::write(&path, b"{ not json").expect("write");
    let err = receipts_schema_registry::SchemaRegistry::open(&path)
        .await
        .expect_err("corrupt");
    assert!(
        matches!(err, receipts_schema_registry::Error::Corrupt { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("sr.json"), "{err}");
}
