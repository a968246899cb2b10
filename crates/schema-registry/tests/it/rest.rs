//! The REST contract, endpoint by endpoint, including error codes.

use serde_json::json;

use crate::helpers::{RECEIPT_V1, RECEIPT_V2, SR_CONTENT_TYPE, assert_error, spawn_app};

#[tokio::test]
async fn root_config_and_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;

    assert_eq!(app.get("/").await, (200, json!({})));
    assert_eq!(
        app.get("/config").await,
        (200, json!({ "compatibilityLevel": "BACKWARD" }))
    );
    assert_eq!(app.get("/schemas/types").await, (200, json!(["AVRO"])));
    assert_eq!(app.get("/subjects").await, (200, json!([])));
    app.stop().await;
}

#[tokio::test]
async fn ids_are_global_and_versions_per_subject() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;

    let id1 = app.register("receipts.submitted-value", RECEIPT_V1).await;
    assert_eq!(id1, 1);
    // Same schema, same subject: same id, no new version.
    assert_eq!(
        app.register("receipts.submitted-value", RECEIPT_V1).await,
        id1
    );
    // Same schema written differently (whitespace, attribute order, full name): same id.
    let respelled = r#"{"name":"receipts.events.ReceiptSubmitted","type":"record","fields":[{"type":"string","name":"event_id"},{"name":"receipt_id","type":"string"}]}"#;
    assert_eq!(
        app.register("receipts.submitted-value", respelled).await,
        id1
    );
    assert_eq!(
        app.get("/subjects/receipts.submitted-value/versions").await,
        (200, json!([1]))
    );

    // Same schema, another subject: same id, version 1 there.
    assert_eq!(
        app.register("receipts.validated-value", respelled).await,
        id1
    );
    assert_eq!(
        app.get("/subjects/receipts.validated-value/versions").await,
        (200, json!([1]))
    );

    // A new schema in a subject: a new id and version latest+1.
    let id2 = app.register("receipts.submitted-value", RECEIPT_V2).await;
    assert_eq!(id2, 2);
    assert_eq!(
        app.get("/subjects/receipts.submitted-value/versions").await,
        (200, json!([1, 2]))
    );

    // A logical type is part of the identity (Avro's Parsing Canonical Form would drop it).
    let plain = app.register("plain-value", r#""long""#).await;
    let timestamp = app
        .register(
            "ts-value",
            r#"{"type":"long","logicalType":"timestamp-millis"}"#,
        )
        .await;
    assert_ne!(plain, timestamp);

    assert_eq!(
        app.get("/subjects").await,
        (
            200,
            json!([
                "plain-value",
                "receipts.submitted-value",
                "receipts.validated-value",
                "ts-value"
            ])
        )
    );
    assert_eq!(
        app.get("/schemas/ids/1/versions").await,
        (
            200,
            json!([
                { "subject": "receipts.submitted-value", "version": 1 },
                { "subject": "receipts.validated-value", "version": 1 }
            ])
        )
    );
    assert_eq!(
        app.get("/schemas/ids/1/subjects").await,
        (
            200,
            json!(["receipts.submitted-value", "receipts.validated-value"])
        )
    );
    assert_error(app.get("/schemas/ids/99/versions").await, 404, 40403);
    app.stop().await;
}

#[tokio::test]
async fn get_schema_by_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    let id = app.register("receipts.submitted-value", RECEIPT_V1).await;

    // The client always appends ?deleted=true.
    let response = app
        .get_raw(&format!("/schemas/ids/{id}?deleted=true"))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some(SR_CONTENT_TYPE)
    );
    let body: serde_json::Value = response.json().await.expect("json");
    // AVRO is the default type: no schemaType, and the schema text as registered.
    assert_eq!(body, json!({ "schema": RECEIPT_V1 }));

    let (status, body) = app.get("/schemas/ids/42").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({ "error_code": 40403, "message": "Schema not found" })
    );
    assert_error(app.get("/schemas/ids/0").await, 404, 40403);
    assert_error(app.get("/schemas/ids/abc").await, 404, 40403);
    app.stop().await;
}

#[tokio::test]
async fn get_subject_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    let subject = "receipts.submitted-value";
    let id1 = app.register(subject, RECEIPT_V1).await;
    let id2 = app.register(subject, RECEIPT_V2).await;

    let v1 = json!({ "subject": subject, "version": 1, "id": id1, "schema": RECEIPT_V1 });
    let v2 = json!({ "subject": subject, "version": 2, "id": id2, "schema": RECEIPT_V2 });
    assert_eq!(
        app.get(&format!("/subjects/{subject}/versions/1")).await,
        (200, v1)
    );
    assert_eq!(
        app.get(&format!("/subjects/{subject}/versions/2")).await,
        (200, v2.clone())
    );
    assert_eq!(
        app.get(&format!("/subjects/{subject}/versions/latest"))
            .await,
        (200, v2.clone())
    );
    assert_eq!(
        app.get(&format!("/subjects/{subject}/versions/-1")).await,
        (200, v2)
    );

    // The schema itself.
    let response = app
        .get_raw(&format!("/subjects/{subject}/versions/latest/schema"))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("text"), RECEIPT_V2);

    assert_error(
        app.get(&format!("/subjects/{subject}/versions/3")).await,
        404,
        40402,
    );
    assert_error(
        app.get(&format!("/subjects/{subject}/versions/0")).await,
        422,
        42202,
    );
    assert_error(
        app.get(&format!("/subjects/{subject}/versions/abc")).await,
        422,
        42202,
    );
    assert_error(app.get("/subjects/nope-value/versions/1").await, 404, 40401);
    assert_error(
        app.get("/subjects/nope-value/versions/latest").await,
        404,
        40401,
    );
    assert_error(app.get("/subjects/nope-value/versions").await, 404, 40401);
    app.stop().await;
}

#[tokio::test]
async fn lookup_schema_under_subject() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    let subject = "receipts.submitted-value";
    let id1 = app.register(subject, RECEIPT_V1).await;
    let id2 = app.register(subject, RECEIPT_V2).await;

    // The client sends ?deleted=false.
    let (status, body) = app
        .post(
            &format!("/subjects/{subject}?deleted=false"),
            &json!({ "schema": RECEIPT_V1, "schemaType": "AVRO" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "subject": subject, "version": 1, "id": id1, "schema": RECEIPT_V1 })
    );
    let (status, body) = app
        .post(
            &format!("/subjects/{subject}"),
            &json!({ "schema": RECEIPT_V2 }),
        )
        .await;
    assert_eq!(
        (status, &body["id"], &body["version"]),
        (200, &json!(id2), &json!(2))
    );

    // Registered elsewhere but not under this subject.
    app.register("other-value", r#""string""#).await;
    assert_error(
        app.post(
            &format!("/subjects/{subject}"),
            &json!({ "schema": r#""string""# }),
        )
        .await,
        404,
        40403,
    );
    // Unknown subject.
    assert_error(
        app.post("/subjects/nope-value", &json!({ "schema": RECEIPT_V1 }))
            .await,
        404,
        40401,
    );
    // Unparseable schema under a known subject.
    assert_error(
        app.post(&format!("/subjects/{subject}"), &json!({ "schema": "{" }))
            .await,
        422,
        42201,
    );
    app.stop().await;
}

#[tokio::test]
async fn registration_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    let path = "/subjects/s-value/versions";

    let (status, body) = app
        .post(path, &json!({ "schema": "{\"type\":\"recrd\"}" }))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error_code"], 42201);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Invalid schema")),
        "{body}"
    );
    assert_error(
        app.post(path, &json!({ "schema": "not json" })).await,
        422,
        42201,
    );
    assert_error(
        app.post(
            path,
            &json!({ "schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF" }),
        )
        .await,
        422,
        42201,
    );
    assert_error(
        app.post(path, &json!({ "schema": "{}", "schemaType": "JSON" }))
            .await,
        422,
        42201,
    );
    // Body of the wrong shape, body that is not JSON, wrong media type.
    assert_error(
        app.post(path, &json!({ "schma": "\"int\"" })).await,
        422,
        422,
    );
    assert_error(
        app.post_as(path, SR_CONTENT_TYPE, "{".to_owned()).await,
        400,
        400,
    );
    assert_error(
        app.post_as(
            path,
            "text/plain",
            json!({ "schema": "\"int\"" }).to_string(),
        )
        .await,
        415,
        415,
    );
    // Nothing was registered by any of that.
    assert_eq!(app.get("/subjects").await, (200, json!([])));

    // Explicit AVRO, plain application/json and empty references are fine.
    let (status, body) = app
        .post_as(
            path,
            "application/json; charset=utf-8",
            json!({ "schema": "\"int\"", "schemaType": "AVRO", "references": [] }).to_string(),
        )
        .await;
    assert_eq!((status, body), (200, json!({ "id": 1 })));
    app.stop().await;
}

#[tokio::test]
async fn subjects_with_dots_dashes_and_escapes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;

    let id = app
        .register("receipts.tax-registered-value", RECEIPT_V1)
        .await;
    // The client escapes '/' as %2F; other escapes are decoded too.
    assert_eq!(
        app.register("team%2Freceipts.x-value", RECEIPT_V1).await,
        id
    );
    assert_eq!(app.register("with%20space", RECEIPT_V1).await, id);
    assert_eq!(
        app.get("/subjects").await,
        (
            200,
            json!([
                "receipts.tax-registered-value",
                "team/receipts.x-value",
                "with space"
            ])
        )
    );
    let (status, body) = app
        .get("/subjects/team%2Freceipts.x-value/versions/latest")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], "team/receipts.x-value");
    assert_eq!(
        app.get("/subjects/with%20space/versions").await,
        (200, json!([1]))
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    assert_error(app.get("/nope").await, 404, 404);
    assert_error(app.get("/subjects/a/b/c/d").await, 404, 404);
    assert_error(app.post("/config", &json!({})).await, 405, 405);
    app.stop().await;
}

#[tokio::test]
async fn references_are_stored_resolved_and_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    let address = r#"{"type":"record","name":"Address","namespace":"receipts.common","fields":[{"name":"city","type":"string"}]}"#;
    let person = r#"{"type":"record","name":"Party","namespace":"receipts.events","fields":[{"name":"home","type":"receipts.common.Address"}]}"#;
    let address_id = app.register("receipts.common.Address", address).await;

    // Without its reference the schema does not parse.
    assert_error(
        app.post(
            "/subjects/party-value/versions",
            &json!({ "schema": person }),
        )
        .await,
        422,
        42201,
    );
    // A reference to something that does not exist.
    let dangling = json!([{ "name": "receipts.common.Address", "subject": "nope", "version": 1 }]);
    assert_error(
        app.post(
            "/subjects/party-value/versions",
            &json!({ "schema": person, "references": dangling }),
        )
        .await,
        422,
        42201,
    );

    let references = json!([{ "name": "receipts.common.Address", "subject": "receipts.common.Address", "version": 1 }]);
    let (status, body) = app
        .post(
            "/subjects/party-value/versions",
            &json!({ "schema": person, "references": references }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_u64().expect("id");
    assert_ne!(id, address_id);

    assert_eq!(
        app.get(&format!("/schemas/ids/{id}")).await,
        (200, json!({ "schema": person, "references": references }))
    );
    let (_, latest) = app.get("/subjects/party-value/versions/latest").await;
    assert_eq!(latest["references"], references);
    let (status, found) = app
        .post(
            "/subjects/party-value",
            &json!({ "schema": person, "references": references }),
        )
        .await;
    assert_eq!((status, &found["id"]), (200, &json!(id)));
    app.stop().await;
}
