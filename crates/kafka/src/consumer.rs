//! The one consumer loop every service uses.
//!
//! - librdkafka is polled on a dedicated thread; each assigned partition gets a worker task, so
//!   partitions progress independently. A worker handles up to `max_in_flight` messages at once,
//!   but those with the same key (one receipt) strictly one after another, in offset order.
//! - Offsets: auto-commit is on, auto offset *store* is off. An offset is stored only once every
//!   message up to it was handled (`Ok`: side effects and produces acknowledged) or dead-lettered
//!   (that produce acknowledged), so a crash at any point means redelivery, never loss.
//! - Transient failures are retried in place with capped exponential backoff: the partition
//!   waits, others go on. Poison (undecodable or refused by the handler) goes to
//!   `<service>.<topic>.dlt` with headers saying where it came from and why.
//! - Cooperative-sticky rebalancing; on revocation and on shutdown the affected workers finish the
//!   message in hand (up to `drain_timeout`), their offsets are stored and committed, and only then
//!   is the partition released.
//! - A full worker queue pauses its partition instead of blocking the poll thread.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, mpsc as std_mpsc};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, TopicPartitionList};
use receipts_avro::DecodeError;
use receipts_domain::ReceiptEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::window::Window;
use crate::{Error, EventProducer, KafkaConfig, Result, TopicSpec, ensure_topics, headers, trace};

/// What a consumer reads and who it is.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The service name: names the consumer group and the dead-letter topics.
    pub service: String,
    pub topics: Vec<String>,
    /// Messages buffered per partition before the partition is paused.
    pub queue_depth: usize,
    /// Messages of one partition handled at once; those with the same key (one receipt) still
    /// strictly in order.
    pub max_in_flight: usize,
}

impl ConsumerSpec {
    pub fn new(service: impl Into<String>, topics: Vec<String>) -> Self {
        Self {
            service: service.into(),
            topics,
            queue_depth: 256,
            max_in_flight: 32,
        }
    }
}

/// Where the message being handled came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContext {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub traceparent: Option<String>,
}

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Infrastructure trouble (broker, store, registry): retry the same message later.
    #[error("transient: {0}")]
    Transient(String),
    /// The message can never be handled: dead-letter it and move on.
    #[error("poison: {0}")]
    Poison(String),
}

/// A service's business logic for one event. Must be idempotent: after a crash the same event
/// can be delivered again.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(
        &self,
        event: ReceiptEvent,
        context: &MessageContext,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

type Partition = (String, i32);

/// Consumes `spec.topics` with `handler` until `shutdown` is cancelled (or this future is
/// dropped), then drains and commits.
pub async fn run_consumer<H: EventHandler>(
    config: KafkaConfig,
    spec: ConsumerSpec,
    producer: EventProducer,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<()> {
    let dead_letter_topics: Vec<TopicSpec> = spec
        .topics
        .iter()
        .map(|t| TopicSpec::new(&config, producer.topics().dead_letter(&spec.service, t)))
        .collect();
    ensure_topics(&config, &dead_letter_topics).await?;

    let (done_tx, done_rx) = std_mpsc::channel();
    let shared = Arc::new(Shared {
        runtime: tokio::runtime::Handle::current(),
        partitions: Mutex::new(Partitions::default()),
        done_tx,
        done_rx: Mutex::new(done_rx),
        drain_timeout: config.drain_timeout,
        queue_depth: spec.queue_depth.max(1),
        max_in_flight: spec.max_in_flight.max(1),
        env: Arc::new(WorkerEnv {
            handler,
            producer,
            service: spec.service.clone(),
        }),
    });
    let group = config.group_id(&spec.service);
    let consumer: BaseConsumer<LoopContext<H>> = config
        .consumer_config(&spec.service, &group)
        .create_with_context(LoopContext {
            shared: Arc::clone(&shared),
        })?;
    let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(service = %spec.service, group, topics = ?spec.topics, "consumer started");

    // Dropping this future (an aborted task) stops the thread gracefully too.
    let stop = shutdown.child_token();
    let _stop_on_drop = stop.clone().drop_guard();
    let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("{}-poll", spec.service))
        .spawn(move || {
            poll_loop(&consumer, &shared, &stop);
            // Every Kafka client (consumer, and the producer inside `shared`) is gone before
            // the caller hears that the consumer stopped, so it may stop the broker next.
            drop(consumer);
            drop(shared);
            let _ = exit_tx.send(());
        })
        .map_err(|e| Error::Thread(e.to_string()))?;
    exit_rx
        .await
        .map_err(|_| Error::Thread("consumer poll thread panicked".into()))?;
    tracing::info!(service = %spec.service, "consumer stopped");
    Ok(())
}

struct WorkerEnv<H> {
    handler: Arc<H>,
    producer: EventProducer,
    service: String,
}

struct Worker {
    tx: mpsc::Sender<OwnedMessage>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Partitions {
    workers: HashMap<Partition, Worker>,
    /// Messages polled while their worker's queue was full; their partition is paused.
    overflow: HashMap<Partition, VecDeque<OwnedMessage>>,
}

struct Shared<H> {
    runtime: tokio::runtime::Handle,
    partitions: Mutex<Partitions>,
    /// Workers report finished offsets here; only the poll thread touches the consumer.
    done_tx: std_mpsc::Sender<(Partition, i64)>,
    done_rx: Mutex<std_mpsc::Receiver<(Partition, i64)>>,
    drain_timeout: Duration,
    queue_depth: usize,
    max_in_flight: usize,
    env: Arc<WorkerEnv<H>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going with it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<H: EventHandler> Shared<H> {
    fn spawn_worker(&self, partition: Partition) -> Worker {
        let (tx, rx) = mpsc::channel(self.queue_depth);
        let cancel = CancellationToken::new();
        let task = self.runtime.spawn(run_worker(
            Arc::clone(&self.env),
            partition,
            rx,
            cancel.clone(),
            self.done_tx.clone(),
            self.max_in_flight,
        ));
        Worker { tx, cancel, task }
    }

    /// Hands a polled message to its partition's worker, or parks it and pauses the partition.
    fn dispatch<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, message: OwnedMessage) {
        let partition = (message.topic().to_owned(), message.partition());
        let mut guard = lock(&self.partitions);
        let state = &mut *guard;
        if let Some(queue) = state.overflow.get_mut(&partition) {
            queue.push_back(message);
            return;
        }
        let worker = state
            .workers
            .entry(partition.clone())
            .or_insert_with(|| self.spawn_worker(partition.clone()));
        match worker.tx.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(message)) => {
                state
                    .overflow
                    .entry(partition.clone())
                    .or_default()
                    .push_back(message);
                set_paused(consumer, &partition, true);
            }
            Err(mpsc::error::TrySendError::Closed(message)) => {
                // The worker is gone (it panicked); a fresh one takes over from this message.
                tracing::error!(topic = %partition.0, partition = partition.1, "partition worker died; restarting it");
                let fresh = self.spawn_worker(partition.clone());
                let retry = fresh.tx.try_send(message);
                state.workers.insert(partition.clone(), fresh);
                if let Err(
                    mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m),
                ) = retry
                {
                    state
                        .overflow
                        .entry(partition.clone())
                        .or_default()
                        .push_back(m);
                    set_paused(consumer, &partition, true);
                }
            }
        }
    }

    /// Moves parked messages to their workers as room frees up; resumes drained partitions.
    fn flush_overflow<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let mut guard = lock(&self.partitions);
        let state = &mut *guard;
        let mut resumed = Vec::new();
        for (partition, queue) in &mut state.overflow {
            let Some(worker) = state.workers.get(partition) else {
                continue;
            };
            while let Some(message) = queue.pop_front() {
                if let Err(e) = worker.tx.try_send(message) {
                    let (mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m)) =
                        e;
                    queue.push_front(m);
                    break;
                }
            }
            if queue.is_empty() {
                resumed.push(partition.clone());
            }
        }
        for partition in resumed {
            state.overflow.remove(&partition);
            set_paused(consumer, &partition, false);
        }
    }

    /// Stores the offsets of messages whose handling finished.
    fn store_finished<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let done = lock(&self.done_rx);
        while let Ok(((topic, partition), offset)) = done.try_recv() {
            // librdkafka stores `offset + 1` itself (the next message to read).
            if let Err(error) = consumer.store_offset(&topic, partition, offset) {
                // The partition was revoked meanwhile; its new owner will see the message again.
                tracing::debug!(%error, topic, partition, offset, "offset not stored");
            }
        }
    }

    /// Stops the workers of `partitions` after the message in hand, waiting up to the drain
    /// timeout. Must run on the poll thread (outside the runtime).
    fn drain(&self, partitions: &[Partition]) {
        let mut tasks = Vec::new();
        {
            let mut state = lock(&self.partitions);
            for partition in partitions {
                state.overflow.remove(partition);
                if let Some(worker) = state.workers.remove(partition) {
                    worker.cancel.cancel();
                    tasks.push(worker.task);
                }
            }
        }
        if tasks.is_empty() {
            return;
        }
        let count = tasks.len();
        let timeout = self.drain_timeout;
        // The timer must be created inside the runtime, hence the async block.
        let drained = self.runtime.block_on(async move {
            tokio::time::timeout(timeout, futures::future::join_all(tasks)).await
        });
        if drained.is_err() {
            tracing::warn!(
                partitions = count,
                "drain timed out; unfinished messages will be redelivered"
            );
        }
    }

    fn all_partitions(&self) -> Vec<Partition> {
        lock(&self.partitions).workers.keys().cloned().collect()
    }
}

fn set_paused<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    (topic, partition): &Partition,
    paused: bool,
) {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, *partition);
    let result = if paused {
        consumer.pause(&list)
    } else {
        consumer.resume(&list)
    };
    match result {
        Ok(()) => tracing::debug!(topic, partition, paused, "partition flow control"),
        Err(error) => tracing::warn!(%error, topic, partition, paused, "pause/resume failed"),
    }
}

fn commit<C: ConsumerContext>(consumer: &BaseConsumer<C>) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => {
            tracing::warn!(%error, "offset commit failed; uncommitted messages will be redelivered")
        }
    }
}

fn poll_loop<H: EventHandler>(
    consumer: &BaseConsumer<LoopContext<H>>,
    shared: &Shared<H>,
    stop: &CancellationToken,
) {
    while !stop.is_cancelled() {
        shared.store_finished(consumer);
        shared.flush_overflow(consumer);
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => shared.dispatch(consumer, message.detach()),
            Some(Err(error)) => tracing::warn!(%error, "consumer error"),
        }
    }
    shared.drain(&shared.all_partitions());
    shared.store_finished(consumer);
    commit(consumer);
}

struct LoopContext<H> {
    shared: Arc<Shared<H>>,
}

impl<H: EventHandler> ClientContext for LoopContext<H> {}

impl<H: EventHandler> ConsumerContext for LoopContext<H> {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let partitions: Vec<Partition> = list
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                tracing::info!(?partitions, "partitions revoked; draining");
                self.shared.drain(&partitions);
                self.shared.store_finished(consumer);
                if !consumer.assignment_lost() {
                    commit(consumer);
                }
            }
            Rebalance::Assign(list) => {
                let partitions: Vec<Partition> = list
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                tracing::info!(?partitions, "partitions assigned");
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
    }
}

async fn run_worker<H: EventHandler>(
    env: Arc<WorkerEnv<H>>,
    partition: Partition,
    mut rx: mpsc::Receiver<OwnedMessage>,
    cancel: CancellationToken,
    done: std_mpsc::Sender<(Partition, i64)>,
    max_in_flight: usize,
) {
    let mut window = Window::default();
    let mut running = FuturesUnordered::new();
    let start = |message: OwnedMessage| {
        let (env, cancel) = (&env, &cancel);
        async move {
            let (offset, key) = (message.offset(), message.key().map(<[u8]>::to_vec));
            (offset, key, process(env, message, cancel).await)
        }
    };
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled(), if running.is_empty() => break,
            Some((offset, key, finished)) = running.next() => {
                let (offset, key, finished): (i64, Option<Vec<u8>>, bool) = (offset, key, finished);
                if !finished {
                    // Cancelled mid-retry: let the other running messages finish, start nothing.
                    continue;
                }
                let (next, done_up_to) = window.finish(offset, key.as_deref());
                if let Some(next) = next.filter(|_| !cancel.is_cancelled()) {
                    running.push(start(next));
                }
                if let Some(offset) = done_up_to
                    && done.send((partition.clone(), offset)).is_err()
                {
                    break;
                }
            }
            message = rx.recv(), if window.len() < max_in_flight && !cancel.is_cancelled() => {
                let Some(message) = message else { break };
                let (offset, key) = (message.offset(), message.key().map(<[u8]>::to_vec));
                if let Some(message) = window.admit(offset, key.as_deref(), message) {
                    running.push(start(message));
                }
            }
        }
    }
}

enum Step {
    Done,
    Retry(String),
}

/// Handles one message until it is done (true) or the worker is cancelled mid-retry (false).
async fn process<H: EventHandler>(
    env: &WorkerEnv<H>,
    message: OwnedMessage,
    cancel: &CancellationToken,
) -> bool {
    let context = MessageContext {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        traceparent: header(&message, headers::TRACEPARENT),
    };
    let event_id = header(&message, headers::EVENT_ID).unwrap_or_default();
    let span = tracing::info_span!(
        "consume",
        service = %env.service,
        topic = %context.topic,
        partition = context.partition,
        offset = context.offset,
        event_id = %event_id,
    );
    trace::set_parent(&span, context.traceparent.as_deref());
    let mut backoff = Backoff::default();
    loop {
        let attempt = trace::with_inbound(
            context.traceparent.clone(),
            attempt(env, &message, &context),
        );
        match attempt.instrument(span.clone()).await {
            Step::Done => return true,
            Step::Retry(reason) => {
                let delay = backoff.next_delay();
                tracing::warn!(parent: &span, reason, retry_in = ?delay, "transient failure; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return false,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

async fn attempt<H: EventHandler>(
    env: &WorkerEnv<H>,
    message: &OwnedMessage,
    context: &MessageContext,
) -> Step {
    let Some(payload) = message.payload() else {
        return dead_letter(env, message, "undecodable", "message has no payload").await;
    };
    match env.producer.codec().decode(payload).await {
        Err(DecodeError::Unavailable(reason)) => Step::Retry(reason),
        Err(DecodeError::Malformed(reason)) => {
            dead_letter(env, message, "undecodable", &reason).await
        }
        Ok(event) => match env.handler.handle(event, context).await {
            Ok(()) => Step::Done,
            Err(HandlerError::Transient(reason)) => Step::Retry(reason),
            Err(HandlerError::Poison(reason)) => dead_letter(env, message, "poison", &reason).await,
        },
    }
}

/// Copies `message` to the service's dead-letter topic for its source topic.
async fn dead_letter<H>(
    env: &WorkerEnv<H>,
    message: &OwnedMessage,
    kind: &str,
    reason: &str,
) -> Step {
    let topic = env
        .producer
        .topics()
        .dead_letter(&env.service, message.topic());
    tracing::error!(dead_letter_topic = %topic, error_kind = kind, reason, "dead-lettering message");
    let mut reason = reason.to_owned();
    if reason.len() > headers::MAX_ERROR_MESSAGE {
        let mut cut = headers::MAX_ERROR_MESSAGE;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
    let failed_at = chrono::Utc::now().timestamp_millis().to_string();
    let mut out = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for h in original.iter() {
            out = out.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    let out = out
        .insert(Header {
            key: headers::ORIGINAL_TOPIC,
            value: Some(message.topic().as_bytes()),
        })
        .insert(Header {
            key: headers::ORIGINAL_PARTITION,
            value: Some(partition.as_bytes()),
        })
        .insert(Header {
            key: headers::ORIGINAL_OFFSET,
            value: Some(offset.as_bytes()),
        })
        .insert(Header {
            key: headers::ATTEMPT,
            value: Some(b"1".as_slice()),
        })
        .insert(Header {
            key: headers::ERROR_KIND,
            value: Some(kind.as_bytes()),
        })
        .insert(Header {
            key: headers::ERROR_MESSAGE,
            value: Some(reason.as_bytes()),
        })
        .insert(Header {
            key: headers::FAILED_AT,
            value: Some(failed_at.as_bytes()),
        });
    let key = message.key().unwrap_or_default();
    let payload = message.payload().unwrap_or_default();
    match env.producer.send(&topic, key, payload, out).await {
        Ok(_) => Step::Done,
        Err(error) => Step::Retry(format!("dead-letter produce failed: {error}")),
    }
}

fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
}

/// Exponential backoff from 100 ms, doubling, capped at 10 s, with ±20% jitter.
#[derive(Debug, Default)]
struct Backoff {
    attempts: u32,
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        let base = 100u64.saturating_mul(1 << self.attempts.min(7)).min(10_000);
        self.attempts = self.attempts.saturating_add(1);
        let jitter = rand::random_range(0.8..1.2);
        Duration::from_millis((base as f64 * jitter) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(80) && delays[0] <= Duration::from_millis(120));
        assert!(delays[3] > delays[0]);
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(12_000)));
        assert!(delays[11] >= Duration::from_millis(8_000));
    }
}
