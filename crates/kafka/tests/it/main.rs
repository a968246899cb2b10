//! The Kafka backbone against a real broker (tansu, via the testkit).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::message::OwnedHeaders;
use receipts_domain::{
    EventMeta, Failure, IdempotencyKey, ReceiptEvent, ReceiptId, Submitted, TenantId, Topic,
};
use receipts_kafka::{
    ConsumerSpec, EventHandler, EventProducer, HandlerError, MessageContext, TopicSpec,
    ensure_topics, headers, run_consumer,
};
use receipts_telemetry::trace;
use receipts_testkit::{TestEnv, eventually, header};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

fn submitted(n: usize) -> ReceiptEvent {
    Submitted {
        meta: EventMeta::new(ReceiptId::new(), TenantId::parse("dev").expect("tenant")),
        receipt_type: "retail-receipt/v1".into(),
        content_type: "application/json".into(),
        document: format!("{{\"n\": {n}}}").into_bytes(),
        idempotency_key: IdempotencyKey::parse(&format!("key-{n}")).expect("key"),
        callback_url: None,
    }
    .into()
}

/// Records what it handled; fails transiently for the first `fail_first` calls per event, and
/// refuses events whose document says "poison".
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(ReceiptEvent, MessageContext)>>,
    calls: Mutex<HashMap<String, usize>>,
    fail_first: usize,
    delay: Duration,
    /// Adds up to this much random delay per event.
    jitter_ms: u64,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl EventHandler for Recorder {
    async fn handle(
        &self,
        event: ReceiptEvent,
        context: &MessageContext,
    ) -> Result<(), HandlerError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let jitter = if self.jitter_ms > 0 {
            rand_ms(self.jitter_ms)
        } else {
            0
        };
        let pause = self.delay + Duration::from_millis(jitter);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        let id = event.meta().event_id.to_string();
        let calls = {
            let mut calls = self.calls.lock().expect("lock");
            let n = calls.entry(id).or_default();
            *n += 1;
            *n
        };
        if calls <= self.fail_first {
            return Err(Simulated::transient(format!("simulated outage, call {calls}")).into());
        }
        if let ReceiptEvent::Submitted(s) = &event
            && s.document == b"poison"
        {
            return Err(Simulated::permanent("handler refuses this event").into());
        }
        self.seen
            .lock()
            .expect("lock")
            .push((event, context.clone()));
        Ok(())
    }
}

/// A failure of the test's own making.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Simulated {
    message: String,
    transient: bool,
}

impl Simulated {
    fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }
}

impl Failure for Simulated {
    fn is_transient(&self) -> bool {
        self.transient
    }
}

/// A cheap pseudo-random number below `max` (no extra dependency for a test delay).
fn rand_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    u64::from(nanos) % max
}

impl Recorder {
    fn seen_ids(&self) -> Vec<String> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .map(|(e, _)| e.meta().event_id.to_string())
            .collect()
    }
}

async fn setup(env: &TestEnv) -> (EventProducer, String) {
    let topic = env.topic(&Topic::Submitted.name());
    ensure_topics(&env.kafka, &[TopicSpec::new(&env.kafka, topic.clone())])
        .await
        .expect("topics");
    (env.producer(), topic)
}

fn spawn_consumer(
    env: &TestEnv,
    service: &str,
    topic: &str,
    producer: &EventProducer,
    handler: Arc<Recorder>,
    queue_depth: usize,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<receipts_kafka::Result<()>>,
) {
    let shutdown = CancellationToken::new();
    let mut spec = ConsumerSpec::new(service, vec![topic.to_owned()]);
    spec.queue_depth = queue_depth;
    let task = tokio::spawn(run_consumer(
        env.kafka.clone(),
        spec,
        producer.clone(),
        handler,
        shutdown.clone(),
    ));
    (shutdown, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_events_are_consumed_with_headers_and_offsets_committed() {
    let env = TestEnv::new();
    let (producer, topic) = setup(&env).await;
    let events: Vec<ReceiptEvent> = (0..20).map(submitted).collect();
    for event in &events {
        producer.publish(event).await.expect("publish acked");
    }

    // Headers and key on the wire.
    let raw = env.read_topic(&topic, 20, WAIT);
    assert_eq!(raw.len(), 20);
    for message in &raw {
        let event_id = header(message, headers::EVENT_ID).expect("event_id header");
        let event = events
            .iter()
            .find(|e| e.meta().event_id.to_string() == event_id)
            .expect("known event");
        assert_eq!(
            receipts_testkit::key(message),
            event.meta().receipt_id.to_string()
        );
        assert!(trace::is_valid(
            &header(message, headers::TRACEPARENT).expect("traceparent")
        ));
        assert_eq!(
            header(message, headers::EVENT_TYPE).as_deref(),
            Some("submitted")
        );
    }

    let handler = Arc::new(Recorder::default());
    let (shutdown, task) =
        spawn_consumer(&env, "svc", &topic, &producer, Arc::clone(&handler), 256);
    eventually("all 20 handled", WAIT, || async {
        (handler.seen_ids().len() >= 20).then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("consumer ran");
    let first: HashSet<String> = handler.seen_ids().into_iter().collect();
    assert_eq!(
        first,
        events
            .iter()
            .map(|e| e.meta().event_id.to_string())
            .collect()
    );

    // The decoded events equal what was published.
    for (event, _) in handler.seen.lock().expect("lock").iter() {
        assert!(events.contains(event));
    }

    // After a graceful stop the group resumes after the committed offsets: only new events.
    let more: Vec<ReceiptEvent> = (20..25).map(submitted).collect();
    for event in &more {
        producer.publish(event).await.expect("publish acked");
    }
    let again = Arc::new(Recorder::default());
    let (shutdown, task) = spawn_consumer(&env, "svc", &topic, &producer, Arc::clone(&again), 256);
    eventually("5 new handled", WAIT, || async {
        (again.seen_ids().len() >= 5).then_some(())
    })
    .await;
    // Done with everything there is (committed to the end): nothing else can come now.
    env.wait_until_consumed("svc", &topic).await;
    shutdown.cancel();
    task.await.expect("join").expect("consumer ran");
    let second: HashSet<String> = again.seen_ids().into_iter().collect();
    assert_eq!(
        second,
        more.iter().map(|e| e.meta().event_id.to_string()).collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_in_place_and_order_is_kept() {
    let env = TestEnv::new();
    let (producer, topic) = setup(&env).await;
    // One receipt id for all, so all land on one partition in order.
    let receipt = ReceiptId::new();
    let mut events = Vec::new();
    for n in 0..5 {
        let mut event = submitted(n);
        if let ReceiptEvent::Submitted(s) = &mut event {
            s.meta.receipt_id = receipt;
        }
        producer.publish(&event).await.expect("publish");
        events.push(event.meta().event_id.to_string());
    }
    let handler = Arc::new(Recorder {
        fail_first: 2,
        ..Recorder::default()
    });
    let (shutdown, task) =
        spawn_consumer(&env, "svc", &topic, &producer, Arc::clone(&handler), 256);
    eventually("all handled after retries", WAIT, || async {
        (handler.seen_ids().len() >= 5).then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("consumer ran");
    assert_eq!(handler.seen_ids(), events, "same order as produced");
    let calls = handler.calls.lock().expect("lock");
    assert!(
        calls.values().all(|&n| n == 3),
        "each event failed twice then succeeded: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_topic_and_the_partition_moves_on() {
    let env = TestEnv::new();
    let (producer, topic) = setup(&env).await;
    let receipt = ReceiptId::new().to_string();
    // Not Avro at all.
    producer
        .send(
            &topic,
            receipt.as_bytes(),
            b"definitely not avro",
            OwnedHeaders::new(),
        )
        .await
        .expect("raw send");
    // Valid Avro the handler refuses.
    let mut refused = submitted(1);
    if let ReceiptEvent::Submitted(s) = &mut refused {
        s.document = b"poison".to_vec();
    }
    producer.publish(&refused).await.expect("publish");
    let fine = submitted(2);
    producer.publish(&fine).await.expect("publish");

    let handler = Arc::new(Recorder::default());
    let (shutdown, task) =
        spawn_consumer(&env, "svc", &topic, &producer, Arc::clone(&handler), 256);
    eventually("the good event", WAIT, || async {
        handler
            .seen_ids()
            .contains(&fine.meta().event_id.to_string())
            .then_some(())
    })
    .await;
    let dlt = producer.topics().dead_letter("svc", &topic);
    let dead = env.read_topic(&dlt, 2, WAIT);
    shutdown.cancel();
    task.await.expect("join").expect("consumer ran");

    assert_eq!(dead.len(), 2, "both poison messages dead-lettered once");
    let kinds: HashSet<String> = dead
        .iter()
        .filter_map(|m| header(m, headers::ERROR_KIND))
        .collect();
    assert_eq!(
        kinds,
        HashSet::from(["undecodable".to_owned(), "poison".to_owned()])
    );
    for message in &dead {
        assert_eq!(
            header(message, headers::ORIGINAL_TOPIC).as_deref(),
            Some(topic.as_str())
        );
        assert!(header(message, headers::ORIGINAL_PARTITION).is_some());
        assert!(header(message, headers::ORIGINAL_OFFSET).is_some());
        assert!(
            !header(message, headers::ERROR_MESSAGE)
                .unwrap_or_default()
                .is_empty()
        );
    }
    assert_eq!(handler.seen_ids(), vec![fine.meta().event_id.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_pauses_the_partition_without_losing_messages() {
    let env = TestEnv::new();
    let (producer, topic) = setup(&env).await;
    let receipt = ReceiptId::new();
    let mut expected = Vec::new();
    for n in 0..40 {
        let mut event = submitted(n);
        if let ReceiptEvent::Submitted(s) = &mut event {
            s.meta.receipt_id = receipt;
        }
        producer.publish(&event).await.expect("publish");
        expected.push(event.meta().event_id.to_string());
    }
    let handler = Arc::new(Recorder {
        delay: Duration::from_millis(20),
        ..Recorder::default()
    });
    let (shutdown, task) = spawn_consumer(&env, "svc", &topic, &producer, Arc::clone(&handler), 1);
    eventually("all 40", WAIT, || async {
        (handler.seen_ids().len() >= 40).then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("consumer ran");
    assert_eq!(handler.seen_ids(), expected, "every message once, in order");
}

/// A second member joining the group mid-stream takes partitions (cooperative rebalance, the
/// first member draining what it gives up) and handles messages of them, and every message is
/// handled by someone. Messages keep coming until the second member has handled some, so the
/// test cannot pass with a second member that never got to work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_member_takes_partitions_and_nothing_is_lost() {
    let env = TestEnv::new();
    let (producer, topic) = setup(&env).await;
    let first = Arc::new(Recorder {
        delay: Duration::from_millis(5),
        ..Recorder::default()
    });
    let second = Arc::new(Recorder {
        delay: Duration::from_millis(5),
        ..Recorder::default()
    });
    let (stop_a, task_a) = spawn_consumer(&env, "svc", &topic, &producer, Arc::clone(&first), 256);
    let mut expected = HashSet::new();
    let mut member_b = None;
    let started = tokio::time::Instant::now();
    for n in 0.. {
        let event = submitted(n);
        producer.publish(&event).await.expect("publish");
        expected.insert(event.meta().event_id.to_string());
        if n == 20 {
            member_b = Some(spawn_consumer(
                &env,
                "svc",
                &topic,
                &producer,
                Arc::clone(&second),
                256,
            ));
        }
        if n > 20 && !second.seen_ids().is_empty() {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the second member handled nothing of {n} messages"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually("every event handled by someone", WAIT, || async {
        let all: HashSet<String> = first
            .seen_ids()
            .into_iter()
            .chain(second.seen_ids())
            .collect();
        (all == expected).then_some(())
    })
    .await;
    assert!(!first.seen_ids().is_empty() && !second.seen_ids().is_empty());
    let (stop_b, task_b) = member_b.expect("the second member started");
    stop_b.cancel();
    stop_a.cancel();
    task_b.await.expect("join").expect("second member ran");
    task_a.await.expect("join").expect("first member ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_run_concurrently_but_each_receipt_in_order() {
    let env = TestEnv::new();
    let (producer, topic) = setup(&env).await;
    let receipts: Vec<ReceiptId> = (0..12).map(|_| ReceiptId::new()).collect();
    let mut expected: HashMap<ReceiptId, Vec<String>> = HashMap::new();
    // Interleaved: event n of every receipt, then event n + 1 of every receipt, ...
    for n in 0..5 {
        for receipt in &receipts {
            let mut event = submitted(n);
            if let ReceiptEvent::Submitted(s) = &mut event {
                s.meta.receipt_id = *receipt;
            }
            producer.publish(&event).await.expect("publish");
            expected
                .entry(*receipt)
                .or_default()
                .push(event.meta().event_id.to_string());
        }
    }
    let handler = Arc::new(Recorder {
        jitter_ms: 30,
        ..Recorder::default()
    });
    let (shutdown, task) =
        spawn_consumer(&env, "svc", &topic, &producer, Arc::clone(&handler), 256);
    eventually("all 60 handled", WAIT, || async {
        (handler.seen_ids().len() >= 60).then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("consumer ran");

    let mut seen: HashMap<ReceiptId, Vec<String>> = HashMap::new();
    for (event, _) in handler.seen.lock().expect("lock").iter() {
        seen.entry(event.meta().receipt_id)
            .or_default()
            .push(event.meta().event_id.to_string());
    }
    assert_eq!(
        seen, expected,
        "every receipt's events exactly once, in produced order"
    );
    assert!(
        handler.max_running.load(Ordering::SeqCst) > 3,
        "receipts were handled concurrently (max {})",
        handler.max_running.load(Ordering::SeqCst)
    );
}
