//! The webhook management API: endpoints (create, list, read, update, disable, delete, test),
//! secret rotation, the callback secret, the delivery log and manual redelivery; scopes, tenants
//! and bad input.

use chrono::Utc;
use rdkafka::Message;
use receipts_domain::event::now_millis;
use receipts_domain::{Delivery, DeliveryAttempt, NewDelivery, NewEndpoint, WebhookSecret};
use receipts_domain::{
    Destination, EndpointId, ReceiptEvent, ReceiptId, TenantId, Topic, WebhookEventType,
};
use receipts_kafka::TopicNames;
use receipts_store::{Cas, DeliveryStore};
use receipts_testkit::receiver::{Received, Receiver, Reply};
use serde_json::{Value, json};

use crate::helpers::*;

impl TestApp {
    /// What the dispatcher records when it plans an `accepted` message to a receipt's
    /// `Callback-Url`: a pending delivery.
    async fn record_callback_delivery(&self, tenant: &TenantId, receipt_id: ReceiptId, id: &str) {
        self.webhooks
            .record_delivery(NewDelivery {
                id: id.into(),
                tenant_id: tenant.clone(),
                receipt_id,
                destination: Destination::Callback,
                url: "https://partner.example/cb".into(),
                event_type: WebhookEventType::Accepted,
                payload: br#"{"type":"receipt.accepted"}"#.to_vec(),
                created_at: Utc::now(),
            })
            .await
            .expect("delivery");
    }

    async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    async fn create_endpoint(&self, body: Value) -> Value {
        let response = self
            .send(
                reqwest::Method::POST,
                &self.writer,
                "/v1/webhook-endpoints",
                Some(body),
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("json")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_created_listed_updated_disabled_and_deleted() {
    let app = TestApp::spawn().await;
    let response = app
        .send(
            reqwest::Method::POST,
            &app.writer,
            "/v1/webhook-endpoints",
            Some(json!({"url": "https://hooks.partner.example/receipts"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let created: Value = response.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("ep_"));
    assert_eq!(location, app.url(&format!("/v1/webhook-endpoints/{id}")));
    assert!(
        created["secret"]
            .as_str()
            .expect("secret")
            .starts_with("whsec_")
    );
    assert_eq!(created["events"], Value::Null, "every terminal change");
    assert_eq!(created["enabled"], true);

    let read: Value = app
        .get(&app.reader, &format!("/v1/webhook-endpoints/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(read["url"], "https://hooks.partner.example/receipts");
    assert!(
        read.get("secret").is_none(),
        "the secret is shown only on creation"
    );

    let second = app
        .create_endpoint(json!({
            "url": "https://other.partner.example/h",
            "description": "ops",
            "events": ["receipt.validated", "receipt.failed"]
        }))
        .await;
    assert_eq!(
        second["events"],
        json!(["receipt.validated", "receipt.failed"])
    );
    let list: Value = app
        .get(&app.reader, "/v1/webhook-endpoints")
        .await
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = list["endpoints"]
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [id.as_str(), second["id"].as_str().expect("id")]);

    let patched: Value = app
        .send(
            reqwest::Method::PATCH,
            &app.writer,
            &format!("/v1/webhook-endpoints/{id}"),
            Some(json!({"url": "https://moved.partner.example/r", "events": ["receipt.accepted"], "enabled": false})),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(patched["url"], "https://moved.partner.example/r");
    assert_eq!(patched["events"], json!(["receipt.accepted"]));
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["disabled_reason"], "disabled by its owner");
    let reset: Value = app
        .send(
            reqwest::Method::PATCH,
            &app.writer,
            &format!("/v1/webhook-endpoints/{id}"),
            Some(json!({"events": null, "enabled": true})),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(reset["events"], Value::Null);
    assert_eq!(reset["enabled"], true);
    assert_eq!(reset["disabled_reason"], Value::Null);
    assert_eq!(
        reset["url"], "https://moved.partner.example/r",
        "absent fields stay"
    );

    let deleted = app
        .send(
            reqwest::Method::DELETE,
            &app.writer,
            &format!("/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    let gone = app
        .get(&app.reader, &format!("/v1/webhook-endpoints/{id}"))
        .await;
    assert_problem(gone, 404, "endpoint-not-found").await;
    let again = app
        .send(
            reqwest::Method::DELETE,
            &app.writer,
            &format!("/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    assert_problem(again, 404, "endpoint-not-found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_rotate_with_a_grace_period() {
    let app = TestApp::spawn().await;
    let created = app
        .create_endpoint(json!({"url": "https://hooks.partner.example/r"}))
        .await;
    let id = created["id"].as_str().expect("id");
    let rotated: Value = app
        .send(
            reqwest::Method::POST,
            &app.writer,
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(rotated["secret"], created["secret"]);
    let until: chrono::DateTime<Utc> =
        serde_json::from_value(rotated["previous_valid_until"].clone()).expect("a time");
    let grace = until - Utc::now();
    assert!(grace > chrono::Duration::hours(23) && grace <= chrono::Duration::hours(24));
    let endpoint = app
        .webhooks
        .endpoint(
            &TenantId::parse("acme").expect("tenant"),
            EndpointId::parse(id).expect("endpoint id"),
        )
        .await
        .expect("read")
        .expect("endpoint");
    let live = endpoint.live_secrets(Utc::now());
    let secrets: Vec<&str> = live.iter().map(|s| s.secret.expose()).collect();
    assert_eq!(
        secrets,
        [
            rotated["secret"].as_str().expect("new"),
            created["secret"].as_str().expect("old")
        ],
        "both sign, the new one first"
    );

    // The tenant's callback secret: created on first read, stable, rotated with a grace period.
    let first: Value = app
        .get(&app.writer, "/v1/webhooks/secret")
        .await
        .json()
        .await
        .expect("json");
    assert!(
        first["secret"]
            .as_str()
            .expect("secret")
            .starts_with("whsec_")
    );
    assert_eq!(first["previous"], json!([]));
    let again: Value = app
        .get(&app.writer, "/v1/webhooks/secret")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["secret"], first["secret"]);
    let rotated: Value = app
        .send(
            reqwest::Method::POST,
            &app.writer,
            "/v1/webhooks/secret/rotate",
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(rotated["secret"], first["secret"]);
    assert_eq!(rotated["previous"][0]["secret"], first["secret"]);
    assert!(rotated["previous"][0]["valid_until"].is_string());
    let other: Value = app
        .get(&app.other, "/v1/webhooks/secret")
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(other["secret"], rotated["secret"], "secrets are per tenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_problems_and_change_nothing() {
    let app = TestApp::spawn().await;
    let post = |body: Value| {
        let app = &app;
        async move {
            app.send(
                reqwest::Method::POST,
                &app.writer,
                "/v1/webhook-endpoints",
                Some(body),
            )
            .await
        }
    };
    for (body, detail) in [
        (json!({}), "missing field `url`"),
        (json!({"url": "ftp://x.example/"}), "url"),
        (json!({"url": "https://user:pw@x.example/"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "http://10.0.0.1/h"}), "private"),
        (json!({"url": "http://169.254.169.254/"}), "link-local"),
        (json!({"url": "http://localhost:8080/h"}), "loopback"),
        (json!({"url": "http://[::1]/h"}), "loopback"),
        (
            json!({"url": "https://x.example/", "events": []}),
            "at least one",
        ),
        (
            json!({"url": "https://x.example/", "events": ["receipt.exploded"]}),
            "unknown event type",
        ),
        (
            json!({"url": "https://x.example/", "secret": "whsec_x"}),
            "unknown field",
        ),
        (
            json!({"url": "https://x.example/", "description": "d".repeat(501)}),
            "description",
        ),
    ] {
        let problem = assert_problem(post(body.clone()).await, 400, "invalid-request").await;
        let text = problem["detail"].as_str().unwrap_or_default();
        assert!(text.contains(detail), "{body}: {text}");
    }
    let not_json = app
        .http
        .post(app.url("/v1/webhook-endpoints"))
        .bearer_auth(&app.writer)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("sent");
    assert_problem(not_json, 400, "invalid-request").await;
    let form = app
        .http
        .post(app.url("/v1/webhook-endpoints"))
        .bearer_auth(&app.writer)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("url=https%3A%2F%2Fx.example%2F")
        .send()
        .await
        .expect("sent");
    assert_problem(form, 415, "unsupported-media-type").await;
    let list: Value = app
        .get(&app.reader, "/v1/webhook-endpoints")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["endpoints"], json!([]), "nothing was created");

    // Read-only keys read but change nothing; other tenants see nothing.
    let forbidden = app
        .send(
            reqwest::Method::POST,
            &app.reader,
            "/v1/webhook-endpoints",
            Some(json!({"url": "https://x.example/"})),
        )
        .await;
    assert_problem(forbidden, 403, "forbidden").await;
    let secret = app.get(&app.reader, "/v1/webhooks/secret").await;
    assert_problem(secret, 403, "forbidden").await;
    let created = app
        .create_endpoint(json!({"url": "https://x.example/"}))
        .await;
    let path = format!(
        "/v1/webhook-endpoints/{}",
        created["id"].as_str().expect("id")
    );
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = app.send(method, &app.other, &path, None).await;
        assert_problem(response, 404, "endpoint-not-found").await;
    }
    let patch = app
        .send(
            reqwest::Method::PATCH,
            &app.other,
            &path,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_problem(patch, 404, "endpoint-not-found").await;
    let bad_id = app.get(&app.reader, "/v1/webhook-endpoints/nope").await;
    assert_problem(bad_id, 404, "endpoint-not-found").await;
    let bad_patch = app
        .send(
            reqwest::Method::PATCH,
            &app.writer,
            &path,
            Some(json!({"url": "http://192.168.1.1/"})),
        )
        .await;
    assert_problem(bad_patch, 400, "invalid-request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_log_is_served_and_failed_deliveries_can_be_retried() {
    let app = TestApp::spawn().await;
    // A receipt of tenant acme, and a failed delivery about it.
    let accepted = app.submit_json(&unique_key(), sample(JSON_TYPE, 7)).await;
    assert_eq!(accepted.status(), 202);
    let receipt: Value = accepted.json().await.expect("json");
    let receipt_id = ReceiptId::parse(receipt["id"].as_str().expect("id")).expect("receipt id");
    let tenant = TenantId::parse("acme").expect("tenant");
    let delivery_id = "msg_0123456789abcdef0123456789abcdef";
    app.record_callback_delivery(&tenant, receipt_id, delivery_id)
        .await;
    app.webhooks
        .record_attempt(
            delivery_id,
            1,
            &DeliveryAttempt {
                number: 1,
                at: Utc::now(),
                url: "https://partner.example/cb".into(),
                http_status: Some(500),
                latency_ms: 12,
                response_excerpt: Some("oops".into()),
                error: Some("HTTP 500".into()),
                succeeded: false,
            },
            now_millis(),
        )
        .await
        .expect("attempt");
    let path = format!("/v1/receipts/{receipt_id}/deliveries");

    // Still pending: a retry is refused until it is delivered or failed.
    let retry_path = format!("{path}/{delivery_id}/retry");
    let pending = app
        .send(reqwest::Method::POST, &app.writer, &retry_path, None)
        .await;
    assert_problem(pending, 409, "delivery-pending").await;

    app.webhooks
        .fail_delivery(delivery_id, 1, "gave up after 1 attempts", now_millis())
        .await
        .expect("fail");
    let log: Value = app
        .get(&app.reader, &path)
        .await
        .json()
        .await
        .expect("json");
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["id"], delivery_id);
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["failure_reason"], "gave up after 1 attempts");
    assert_eq!(delivery["destination"], json!({"kind": "callback"}));
    assert_eq!(delivery["event_type"], "receipt.accepted");
    let attempt = &delivery["attempts"][0];
    assert_eq!(attempt["number"], 1);
    assert_eq!(attempt["http_status"], 500);
    assert_eq!(attempt["latency_ms"], 12);
    assert_eq!(attempt["response_excerpt"], "oops");
    assert_eq!(attempt["succeeded"], false);
    assert!(attempt["at"].is_string());

    let forbidden = app
        .send(reqwest::Method::POST, &app.reader, &retry_path, None)
        .await;
    assert_problem(forbidden, 403, "forbidden").await;
    let response = app
        .send(reqwest::Method::POST, &app.writer, &retry_path, None)
        .await;
    assert_eq!(response.status(), 202);
    let reopened: Value = response.json().await.expect("json");
    assert_eq!(reopened["status"], "pending");

    // The redelivery is a message on receipts.webhook-deliveries: same id, next attempt number.
    let topic = TopicNames::new(&app.env.kafka).of(&Topic::WebhookDeliveries);
    let messages = app
        .env
        .read_topic(&topic, 1, std::time::Duration::from_secs(30));
    assert_eq!(messages.len(), 1);
    let codec = app.env.codec();
    let event = codec
        .decode(messages[0].payload().expect("payload"))
        .await
        .expect("decodes");
    let ReceiptEvent::WebhookRequested(message) = event else {
        panic!("a webhook message, got {event:?}")
    };
    assert_eq!(message.delivery_id, delivery_id);
    assert_eq!(
        message.meta.attempt, 2,
        "the new series starts after attempt 1"
    );
    assert_eq!(message.payload, br#"{"type":"receipt.accepted"}"#);

    // Other tenants, unknown receipts and unknown deliveries: not found.
    let other = app.get(&app.other, &path).await;
    assert_problem(other, 404, "receipt-not-found").await;
    let unknown = app
        .get(
            &app.reader,
            &format!("/v1/receipts/{}/deliveries", ReceiptId::new()),
        )
        .await;
    assert_problem(unknown, 404, "receipt-not-found").await;
    let no_delivery = app
        .send(
            reqwest::Method::POST,
            &app.writer,
            &format!("{path}/msg_nope/retry"),
            None,
        )
        .await;
    assert_problem(no_delivery, 404, "delivery-not-found").await;
    let foreign = app
        .send(reqwest::Method::POST, &app.other, &retry_path, None)
        .await;
    assert_problem(foreign, 404, "delivery-not-found").await;
}

/// The delivery log behind a gateway whose store fails every delivery write after the first, as
/// a store that goes down in the middle of a request would.
struct FailingAfterFirstWrite {
    inner: std::sync::Arc<dyn DeliveryStore>,
    writes: std::sync::atomic::AtomicUsize,
}

impl FailingAfterFirstWrite {
    fn write(&self) -> receipts_store::Result<()> {
        if self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            == 0
        {
            Ok(())
        } else {
            Err(receipts_store::Error::Backend {
                backend: "test",
                transient: true,
                source: std::sync::Arc::new(std::io::Error::other("the store went away")),
            })
        }
    }
}

#[async_trait::async_trait]
impl DeliveryStore for FailingAfterFirstWrite {
    async fn record_delivery(&self, delivery: &Delivery) -> receipts_store::Result<bool> {
        self.write()?;
        self.inner.record_delivery(delivery).await
    }
    async fn delivery(&self, id: &str) -> receipts_store::Result<Option<Delivery>> {
        self.inner.delivery(id).await
    }
    async fn save_delivery(
        &self,
        delivery: &Delivery,
        expected: u64,
    ) -> receipts_store::Result<Cas> {
        self.write()?;
        self.inner.save_delivery(delivery, expected).await
    }
    async fn put_attempt(
        &self,
        delivery_id: &str,
        attempt: &DeliveryAttempt,
    ) -> receipts_store::Result<()> {
        self.write()?;
        self.inner.put_attempt(delivery_id, attempt).await
    }
    async fn attempts(&self, delivery_id: &str) -> receipts_store::Result<Vec<DeliveryAttempt>> {
        self.inner.attempts(delivery_id).await
    }
    async fn deliveries_of(&self, receipt: ReceiptId) -> receipts_store::Result<Vec<Delivery>> {
        self.inner.deliveries_of(receipt).await
    }
}

/// A redelivery asked for while the broker is down, with the store failing once written to:
/// the answer is a 503 the client may retry, and the delivery is left exactly as it was (failed,
/// so it can be asked for again), never pending without a message to deliver it. Once the broker
/// is back, the redelivery goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_that_cannot_be_queued_changes_nothing() {
    let app = TestApp::spawn().await;
    let accepted = app.submit_json(&unique_key(), sample(JSON_TYPE, 8)).await;
    assert_eq!(accepted.status(), 202);
    let receipt: Value = accepted.json().await.expect("json");
    let receipt_id = ReceiptId::parse(receipt["id"].as_str().expect("id")).expect("receipt id");
    let delivery_id = "msg_fedcba9876543210fedcba9876543210";
    app.record_callback_delivery(
        &TenantId::parse("acme").expect("tenant"),
        receipt_id,
        delivery_id,
    )
    .await;
    app.webhooks
        .fail_delivery(delivery_id, 1, "the endpoint was deleted", now_millis())
        .await
        .expect("fail");

    // A gateway on the same store, but with an unreachable broker and a store that fails after
    // one write.
    let dead = receipts_kafka::KafkaConfig {
        bootstrap_servers: receipts_testkit::free_addr().to_string(),
        produce_timeout: std::time::Duration::from_secs(2),
        ..app.env.kafka.clone()
    };
    let codec = std::sync::Arc::new(
        receipts_avro::EventCodec::new(&app.env.schema_registry).expect("codec"),
    );
    let producer = receipts_kafka::EventProducer::new(&dead, "test", codec).expect("producer");
    let mut stores = app.stores.clone();
    stores.deliveries = std::sync::Arc::new(FailingAfterFirstWrite {
        inner: app.stores.deliveries.clone(),
        writes: std::sync::atomic::AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = ingest_gateway::AppState::new(
        stores,
        producer,
        &ingest_gateway::HttpConfig::default(),
        &receipts_webhooks::WebhookConfig::default(),
        addr,
    );
    tokio::spawn(async move { axum::serve(listener, ingest_gateway::router(state)).await });

    let retry_path = format!("/v1/receipts/{receipt_id}/deliveries/{delivery_id}/retry");
    let refused = app
        .http
        .post(format!("http://{addr}{retry_path}"))
        .bearer_auth(&app.writer)
        .send()
        .await
        .expect("send");
    assert_problem(refused, 503, "broker-unavailable").await;
    let log: Value = app
        .get(
            &app.reader,
            &format!("/v1/receipts/{receipt_id}/deliveries"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(log["deliveries"][0]["status"], "failed", "{log}");
    assert_eq!(
        log["deliveries"][0]["failure_reason"],
        "the endpoint was deleted"
    );

    // The healthy gateway takes the same request.
    let response = app
        .send(reqwest::Method::POST, &app.writer, &retry_path, None)
        .await;
    assert_eq!(response.status(), 202);
    let reopened: Value = response.json().await.expect("json");
    assert_eq!(reopened["status"], "pending");
    let topic = TopicNames::new(&app.env.kafka).of(&Topic::WebhookDeliveries);
    assert_eq!(
        app.env
            .read_topic(&topic, 1, std::time::Duration::from_secs(30))
            .len(),
        1,
        "one redelivery queued"
    );
}

/// Asserts that `received` is signed by `secret` (a Standard Webhooks library verifies it).
fn assert_signed_by(received: &Received, secret: &str) {
    standardwebhooks::Webhook::new(secret)
        .expect("a whsec_ secret")
        .verify(&received.body, &received.headers)
        .unwrap_or_else(|e| panic!("the signature verifies with {secret:.12}…: {e}"));
}

/// An endpoint test sends one signed `webhook.test` message, synchronously, and answers what the
/// receiver did: delivered with its status, or not delivered (a 500) with the reason. Nothing is
/// recorded: no delivery message, the endpoint's health untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_tests_send_one_signed_message_and_answer_the_outcome() {
    // Endpoints on this machine are allowed, as `receipts up` allows them.
    let app = TestApp::spawn_configured(|config| {
        config.webhooks.allow_private = vec!["127.0.0.0/8".parse().expect("network")];
    })
    .await;
    let receiver = Receiver::start(|_| Reply::Full(200, Vec::new(), "thanks".into())).await;
    let created = app
        .create_endpoint(json!({"url": receiver.url("/hooks")}))
        .await;
    let id = created["id"].as_str().expect("id");
    let secret = created["secret"].as_str().expect("secret");
    let path = format!("/v1/webhook-endpoints/{id}/test");

    let response = app
        .send(reqwest::Method::POST, &app.writer, &path, None)
        .await;
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.expect("json");
    assert_eq!(result["delivered"], true, "{result}");
    assert_eq!(result["http_status"], 200);
    assert_eq!(result["response_excerpt"], "thanks");
    assert_eq!(result["error"], Value::Null);
    assert!(result["latency_ms"].is_u64(), "{result}");
    let webhook_id = result["webhook_id"].as_str().expect("webhook id");
    assert!(webhook_id.starts_with("msg_test_"), "{webhook_id}");

    // Sent before the answer, exactly once.
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "one message");
    let received = &requests[0];
    assert_eq!(received.webhook_id(), webhook_id);
    assert!(
        received
            .header("webhook-timestamp")
            .parse::<i64>()
            .is_ok_and(|t| (t - Utc::now().timestamp()).abs() < 60),
        "{received:?}"
    );
    assert!(received.header("webhook-signature").starts_with("v1,"));
    assert_eq!(received.header("content-type"), "application/json");
    assert!(
        received
            .header("user-agent")
            .starts_with("receipts-webhooks/")
    );
    assert_signed_by(received, secret);
    let body = received.json();
    assert_eq!(body["type"], "webhook.test");
    assert!(body["timestamp"].is_string(), "{body}");
    assert_eq!(body["data"]["endpoint_id"], id);
    assert!(
        body["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("test message")),
        "{body}"
    );

    // During a rotation the message is signed with both secrets, as deliveries are.
    let rotated: Value = app
        .send(
            reqwest::Method::POST,
            &app.writer,
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    let again: Value = app
        .send(reqwest::Method::POST, &app.writer, &path, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["delivered"], true, "{again}");
    assert_ne!(
        again["webhook_id"], result["webhook_id"],
        "a new id per test"
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].header("webhook-signature").split(' ').count(),
        2
    );
    assert_signed_by(
        &requests[1],
        rotated["secret"].as_str().expect("new secret"),
    );
    assert_signed_by(&requests[1], secret);

    // A receiver answering 500: not delivered, which is the answer, not an API error.
    let failing = Receiver::start(|_| Reply::Full(500, Vec::new(), "boom".into())).await;
    let broken = app
        .create_endpoint(json!({"url": failing.url("/hooks")}))
        .await;
    let broken_id = broken["id"].as_str().expect("id");
    let response = app
        .send(
            reqwest::Method::POST,
            &app.writer,
            &format!("/v1/webhook-endpoints/{broken_id}/test"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.expect("json");
    assert_eq!(result["delivered"], false, "{result}");
    assert_eq!(result["http_status"], 500);
    assert_eq!(result["error"], "HTTP 500");
    assert_eq!(result["response_excerpt"], "boom");
    assert_eq!(failing.count(), 1, "never retried");

    // Nothing recorded: no delivery message queued, the failing endpoint's health untouched.
    let topic = TopicNames::new(&app.env.kafka).of(&Topic::WebhookDeliveries);
    assert_eq!(app.env.message_count(&topic), 0, "no delivery queued");
    let endpoint: Value = app
        .get(&app.reader, &format!("/v1/webhook-endpoints/{broken_id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(endpoint["failing_since"], Value::Null, "{endpoint}");
    assert_eq!(endpoint["enabled"], true);
}

/// Testing needs a read-write key and the tenant's own endpoint, and the address policy applies
/// at send time as it does to deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_tests_need_a_write_key_an_own_endpoint_and_an_allowed_address() {
    let app = TestApp::spawn().await;
    // Stored directly: the API refuses a loopback URL at registration, the sender at every send.
    let endpoint = app
        .webhooks
        .create_endpoint(
            NewEndpoint {
                id: EndpointId::new(),
                tenant_id: TenantId::parse("acme").expect("tenant"),
                url: "http://127.0.0.1:9/hooks".into(),
                description: None,
                events: None,
                secret: WebhookSecret::generate(),
            },
            now_millis(),
        )
        .await
        .expect("endpoint");
    let path = format!("/v1/webhook-endpoints/{}/test", endpoint.id);

    let forbidden = app
        .send(reqwest::Method::POST, &app.reader, &path, None)
        .await;
    assert_problem(forbidden, 403, "forbidden").await;
    let foreign = app
        .send(reqwest::Method::POST, &app.other, &path, None)
        .await;
    assert_problem(foreign, 404, "endpoint-not-found").await;
    for unknown in [
        format!("/v1/webhook-endpoints/{}/test", EndpointId::new()),
        "/v1/webhook-endpoints/nope/test".to_owned(),
    ] {
        let response = app
            .send(reqwest::Method::POST, &app.writer, &unknown, None)
            .await;
        assert_problem(response, 404, "endpoint-not-found").await;
    }

    let response = app
        .send(reqwest::Method::POST, &app.writer, &path, None)
        .await;
    assert_eq!(response.status(), 200);
    let refused: Value = response.json().await.expect("json");
    assert_eq!(refused["delivered"], false, "{refused}");
    assert_eq!(refused["http_status"], Value::Null);
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("loopback")),
        "{refused}"
    );
}
