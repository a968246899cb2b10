//! BACKWARD compatibility of new versions.

use serde_json::json;

use crate::helpers::{RECEIPT_V1, RECEIPT_V2, RECEIPT_V2_NO_DEFAULT, assert_error, spawn_app};

#[tokio::test]
async fn backward_compatibility_is_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    let subject = "receipts.submitted-value";
    let path = format!("/subjects/{subject}/versions");
    let id1 = app.register(subject, RECEIPT_V1).await;

    // A field without a default: old data cannot be read with the new schema.
    let (status, body) = app
        .post(&path, &json!({ "schema": RECEIPT_V2_NO_DEFAULT }))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error_code"], 409);
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains(subject) && message.contains("tenant_id"),
        "{message}"
    );

    // A changed field type.
    let retyped = RECEIPT_V1.replace(
        r#""name":"receipt_id","type":"string""#,
        r#""name":"receipt_id","type":"int""#,
    );
    assert_ne!(retyped, RECEIPT_V1);
    assert_error(
        app.post(&path, &json!({ "schema": retyped })).await,
        409,
        409,
    );
    // A renamed record.
    let renamed = RECEIPT_V1.replace("ReceiptSubmitted", "Other");
    assert_error(
        app.post(&path, &json!({ "schema": renamed })).await,
        409,
        409,
    );
    assert_eq!(app.get(&path).await, (200, json!([1])));

    // A field with a default: a new version.
    let id2 = app.register(subject, RECEIPT_V2).await;
    assert_ne!(id2, id1);
    assert_eq!(app.get(&path).await, (200, json!([1, 2])));

    // Re-registering an older version returns its id and adds no version (as Confluent does).
    assert_eq!(app.register(subject, RECEIPT_V1).await, id1);
    assert_eq!(app.get(&path).await, (200, json!([1, 2])));

    // The check is per subject: the incompatible schema is fine as a first version elsewhere.
    app.register("other-value", RECEIPT_V2_NO_DEFAULT).await;

    // Removing a field is BACKWARD compatible.
    let removed = r#"{"type":"record","name":"ReceiptSubmitted","namespace":"receipts.events","fields":[{"name":"event_id","type":"string"}]}"#;
    app.register(subject, removed).await;
    assert_eq!(app.get(&path).await, (200, json!([1, 2, 3])));
    app.stop().await;
}

#[tokio::test]
async fn enum_evolution() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    let path = "/subjects/status-value/versions";
    let two = r#"{"type":"enum","name":"Status","symbols":["RECEIVED","VALIDATED"]}"#;
    let three = r#"{"type":"enum","name":"Status","symbols":["RECEIVED","VALIDATED","ACCEPTED"]}"#;
    app.register("status-value", two).await;
    app.register("status-value", three).await;
    // Re-registering the old version is a lookup, not a change.
    assert_eq!(app.register("status-value", two).await, 1);
    // Dropping a symbol the old data may hold, without a default: refused.
    let dropped = r#"{"type":"enum","name":"Status","symbols":["RECEIVED","ACCEPTED"]}"#;
    assert_error(
        app.post(path, &json!({ "schema": dropped })).await,
        409,
        409,
    );
    // ... unless the reader has a default symbol.
    let with_default =
        r#"{"type":"enum","name":"Status","symbols":["RECEIVED","ACCEPTED"],"default":"RECEIVED"}"#;
    app.register("status-value", with_default).await;
    assert_eq!(
        app.get("/subjects/status-value/versions").await,
        (200, json!([1, 2, 3]))
    );
    app.stop().await;
}

/// The validated event's schema as shipped evolves compatibly from its first version (the
/// receipt-type extension is an optional field with a default): a registry holding the old
/// version accepts the new one, so consumers of the topic keep working through the upgrade.
#[tokio::test]
async fn the_shipped_validated_schema_is_backward_compatible_with_its_first_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    let subject = "receipts.validated-value";
    let first = include_str!("fixtures/receipt-validated-1.avsc");
    let current = include_str!("../../../../proto-schemas/receipt-validated.avsc");
    assert_ne!(first, current, "the schema changed since its first version");
    let id1 = app.register(subject, first).await;
    let id2 = app.register(subject, current).await;
    assert_ne!(id1, id2);
    let path = format!("/subjects/{subject}/versions");
    assert_eq!(app.get(&path).await, (200, json!([1, 2])));
    // Dropping the extension's default would not be: the check is real.
    let no_default = current.replace(
        r#""type": ["null", "string"], "default": null"#,
        r#""type": ["null", "string"]"#,
    );
    assert_ne!(no_default, current);
    let other = "receipts.validated-copy-value";
    app.register(other, first).await;
    assert_error(
        app.post(
            &format!("/subjects/{other}/versions"),
            &json!({ "schema": no_default }),
        )
        .await,
        409,
        409,
    );
    app.stop().await;
}
