//! An idempotent producer whose sends are futures of their acknowledgement, like rdkafka's
//! `FutureProducer`, without its idle cost. `FutureProducer`'s thread polls for delivery
//! reports in 100 ms windows, and rdkafka rounds the last sub-millisecond of each window down
//! to non-blocking polls, so every producer spins up to 1 ms in every 100 (measured: half the
//! CPU of an idle platform). This one polls in 1 s windows: the same spin, a hundredth as often.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use tokio::sync::oneshot;

/// Long enough that the polling thread's rounding spin costs nothing measurable; short enough
/// that a dropped producer's thread (and its connections) goes within a second.
const POLL_WINDOW: Duration = Duration::from_secs(1);

/// While librdkafka's queue is full, how long to wait before trying again.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(10);

/// Where an acknowledged message landed: (partition, offset).
type Acked = KafkaResult<(i32, i64)>;

/// Hands each delivery report to the future waiting for it.
pub(crate) struct DeliveryContext;

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<oneshot::Sender<Acked>>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiting: Self::DeliveryOpaque) {
        let acked = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.clone()),
        };
        // The sender may have stopped waiting (its task was cancelled): nothing to tell.
        let _ = waiting.send(acked);
    }
}

/// A producer polled by its own thread until the last clone is dropped.
pub(crate) struct DeliveryProducer {
    producer: Arc<BaseProducer<DeliveryContext>>,
    stop: Arc<AtomicBool>,
}

impl DeliveryProducer {
    pub(crate) fn new(config: &rdkafka::ClientConfig) -> KafkaResult<Self> {
        let producer: Arc<BaseProducer<DeliveryContext>> =
            Arc::new(config.create_with_context(DeliveryContext)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (polled, stopped) = (Arc::clone(&producer), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("kafka-deliveries".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    polled.poll(POLL_WINDOW);
                }
            })
            .map_err(|_| KafkaError::ClientCreation("cannot start the delivery thread".into()))?;
        Ok(Self { producer, stop })
    }

    pub(crate) fn client(&self) -> &BaseProducer<DeliveryContext> {
        &self.producer
    }

    /// Queues the message, waiting up to `queue_timeout` for room in librdkafka's queue, then
    /// waits for the broker's acknowledgement (bounded by `message.timeout.ms`).
    pub(crate) async fn send(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: OwnedHeaders,
        queue_timeout: Duration,
    ) -> Acked {
        let deadline = Instant::now() + queue_timeout;
        let (tx, rx) = oneshot::channel();
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(tx))
            .key(key)
            .payload(payload)
            .headers(headers);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    record = back;
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
        // A dropped report means the producer went away before delivering.
        rx.await.unwrap_or(Err(KafkaError::Canceled))
    }
}

impl Drop for DeliveryProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
