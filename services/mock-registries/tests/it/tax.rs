use axum::http::StatusCode;
use mock_registries::RegistryKind::Tax;
use serde_json::json;

use crate::helpers::*;

fn assert_fiscal_number(value: &serde_json::Value, serial: u32) {
    let number = value.as_str().expect("fiscal number");
    let year = chrono::Utc::now().format("%Y");
    assert_eq!(number, format!("TX-{year}-{serial:08}"));
}

#[tokio::test]
async fn registers_once_per_key_and_replays_the_same_body() {
    let mock = spawn(Tax).await;
    let receipt = body(Tax, "r-1", SELLER);

    let (status, first) = mock.submit("k-1", &receipt).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "REGISTERED");
    assert_eq!(first["receipt_ref"], "r-1");
    assert_fiscal_number(&first["fiscal_number"], 1);
    assert_ms_utc(&first["registered_at"]);
    assert_eq!(first.as_object().expect("object").len(), 4, "{first}");

    let (status, again) = mock.submit("k-1", &receipt).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    let (status, queried) = mock.query("k-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queried, first);
    assert_eq!(mock.registrations().await, json!({"r-1": 1}));

    // Another key for the same receipt is another registration: the double registration that
    // the platform's deterministic keys must prevent shows up as 2.
    let (status, second) = mock.submit("k-2", &receipt).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_fiscal_number(&second["fiscal_number"], 2);
    assert_eq!(mock.registrations().await, json!({"r-1": 2}));
    let stats = mock.stats().await;
    assert_eq!(stats["requests"], 4);
    assert_eq!(stats["outcomes"], json!({"200": 2, "201": 2}));
}

#[tokio::test]
async fn the_same_key_with_another_body_conflicts() {
    let mock = spawn(Tax).await;
    let (status, original) = mock.submit("k", &body(Tax, "r-1", SELLER)).await;
    assert_eq!(status, StatusCode::CREATED);

    let mut changed = body(Tax, "r-1", SELLER);
    changed["total_gross"] = json!("99.00");
    let (status, conflict) = mock.submit("k", &changed).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(conflict["error"]["code"], "IDEMPOTENCY_CONFLICT");
    assert!(conflict["error"]["message"].is_string());

    // Key order and whitespace are not a different body.
    let reordered = r#"{"line_count":3,"total_vat":"1.97","total_gross":"12.34","currency":"EUR",
        "issued_at":"2026-03-01T10:15:00+01:00","seller_tax_id":"DE136695976","receipt_ref":"r-1"}"#;
    let response = mock
        .http
        .post(mock.url("/api/v1/fiscal-receipts"))
        .header("Idempotency-Key", "k")
        .header("Content-Type", "application/json")
        .body(reordered)
        .send()
        .await
        .expect("send");
    let (status, replay) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay, original);
    assert_eq!(mock.registrations().await, json!({"r-1": 1}));
}

#[tokio::test]
async fn malformed_requests_are_400_invalid_request() {
    let mock = spawn(Tax).await;
    let url = mock.url("/api/v1/fiscal-receipts");
    let valid = body(Tax, "r-1", SELLER);

    let no_key = mock
        .http
        .post(&url)
        .json(&valid)
        .send()
        .await
        .expect("send");
    let mut missing_field = valid.clone();
    missing_field
        .as_object_mut()
        .expect("object")
        .remove("total_vat");
    let mut number_amount = valid.clone();
    number_amount["total_gross"] = json!(12.34);
    let cases = [
        (no_key, "Idempotency-Key"),
        (
            mock.try_submit("k", &missing_field).await.expect("send"),
            "total_vat",
        ),
        (
            mock.try_submit("k", &number_amount).await.expect("send"),
            "total_gross",
        ),
        (
            mock.http
                .post(&url)
                .header("Idempotency-Key", "k")
                .header("Content-Type", "application/json")
                .body("{not json")
                .send()
                .await
                .expect("send"),
            "JSON",
        ),
        (
            mock.http
                .post(&url)
                .header("Idempotency-Key", "k")
                .header("Content-Type", "text/plain")
                .body(valid.to_string())
                .send()
                .await
                .expect("send"),
            "Content-Type",
        ),
        (
            mock.http
                .post(&url)
                .header("Idempotency-Key", "two words")
                .json(&valid)
                .send()
                .await
                .expect("send"),
            "Idempotency-Key",
        ),
    ];
    let count = cases.len();
    for (response, mentioned) in cases {
        let (status, error) = read(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["error"]["code"], "INVALID_REQUEST", "{error}");
        let message = error["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(mentioned),
            "{message} should mention {mentioned}"
        );
    }
    let stats = mock.stats().await;
    assert_eq!(stats["registrations"], json!({}));
    assert_eq!(stats["outcomes"], json!({"400": count}));
    // A malformed body still names its receipt in the call log when it can.
    assert_eq!(mock.calls().await[1]["receipt_ref"], "r-1");
}

#[tokio::test]
async fn an_unknown_key_is_404() {
    let mock = spawn(Tax).await;
    let (status, error) = mock.query("never-used").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn a_reject_rule_answers_422_every_time_and_registers_nothing() {
    let mock = spawn(Tax).await;
    mock.put_faults(json!({"reject": [{"tax_id": BLACKLISTED, "reason": "seller blacklisted since 2026-01-01"}]}))
        .await;
    let receipt = body(Tax, "r-1", BLACKLISTED);
    for _ in 0..2 {
        let (status, error) = mock.submit("k", &receipt).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            error,
            json!({"error": {"code": "SELLER_BLACKLISTED", "message": "seller blacklisted since 2026-01-01"}})
        );
    }
    let (status, _) = mock.submit("other", &body(Tax, "r-2", SELLER)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(mock.query("k").await.0, StatusCode::NOT_FOUND);
    assert_eq!(mock.registrations().await, json!({"r-2": 1}));

    // The key was never used: once the rule is gone it registers.
    mock.put_faults(json!({})).await;
    assert_eq!(mock.submit("k", &receipt).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn concurrent_submissions_of_one_key_register_once() {
    let mock = spawn(Tax).await;
    let receipt = body(Tax, "r-1", SELLER);
    let attempts = (0..20).map(|_| mock.submit("k", &receipt));
    let answers = futures::future::join_all(attempts).await;
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    assert!(answers.iter().all(|(_, body)| *body == answers[0].1));
    assert_eq!(mock.registrations().await, json!({"r-1": 1}));
}
