use std::time::Duration;

use ingest_gateway::{GatewayConfig, HttpConfig};
use receipts_core::Webhooks;
use receipts_domain::event::now_millis;
use receipts_domain::{ApiKey, ClientId, ReceiptType, Scope, TenantId, Topic};
use receipts_kafka::TopicNames;
use receipts_store::{SqliteOptions, SqliteStore, Stores};
use receipts_testkit::TestEnv;
use tokio_util::sync::CancellationToken;
use url::Url;

pub const JSON_TYPE: &str = "retail-receipt/v1";
pub const XML_TYPE: &str = "retail-receipt-xml/v1";
pub const MAX_BODY: usize = 64 * 1024;

/// One gateway on a random port, with its own topics and store.
pub struct TestApp {
    pub base: String,
    pub env: TestEnv,
    pub stores: Stores,
    /// The webhook use cases on the gateway's store, to set up what a dispatcher would have done.
    pub webhooks: Webhooks,
    /// Tenant `acme`, read-write.
    pub writer: String,
    /// Tenant `acme`, read only.
    pub reader: String,
    /// Tenant `other`, read-write.
    pub other: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn create_key(stores: &Stores, tenant: &str, scope: Scope) -> (ClientId, String) {
    let key = ApiKey::generate();
    let client = key.new_client(TenantId::parse(tenant).expect("tenant"), scope, None);
    stores
        .clients
        .create_client(&client, now_millis())
        .await
        .expect("create client");
    (client.id, key.expose().to_owned())
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A gateway whose HTTP settings `adjust` may change.
    pub async fn spawn_with(adjust: impl FnOnce(&mut HttpConfig)) -> Self {
        Self::spawn_configured(|config| adjust(&mut config.gateway)).await
    }

    /// A gateway whose whole configuration `adjust` may change (after the test's own settings).
    pub async fn spawn_configured(adjust: impl FnOnce(&mut GatewayConfig)) -> Self {
        let env = TestEnv::new();
        let stores = Stores::of(
            SqliteStore::open(
                &env.dir.path().join("receipts.db"),
                &SqliteOptions::default(),
            )
            .await
            .expect("store"),
        );
        let webhooks = Webhooks::new(stores.endpoints.clone(), stores.deliveries.clone());
        let (_, writer) = create_key(&stores, "acme", Scope::ReadWrite).await;
        let (_, reader) = create_key(&stores, "acme", Scope::Read).await;
        let (_, other) = create_key(&stores, "other", Scope::ReadWrite).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let http = HttpConfig {
            listen: addr,
            public_url: Some(Url::parse(&base).expect("url")),
            max_body_bytes: MAX_BODY,
            ..HttpConfig::default()
        };
        let mut config = GatewayConfig {
            gateway: http,
            kafka: env.kafka.clone(),
            schema_registry: env.schema_registry.clone(),
            ..GatewayConfig::default()
        };
        adjust(&mut config);
        let shutdown = CancellationToken::new();
        tokio::spawn(ingest_gateway::run(
            config,
            stores.clone(),
            listener,
            shutdown.clone(),
        ));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let app = Self {
            base,
            env,
            stores,
            webhooks,
            writer,
            reader,
            other,
            http,
            shutdown,
        };
        receipts_testkit::eventually("gateway ready", Duration::from_secs(60), || async {
            let ready = app.http.get(app.url("/readyz")).send().await.ok()?;
            ready.status().is_success().then_some(())
        })
        .await;
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST /v1/receipts with the usual headers; `None` leaves a header out.
    pub async fn submit(
        &self,
        key: Option<&str>,
        content_type: Option<&str>,
        receipt_type: Option<&str>,
        idempotency_key: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url("/v1/receipts")).body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        if let Some(rt) = receipt_type {
            request = request.header("Receipt-Type", rt);
        }
        if let Some(ik) = idempotency_key {
            request = request.header("Idempotency-Key", ik);
        }
        request.send().await.expect("request sent")
    }

    /// A valid JSON receipt, submitted by the read-write key of `acme`.
    pub async fn submit_json(&self, idempotency_key: &str, body: Vec<u8>) -> reqwest::Response {
        self.submit(
            Some(&self.writer),
            Some("application/json"),
            Some(JSON_TYPE),
            Some(idempotency_key),
            body,
        )
        .await
    }

    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request sent")
    }

    /// Messages ever written to `receipts.submitted` of this test.
    pub fn submitted_count(&self) -> i64 {
        self.env
            .message_count(&TopicNames::new(&self.env.kafka).of(&Topic::Submitted))
    }
}

pub fn sample(receipt_type: &str, seed: u64) -> Vec<u8> {
    let t = ReceiptType::lookup(receipt_type).expect("known type");
    receipts_validation::sample::generate(&t, true, seed)
}

pub fn unique_key() -> String {
    format!("test-{}", uuid_like())
}

fn uuid_like() -> String {
    receipts_domain::EventId::new().to_string()
}

/// Asserts an RFC 9457 problem response and returns its body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    slug: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status for {slug}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        content_type, "application/problem+json",
        "content type for {slug}"
    );
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["type"], format!("urn:receipts:problem:{slug}"));
    assert_eq!(body["status"], status);
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
    body
}
