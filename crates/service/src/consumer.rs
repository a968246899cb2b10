//! Connecting a consumer service and running its handlers.

use std::collections::BTreeSet;
use std::sync::Arc;

use receipts_avro::{EventCodec, SchemaRegistryConfig};
use receipts_domain::Topic;
use receipts_kafka::{
    ConsumerSpec, EventHandler, EventProducer, KafkaConfig, RetryPolicy, TopicNames, TopicSpec,
    ensure_topics, run_consumer,
};
use tokio_util::sync::CancellationToken;

use crate::Error;

/// A consumer service before it connects: who it is and which topics it uses.
#[derive(Debug, Clone)]
pub struct Service {
    name: String,
    kafka: KafkaConfig,
    schema_registry: SchemaRegistryConfig,
    consumes: Vec<Topic>,
    produces: Vec<Topic>,
}

/// One consumer loop of a service: its consumer group name, topics and retry tiers.
#[derive(Debug, Clone)]
pub struct Consumer {
    name: String,
    topics: Vec<Topic>,
    retry: RetryPolicy,
}

impl Consumer {
    /// A consumer group `name` reading `topics`, without retry tiers (a dead-letter replay tier
    /// only).
    pub fn new(name: impl Into<String>, topics: impl IntoIterator<Item = Topic>) -> Self {
        Self {
            name: name.into(),
            topics: topics.into_iter().collect(),
            retry: RetryPolicy::replay_only(),
        }
    }

    /// Retries on tiers per `retry`.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

impl Service {
    pub fn new(
        name: impl Into<String>,
        kafka: &KafkaConfig,
        schema_registry: &SchemaRegistryConfig,
    ) -> Self {
        Self {
            name: name.into(),
            kafka: kafka.clone(),
            schema_registry: schema_registry.clone(),
            consumes: Vec::new(),
            produces: Vec::new(),
        }
    }

    pub fn consumes(mut self, topics: impl IntoIterator<Item = Topic>) -> Self {
        self.consumes.extend(topics);
        self
    }

    pub fn produces(mut self, topics: impl IntoIterator<Item = Topic>) -> Self {
        self.produces.extend(topics);
        self
    }

    /// Creates the topics it uses, registers the schemas of those it produces, and starts its
    /// producer (idempotent, acks=all).
    pub async fn connect(self) -> Result<Connected, Error> {
        let names = TopicNames::new(&self.kafka);
        // A topic a service both consumes and produces is created once.
        let topics: BTreeSet<String> = self
            .consumes
            .iter()
            .chain(&self.produces)
            .map(|t| names.of(t))
            .collect();
        let specs: Vec<TopicSpec> = topics
            .into_iter()
            .map(|t| TopicSpec::new(&self.kafka, t))
            .collect();
        ensure_topics(&self.kafka, &specs).await?;
        let codec = Arc::new(EventCodec::new(&self.schema_registry)?);
        let producer = EventProducer::new(&self.kafka, &self.name, codec)?;
        producer.register_schemas(&self.produces).await?;
        tracing::info!(
            service = %self.name,
            consumes = ?self.consumes.iter().map(|t| names.of(t)).collect::<Vec<_>>(),
            produces = ?self.produces.iter().map(|t| names.of(t)).collect::<Vec<_>>(),
            "service connected"
        );
        Ok(Connected {
            kafka: self.kafka,
            names,
            producer,
        })
    }
}

/// A connected consumer service.
pub struct Connected {
    kafka: KafkaConfig,
    names: TopicNames,
    producer: EventProducer,
}

impl Connected {
    /// The service's producer (idempotent, acks=all), for its handlers.
    pub fn producer(&self) -> &EventProducer {
        &self.producer
    }

    /// Runs `handler` on `consumer`'s topics until `shutdown`, then drains and commits. Several
    /// consumers of one service run side by side by joining their `run`s.
    pub async fn run<H: EventHandler>(
        &self,
        consumer: Consumer,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let topics = consumer.topics.iter().map(|t| self.names.of(t)).collect();
        let spec = ConsumerSpec::new(consumer.name, topics).with_retry(consumer.retry);
        run_consumer(
            self.kafka.clone(),
            spec,
            self.producer.clone(),
            Arc::new(handler),
            shutdown,
        )
        .await?;
        Ok(())
    }
}
