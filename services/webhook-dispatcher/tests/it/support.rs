//! What the dispatcher tests share: the dispatcher running in this process on a real broker and
//! SQLite file, and status changes to feed it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use receipts_domain::{
    CallbackUrl, EndpointId, EventMeta, ReceiptEvent, ReceiptId, Status, StatusChanged,
    StatusPolicy, TenantId, WebhookEventType, WebhookSecret,
};
use receipts_kafka::{EventProducer, RetryPolicy};
use receipts_store::{Delivery, Endpoint, NewEndpoint, SqliteConfig, SqliteStore, WebhookStore};
pub use receipts_testkit::receiver::{Received, Receiver, Reply};
use receipts_testkit::{TestEnv, eventually};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webhook_dispatcher::{DispatcherConfig, WebhookConfig};

pub const WAIT: Duration = Duration::from_secs(90);

pub fn tenant() -> TenantId {
    TenantId::parse("acme").expect("tenant")
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
