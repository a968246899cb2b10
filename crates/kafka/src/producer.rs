//! The idempotent producer (`enable.idempotence`, `acks=all`): `publish` returns only once the
//! broker has acknowledged the event, which is what makes a 202 (or a stored offset) safe.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::Producer;
use receipts_avro::EventCodec;
use receipts_domain::{ReceiptEvent, Topic};

use receipts_telemetry::metrics::{PRODUCER_MESSAGES, PRODUCER_SEND_DURATION};
use receipts_telemetry::trace;
use tracing::Instrument;

use crate::delivery::DeliveryProducer;
use crate::{Error, KafkaConfig, Result, TopicNames, headers};

/// Where an acknowledged message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// Publishes domain events (Avro, Confluent wire format) and raw messages.
#[derive(Clone)]
pub struct EventProducer {
    producer: Arc<DeliveryProducer>,
    /// The producing service (its client id), for metrics.
    service: Arc<str>,
    codec: Arc<EventCodec>,
    topics: TopicNames,
    timeout: Duration,
}

impl EventProducer {
    pub fn new(config: &KafkaConfig, client_id: &str, codec: Arc<EventCodec>) -> Result<Self> {
        let producer = DeliveryProducer::new(&config.producer_config(client_id))?;
        Ok(Self {
            producer: Arc::new(producer),
            service: client_id.into(),
            codec,
            topics: TopicNames::new(config),
            timeout: config.produce_timeout,
        })
    }

    pub fn topics(&self) -> &TopicNames {
        &self.topics
    }

    pub fn codec(&self) -> &Arc<EventCodec> {
        &self.codec
    }

    /// Registers the schemas of the events of `topics`, so a registry problem shows at
    /// startup rather than on the first event.
    pub async fn register_schemas(&self, topics: &[Topic]) -> Result<()> {
        for topic in topics {
            let id = self
                .codec
                .register(&self.topics.of(topic), topic.kind())
                .await?;
            tracing::debug!(%topic, schema_id = id, "schema registered");
        }
        Ok(())
    }

    /// Publishes `event` to its topic, keyed by receipt id, and waits for the acknowledgement.
    #[tracing::instrument(name = "publish", skip_all, fields(
        receipt_id = %event.meta().receipt_id,
        event_id = %event.meta().event_id,
        kind = %event.kind(),
    ))]
    pub async fn publish(&self, event: &ReceiptEvent) -> Result<Delivered> {
        let topic = self.topics.of(&event.topic());
        let payload = self.codec.encode(&topic, event).await?;
        let meta = event.meta();
        let event_id = meta.event_id.to_string();
        let key = event.key();
        let span = send_span(&topic, &key, &event_id);
        // The event carries the send span's context: its consumers' spans are children of it.
        let traceparent = span.in_scope(trace::outgoing_traceparent);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: headers::EVENT_ID,
                value: Some(event_id.as_bytes()),
            })
            .insert(Header {
                key: headers::EVENT_TYPE,
                value: Some(event.kind().as_str().as_bytes()),
            })
            .insert(Header {
                key: headers::TRACEPARENT,
                value: Some(traceparent.as_bytes()),
            });
        let delivered = self.send(&topic, key.as_bytes(), &payload, headers);
        let delivered = delivered.instrument(span.clone()).await;
        if let Ok(d) = &delivered {
            span.record("messaging.destination.partition.id", d.partition);
            span.record("messaging.kafka.offset", d.offset);
        }
        delivered
    }

    /// Publishes a raw message (used for dead-lettering) and waits for the acknowledgement.
    pub async fn send(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: OwnedHeaders,
    ) -> Result<Delivered> {
        let started = std::time::Instant::now();
        // The queue timeout bounds waiting for room in librdkafka's queue; message.timeout.ms
        // (the produce timeout) bounds the delivery itself.
        let sent = self
            .producer
            .send(topic, key, payload, headers, self.timeout)
            .await;
        let outcome = if sent.is_ok() { "acked" } else { "failed" };
        let (service, topic) = (self.service.to_string(), topic.to_owned());
        metrics::histogram!(PRODUCER_SEND_DURATION, "service" => service.clone(), "topic" => topic.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!(PRODUCER_MESSAGES, "service" => service, "topic" => topic, "outcome" => outcome)
            .increment(1);
        match sent {
            Ok((partition, offset)) => Ok(Delivered { partition, offset }),
            Err(error) => Err(Error::Kafka(error)),
        }
    }

    /// Whether the broker answers a metadata request within `timeout` (readiness).
    pub async fn check_connectivity(&self, timeout: Duration) -> bool {
        let producer = Arc::clone(&self.producer);
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .client()
                .fetch_metadata(None, timeout)
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }

    /// Waits for every queued message to be delivered (on shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.client().flush(timeout) {
            tracing::warn!(%error, "producer flush incomplete");
        }
    }
}

/// The producer span of sending one event, named and described per the OpenTelemetry messaging
/// conventions.
fn send_span(topic: &str, key: &str, event_id: &str) -> tracing::Span {
    tracing::info_span!(
        "send",
        otel.name = %format!("send {topic}"),
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.operation.type = "send",
        messaging.operation.name = "send",
        messaging.destination.name = %topic,
        messaging.kafka.message.key = %key,
        messaging.message.id = %event_id,
        messaging.destination.partition.id = tracing::field::Empty,
        messaging.kafka.offset = tracing::field::Empty,
    )
}
