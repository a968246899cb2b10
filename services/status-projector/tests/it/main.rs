//! The projector against a real broker: as a real process, crashed and restarted (no event lost,
//! none counted twice), in-process for the status changes it announces, and with a poison event
//! (dead-lettered, the partition goes on).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rdkafka::Message;
use receipts_core::Projector;
use receipts_domain::event::now_millis;
use receipts_domain::{
    EventId, EventKind, EventMeta, IdempotencyKey, Reason, ReceiptEvent, ReceiptId, Rejected,
    Status, StatusChanged, StatusPolicy, Submitted, TenantId, Topic,
};
use receipts_kafka::{EventProducer, TopicNames, TopicSpec, ensure_topics, headers};
use receipts_store::conformance::ReceiptFixture;
use receipts_store::{SqliteOptions, SqliteStore, StoreConfig, Stores};
use receipts_testkit::{TestEnv, eventually, header};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);
const FIRST_BATCH: usize = 600;

fn tenant() -> TenantId {
    TenantId::parse("acme").expect("tenant")
}

/// A submission and its (rejection) outcome; `Rejected` needs no normalized receipt, which keeps
/// this test about the projector rather than the validator.
fn receipt_events(n: usize) -> (ReceiptId, Vec<ReceiptEvent>) {
    let submitted = Submitted {
        meta: EventMeta::new(ReceiptId::new(), tenant()),
        receipt_type: "retail-receipt/v1".into(),
        content_type: "application/json".into(),
        document: format!("{{\"n\": {n}}}").into_bytes(),
        idempotency_key: IdempotencyKey::parse(&format!("k-{n}")).expect("key"),
        callback_url: None,
    };
    let rejected = Rejected {
        meta: EventMeta::derived(&submitted.meta, "rejected"),
        receipt_type: "retail-receipt/v1".into(),
        reasons: vec![Reason::new("/lines", "required", "at least one line")],
    };
    (
        submitted.meta.receipt_id,
        vec![submitted.into(), rejected.into()],
    )
}

/// Every topic the projector reads or writes with the default policy, created up front so that
/// tests can publish before the projector has started.
async fn ensure_all_topics(env: &TestEnv) {
    let names = TopicNames::new(&env.kafka);
    let topics: Vec<TopicSpec> = Topic::receipt_topics(&StatusPolicy::default().registries())
        .iter()
        .chain([&Topic::StatusChanged])
        .map(|t| TopicSpec::new(&env.kafka, names.of(t)))
        .collect();
    ensure_topics(&env.kafka, &topics).await.expect("topics");
}

async fn open_store(db: &Path) -> Stores {
    Stores::of(
        SqliteStore::open(db, &SqliteOptions::default())
            .await
            .expect("store"),
    )
}

/// The projector in this process, with the default policy, on `stores`.
fn start_projector(
    env: &TestEnv,
    stores: &Stores,
) -> (
    CancellationToken,
    JoinHandle<Result<(), receipts_service::Error>>,
) {
    let config = status_projector::ProjectorConfig {
        kafka: env.kafka.clone(),
        schema_registry: env.schema_registry.clone(),
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(status_projector::run(
        config,
        stores.clone(),
        shutdown.clone(),
    ));
    (shutdown, task)
}

/// Waits until the receipt `fx` describes has `status`.
async fn wait_for_status(stores: &Stores, fx: &ReceiptFixture, status: Status) {
    eventually(
        &format!("{} to be {status}", fx.receipt_id),
        WAIT,
        || async {
            let record = stores.receipts.receipt(fx.receipt_id).await.ok()??;
            (record.status == status).then_some(())
        },
    )
    .await;
}

/// The id every announcement of `status` for the receipt `fx` describes has.
fn announcement_id(fx: &ReceiptFixture, status: Status) -> EventId {
    EventMeta::for_receipt(
        fx.receipt_id,
        fx.tenant.clone(),
        &format!("status-changed:{status}"),
        1,
    )
    .event_id
}

/// The status-changed events on the topic (waiting for at least `expected`), with their keys.
async fn status_changes(env: &TestEnv, expected: usize) -> Vec<(String, StatusChanged)> {
    let topic = env.topic(&Topic::StatusChanged.name());
    let messages = env.read_topic(&topic, expected, WAIT);
    let codec = env.codec();
    let mut changes = Vec::with_capacity(messages.len());
    for message in &messages {
        let payload = message.payload().expect("a payload");
        match codec.decode(payload).await.expect("decodes") {
            ReceiptEvent::StatusChanged(changed) => {
                changes.push((receipts_testkit::key(message), changed));
            }
            other => panic!("not a status change: {other:?}"),
        }
    }
    changes
}

/// Status changes by event id, checking that copies of one event (re-publications) are the same
/// change.
fn distinct_changes(changes: &[(String, StatusChanged)]) -> BTreeMap<EventId, StatusChanged> {
    let mut distinct: BTreeMap<EventId, StatusChanged> = BTreeMap::new();
    for (key, changed) in changes {
        assert_eq!(
            key,
            &changed.meta.receipt_id.to_string(),
            "keyed by receipt"
        );
        if let Some(seen) = distinct.get(&changed.meta.event_id) {
            assert_eq!(
                (seen.from, seen.to, &seen.meta.receipt_id),
                (changed.from, changed.to, &changed.meta.receipt_id),
                "one event id, one change"
            );
        } else {
            distinct.insert(changed.meta.event_id, changed.clone());
        }
    }
    distinct
}

async fn publish_all(producer: &EventProducer, events: &[ReceiptEvent]) {
    use futures::StreamExt;
    // Many in flight at once; per-receipt order is kept because each receipt's events are in
    // one chunk, published in order.
    futures::stream::iter(events.chunks(2))
        .for_each_concurrent(64, |chunk| async move {
            for event in chunk {
                producer.publish(event).await.expect("publish acked");
            }
        })
        .await;
}

/// Prints the projector's log when the test fails: the process's output is otherwise lost with
/// the test's temporary directory.
struct LogOnFailure(std::path::PathBuf);

impl Drop for LogOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            eprintln!("--- status-projector log ---\n{log}");
        }
    }
}

fn spawn_projector(env: &TestEnv, db: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_status-projector"))
        .env(
            "RECEIPTS_KAFKA__BOOTSTRAP_SERVERS",
            &env.kafka.bootstrap_servers,
        )
        .env("RECEIPTS_KAFKA__TOPIC_PREFIX", &env.kafka.topic_prefix)
        .env(
            "RECEIPTS_KAFKA__PARTITIONS",
            env.kafka.partitions.to_string(),
        )
        .env("RECEIPTS_KAFKA__SESSION_TIMEOUT", "6s")
        .env(
            "RECEIPTS_SCHEMA_REGISTRY__URL",
            env.schema_registry.url.as_str(),
        )
        .env("RECEIPTS_STORE__URL", StoreConfig::sqlite(db).url)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start the status-projector binary")
}

async fn finished(stores: &Stores, ids: &[ReceiptId]) -> usize {
    let mut done = 0;
    for id in ids {
        if let Ok(Some(r)) = stores.receipts.receipt(*id).await
            && r.status == Status::Rejected
            && r.received_at.is_some()
        {
            done += 1;
        }
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_loses_nothing_and_doubles_nothing() {
    let env = TestEnv::new();
    ensure_all_topics(&env).await;
    let producer = env.producer();
    let db = env.dir.path().join("receipts.db");
    let log = env.dir.path().join("projector.log");
    let _log_on_failure = LogOnFailure(log.clone());
    let store = open_store(&db).await;

    let mut ids = Vec::new();
    let mut first_batch = Vec::new();
    for n in 0..FIRST_BATCH {
        let (id, events) = receipt_events(n);
        ids.push(id);
        first_batch.extend(events);
    }
    publish_all(&producer, &first_batch).await;

    let mut projector = spawn_projector(&env, &db, &log);
    // Kill as soon as a sample of receipts shows progress, so the kill lands mid-stream.
    let sample: Vec<ReceiptId> = ids.iter().step_by(20).copied().collect();
    eventually("the projector to make some progress", WAIT, || async {
        (finished(&store, &sample).await >= 2).then_some(())
    })
    .await;
    projector.kill().await.expect("kill -9");
    let at_kill = finished(&store, &ids).await;
    assert!(
        at_kill < FIRST_BATCH,
        "the kill must land mid-stream ({at_kill} of {FIRST_BATCH} done)"
    );

    // More events arrive while it is down.
    let mut second_batch = Vec::new();
    for n in FIRST_BATCH..FIRST_BATCH + 100 {
        let (id, events) = receipt_events(n);
        ids.push(id);
        second_batch.extend(events);
    }
    publish_all(&producer, &second_batch).await;

    env.outlive_dead_members().await;
    let mut projector = spawn_projector(&env, &db, &log);
    let all = ids.len();
    eventually(
        "every receipt projected after the restart",
        WAIT,
        || async { (finished(&store, &ids).await == all).then_some(()) },
    )
    .await;
    // Every rejection is announced, even those whose announcement the kill interrupted, and
    // each under one event id however often it was published. (Wait for it before stopping:
    // the last changes are announced just after they are stored.)
    let distinct = eventually("every status change announced", WAIT, || async {
        let distinct = distinct_changes(&status_changes(&env, all).await);
        (distinct.len() == all).then_some(distinct)
    })
    .await;
    projector.kill().await.expect("stop");

    for id in &ids {
        let record = store
            .receipts
            .receipt(*id)
            .await
            .expect("read")
            .expect("exists");
        let kinds: Vec<EventKind> = record.timeline.iter().map(|t| t.event).collect();
        assert_eq!(
            kinds.len(),
            2,
            "each event exactly once in {id}'s timeline: {kinds:?}"
        );
        assert!(kinds.contains(&EventKind::Submitted) && kinds.contains(&EventKind::Rejected));
        assert_eq!(record.version, 2);
        assert_eq!(record.reasons.len(), 1);
    }

    let announced: BTreeSet<ReceiptId> = distinct.values().map(|c| c.meta.receipt_id).collect();
    assert_eq!(announced, ids.iter().copied().collect());
    assert!(
        distinct
            .values()
            .all(|c| (c.from, c.to) == (Status::Received, Status::Rejected) && c.reasons.len() == 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_delivered_twice_changes_nothing() {
    let env = TestEnv::new();
    let producer = env.producer();
    let db = env.dir.path().join("receipts.db");
    let store = open_store(&db).await;
    let (shutdown, task) = start_projector(&env, &store);

    let (id, events) = receipt_events(1);
    // The outcome first (it can overtake the submission: different topics), then the
    // submission, then both again, as a redelivery after a crash would.
    publish_all(
        &producer,
        &[
            events[1].clone(),
            events[0].clone(),
            events[0].clone(),
            events[1].clone(),
        ],
    )
    .await;
    let record = eventually("the receipt projected", WAIT, || async {
        let record = store.receipts.receipt(id).await.ok()??;
        (record.received_at.is_some() && record.status == Status::Rejected).then_some(record)
    })
    .await;
    // Once the duplicates have been consumed (the group's committed offsets reach the end of
    // both topics), they must have changed nothing.
    let names = TopicNames::new(&env.kafka);
    for topic in [Topic::Submitted, Topic::Rejected] {
        wait_until_consumed(&env, &names.of(&topic)).await;
    }
    let after = store
        .receipts
        .receipt(id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(after.timeline.len(), 2);
    assert_eq!(after.version, 2);
    assert_eq!(after.version, record.version);
    assert_eq!(after.timeline, record.timeline);
    shutdown.cancel();
    task.await.expect("join").expect("projector ran");
}

/// The happy path, every event delivered twice: VALIDATED and ACCEPTED are each announced under
/// one event id (one per receipt and status), with the registrations; re-announcing on a
/// redelivery repeats that same event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_happy_path_announces_each_status_once() {
    let env = TestEnv::new();
    ensure_all_topics(&env).await;
    let producer = env.producer();
    let db = env.dir.path().join("receipts.db");
    let store = open_store(&db).await;
    let (shutdown, task) = start_projector(&env, &store);

    let fx = ReceiptFixture::default();
    let (submitted, validated) = (fx.submitted(), fx.validated());
    let (tax, logistics) = (fx.registered("tax"), fx.registered("logistics"));
    // Registrations are only published once the validation is projected: they travel on other
    // topics and could overtake it, which would make the receipt go RECEIVED -> ACCEPTED at once.
    let validation = [submitted.clone(), validated.clone()];
    publish_all(&producer, &validation).await;
    publish_all(&producer, &validation).await;
    wait_for_status(&store, &fx, Status::Validated).await;
    let registration = [tax.clone(), logistics.clone()];
    publish_all(&producer, &registration).await;
    publish_all(&producer, &registration).await;
    wait_for_status(&store, &fx, Status::Accepted).await;

    let distinct = eventually("both statuses announced", WAIT, || async {
        let distinct = distinct_changes(&status_changes(&env, 2).await);
        (distinct.len() >= 2).then_some(distinct)
    })
    .await;
    let changes: Vec<_> = distinct.iter().map(|(id, c)| (*id, c.from, c.to)).collect();
    let mut expected = vec![
        (
            announcement_id(&fx, Status::Validated),
            Status::Received,
            Status::Validated,
        ),
        (
            announcement_id(&fx, Status::Accepted),
            Status::Validated,
            Status::Accepted,
        ),
    ];
    expected.sort_by_key(|(id, _, _)| *id);
    assert_eq!(changes, expected);
    let record = store
        .receipts
        .receipt(fx.receipt_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!((record.version, record.timeline.len()), (4, 4));
    let accepted = &distinct[&announcement_id(&fx, Status::Accepted)];
    assert_eq!(accepted.meta.receipt_id, fx.receipt_id);
    assert_eq!(accepted.meta.tenant_id, fx.tenant);
    assert_eq!(accepted.receipt_type, "retail-receipt/v1");
    assert_eq!(accepted.callback_url, None);
    assert_eq!(accepted.registrations, record.registrations);
    assert_eq!(accepted.registrations.len(), 2);
    assert!(accepted.failures.is_empty() && accepted.reasons.is_empty());

    shutdown.cancel();
    task.await.expect("join").expect("projector ran");
}

/// A registry refusing the receipt: VALIDATED -> FAILED, announced with the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_announces_failed_with_the_failure() {
    let env = TestEnv::new();
    ensure_all_topics(&env).await;
    let producer = env.producer();
    let db = env.dir.path().join("receipts.db");
    let store = open_store(&db).await;
    let (shutdown, task) = start_projector(&env, &store);

    let fx = ReceiptFixture::default();
    publish_all(&producer, &[fx.submitted(), fx.validated()]).await;
    wait_for_status(&store, &fx, Status::Validated).await;
    let refused = fx.failed("tax");
    publish_all(&producer, std::slice::from_ref(&refused)).await;
    wait_for_status(&store, &fx, Status::Failed).await;
    let ReceiptEvent::RegistrationFailed(refused) = refused else {
        panic!("a failed registration")
    };

    let distinct = distinct_changes(&status_changes(&env, 2).await);
    let failed: Vec<&StatusChanged> = distinct
        .values()
        .filter(|c| c.to == Status::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{distinct:#?}");
    let failed = failed[0];
    assert_eq!(failed.from, Status::Validated);
    assert_eq!(failed.failures, [refused.failure]);
    assert!(failed.registrations.is_empty());
    assert_eq!(failed.meta.event_id, announcement_id(&fx, Status::Failed));
    assert_eq!(
        distinct.len(),
        2,
        "RECEIVED -> VALIDATED, VALIDATED -> FAILED"
    );
    shutdown.cancel();
    task.await.expect("join").expect("projector ran");
}

/// A crash between applying an event and announcing the change it caused: the store already has
/// the event when it is redelivered, and the change is announced then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_applied_before_a_crash_is_announced_on_redelivery() {
    let env = TestEnv::new();
    ensure_all_topics(&env).await;
    let producer = env.producer();
    let db = env.dir.path().join("receipts.db");
    let store = open_store(&db).await;

    let fx = ReceiptFixture::default();
    let (submitted, validated) = (fx.submitted(), fx.validated());
    // What the crashed projector got done: both events applied, nothing announced.
    let projector = Projector::new(store.receipts.clone(), StatusPolicy::default());
    for event in [&submitted, &validated] {
        projector.apply(event, now_millis()).await.expect("apply");
    }
    let (shutdown, task) = start_projector(&env, &store);
    publish_all(&producer, &[submitted, validated]).await;

    let distinct = distinct_changes(&status_changes(&env, 1).await);
    let changes: Vec<_> = distinct.iter().map(|(id, c)| (*id, c.from, c.to)).collect();
    assert_eq!(
        changes,
        [(
            announcement_id(&fx, Status::Validated),
            Status::Received,
            Status::Validated
        )]
    );
    shutdown.cancel();
    task.await.expect("join").expect("projector ran");
}

/// The committed offset of the projector's group on every partition of `topic` reaches its end.
async fn wait_until_consumed(env: &TestEnv, topic: &str) {
    env.wait_until_consumed(status_projector::SERVICE, topic)
        .await;
}

/// A poison event (its receipt's stored record is corrupt, which no retry can fix) at offset N of
/// a partition is dead-lettered with the reason, and offset N + 1 of the same partition is
/// processed: the partition never stops behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_dead_lettered_and_the_partition_goes_on() {
    let mut env = TestEnv::new();
    // One partition, so that both events are on it, one after the other.
    env.kafka.partitions = 1;
    ensure_all_topics(&env).await;
    let producer = env.producer();
    let db = env.dir.path().join("receipts.db");
    let store = open_store(&db).await;

    // Receipt A is known, but its record is corrupt.
    let (poisoned, poisoned_events) = receipt_events(1);
    Projector::new(store.receipts.clone(), StatusPolicy::default())
        .apply(&poisoned_events[0], now_millis())
        .await
        .expect("apply");
    let raw = libsql::Builder::new_local(&db)
        .build()
        .await
        .expect("raw database")
        .connect()
        .expect("raw connection");
    raw.execute(
        "UPDATE receipt_records SET record = 'not a record' WHERE id = ?1",
        [poisoned.to_string()],
    )
    .await
    .expect("corrupt it");
    let (fine, fine_events) = receipt_events(2);

    let (shutdown, task) = start_projector(&env, &store);
    // Offset N: A's rejection; offset N + 1: B's rejection.
    publish_all(&producer, &[poisoned_events[1].clone()]).await;
    publish_all(&producer, &[fine_events[1].clone()]).await;
    publish_all(&producer, &[fine_events[0].clone()]).await;

    eventually("B projected", WAIT, || async {
        let record = store.receipts.receipt(fine).await.ok()??;
        (record.status == Status::Rejected && record.received_at.is_some()).then_some(())
    })
    .await;
    let names = TopicNames::new(&env.kafka);
    let rejected = names.of(&Topic::Rejected);
    let dlt = names.dead_letter(status_projector::SERVICE, &rejected);
    let dead = env.read_topic(&dlt, 1, WAIT);
    assert_eq!(dead.len(), 1, "the poison event, once");
    assert_eq!(
        header(&dead[0], headers::EVENT_ID),
        Some(poisoned_events[1].meta().event_id.to_string())
    );
    assert_eq!(
        header(&dead[0], headers::ERROR_KIND).as_deref(),
        Some("poison")
    );
    let reason = header(&dead[0], headers::ERROR_MESSAGE).unwrap_or_default();
    assert!(reason.contains("corrupt"), "{reason}");
    assert_eq!(
        header(&dead[0], headers::ORIGINAL_OFFSET).as_deref(),
        Some("0")
    );
    // Both offsets are done: the group's committed offset passes N + 1.
    wait_until_consumed(&env, &rejected).await;
    shutdown.cancel();
    task.await.expect("join").expect("projector ran");
}

/// `[status]` names the registries ACCEPTED needs (and so the topics consumed); by default tax
/// and logistics.
#[test]
fn the_status_policy_is_configured_in_its_own_section() {
    let default: status_projector::ProjectorConfig =
        receipts_runtime::load_config(None).expect("defaults");
    assert_eq!(default.status, StatusPolicy::default());

    let dir = receipts_testkit::scratch_dir("projector-config");
    let file = dir.join("projector.toml");
    std::fs::write(&file, "[status]\nrequired_registries = [\"tax\"]\n").expect("write config");
    let config: status_projector::ProjectorConfig =
        receipts_runtime::load_config(Some(&file)).expect("valid config");
    assert_eq!(
        config.status,
        StatusPolicy::new([receipts_store::conformance::registry("tax")])
    );

    std::fs::write(&file, "[status]\nrequired_registries = [\"Tax!\"]\n").expect("write config");
    let error = receipts_runtime::load_config::<status_projector::ProjectorConfig>(Some(&file))
        .expect_err("an invalid registry name");
    assert!(error.to_string().contains("required_registries"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
