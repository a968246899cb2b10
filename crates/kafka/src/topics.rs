//! Topic names and creation. Kafka-API brokers used here do not auto-create topics, so every
//! service creates the topics it touches at startup (idempotently).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use receipts_domain::Topic;

use crate::{Error, KafkaConfig, Result};

/// Topic names for one deployment (prefix included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicNames {
    prefix: String,
}

impl TopicNames {
    pub fn new(config: &KafkaConfig) -> Self {
        Self {
            prefix: config.topic_prefix.clone(),
        }
    }

    /// A topic's full name, e.g. `receipts.submitted`.
    pub fn of(&self, topic: &Topic) -> String {
        format!("{}{}", self.prefix, topic.name())
    }

    /// Retry tier `tier` (1-based) of `service` for messages from `topic`:
    /// `<service>.<topic>.retry.<tier>` (ARCHITECTURE.md section 3).
    pub fn retry_tier(&self, service: &str, topic: &str, tier: usize) -> String {
        let base = topic.strip_prefix(&self.prefix).unwrap_or(topic);
        format!("{}{service}.{base}.retry.{tier}", self.prefix)
    }

    /// The dead-letter topic of `service` for messages from `topic`:
    /// `<service>.<topic>.dlt` (ARCHITECTURE.md section 3).
    pub fn dead_letter(&self, service: &str, topic: &str) -> String {
        let base = topic.strip_prefix(&self.prefix).unwrap_or(topic);
        format!("{}{service}.{base}.dlt", self.prefix)
    }
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
}

impl TopicSpec {
    pub fn new(config: &KafkaConfig, name: String) -> Self {
        Self {
            name,
            partitions: config.partitions,
            replication_factor: config.replication_factor,
        }
    }
}

/// The names of the topics the broker has (empty if it cannot tell right now).
async fn existing_topics(config: rdkafka::ClientConfig) -> std::collections::HashSet<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    tokio::task::spawn_blocking(move || {
        let Ok(client) = config.create::<BaseConsumer>() else {
            return Default::default();
        };
        client
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|m| m.topics().iter().map(|t| t.name().to_owned()).collect())
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default()
}

/// Creates every topic in `specs` that does not exist yet.
pub async fn ensure_topics(config: &KafkaConfig, specs: &[TopicSpec]) -> Result<()> {
    if specs.is_empty() {
        return Ok(());
    }
    let mut client_config = config.client_config("receipts-admin");
    config.apply_overrides(&mut client_config);
    let admin: AdminClient<DefaultClientContext> = client_config.create()?;
    // Only create what is missing: asking the broker to create an existing topic is harmless
    // but makes some brokers log an error.
    let existing = existing_topics(client_config.clone()).await;
    let missing: Vec<&TopicSpec> = specs
        .iter()
        .filter(|s| !existing.contains(&s.name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|s| {
            NewTopic::new(
                &s.name,
                s.partitions,
                TopicReplication::Fixed(s.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(topic) => tracing::info!(topic, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::CreateTopic {
                    topic,
                    detail: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_architecture() {
        let plain = TopicNames::new(&KafkaConfig::default());
        assert_eq!(plain.of(&Topic::Validated), "receipts.validated");
        assert_eq!(
            plain.retry_tier("tax-registrar", "receipts.validated", 2),
            "tax-registrar.receipts.validated.retry.2"
        );
        assert_eq!(
            plain.dead_letter("status-projector", "receipts.submitted"),
            "status-projector.receipts.submitted.dlt"
        );
        let prefixed = TopicNames::new(&KafkaConfig {
            topic_prefix: "t1.".into(),
            ..KafkaConfig::default()
        });
        assert_eq!(prefixed.of(&Topic::Submitted), "t1.receipts.submitted");
        assert_eq!(
            prefixed.retry_tier("svc", "t1.receipts.submitted", 1),
            "t1.svc.receipts.submitted.retry.1"
        );
        assert_eq!(
            prefixed.dead_letter("validator", "t1.receipts.submitted"),
            "t1.validator.receipts.submitted.dlt"
        );
    }
}
