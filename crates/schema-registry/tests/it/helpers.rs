use std::path::Path;

use receipts_schema_registry::{SchemaRegistry, serve};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SR_CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

pub const RECEIPT_V1: &str = r#"{"type":"record","name":"ReceiptSubmitted","namespace":"receipts.events","fields":[
    {"name":"event_id","type":"string"},
    {"name":"receipt_id","type":"string"}
]}"#;

/// RECEIPT_V1 plus a field with a default: BACKWARD compatible.
pub const RECEIPT_V2: &str = r#"{"type":"record","name":"ReceiptSubmitted","namespace":"receipts.events","fields":[
    {"name":"event_id","type":"string"},
    {"name":"receipt_id","type":"string"},
    {"name":"attempt","type":"int","default":0}
]}"#;

/// RECEIPT_V1 plus a field without a default: not BACKWARD compatible.
pub const RECEIPT_V2_NO_DEFAULT: &str = r#"{"type":"record","name":"ReceiptSubmitted","namespace":"receipts.events","fields":[
    {"name":"event_id","type":"string"},
    {"name":"receipt_id","type":"string"},
    {"name":"tenant_id","type":"string"}
]}"#;

/// A running registry.
pub struct TestApp {
    pub url: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<receipts_schema_registry::Result<()>>,
}

/// Opens the registry persisted at `path` and serves it on a random port.
pub async fn spawn_app(path: &Path) -> TestApp {
    let registry = SchemaRegistry::open(path).await.expect("open registry");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(registry, listener, shutdown.clone()));
    TestApp {
        url: format!("http://{addr}"),
        http: reqwest::Client::new(),
        shutdown,
        server,
    }
}

impl TestApp {
    pub async fn get_raw(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET")
    }

    /// GET `path`: status and JSON body (the body must be JSON with the SR content type).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        into_json(self.get_raw(path).await).await
    }

    /// POST `body` as `application/vnd.schemaregistry.v1+json`.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(path, SR_CONTENT_TYPE, body.to_string()).await
    }

    pub async fn post_as(&self, path: &str, content_type: &str, body: String) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .header("accept", SR_CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .expect("POST");
        into_json(response).await
    }

    /// Registers `schema` under `subject`, expecting success; returns the id.
    pub async fn register(&self, subject: &str, schema: &str) -> u64 {
        let (status, body) = self
            .post(
                &format!("/subjects/{subject}/versions"),
                &json!({ "schema": schema }),
            )
            .await;
        assert_eq!(status, 200, "register {subject}: {body}");
        body["id"].as_u64().expect("id")
    }

    /// Stops the server (graceful) and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server
            .await
            .expect("server task")
            .expect("server stopped cleanly");
    }
}

async fn into_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        content_type.as_deref(),
        Some(SR_CONTENT_TYPE),
        "status {status}"
    );
    let body = response.json::<Value>().await.expect("JSON body");
    (status, body)
}

/// Asserts a Confluent-style error body.
pub fn assert_error(actual: (u16, Value), status: u16, error_code: u64) {
    let (actual_status, body) = actual;
    assert_eq!(actual_status, status, "{body}");
    assert_eq!(body["error_code"].as_u64(), Some(error_code), "{body}");
    assert!(body["message"].is_string(), "{body}");
}
