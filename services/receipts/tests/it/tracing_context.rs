use std::time::Duration;

use receipts_domain::Topic;
use receipts_kafka::{TopicNames, headers};
use receipts_testkit::{header, key};

use crate::helpers::*;

fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or_default()
}

/// One W3C trace follows a receipt: the partner's `traceparent` reaches the `submitted` event,
/// and the validator's outcome event continues the same trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_receipt_across_services() {
    let platform = RunningPlatform::start().await;
    let example = &manifest()[0];
    let body = std::fs::read(examples_dir().join(&example.file)).expect("example");
    let partner_trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = platform
        .http
        .post(format!("{}/v1/receipts", platform.base))
        .bearer_auth(&platform.key)
        .header("Content-Type", &example.content_type)
        .header("Receipt-Type", &example.receipt_type)
        .header("Idempotency-Key", "traced-1")
        .header("traceparent", partner_trace)
        .body(body)
        .send()
        .await
        .expect("submit");
    assert_eq!(response.status(), 202);
    let id = response.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    wait_for_status(
        &platform.http,
        &platform.base,
        &platform.key,
        &id,
        &["ACCEPTED", "REJECTED", "FAILED"],
    )
    .await;

    let names = TopicNames::new(&platform.env.kafka);
    let submitted =
        platform
            .env
            .read_topic(&names.of(&Topic::Submitted), 1, Duration::from_secs(30));
    let outcome_topic = if example.expect == "REJECTED" {
        Topic::Rejected
    } else {
        Topic::Validated
    };
    let outcome = platform
        .env
        .read_topic(&names.of(&outcome_topic), 1, Duration::from_secs(30));
    let submitted_trace = submitted
        .iter()
        .find(|m| key(m) == id)
        .and_then(|m| header(m, headers::TRACEPARENT))
        .expect("submitted traceparent");
    let outcome_trace = outcome
        .iter()
        .find(|m| key(m) == id)
        .and_then(|m| header(m, headers::TRACEPARENT))
        .expect("outcome traceparent");
    assert_eq!(
        trace_id(&submitted_trace),
        trace_id(partner_trace),
        "the partner's trace continues"
    );
    assert_eq!(
        trace_id(&outcome_trace),
        trace_id(partner_trace),
        "the validator continues the same trace"
    );
    platform.stop().await;
}
