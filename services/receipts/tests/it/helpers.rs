use std::path::PathBuf;
use std::time::Duration;

use receipts::{Platform, PlatformConfig};
use receipts_testkit::{TestEnv, eventually};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use url::Url;

pub const WAIT: Duration = Duration::from_secs(90);

/// One entry of `examples/receipts/manifest.json`.
#[derive(Debug, Deserialize)]
pub struct Example {
    pub file: String,
    pub content_type: String,
    pub receipt_type: String,
    pub expect: String,
}

pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/receipts")
}

pub fn manifest() -> Vec<Example> {
    let text = std::fs::read_to_string(examples_dir().join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest parses")
}

/// The platform with all services, on the test process's shared broker and registry.
pub struct RunningPlatform {
    pub base: String,
    /// The mock registries: (name, base URL).
    pub mocks: Vec<(String, String)>,
    pub key: String,
    pub http: reqwest::Client,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), receipts::PlatformError>>,
    pub env: TestEnv,
}

impl RunningPlatform {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A platform whose configuration `adjust` may change.
    pub async fn start_with(adjust: impl FnOnce(&mut PlatformConfig)) -> Self {
        let env = TestEnv::new();
        let mut config = PlatformConfig::default().with_data_dir(env.dir.path());
        config.embedded.broker = false;
        config.embedded.schema_registry = false;
        config.kafka = env.kafka.clone();
        config.schema_registry = env.schema_registry.clone();
        config.gateway.listen = "127.0.0.1:0".parse().expect("addr");
        ephemeral_mocks(&mut config);
        adjust(&mut config);
        let platform = Platform::start(config).await.expect("platform starts");
        let mocks = platform.mocks.clone();
        let base = format!("http://{}", platform.gateway_addr);
        let key = platform
            .new_dev_key
            .clone()
            .expect("a fresh data dir gets a dev key");
        let stop = CancellationToken::new();
        let task = tokio::spawn(platform.run_until(stop.clone()));
        Self {
            base,
            mocks,
            key,
            http: http_client(),
            stop,
            task,
            env,
        }
    }

    /// The base URL of the mock playing `registry`.
    pub fn mock(&self, registry: &str) -> &str {
        self.mocks
            .iter()
            .find(|(name, _)| name == registry)
            .map(|(_, url)| url.as_str())
            .expect("a mock")
    }

    pub async fn put_faults(&self, registry: &str, faults: serde_json::Value) {
        let response = self
            .http
            .put(format!("{}/admin/faults", self.mock(registry)))
            .json(&faults)
            .send()
            .await
            .expect("faults");
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    pub async fn admin(&self, registry: &str, path: &str) -> serde_json::Value {
        let url = format!("{}{path}", self.mock(registry));
        self.http
            .get(url)
            .send()
            .await
            .expect("admin")
            .json()
            .await
            .expect("json")
    }

    /// Submits a fresh valid receipt; returns its id.
    pub async fn submit_sample(&self, seed: u64) -> String {
        let t = receipts_domain::ReceiptType::lookup("retail-receipt/v1").expect("type");
        let body = receipts_validation::sample::generate(&t, true, seed);
        submit(
            &self.http,
            &self.base,
            &self.key,
            "application/json",
            "retail-receipt/v1",
            &format!("sample-{seed}"),
            body,
        )
        .await
    }

    /// Submits a fresh valid receipt with `callback_url` as its `Callback-Url` and waits until
    /// it is ACCEPTED; returns its id.
    pub async fn submit_until_accepted(
        &self,
        idempotency_key: &str,
        callback_url: &str,
        seed: u64,
    ) -> String {
        let t = receipts_domain::ReceiptType::lookup("retail-receipt/v1").expect("type");
        let response = self
            .http
            .post(format!("{}/v1/receipts", self.base))
            .bearer_auth(&self.key)
            .header("Content-Type", "application/json")
            .header("Receipt-Type", "retail-receipt/v1")
            .header("Idempotency-Key", idempotency_key)
            .header("Callback-Url", callback_url)
            .body(receipts_validation::sample::generate(&t, true, seed))
            .send()
            .await
            .expect("submit");
        assert_eq!(response.status(), 202);
        let id = response.json::<serde_json::Value>().await.expect("json")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        wait_for_status(&self.http, &self.base, &self.key, &id, &["ACCEPTED"]).await;
        id
    }

    pub async fn receipt(&self, id: &str) -> serde_json::Value {
        let response = self
            .http
            .get(format!("{}/v1/receipts/{id}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("get");
        response.json().await.expect("json")
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("join").expect("clean shutdown");
    }
}

/// The mock registries on free ports (the embedded default's 8091/8092 may be taken).
pub fn ephemeral_mocks(config: &mut PlatformConfig) {
    config.mocks.tax.listen = "127.0.0.1:0".parse().expect("addr");
    config.mocks.logistics.listen = "127.0.0.1:0".parse().expect("addr");
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Submits a document; returns the receipt id.
pub async fn submit(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    content_type: &str,
    receipt_type: &str,
    idempotency_key: &str,
    body: Vec<u8>,
) -> String {
    let response = http
        .post(format!("{base}/v1/receipts"))
        .bearer_auth(key)
        .header("Content-Type", content_type)
        .header("Receipt-Type", receipt_type)
        .header("Idempotency-Key", idempotency_key)
        .body(body)
        .send()
        .await
        .expect("submit");
    assert_eq!(response.status(), 202, "submission accepted");
    let json: serde_json::Value = response.json().await.expect("json");
    json["id"].as_str().expect("id").to_owned()
}

/// Polls the receipt until its status is one of `statuses`.
pub async fn wait_for_status(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    statuses: &[&str],
) -> serde_json::Value {
    wait_for_receipt(
        http,
        base,
        key,
        id,
        &format!("to reach {statuses:?}"),
        |json| {
            json["status"]
                .as_str()
                .is_some_and(|status| statuses.contains(&status))
        },
    )
    .await
}

/// Waits until the receipt's view is `status` and has every event projected, its submission
/// included (which other events may overtake).
pub async fn wait_for_settled(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    status: &str,
) -> serde_json::Value {
    wait_for_receipt(
        http,
        base,
        key,
        id,
        &format!("to settle as {status}"),
        |json| {
            let submitted = json["timeline"]
                .as_array()
                .is_some_and(|timeline| timeline.iter().any(|e| e["event"] == "submitted"));
            json["status"] == status && submitted
        },
    )
    .await
}

/// Waits until the receipt's view satisfies `done` (described by `what`).
async fn wait_for_receipt(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    eventually(&format!("receipt {id} {what}"), WAIT, || async {
        let response = http
            .get(format!("{base}/v1/receipts/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .ok()?;
        let json: serde_json::Value = response.json().await.ok()?;
        done(&json).then_some(json)
    })
    .await
}

pub fn url(addr: std::net::SocketAddr) -> Url {
    Url::parse(&format!("http://{addr}")).expect("url")
}
