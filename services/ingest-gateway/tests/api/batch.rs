//! `POST /v1/receipts/batch`: items independent, each durable before the answer, outcomes in
//! order, a retried batch creates nothing twice, limits refuse the whole batch up front.

use serde_json::{Value, json};

use crate::helpers::*;

fn envelope(receipt_type: &str, content_type: &str, key: &str, document: &[u8]) -> String {
    json!({
        "receipt_type": receipt_type,
        "content_type": content_type,
        "idempotency_key": key,
        "document": String::from_utf8_lossy(document),
    })
    .to_string()
}

async fn post_batch(app: &TestApp, key: &str, lines: &[String]) -> reqwest::Response {
    app.http
        .post(app.url("/v1/receipts/batch"))
        .bearer_auth(key)
        .header("Content-Type", "application/x-ndjson")
        .body(lines.join("\n") + "\n")
        .send()
        .await
        .expect("batch sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_item_has_its_own_outcome_in_order_and_a_retry_doubles_nothing() {
    let app = TestApp::spawn().await;
    let lines = vec![
        envelope(
            JSON_TYPE,
            "application/json",
            "b-1",
            &sample(JSON_TYPE, 101),
        ),
        envelope(
            "parking-ticket/v9",
            "application/json",
            "b-2",
            &sample(JSON_TYPE, 102),
        ),
        envelope(XML_TYPE, "application/xml", "b-3", &sample(XML_TYPE, 103)),
        "{\"receipt_type\": 1}".to_owned(),
        envelope(
            JSON_TYPE,
            "application/json",
            "b-5",
            b"{\"not\": \"closed\"",
        ),
    ];
    let response = post_batch(&app, &app.writer, &lines).await;
    assert_eq!(response.status(), 200);
    let outcome: Value = response.json().await.expect("json");
    let items = outcome["items"].as_array().expect("items");
    let statuses: Vec<u64> = items
        .iter()
        .map(|i| i["status"].as_u64().expect("status"))
        .collect();
    assert_eq!(statuses, [202, 400, 202, 400, 400], "{outcome}");
    let indices: Vec<u64> = items
        .iter()
        .map(|i| i["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(indices, [0, 1, 2, 3, 4]);
    assert_eq!(
        (outcome["accepted"].as_u64(), outcome["refused"].as_u64()),
        (Some(2), Some(3))
    );
    let problem_type = |i: usize| {
        items[i]["problem"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        problem_type(1).ends_with("unknown-receipt-type"),
        "{outcome}"
    );
    assert!(problem_type(3).ends_with("invalid-batch-item"), "{outcome}");
    assert!(problem_type(4).ends_with("malformed-json"), "{outcome}");
    // Accepted items are durable and readable at once; refused ones recorded nothing.
    for i in [0, 2] {
        let id = items[i]["id"].as_str().expect("id");
        let receipt = app.get(&app.writer, &format!("/v1/receipts/{id}")).await;
        assert_eq!(receipt.status(), 200, "item {i}");
    }
    assert_eq!(app.submitted_count(), 2);

    // The same batch again: the same receipts (replayed), nothing new.
    let again: Value = post_batch(&app, &app.writer, &lines)
        .await
        .json()
        .await
        .expect("json");
    let items_again = again["items"].as_array().expect("items");
    assert_eq!(items_again[0]["id"], items[0]["id"]);
    assert_eq!(items_again[2]["id"], items[2]["id"]);
    assert_eq!(items_again[0]["replayed"], true);
    assert_eq!(
        app.submitted_count(),
        2,
        "a retried batch produces nothing twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_wrong_requests_refuse_the_whole_batch_and_record_nothing() {
    let app = TestApp::spawn_with(|http| http.max_batch_items = 2).await;
    let line = |n: u64| {
        envelope(
            JSON_TYPE,
            "application/json",
            &format!("l-{n}"),
            &sample(JSON_TYPE, n),
        )
    };
    let too_many = post_batch(&app, &app.writer, &[line(1), line(2), line(3)]).await;
    let problem = assert_problem(too_many, 413, "batch-too-large").await;
    assert_eq!(problem["limit_items"], 2);
    let empty = post_batch(&app, &app.writer, &["".to_owned()]).await;
    assert_problem(empty, 400, "invalid-batch").await;
    let read_only = post_batch(&app, &app.reader, &[line(4)]).await;
    assert_eq!(read_only.status(), 403);
    let not_ndjson = app
        .http
        .post(app.url("/v1/receipts/batch"))
        .bearer_auth(&app.writer)
        .header("Content-Type", "application/json")
        .body(line(5))
        .send()
        .await
        .expect("sent");
    assert_problem(not_ndjson, 415, "unsupported-media-type").await;
    assert_eq!(app.submitted_count(), 0);
}
