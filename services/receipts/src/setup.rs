//! `receipts setup`: everything a deployment needs before its services start, done once by an
//! init step (a Helm pre-install/pre-upgrade hook, a compose init service), so the services need
//! no right to create topics or change schemas: every topic (the event topics, and each
//! consumer's retry tiers and dead-letter topics), every event schema registered, the store's
//! schema migrated. Each step is idempotent: running it again changes nothing.

use std::collections::BTreeSet;

use receipts_avro::EventCodec;
use receipts_domain::Topic;
use receipts_kafka::{ConsumerSpec, RetryPolicy, TopicNames, TopicSpec, ensure_topics, own_topics};
use receipts_store::Stores;

use crate::PlatformConfig;

/// What setup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    /// Every topic that exists now (created or already there).
    pub topics: Vec<String>,
    /// The subjects whose schema is registered.
    pub schemas: usize,
    pub store_version: u32,
}

/// The event topics: what services produce and consume.
pub fn event_topics(config: &PlatformConfig) -> Vec<Topic> {
    let registries: Vec<_> = config.registries.iter().map(|r| r.name.clone()).collect();
    let mut topics = Topic::receipt_topics(&registries);
    topics.extend([
        Topic::StatusChanged,
        Topic::WebhookDeliveries,
        Topic::WebhookFailed,
    ]);
    topics
}

/// Every consumer of the platform, as its service runs it.
pub fn consumers(config: &PlatformConfig) -> Vec<ConsumerSpec> {
    let names = TopicNames::new(&config.kafka);
    let spec = |service: String, topics: &[Topic], retry: RetryPolicy| {
        ConsumerSpec::new(service, topics.iter().map(|t| names.of(t)).collect()).with_retry(retry)
    };
    let registries: Vec<_> = config.registries.iter().map(|r| r.name.clone()).collect();
    let mut consumers = vec![
        spec(
            validator::SERVICE.into(),
            &[Topic::Submitted],
            RetryPolicy::replay_only(),
        ),
        spec(
            status_projector::SERVICE.into(),
            &Topic::receipt_topics(&config.status.registries()),
            RetryPolicy::replay_only(),
        ),
        spec(
            webhook_dispatcher::FANOUT.into(),
            &[Topic::StatusChanged],
            RetryPolicy::replay_only(),
        ),
        spec(
            webhook_dispatcher::SERVICE.into(),
            &[Topic::WebhookDeliveries],
            config.webhooks.retry.clone(),
        ),
    ];
    consumers.extend(registries.iter().map(|name| {
        spec(
            registrar::service_name(name),
            &[Topic::Validated],
            config.retry.clone(),
        )
    }));
    consumers
}

/// Creates every topic, registers every schema and migrates the store.
pub async fn run(config: &PlatformConfig) -> anyhow::Result<SetupReport> {
    let names = TopicNames::new(&config.kafka);
    let events = event_topics(config);
    let topics: BTreeSet<String> = events
        .iter()
        .map(|t| names.of(t))
        .chain(consumers(config).iter().flat_map(|c| own_topics(&names, c)))
        .collect();
    let specs: Vec<TopicSpec> = topics
        .iter()
        .map(|t| TopicSpec::new(&config.kafka, t.clone()))
        .collect();
    ensure_topics(&config.kafka, &specs).await?;
    tracing::info!(topics = topics.len(), "topics ready");

    let codec = EventCodec::new(&config.schema_registry)?;
    for topic in &events {
        let id = codec.register(&names.of(topic), topic.kind()).await?;
        tracing::info!(%topic, schema_id = id, "schema registered");
    }

    let store_version = Stores::migrate(&config.store).await?;
    tracing::info!(store_version, "store migrated");
    Ok(SetupReport {
        topics: topics.into_iter().collect(),
        schemas: events.len(),
        store_version,
    })
}
