//! The idempotent producer (`enable.idempotence`, `acks=all`): `publish` returns only once the
//! broker has acknowledged the event, which is what makes a 202 (or a stored offset) safe.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use receipts_avro::EventCodec;
use receipts_domain::{ReceiptEvent, Topic};

use crate::{Error, KafkaConfig, Result, TopicNames, headers, trace};

/// Where an acknowledged message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// Publishes domain events (Avro, Confluent wire format) and raw messages.
#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer,
    codec: Arc<EventCodec>,
    topics: TopicNames,
    timeout: Duration,
}

impl EventProducer {
    pub fn new(config: &KafkaConfig, client_id: &str, codec: Arc<EventCodec>) -> Result<Self> {
        let producer: FutureProducer = config.producer_config(client_id).create()?;
        Ok(Self {
            producer,
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
        let traceparent = trace::outgoing_traceparent();
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
        let key = event.key();
        self.send(&topic, key.as_bytes(), &payload, headers).await
    }

    /// Publishes a raw message (used for dead-lettering) and waits for the acknowledgement.
    pub async fn send(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: OwnedHeaders,
    ) -> Result<Delivered> {
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        // The queue timeout bounds waiting for room in librdkafka's queue; message.timeout.ms
        // (the produce timeout) bounds the delivery itself.
        match self
            .producer
            .send(record, Timeout::After(self.timeout))
            .await
        {
            Ok(delivery) => Ok(Delivered {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((error, _)) => Err(Error::Kafka(error)),
        }
    }

    /// Whether the broker answers a metadata request within `timeout` (readiness).
    pub async fn check_connectivity(&self, timeout: Duration) -> bool {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).is_ok())
            .await
            .unwrap_or(false)
    }

    /// Waits for every queued message to be delivered (on shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::warn!(%error, "producer flush incomplete");
        }
    }
}
