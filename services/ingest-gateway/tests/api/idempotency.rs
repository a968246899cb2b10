use std::collections::HashSet;
use std::time::Duration;

use receipts_domain::Topic;
use receipts_kafka::{TopicNames, headers};
use receipts_testkit::header;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_same_body_replays_the_original_answer() {
    let app = TestApp::spawn().await;
    let body = sample(JSON_TYPE, 20);
    let first = app.submit_json("order-20", body.clone()).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: serde_json::Value = first.json().await.expect("json");

    let second = app.submit_json("order-20", body).await;
    assert_eq!(second.status(), 202);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: serde_json::Value = second.json().await.expect("json");
    assert_eq!(first, second, "the very same answer");
    assert_eq!(app.submitted_count(), 1, "produced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_different_body_is_a_conflict() {
    let app = TestApp::spawn().await;
    let first: serde_json::Value = app
        .submit_json("order-21", sample(JSON_TYPE, 21))
        .await
        .json()
        .await
        .expect("json");
    let conflict = app.submit_json("order-21", sample(JSON_TYPE, 22)).await;
    let problem = assert_problem(conflict, 409, "idempotency-key-conflict").await;
    assert_eq!(problem["receipt_id"], first["id"]);
    // Same key, same body, but another receipt type is a different request as well.
    let xml = app
        .submit(
            Some(&app.writer),
            Some("application/xml"),
            Some(XML_TYPE),
            Some("order-21"),
            sample(XML_TYPE, 21),
        )
        .await;
    assert_problem(xml, 409, "idempotency-key-conflict").await;
    assert_eq!(app.submitted_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_per_tenant() {
    let app = TestApp::spawn().await;
    let body = sample(JSON_TYPE, 23);
    let mine: serde_json::Value = app
        .submit_json("shared-key", body.clone())
        .await
        .json()
        .await
        .expect("json");
    let theirs = app
        .submit(
            Some(&app.other),
            Some("application/json"),
            Some(JSON_TYPE),
            Some("shared-key"),
            body,
        )
        .await;
    assert_eq!(theirs.status(), 202);
    let theirs: serde_json::Value = theirs.json().await.expect("json");
    assert_ne!(mine["id"], theirs["id"]);
}

/// Concurrent retries of one request all get the same receipt; if the event is produced more
/// than once it is the same event (same event id), which consumers deduplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_converge_on_one_receipt() {
    let app = TestApp::spawn().await;
    let body = sample(JSON_TYPE, 24);
    let attempts = (0..8).map(|_| app.submit_json("order-24", body.clone()));
    let answers = futures::future::join_all(attempts).await;
    let mut ids = HashSet::new();
    for answer in answers {
        assert_eq!(answer.status(), 202);
        let json: serde_json::Value = answer.json().await.expect("json");
        ids.insert(json["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids.len(), 1, "one receipt for all attempts");
    let topic = TopicNames::new(&app.env.kafka).of(&Topic::Submitted);
    let count = usize::try_from(app.submitted_count()).expect("count");
    let messages = app.env.read_topic(&topic, count, Duration::from_secs(30));
    let event_ids: HashSet<String> = messages
        .iter()
        .filter_map(|m| header(m, headers::EVENT_ID))
        .collect();
    assert_eq!(event_ids.len(), 1, "every copy is the same event");
}
