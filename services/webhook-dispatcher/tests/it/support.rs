//! What the dispatcher tests share: the dispatcher running in this process on a real broker and
//! SQLite file, and status changes to feed it.

use std::path::PathBuf;
use std::time::Duration;

use receipts_core::{DeliveryLog, Webhooks};
use receipts_domain::event::now_millis;
use receipts_domain::{
    CallbackUrl, DeliveryAttempt, DeliveryStatus, Destination, Endpoint, EndpointId, EventMeta,
    NewEndpoint, ReceiptEvent, ReceiptId, Status, StatusChanged, TenantId, WebhookEventType,
    WebhookSecret,
};
use receipts_kafka::{EventProducer, RetryPolicy};
use receipts_store::{SqliteOptions, SqliteStore, StoreConfig, Stores};
pub use receipts_testkit::receiver::{Received, Receiver, Reply};
use receipts_testkit::{TestEnv, eventually};
use receipts_webhooks::WebhookConfig;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webhook_dispatcher::DispatcherConfig;

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

/// A delivery and its attempts, as the tests look at them.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub destination: Destination,
    pub url: String,
    pub status: DeliveryStatus,
    pub failure_reason: Option<String>,
    pub attempts: Vec<DeliveryAttempt>,
}

impl From<DeliveryLog> for Delivery {
    fn from(log: DeliveryLog) -> Self {
        Self {
            id: log.delivery.id,
            destination: log.delivery.destination,
            url: log.delivery.url,
            status: log.delivery.status,
            failure_reason: log.delivery.failure_reason,
            attempts: log.attempts,
        }
    }
}

/// The dispatcher running in this process.
pub struct Dispatcher {
    pub env: TestEnv,
    pub stores: Stores,
    /// The webhook use cases on the same store, to set up and inspect what the dispatcher sees.
    pub webhooks: Webhooks,
    pub producer: EventProducer,
    pub db: PathBuf,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), receipts_service::Error>>>,
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
        let stores = Stores::of(
            SqliteStore::open(&db, &SqliteOptions::default())
                .await
                .expect("store"),
        );
        let webhooks = Webhooks::new(stores.endpoints.clone(), stores.deliveries.clone());
        let producer = env.producer();
        Self {
            env,
            stores,
            webhooks,
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
            store: StoreConfig::sqlite(&self.db),
            webhooks,
            ..DispatcherConfig::default()
        }
    }

    fn run(&mut self, webhooks: WebhookConfig) {
        let config = self.config(webhooks);
        self.task = Some(tokio::spawn(webhook_dispatcher::run(
            config,
            self.stores.clone(),
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
        self.webhooks
            .create_endpoint(
                NewEndpoint {
                    id: EndpointId::new(),
                    tenant_id: tenant(),
                    url: url.to_owned(),
                    description: None,
                    events,
                    secret: WebhookSecret::generate(),
                },
                now_millis(),
            )
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
            let deliveries: Vec<Delivery> = self
                .webhooks
                .deliveries(&tenant(), receipt)
                .await
                .expect("deliveries")
                .into_iter()
                .map(Into::into)
                .collect();
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
