//! Webhooks through the whole platform: an endpoint registered through the API and a receipt's
//! `Callback-Url`, both on a local receiver (the embedded default allow-lists loopback), hear of
//! the outcome with the registries' ids; the delivery log shows every attempt; a manual
//! redelivery sends the same message again.

use receipts_testkit::receiver::Receiver;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_callback_urls_hear_the_outcome_and_deliveries_are_logged() {
    let receiver = Receiver::ok().await;
    let platform = RunningPlatform::start().await;
    let created: Value = platform
        .http
        .post(format!("{}/v1/webhook-endpoints", platform.base))
        .bearer_auth(&platform.key)
        .json(&json!({
            "url": receiver.url("/hooks"),
            "events": ["receipt.validated", "receipt.accepted"]
        }))
        .send()
        .await
        .expect("create endpoint")
        .json()
        .await
        .expect("json");
    let endpoint_secret = created["secret"].as_str().expect("secret").to_owned();

    let t = receipts_domain::ReceiptType::lookup("retail-receipt/v1").expect("type");
    let response = platform
        .http
        .post(format!("{}/v1/receipts", platform.base))
        .bearer_auth(&platform.key)
        .header("Content-Type", "application/json")
        .header("Receipt-Type", "retail-receipt/v1")
        .header("Idempotency-Key", "webhooks-1")
        .header("Callback-Url", receiver.url("/cb?order=77"))
        .body(receipts_validation::sample::generate(&t, true, 77))
        .send()
        .await
        .expect("submit");
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let receipt = wait_for_status(
        &platform.http,
        &platform.base,
        &platform.key,
        &id,
        &["ACCEPTED"],
    )
    .await;

    // accepted to the endpoint and to the callback URL; validated to the endpoint too (the
    // registrars act on the validation, so the timeline, in occurrence order, passes through
    // VALIDATED whatever order the projector saw the events in).
    assert!(
        receipt["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|entry| entry["status"] == "VALIDATED"),
        "{receipt}"
    );
    let expected = 3;
    let requests = receiver.wait_for(expected).await;
    assert_eq!(requests.len(), expected, "no other message: {requests:?}");
    let callback_secret: Value = platform
        .http
        .get(format!("{}/v1/webhooks/secret", platform.base))
        .bearer_auth(&platform.key)
        .send()
        .await
        .expect("secret")
        .json()
        .await
        .expect("json");
    let callback_secret = callback_secret["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let mut seen = Vec::new();
    for request in &requests {
        let body = request.json();
        let path_is_callback = request.header("webhook-id").is_empty();
        assert!(!path_is_callback, "every request carries a webhook-id");
        // Which secret verifies tells the destination apart.
        let secret = if verifies(&endpoint_secret, request) {
            "endpoint"
        } else if verifies(&callback_secret, request) {
            "callback"
        } else {
            panic!("no secret verifies {body}")
        };
        seen.push((secret, body["type"].as_str().expect("type").to_owned()));
        assert_eq!(body["data"]["id"], id.as_str());
    }
    seen.sort();
    let announced = [
        ("callback", "receipt.accepted".to_owned()),
        ("endpoint", "receipt.accepted".to_owned()),
        ("endpoint", "receipt.validated".to_owned()),
    ];
    assert_eq!(seen, announced);
    let accepted = requests
        .iter()
        .find(|r| r.json()["type"] == "receipt.accepted")
        .expect("accepted")
        .json();
    assert_eq!(accepted["data"]["status"], "ACCEPTED");
    assert_eq!(
        accepted["data"]["registrations"], receipt["registrations"],
        "fiscal number and logistics id"
    );
    assert_eq!(
        accepted["data"]["links"]["self"],
        format!("{}/v1/receipts/{id}", platform.base)
    );

    // The delivery log.
    let deliveries_url = format!("{}/v1/receipts/{id}/deliveries", platform.base);
    let log: Value = eventually_delivered(&platform, &deliveries_url, expected).await;
    let deliveries = log["deliveries"].as_array().expect("array");
    for delivery in deliveries {
        let attempts = delivery["attempts"].as_array().expect("attempts");
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["http_status"], 200);
        assert_eq!(attempts[0]["succeeded"], true);
        assert!(attempts[0]["latency_ms"].is_u64());
        assert!(
            attempts[0]["url"]
                .as_str()
                .expect("url")
                .starts_with(&receiver.url("/"))
        );
    }
    let callback = deliveries
        .iter()
        .find(|d| d["destination"]["kind"] == "callback")
        .expect("the callback delivery");
    assert_eq!(callback["url"], receiver.url("/cb?order=77"));

    // A manual redelivery: the same message again, logged as attempt 2.
    let delivery_id = callback["id"].as_str().expect("id");
    let retried = platform
        .http
        .post(format!("{deliveries_url}/{delivery_id}/retry"))
        .bearer_auth(&platform.key)
        .send()
        .await
        .expect("retry");
    assert_eq!(retried.status(), 202);
    let again = receiver.wait_for(expected + 1).await;
    assert_eq!(again[expected].webhook_id(), delivery_id);
    let original = requests
        .iter()
        .find(|r| r.webhook_id() == delivery_id)
        .expect("first delivery");
    assert_eq!(again[expected].body, original.body);
    let log = eventually_attempts(&platform, &deliveries_url, delivery_id, 2).await;
    assert_eq!(log["status"], "delivered");
    platform.stop().await;
}

fn verifies(secret: &str, request: &receipts_testkit::receiver::Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .expect("secret")
        .verify(&request.body, &request.headers)
        .is_ok()
}

async fn eventually_delivered(platform: &RunningPlatform, url: &str, n: usize) -> Value {
    receipts_testkit::eventually("every delivery confirmed", WAIT, || async {
        let log: Value = platform
            .http
            .get(url)
            .bearer_auth(&platform.key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let deliveries = log["deliveries"].as_array()?;
        (deliveries.len() == n && deliveries.iter().all(|d| d["status"] == "delivered"))
            .then_some(log)
    })
    .await
}

async fn eventually_attempts(
    platform: &RunningPlatform,
    url: &str,
    delivery_id: &str,
    attempts: usize,
) -> Value {
    receipts_testkit::eventually("the redelivery logged", WAIT, || async {
        let log: Value = platform
            .http
            .get(url)
            .bearer_auth(&platform.key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let delivery = log["deliveries"]
            .as_array()?
            .iter()
            .find(|d| d["id"] == delivery_id)?
            .clone();
        let logged = delivery["attempts"].as_array()?;
        (logged.len() == attempts && delivery["status"] == "delivered").then_some(delivery)
    })
    .await
}
