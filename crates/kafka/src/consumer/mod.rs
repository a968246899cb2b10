//! The one consumer loop every service uses.
//!
//! - librdkafka is polled on a dedicated thread; each assigned partition gets a worker task, so
//!   partitions progress independently. A worker handles up to `max_in_flight` messages at once,
//!   but those with the same key (one receipt) strictly one after another, in offset order.
//! - Offsets: auto-commit is on, auto offset *store* is off. An offset is stored only once every
//!   message up to it was handled (`Ok`: side effects and produces acknowledged) or dead-lettered
//!   (that produce acknowledged), so a crash at any point means redelivery, never loss.
//! - A handler's failure is one of three kinds. `Failed` with a transient error (our own
//!   infrastructure: store, broker) is retried in place with capped exponential backoff: the
//!   message waits, other receipts go on; with a permanent error (corrupt data, a rule
//!   violation), and an undecodable message, it goes to `<service>.<topic>.dlt` with the reason.
//!   `Retry` (a remote party is unavailable) is copied to the next retry tier
//!   `<service>.<topic>.retry.<n>` with its due time, per the consumer's [`RetryPolicy`]; past the
//!   policy's horizon the handler's `exhausted` concludes. Copies carry headers saying where the message
//!   came from, which attempt is next, when it is due and why the last one failed.
//! - A message not yet due (a retry tier's) is held, with its partition paused, until it is:
//!   nothing sleeps in a handler, and the partition's later messages wait behind it.
//! - Cooperative-sticky rebalancing; on revocation and on shutdown the affected workers finish the
//!   message in hand (up to `drain_timeout`), their offsets are stored and committed, and only then
//!   is the partition released.
//! - A full worker queue pauses its partition instead of blocking the poll thread.

mod worker;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, mpsc as std_mpsc};
use std::time::Duration;

use chrono::Utc;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, TopicPartitionList};
use receipts_domain::{Failure, ReceiptEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::retry::RetryPolicy;
use crate::{Error, EventProducer, KafkaConfig, Result, TopicSpec, ensure_topics, headers};

/// What a consumer reads and who it is.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The service name: names the consumer group, the retry and the dead-letter topics.
    pub service: String,
    pub topics: Vec<String>,
    /// Messages buffered per partition before the partition is paused.
    pub queue_depth: usize,
    /// Messages of one partition handled at once; those with the same key (one receipt) still
    /// strictly in order.
    pub max_in_flight: usize,
    /// Retry tiers for [`HandlerError::Retry`]. Every consumer has at least one tier, which is
    /// where dead-letter replays go.
    pub retry: RetryPolicy,
}

impl ConsumerSpec {
    pub fn new(service: impl Into<String>, topics: Vec<String>) -> Self {
        Self {
            service: service.into(),
            topics,
            queue_depth: 256,
            max_in_flight: 32,
            retry: RetryPolicy::replay_only(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// Where the message being handled came from, and which attempt at it this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContext {
    /// The topic it was read from (a retry tier's, for a retry).
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub traceparent: Option<String>,
    /// The topic the message was first read from.
    pub original_topic: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub first_attempt_at: chrono::DateTime<Utc>,
}

/// A failure worth trying again later, on a retry tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryableFailure {
    /// Stable, short: `connect`, `timeout`, `http-503`, `http-429`, `awaiting-callback`, ...
    pub kind: String,
    pub message: String,
    /// The remote side's `Retry-After`, honoured as the minimum delay.
    pub retry_after: Option<Duration>,
}

/// How a handler failed.
#[derive(Debug)]
pub enum HandlerError {
    /// The handler failed; the error's own [`Failure::is_transient`] decides what happens next:
    /// a transient failure (our own infrastructure: store, broker, schema registry) is retried
    /// in place after a backoff; a permanent one (the event can never be handled: corrupt data,
    /// a rule violation) is dead-lettered with its reason and the partition moves on.
    Failed(Box<dyn Failure>),
    /// A remote party failed retryably: schedule the message on the next retry tier.
    Retry(RetryableFailure),
    /// Not now (a destination is busy or rate-limited): hand the message back to the first
    /// retry tier, due after this long, without counting an attempt.
    Defer(Duration),
}

impl<E: Failure> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self::Failed(Box::new(error))
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed(error) if error.is_transient() => write!(f, "transient: {error}"),
            Self::Failed(error) => write!(f, "permanent: {error}"),
            Self::Retry(failure) => {
                write!(f, "retry later ({}): {}", failure.kind, failure.message)
            }
            Self::Defer(delay) => write!(f, "deferred for {delay:?}"),
        }
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Failed(error) => Some(error.as_ref()),
            Self::Retry(_) | Self::Defer(_) => None,
        }
    }
}

/// The text of `error` and of every error that caused it: `a: b: c`.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Wrappers often repeat their cause's message; say it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A service's business logic for one event. Must be idempotent: after a crash the same event
/// can be delivered again.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(
        &self,
        event: ReceiptEvent,
        context: &MessageContext,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Called instead of scheduling another retry once the retry horizon is reached. By default
    /// the message is dead-lettered.
    fn exhausted(
        &self,
        event: ReceiptEvent,
        context: &MessageContext,
        last: &RetryableFailure,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let _ = (event, context);
        let exceeded = HorizonExceeded {
            kind: last.kind.clone(),
            message: last.message.clone(),
        };
        async move { Err(HandlerError::from(exceeded)) }
    }
}

/// The default conclusion of a message whose retries reached the horizon: dead-lettered.
#[derive(Debug, thiserror::Error)]
#[error("retry horizon exceeded; last failure ({kind}): {message}")]
pub struct HorizonExceeded {
    pub kind: String,
    pub message: String,
}

impl Failure for HorizonExceeded {
    fn is_transient(&self) -> bool {
        false
    }
}

pub(crate) type Partition = (String, i32);

/// Consumes `spec.topics` with `handler` until `shutdown` is cancelled (or this future is
/// dropped), then drains and commits.
/// The retry tier topics of a consumer: one per tier per topic it reads.
fn retry_topics(names: &crate::TopicNames, spec: &ConsumerSpec) -> Vec<String> {
    spec.topics
        .iter()
        .flat_map(|t| (1..=spec.retry.tiers()).map(|tier| names.retry_tier(&spec.service, t, tier)))
        .collect()
}

/// The topics a consumer owns besides those it reads: a dead-letter topic per topic it reads,
/// and its retry tiers. [`run_consumer`] creates them; so does the platform's setup step.
pub fn own_topics(names: &crate::TopicNames, spec: &ConsumerSpec) -> Vec<String> {
    spec.topics
        .iter()
        .map(|t| names.dead_letter(&spec.service, t))
        .chain(retry_topics(names, spec))
        .collect()
}

pub async fn run_consumer<H: EventHandler>(
    config: KafkaConfig,
    spec: ConsumerSpec,
    producer: EventProducer,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<()> {
    let names = producer.topics().clone();
    let retry_topics = retry_topics(&names, &spec);
    let own_topics: Vec<TopicSpec> = own_topics(&names, &spec)
        .into_iter()
        .map(|t| TopicSpec::new(&config, t))
        .collect();
    ensure_topics(&config, &own_topics).await?;

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
            retry: spec.retry.clone(),
        }),
    });
    let group = config.group_id(&spec.service);
    let consumer: BaseConsumer<LoopContext<H>> = config
        .consumer_config(&spec.service, &group)
        .create_with_context(LoopContext {
            shared: Arc::clone(&shared),
        })?;
    let topics: Vec<&str> = spec
        .topics
        .iter()
        .chain(&retry_topics)
        .map(String::as_str)
        .collect();
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
    retry: RetryPolicy,
}

struct Worker {
    tx: mpsc::Sender<OwnedMessage>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Partitions {
    workers: HashMap<Partition, Worker>,
    /// Messages polled but not handed to a worker yet (its queue was full, or they are not due);
    /// their partition is paused meanwhile.
    parked: HashMap<Partition, VecDeque<OwnedMessage>>,
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
        let task = self.runtime.spawn(worker::run_worker(
            Arc::clone(&self.env),
            partition,
            rx,
            cancel.clone(),
            self.done_tx.clone(),
            self.max_in_flight,
        ));
        Worker { tx, cancel, task }
    }

    /// The partition's worker, started (or restarted, if it died) as needed.
    fn worker<'a>(
        &self,
        workers: &'a mut HashMap<Partition, Worker>,
        partition: &Partition,
    ) -> &'a Worker {
        let alive = workers.get(partition).is_some_and(|w| !w.tx.is_closed());
        if !alive {
            if workers.contains_key(partition) {
                tracing::error!(topic = %partition.0, partition = partition.1, "partition worker died; restarting it");
            }
            workers.insert(partition.clone(), self.spawn_worker(partition.clone()));
        }
        &workers[partition]
    }

    /// Hands a polled message to its partition's worker, or parks it (pausing the partition)
    /// when the worker's queue is full, when the message is not due yet, or when messages of
    /// the partition are parked already (order is kept).
    fn dispatch<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, message: OwnedMessage) {
        let partition = (message.topic().to_owned(), message.partition());
        let mut guard = lock(&self.partitions);
        let state = &mut *guard;
        if let Some(queue) = state.parked.get_mut(&partition) {
            queue.push_back(message);
            return;
        }
        let message = if is_due(&message) {
            match self
                .worker(&mut state.workers, &partition)
                .tx
                .try_send(message)
            {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m)) => m,
            }
        } else {
            message
        };
        state
            .parked
            .entry(partition.clone())
            .or_default()
            .push_back(message);
        set_paused(consumer, &partition, true);
    }

    /// Moves parked messages to their workers once they are due and there is room; resumes
    /// partitions with nothing parked any more.
    fn flush_parked<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let mut guard = lock(&self.partitions);
        let state = &mut *guard;
        let mut resumed = Vec::new();
        for (partition, queue) in &mut state.parked {
            while queue.front().is_some_and(is_due) {
                let Some(message) = queue.pop_front() else {
                    break;
                };
                if let Err(
                    mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m),
                ) = self
                    .worker(&mut state.workers, partition)
                    .tx
                    .try_send(message)
                {
                    queue.push_front(m);
                    break;
                }
            }
            if queue.is_empty() {
                resumed.push(partition.clone());
            }
        }
        for partition in resumed {
            state.parked.remove(&partition);
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
    /// timeout, and forgets their parked messages (the partitions' next owner reads them again:
    /// their offsets were not stored). Must run on the poll thread (outside the runtime).
    fn drain<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, partitions: &[Partition]) {
        let mut tasks = Vec::new();
        {
            let mut state = lock(&self.partitions);
            for partition in partitions {
                if state.parked.remove(partition).is_some() {
                    // librdkafka keeps an application's pause on a partition across revocation
                    // and re-assignment: without this, a partition that comes back to this
                    // consumer would stay paused with nothing parked to resume it.
                    set_paused(consumer, partition, false);
                }
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

/// Whether a message may be handled now (retry tiers set a due time).
fn is_due(message: &OwnedMessage) -> bool {
    worker::header(message, headers::DUE_AT)
        .and_then(|v| v.parse::<i64>().ok())
        .is_none_or(|due| due <= Utc::now().timestamp_millis())
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
        shared.flush_parked(consumer);
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => shared.dispatch(consumer, message.detach()),
            Some(Err(error)) => tracing::warn!(%error, "consumer error"),
        }
    }
    shared.drain(consumer, &shared.all_partitions());
    shared.store_finished(consumer);
    commit(consumer);
}

struct LoopContext<H> {
    shared: Arc<Shared<H>>,
}

impl<H: EventHandler> ClientContext for LoopContext<H> {
    /// Publishes each assigned partition's lag (`statistics.interval.ms`).
    fn stats(&self, statistics: rdkafka::Statistics) {
        let service = &self.shared.env.service;
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's internal unassigned partition; a negative lag is unknown.
                if *partition < 0 || p.consumer_lag < 0 || p.fetch_state != "active" {
                    continue;
                }
                lag_gauge(service, topic, *partition).set(p.consumer_lag as f64);
            }
        }
    }
}

/// The lag gauge of one partition.
fn lag_gauge(service: &str, topic: &str, partition: i32) -> metrics::Gauge {
    metrics::gauge!(
        receipts_telemetry::metrics::CONSUMER_LAG,
        "service" => service.to_owned(),
        "topic" => topic.to_owned(),
        "partition" => partition.to_string()
    )
}

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
                // Their new owner reports their lag now.
                for (topic, partition) in &partitions {
                    lag_gauge(&self.shared.env.service, topic, *partition).set(0.0);
                }
                self.shared.drain(consumer, &partitions);
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
