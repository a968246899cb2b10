//! What the dispatcher tests share: a scriptable webhook receiver on 127.0.0.1, the dispatcher
//! running in this process on a real broker and SQLite file, and status changes to feed it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use receipts_domain::{
    CallbackUrl, EndpointId, EventMeta, ReceiptEvent, ReceiptId, Status, StatusChanged,
    StatusPolicy, TenantId, WebhookEventType, WebhookSecret,
};
use receipts_kafka::{EventProducer, RetryPolicy};
use receipts_store::{Delivery, Endpoint, NewEndpoint, SqliteConfig, SqliteStore, WebhookStore};
use receipts_testkit::{TestEnv, eventually};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webhook_dispatcher::{DispatcherConfig, WebhookConfig};

pub const WAIT: Duration = Duration::from_secs(90);

pub fn tenant() -> TenantId {
    TenantId::parse("acme").expect("tenant")
}

/// What a receiver answers to its n-th request (0-based).
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with extra headers and a body.
    Full(u16, Vec<(&'static str, String)>, String),
    /// Never answers.
    Hang,
}

/// A request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn webhook_id(&self) -> String {
        self.header("webhook-id")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct ReceiverState {
    script: Script,
    requests: Arc<Mutex<Vec<Received>>>,
}

/// An HTTP server on 127.0.0.1 that records every request and answers by script.
pub struct Receiver {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState {
            script: Arc::new(script),
            requests: Arc::clone(&requests),
        };
        let app = axum::Router::new().fallback(receive).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver serves");
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    /// Answers 200 to everything.
    pub async fn ok() -> Self {
        Self::start(|_| Reply::Status(200)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().expect("requests").clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().expect("requests").len()
    }

    /// Waits for at least `n` requests.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} requests at {}", self.addr), WAIT, || async {
            let got = self.requests();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> Response {
    let n = {
        let mut requests = state.requests.lock().expect("requests");
        requests.push(Received {
            headers,
            body,
            at: Instant::now(),
        });
        requests.len() - 1
    };
    match (state.script)(n) {
        Reply::Status(code) => StatusCode::from_u16(code).expect("status").into_response(),
        Reply::Full(code, headers, body) => {
            let mut response = (StatusCode::from_u16(code).expect("status"), body).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            response
        }
        Reply::Hang => std::future::pending().await,
    }
}

/// Webhook settings for tests: a short schedule without jitter, loopback allowed.
pub fn fast_webhooks() -> WebhookConfig {
    WebhookConfig {
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            ladder: vec![
                Duration::from_millis(300),
                Duration::from_millis(600),
                Duration::from_millis(900),
            ],
            horizon: Duration::from_secs(3600),
            max_attempts: Some(4),
            jitter: 0.0,
        },
        allow_private: vec![
            "127.0.0.0/8".parse().expect("net"),
            "::1/128".parse().expect("net"),
        ],
        ..WebhookConfig::default()
    }
}

/// The dispatcher running in this process.
pub struct Dispatcher {
    pub env: TestEnv,
    pub store: Arc<SqliteStore>,
    pub producer: EventProducer,
    pub db: PathBuf,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), webhook_dispatcher::Error>>>,
}

impl Dispatcher {
    pub async fn start(webhooks: WebhookConfig) -> Self {
        let mut dispatcher = Self::environment().await;
        dispatcher.run(webhooks);
        dispatcher
    }

    /// The broker, topics and database, without a dispatcher running in this process.
    pub async fn environment() -> Self {
        let env = TestEnv::new();
        let db = env.dir.path().join("receipts.db");
        let store = Arc::new(
            SqliteStore::open(&SqliteConfig::new(&db), StatusPolicy::default())
                .await
                .expect("store"),
        );
        let producer = env.producer();
        Self {
            env,
            store,
            producer,
            db,
            shutdown: CancellationToken::new(),
            task: None,
        }
    }

    pub fn config(&self, webhooks: WebhookConfig) -> DispatcherConfig {
        DispatcherConfig {
            kafka: self.env.kafka.clone(),
            schema_registry: self.env.schema_registry.clone(),
            store: SqliteConfig::new(&self.db),
            webhooks,
            ..DispatcherConfig::default()
        }
    }

    fn run(&mut self, webhooks: WebhookConfig) {
        let config = self.config(webhooks);
        let store: Arc<dyn WebhookStore> = self.store.clone();
        self.task = Some(tokio::spawn(webhook_dispatcher::run(
            config,
            store,
            self.shutdown.clone(),
        )));
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("joins").expect("stops cleanly");
        }
    }

    /// Registers an endpoint for the test tenant.
    pub async fn endpoint(&self, url: &str, events: Option<Vec<WebhookEventType>>) -> Endpoint {
        self.store
            .create_endpoint(&NewEndpoint {
                id: EndpointId::new(),
                tenant_id: tenant(),
                url: url.to_owned(),
                description: None,
                events,
                secret: WebhookSecret::generate(),
            })
            .await
            .expect("endpoint")
    }

    /// Publishes a status change of a new receipt; returns its id.
    pub async fn change(&self, to: Status, callback: Option<&str>) -> ReceiptId {
        let event = status_changed(to, callback);
        let id = event.meta.receipt_id;
        self.producer
            .publish(&ReceiptEvent::StatusChanged(event))
            .await
            .expect("published");
        id
    }

    /// The receipt's deliveries once `check` holds for them.
    pub async fn deliveries_when(
        &self,
        receipt: ReceiptId,
        what: &str,
        check: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        eventually(what, WAIT, || async {
            let deliveries = self
                .store
                .deliveries(&tenant(), receipt)
                .await
                .expect("deliveries");
            check(&deliveries).then_some(deliveries)
        })
        .await
    }
}

pub fn status_changed(to: Status, callback: Option<&str>) -> StatusChanged {
    let from = match to {
        Status::Validated | Status::Rejected => Status::Received,
        _ => Status::Validated,
    };
    StatusChanged {
        meta: EventMeta::new(ReceiptId::new(), tenant()),
        from,
        to,
        receipt_type: "retail-receipt/v1".into(),
        callback_url: callback.map(|u| CallbackUrl::parse(u).expect("callback url")),
        reasons: vec![],
        registrations: vec![],
        failures: vec![],
    }
}
