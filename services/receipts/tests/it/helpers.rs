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
    pub key: String,
    pub http: reqwest::Client,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), receipts::PlatformError>>,
    pub env: TestEnv,
}

impl RunningPlatform {
    pub async fn start() -> Self {
        let env = TestEnv::new();
        let mut config = PlatformConfig::default().with_data_dir(env.dir.path());
        config.embedded.broker = false;
        config.embedded.schema_registry = false;
        config.kafka = env.kafka.clone();
        config.schema_registry = env.schema_registry.clone();
        config.gateway.listen = "127.0.0.1:0".parse().expect("addr");
        ephemeral_mocks(&mut config);
        let platform = Platform::start(config).await.expect("platform starts");
        let base = format!("http://{}", platform.gateway_addr);
        let key = platform
            .new_dev_key
            .clone()
            .expect("a fresh data dir gets a dev key");
        let stop = CancellationToken::new();
        let task = tokio::spawn(platform.run_until(stop.clone()));
        Self {
            base,
            key,
            http: http_client(),
            stop,
            task,
            env,
        }
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
    eventually(
        &format!("receipt {id} to reach {statuses:?}"),
        WAIT,
        || async {
            let response = http
                .get(format!("{base}/v1/receipts/{id}"))
                .bearer_auth(key)
                .send()
                .await
                .ok()?;
            let json: serde_json::Value = response.json().await.ok()?;
            statuses.contains(&json["status"].as_str()?).then_some(json)
        },
    )
    .await
}

pub fn url(addr: std::net::SocketAddr) -> Url {
    Url::parse(&format!("http://{addr}")).expect("url")
}
