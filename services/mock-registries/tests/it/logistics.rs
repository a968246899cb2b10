use axum::http::StatusCode;
use mock_registries::RegistryKind::Logistics;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn registers_once_per_request_id_and_replays_the_same_body() {
    let mock = spawn(Logistics).await;
    let shipment = body(Logistics, "r-1", SELLER);

    let (status, first) = mock.submit("req-1", &shipment).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let registration = &first["registration"];
    let id = registration["id"].as_str().expect("id");
    let suffix = id.strip_prefix("LG-").expect("LG- prefix");
    assert_eq!(suffix.len(), 10);
    assert!(
        suffix
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(registration["request_id"], "req-1");
    assert_eq!(registration["reference"], "r-1");
    assert_eq!(registration["state"], "REGISTERED");
    assert_ms_utc(&registration["created_at"]);

    let (status, again) = mock.submit("req-1", &shipment).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    let (status, queried) = mock.query("req-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queried, first);

    let (status, other) = mock.submit("req-2", &shipment).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(other["registration"]["id"], first["registration"]["id"]);
    assert_eq!(mock.registrations().await, json!({"r-1": 2}));
}

#[tokio::test]
async fn the_same_request_id_with_another_payload_conflicts() {
    let mock = spawn(Logistics).await;
    assert_eq!(
        mock.submit("req", &body(Logistics, "r-1", SELLER)).await.0,
        StatusCode::CREATED
    );
    let mut changed = body(Logistics, "r-1", SELLER);
    changed["item_count"] = json!(4);
    let (status, conflict) = mock.submit("req", &changed).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        conflict,
        json!({"errors": [{"field": "request_id", "reason": "already used with a different payload"}]})
    );
    assert_eq!(mock.registrations().await, json!({"r-1": 1}));
}

#[tokio::test]
async fn malformed_requests_list_every_bad_field() {
    let mock = spawn(Logistics).await;
    let bad = json!({
        "reference": "r-1",
        "sender": {"country": "Germany"},
        "declared_value": {"amount": "12,34", "currency": "EUR"},
        "item_count": -1,
    });
    let (status, error) = mock.submit("req", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields: Vec<_> = error["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            assert!(e["reason"].is_string(), "{e}");
            e["field"].as_str().expect("field").to_owned()
        })
        .collect();
    assert_eq!(
        fields,
        [
            "sender.vat_id",
            "sender.country",
            "declared_value.amount",
            "item_count",
            "issued_at"
        ]
    );
    assert!(error.get("retryable").is_none(), "{error}");

    let response = mock
        .http
        .put(mock.url("/v2/registrations/req"))
        .header("Content-Type", "application/json")
        .body("[1, 2")
        .send()
        .await
        .expect("send");
    let (status, error) = read(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["errors"][0]["field"], "body");
    assert_eq!(mock.registrations().await, json!({}));
}

#[tokio::test]
async fn a_reject_rule_answers_400_not_retryable_and_registers_nothing() {
    let mock = spawn(Logistics).await;
    mock.put_faults(json!({"reject": [{"tax_id": "DE000*", "reason": "sender suspended"}]}))
        .await;
    let shipment = body(Logistics, "r-1", BLACKLISTED);
    for _ in 0..2 {
        let (status, error) = mock.submit("req", &shipment).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            error,
            json!({"errors": [{"field": "sender.vat_id", "reason": "sender suspended"}], "retryable": false})
        );
    }
    assert_eq!(mock.registrations().await, json!({}));
    assert_eq!(
        mock.submit("req-ok", &body(Logistics, "r-2", SELLER))
            .await
            .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn an_unknown_request_id_is_404() {
    let mock = spawn(Logistics).await;
    let (status, error) = mock.query("nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error,
        json!({"errors": [{"field": "request_id", "reason": "unknown"}]})
    );
}

#[tokio::test]
async fn the_two_registries_do_not_share_paths() {
    let tax = spawn(mock_registries::RegistryKind::Tax).await;
    let logistics = spawn(Logistics).await;
    let response = tax
        .http
        .put(tax.url("/v2/registrations/x"))
        .json(&body(Logistics, "r", SELLER))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 404);
    let response = logistics
        .http
        .post(logistics.url("/api/v1/fiscal-receipts"))
        .header("Idempotency-Key", "k")
        .json(&body(mock_registries::RegistryKind::Tax, "r", SELLER))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 404);
}
