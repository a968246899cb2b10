//! Dead-letter topics: list them, look inside, and replay their messages to the first retry tier
//! of the service that gave up on them (after whatever made them fail was fixed).
//!
//! Replays are tracked by the consumer group `<prefix>receipts-dlt-replay`: each dead letter is
//! replayed once, and a replay interrupted before it committed is simply repeated (the services'
//! handlers are idempotent).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::{Error, EventProducer, KafkaConfig, Result, headers};

const TIMEOUT: Duration = Duration::from_secs(10);

/// One dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterTopic {
    pub name: String,
    /// The service that dead-lettered the messages.
    pub service: String,
    /// The topic they were read from (without the deployment prefix).
    pub source: String,
    /// Messages ever dead-lettered (still retained).
    pub messages: i64,
    /// Messages not replayed yet.
    pub pending: i64,
}

/// One dead-lettered message, as the headers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub event_id: Option<String>,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub original: Option<String>,
    pub attempt: Option<String>,
    pub failed_at: Option<DateTime<Utc>>,
    pub payload_bytes: usize,
    pub replayed: bool,
}

/// Where a dead-letter topic's messages go back to.
fn parse(prefix: &str, name: &str) -> Option<(String, String)> {
    let inner = name.strip_prefix(prefix)?.strip_suffix(".dlt")?;
    let (service, source) = inner.split_once('.')?;
    Some((service.to_owned(), source.to_owned()))
}

fn replay_group(config: &KafkaConfig) -> String {
    format!("{}receipts-dlt-replay", config.topic_prefix)
}

fn consumer(config: &KafkaConfig) -> Result<BaseConsumer> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("group.id", replay_group(config))
        .set("enable.auto.commit", "false")
        .set("client.id", "receipts-dlt");
    config.apply_overrides(&mut client);
    Ok(client.create()?)
}

/// Partition → (low, high, next offset to replay).
fn positions(consumer: &BaseConsumer, topic: &str) -> Result<Vec<(i32, i64, i64, i64)>> {
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut list = TopicPartitionList::new();
    for &p in &partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(list, TIMEOUT)?;
    let mut out = Vec::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, TIMEOUT)?;
        let next = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o.max(low),
            _ => low,
        };
        out.push((p, low, high, next));
    }
    Ok(out)
}

/// Every dead-letter topic of this deployment, with its counts.
pub async fn list(config: &KafkaConfig) -> Result<Vec<DeadLetterTopic>> {
    let config = config.clone();
    blocking(move || {
        let consumer = consumer(&config)?;
        let metadata = consumer.fetch_metadata(None, TIMEOUT)?;
        let mut topics = Vec::new();
        for topic in metadata.topics() {
            let Some((service, source)) = parse(&config.topic_prefix, topic.name()) else {
                continue;
            };
            let (mut messages, mut pending) = (0, 0);
            for (_, low, high, next) in positions(&consumer, topic.name())? {
                messages += high - low;
                pending += high - next;
            }
            topics.push(DeadLetterTopic {
                name: topic.name().to_owned(),
                service,
                source,
                messages,
                pending,
            });
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    })
    .await
}

/// Up to `limit` messages of a dead-letter topic, oldest first.
pub async fn inspect(config: &KafkaConfig, topic: &str, limit: usize) -> Result<Vec<DeadLetter>> {
    let (config, topic) = (config.clone(), topic.to_owned());
    blocking(move || {
        let consumer = consumer(&config)?;
        let positions = positions(&consumer, &topic)?;
        let replayed_below: HashMap<i32, i64> =
            positions.iter().map(|&(p, _, _, next)| (p, next)).collect();
        let messages = read(
            &consumer,
            &topic,
            positions.iter().map(|&(p, low, high, _)| (p, low, high)),
            limit,
        )?;
        Ok(messages
            .iter()
            .map(|m| {
                describe(
                    m,
                    replayed_below
                        .get(&m.partition())
                        .is_some_and(|&next| m.offset() < next),
                )
            })
            .collect())
    })
    .await
}

/// Copies the not-yet-replayed messages of `topic` (at most `limit`) to the first retry tier of
/// the service that dead-lettered them, as fresh first attempts, then records them as replayed.
/// Returns how many were replayed.
pub async fn replay(
    config: &KafkaConfig,
    producer: &EventProducer,
    topic: &str,
    limit: usize,
) -> Result<usize> {
    let (service, source) = parse(&config.topic_prefix, topic).ok_or_else(|| {
        Error::Thread(format!(
            "{topic} is not a dead-letter topic (<service>.<topic>.dlt)"
        ))
    })?;
    let target =
        producer
            .topics()
            .retry_tier(&service, &format!("{}{source}", config.topic_prefix), 1);
    let (read_config, read_topic) = (config.clone(), topic.to_owned());
    let (messages, next) = blocking(move || {
        let consumer = consumer(&read_config)?;
        let positions = positions(&consumer, &read_topic)?;
        let messages = read(
            &consumer,
            &read_topic,
            positions.iter().map(|&(p, _, high, next)| (p, next, high)),
            limit,
        )?;
        let mut next: HashMap<i32, i64> = HashMap::new();
        for m in &messages {
            let n = next.entry(m.partition()).or_default();
            *n = (*n).max(m.offset() + 1);
        }
        Ok((messages, next))
    })
    .await?;

    let now = Utc::now().timestamp_millis().to_string();
    for message in &messages {
        let mut out = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for h in original
                .iter()
                .filter(|h| !headers::RETRY_BOOKKEEPING.contains(&h.key) || is_origin(h.key))
            {
                out = out.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let replayed_from = format!(
            "{}:{}:{}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        let out = out
            .insert(Header {
                key: headers::ATTEMPT,
                value: Some(b"1".as_slice()),
            })
            .insert(Header {
                key: headers::FIRST_ATTEMPT_AT,
                value: Some(now.as_bytes()),
            })
            .insert(Header {
                key: headers::DUE_AT,
                value: Some(now.as_bytes()),
            })
            .insert(Header {
                key: headers::REPLAYED_FROM,
                value: Some(replayed_from.as_bytes()),
            });
        producer
            .send(
                &target,
                message.key().unwrap_or_default(),
                message.payload().unwrap_or_default(),
                out,
            )
            .await?;
    }

    let (commit_config, commit_topic) = (config.clone(), topic.to_owned());
    blocking(move || {
        if next.is_empty() {
            return Ok(());
        }
        let consumer = consumer(&commit_config)?;
        let mut list = TopicPartitionList::new();
        for (partition, offset) in next {
            list.add_partition_offset(&commit_topic, partition, Offset::Offset(offset))?;
        }
        consumer.commit(&list, CommitMode::Sync)?;
        Ok(())
    })
    .await?;
    tracing::info!(
        topic,
        target,
        replayed = messages.len(),
        "dead letters replayed"
    );
    Ok(messages.len())
}

fn is_origin(key: &str) -> bool {
    [
        headers::ORIGINAL_TOPIC,
        headers::ORIGINAL_PARTITION,
        headers::ORIGINAL_OFFSET,
    ]
    .contains(&key)
}

/// Reads each partition's range `[from, to)`, at most `limit` messages in all.
fn read(
    consumer: &BaseConsumer,
    topic: &str,
    ranges: impl Iterator<Item = (i32, i64, i64)>,
    limit: usize,
) -> Result<Vec<OwnedMessage>> {
    let ranges: Vec<(i32, i64, i64)> = ranges.filter(|&(_, from, to)| from < to).collect();
    let mut wanted: i64 = ranges.iter().map(|&(_, from, to)| to - from).sum();
    if ranges.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let mut list = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for &(p, from, to) in &ranges {
        list.add_partition_offset(topic, p, Offset::Offset(from))?;
        ends.insert(p, to);
    }
    consumer.assign(&list)?;
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while wanted > 0 && messages.len() < limit && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m))
                if ends
                    .get(&m.partition())
                    .is_some_and(|&end| m.offset() < end) =>
            {
                messages.push(m.detach());
                wanted -= 1;
            }
            Some(Err(error)) => return Err(error.into()),
            _ => {}
        }
    }
    messages.sort_by_key(|m| (m.partition(), m.offset()));
    Ok(messages)
}

fn describe(message: &OwnedMessage, replayed: bool) -> DeadLetter {
    let header = |name: &str| -> Option<String> {
        message
            .headers()?
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let original = header(headers::ORIGINAL_TOPIC).map(|topic| {
        let partition = header(headers::ORIGINAL_PARTITION).unwrap_or_default();
        let offset = header(headers::ORIGINAL_OFFSET).unwrap_or_default();
        format!("{topic}:{partition}:{offset}")
    });
    DeadLetter {
        partition: message.partition(),
        offset: message.offset(),
        key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
        event_id: header(headers::EVENT_ID),
        error_kind: header(headers::ERROR_KIND),
        error_message: header(headers::ERROR_MESSAGE),
        original,
        attempt: header(headers::ATTEMPT),
        failed_at: header(headers::FAILED_AT)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis),
        payload_bytes: message.payload().map_or(0, <[u8]>::len),
        replayed,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Thread(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse("", "tax-registrar.receipts.validated.dlt"),
            Some(("tax-registrar".into(), "receipts.validated".into()))
        );
        assert_eq!(
            parse("t1.", "t1.validator.receipts.submitted.dlt"),
            Some(("validator".into(), "receipts.submitted".into()))
        );
        assert_eq!(parse("", "receipts.validated"), None);
        assert_eq!(parse("t1.", "t2.validator.receipts.submitted.dlt"), None);
    }
}
