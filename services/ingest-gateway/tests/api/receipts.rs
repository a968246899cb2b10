use std::sync::Arc;
use std::time::Duration;

use receipts_avro::EventCodec;
use receipts_kafka::{EventProducer, KafkaConfig};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_receipt_is_readable_at_once_with_its_document() {
    let app = TestApp::spawn().await;
    for (content_type, receipt_type, body) in [
        ("application/json", JSON_TYPE, sample(JSON_TYPE, 30)),
        (
            "application/xml; charset=utf-8",
            XML_TYPE,
            sample(XML_TYPE, 31),
        ),
    ] {
        let response = app
            .submit(
                Some(&app.writer),
                Some(content_type),
                Some(receipt_type),
                Some(&unique_key()),
                body.clone(),
            )
            .await;
        assert_eq!(response.status(), 202);
        let location = response.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        let accepted: serde_json::Value = response.json().await.expect("json");
        let id = accepted["id"].as_str().expect("id");
        assert_eq!(accepted["status"], "RECEIVED");
        assert_eq!(accepted["status_url"], location);
        assert_eq!(location, app.url(&format!("/v1/receipts/{id}")));

        // No projector runs in this test: the gateway itself made the receipt readable.
        let status = app.get(&app.writer, &format!("/v1/receipts/{id}")).await;
        assert_eq!(status.status(), 200);
        let status: serde_json::Value = status.json().await.expect("json");
        assert_eq!(status["id"], id);
        assert_eq!(status["status"], "RECEIVED");
        assert_eq!(status["receipt_type"], receipt_type);
        assert_eq!(status["timeline"].as_array().map(Vec::len), Some(1));
        assert_eq!(status["timeline"][0]["event"], "submitted");
        assert_eq!(status["links"]["document"], format!("{location}/document"));

        let document = app
            .get(&app.writer, &format!("/v1/receipts/{id}/document"))
            .await;
        assert_eq!(document.status(), 200);
        assert_eq!(document.headers()["content-type"], content_type);
        assert_eq!(
            document.bytes().await.expect("bytes").to_vec(),
            body,
            "byte-exact"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    let ready = app.http.get(app.url("/readyz")).send().await.expect("send");
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["broker"]["ok"], true, "{body}");
    assert_eq!(body["store"]["ok"], true, "{body}");
}

/// With the broker unreachable a submission is a 503 the client may retry, never a 500, and the
/// retry with the same key goes through once the broker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_is_a_retryable_503() {
    let app = TestApp::spawn().await;
    let dead = KafkaConfig {
        bootstrap_servers: receipts_testkit::free_addr().to_string(),
        produce_timeout: Duration::from_secs(2),
        ..app.env.kafka.clone()
    };
    let codec = Arc::new(EventCodec::new(&app.env.schema_registry).expect("codec"));
    let producer = EventProducer::new(&dead, "test", codec).expect("producer");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = ingest_gateway::AppState::new(
        app.stores.clone(),
        producer,
        &ingest_gateway::HttpConfig::default(),
        &receipts_webhooks::WebhookConfig::default(),
        addr,
    );
    tokio::spawn(async move { axum::serve(listener, ingest_gateway::router(state)).await });

    let body = sample(JSON_TYPE, 32);
    let response = app
        .http
        .post(format!("http://{addr}/v1/receipts"))
        .bearer_auth(&app.writer)
        .header("Content-Type", "application/json")
        .header("Receipt-Type", JSON_TYPE)
        .header("Idempotency-Key", "outage-1")
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(response.headers()["retry-after"], "1");
    assert_problem(response, 503, "broker-unavailable").await;

    // The healthy gateway (same store) accepts the retry: the key was reserved, not burnt.
    let retry = app.submit_json("outage-1", body).await;
    assert_eq!(retry.status(), 202);
    assert_eq!(app.submitted_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_at_its_in_flight_limit_refuses_at_once_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let codec = Arc::new(EventCodec::new(&app.env.schema_registry).expect("codec"));
    let producer = EventProducer::new(&app.env.kafka, "test", codec).expect("producer");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = ingest_gateway::AppState::new(
        app.stores.clone(),
        producer,
        &ingest_gateway::HttpConfig {
            max_in_flight_submissions: 1,
            ..ingest_gateway::HttpConfig::default()
        },
        &receipts_webhooks::WebhookConfig::default(),
        addr,
    );
    // The one permit is taken, as by a submission still waiting for the broker.
    let busy = state
        .submissions
        .clone()
        .try_acquire_owned()
        .expect("a free permit");
    tokio::spawn(async move { axum::serve(listener, ingest_gateway::router(state)).await });

    let body = sample(JSON_TYPE, 33);
    let submit = || {
        app.http
            .post(format!("http://{addr}/v1/receipts"))
            .bearer_auth(&app.writer)
            .header("Content-Type", "application/json")
            .header("Receipt-Type", JSON_TYPE)
            .header("Idempotency-Key", "overload-1")
            .body(body.clone())
            .send()
    };
    let response = submit().await.expect("send");
    assert_eq!(response.headers()["retry-after"], "1");
    assert_problem(response, 503, "overloaded").await;
    assert_eq!(app.submitted_count(), 0);

    // Once the permit is back, the retry with the same key is accepted, once.
    drop(busy);
    assert_eq!(submit().await.expect("send").status(), 202);
    assert_eq!(app.submitted_count(), 1);
}
