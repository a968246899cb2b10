use std::time::Duration;

use chrono::{DateTime, Utc};
use mock_registries::{CallbackTarget, Faults, MockConfig, RegistryKind, RunningMock};
use rdkafka::Message;
use receipts_domain::{
    EventMeta, ReceiptEvent, ReceiptId, ReceiptType, RegistryName, TenantId, Topic, Validated,
};
use receipts_kafka::{RetryPolicy, TopicNames};
use receipts_registries::RegistryConfig;
use receipts_testkit::TestEnv;
use registrar::RegistrarConfig;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(90);
pub const BLACKLISTED: &str = "DE136695976";

/// A registrar for one mock registry, on its own topics.
pub struct Harness {
    pub env: TestEnv,
    pub mock: RunningMock,
    pub registry: RegistryName,
    pub http: reqwest::Client,
    /// How many retry tiers the registrar has.
    tiers: usize,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), receipts_service::Error>>,
}

impl Harness {
    pub async fn start(kind: RegistryKind, faults: Faults, retry: RetryPolicy) -> Self {
        Self::start_with(kind, faults, retry, None, |_| {}).await
    }

    pub async fn start_with(
        kind: RegistryKind,
        faults: Faults,
        retry: RetryPolicy,
        callback: Option<CallbackTarget>,
        adjust: impl FnOnce(&mut RegistryConfig),
    ) -> Self {
        let env = TestEnv::new();
        let mock = mock_registries::start(MockConfig {
            faults,
            callback,
            ..MockConfig::ephemeral(kind)
        })
        .await
        .expect("mock starts");
        let mut registry = match kind {
            RegistryKind::Tax => RegistryConfig::tax_default(),
            RegistryKind::Logistics => RegistryConfig::logistics_default(),
        };
        registry.base_url = mock.base_url().parse().expect("url");
        registry.timeout = Duration::from_secs(2);
        adjust(&mut registry);
        let name = registry.name.clone();
        let tiers = retry.tiers();
        let config = RegistrarConfig {
            registry,
            retry,
            kafka: env.kafka.clone(),
            schema_registry: env.schema_registry.clone(),
            ..RegistrarConfig::new(RegistryConfig::tax_default())
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(registrar::run(config, shutdown.clone()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http");
        Self {
            env,
            mock,
            registry: name,
            http,
            tiers,
            shutdown,
            task,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("registrar ran");
    }

    pub async fn publish(&self, events: &[ReceiptEvent]) {
        let producer = self.env.producer();
        for event in events {
            producer.publish(event).await.expect("published");
        }
    }

    /// The events on `topic`, waiting for at least `expected`.
    pub async fn events(&self, topic: &Topic, expected: usize) -> Vec<ReceiptEvent> {
        let name = TopicNames::new(&self.env.kafka).of(topic);
        let codec = self.env.codec();
        let mut events = Vec::new();
        for message in self.env.read_topic(&name, expected, WAIT) {
            events.push(
                codec
                    .decode(message.payload().expect("payload"))
                    .await
                    .expect("decodes"),
            );
        }
        events
    }

    pub async fn admin(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.mock.base_url());
        self.http
            .get(url)
            .send()
            .await
            .expect("admin")
            .json()
            .await
            .expect("json")
    }

    pub async fn put_faults(&self, faults: &Faults) {
        let url = format!("{}/admin/faults", self.mock.base_url());
        let response = self
            .http
            .put(url)
            .json(faults)
            .send()
            .await
            .expect("faults");
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Waits until the registrar has finished with every message there is: `receipts.validated`
    /// and each of its retry tiers committed to the end. After that, no call can come any more
    /// unless a new message does.
    pub async fn wait_until_settled(&self) {
        let names = TopicNames::new(&self.env.kafka);
        let service = registrar::service_name(&self.registry);
        let validated = names.of(&Topic::Validated);
        self.env.wait_until_consumed(&service, &validated).await;
        for tier in 1..=self.tiers {
            let topic = names.retry_tier(&service, &validated, tier);
            self.env.wait_until_consumed(&service, &topic).await;
        }
    }

    /// How many registrations the mock made for `receipt`.
    pub async fn registrations(&self, receipt: ReceiptId) -> u64 {
        self.admin("/admin/stats").await["registrations"][receipt.to_string()]
            .as_u64()
            .unwrap_or(0)
    }

    /// The mock's calls for `receipt`: (arrival time, outcome).
    pub async fn calls(&self, receipt: ReceiptId) -> Vec<(DateTime<Utc>, String)> {
        let calls = self
            .admin(&format!("/admin/calls?receipt_ref={receipt}"))
            .await;
        calls
            .as_array()
            .expect("a list")
            .iter()
            .map(|c| {
                let at = c["at"].as_str().expect("at").parse().expect("time");
                (at, c["outcome"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }
}

pub fn tenant() -> TenantId {
    TenantId::parse("acme").expect("tenant")
}

/// A validated receipt event (a real normalized receipt from the sample generator).
pub fn validated(seed: u64) -> Validated {
    let t = ReceiptType::lookup("retail-receipt/v1").expect("type");
    let doc = receipts_validation::sample::generate(&t, true, seed);
    let receipt = receipts_validation::validate(&t, &doc, Utc::now()).expect("valid sample");
    Validated {
        meta: EventMeta::new(ReceiptId::new(), tenant()),
        receipt_type: "retail-receipt/v1".into(),
        receipt,
        extension: None,
    }
}

pub fn blacklisted(seed: u64) -> Validated {
    let mut event = validated(seed);
    event.receipt.seller.tax_id = BLACKLISTED.into();
    event
}

pub fn ladder(steps: &[u64], horizon_secs: u64) -> RetryPolicy {
    RetryPolicy {
        ladder: steps.iter().map(|ms| Duration::from_millis(*ms)).collect(),
        horizon: Duration::from_secs(horizon_secs),
        ..RetryPolicy::default()
    }
}
