//! The projector against a real broker: as a real process, crashed and restarted (no event lost,
//! none counted twice), and in-process for the status changes it announces.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use receipts_domain::{
    EventId, EventKind, EventMeta, IdempotencyKey, Reason, ReceiptEvent, ReceiptId, Rejected,
    Status, StatusChanged, StatusPolicy, Submitted, TenantId, Topic,
};
use receipts_kafka::{EventProducer, TopicNames, TopicSpec, ensure_topics};
use receipts_store::conformance::{LOGISTICS, ReceiptFixture, TAX};
use receipts_store::{SqliteConfig, SqliteStore, StatusStore};
use receipts_testkit::{TestEnv, eventually};
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

async fn open_store(db: &Path) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(&SqliteConfig::new(db), StatusPolicy::default())
            .await
            .expect("store"),
    )
}

/// The projector in this process, with the default policy, on the store at `db`.
fn start_projector(
    env: &TestEnv,
    db: &Path,
    store: Arc<SqliteStore>,
) -> (
    CancellationToken,
    JoinHandle<Result<(), status_projector::Error>>,
) {
    let config = status_projector::ProjectorConfig {
        kafka: env.kafka.clone(),
        schema_registry: env.schema_registry.clone(),
        store: SqliteConfig::new(db),
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(status_projector::run(config, store, shutdown.clone()));
    (shutdown, task)
}

/// Waits until the receipt `fx` describes has `status`.
async fn wait_for_status(store: &SqliteStore, fx: &ReceiptFixture, status: Status) {
    eventually(
        &format!("{} to be {status}", fx.receipt_id),
        WAIT,
        || async {
            let record = store.receipt(&fx.tenant, fx.receipt_id).await.ok()??;
            (record.status == status).then_some(())
        },
    )
    .await;
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
        .env("RECEIPTS_STORE__PATH", db)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start the status-projector binary")
}

async fn finished(store: &SqliteStore, ids: &[ReceiptId]) -> usize {
    let mut done = 0;
    for id in ids {
        if let Ok(Some(r)) = store.receipt(&tenant(), *id).await
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
            .receipt(&tenant(), *id)
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
    let (shutdown, task) = start_projector(&env, &db, store.clone());

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
        let record = store.receipt(&tenant(), id).await.ok()??;
        (record.received_at.is_some() && record.status == Status::Rejected).then_some(record)
    })
    .await;
    // Give the duplicates time to arrive; they must change nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = store
        .receipt(&tenant(), id)
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

/// The happy path, every event delivered twice: RECEIVED -> VALIDATED and VALIDATED -> ACCEPTED
/// are each announced under one event id (derived from the event that caused it), with the
/// registrations; re-announcing a redelivered change repeats that same event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_happy_path_announces_each_status_change_once() {
    let env = TestEnv::new();
    ensure_all_topics(&env).await;
    let producer = env.producer();
    let db = env.dir.path().join("receipts.db");
    let store = open_store(&db).await;
    let (shutdown, task) = start_projector(&env, &db, store.clone());

    let fx = ReceiptFixture::new();
    let (submitted, validated) = (fx.submitted(), fx.validated());
    let (tax, logistics) = (fx.registered(TAX), fx.registered(LOGISTICS));
    // Registrations are only published once the validation is projected: they travel on other
    // topics and could overtake it, which would make the receipt go RECEIVED -> ACCEPTED at once.
    let validation: [ReceiptEvent; 2] = [submitted.clone().into(), validated.clone().into()];
    publish_all(&producer, &validation).await;
    publish_all(&producer, &validation).await;
    wait_for_status(&store, &fx, Status::Validated).await;
    let registration: [ReceiptEvent; 2] = [tax.clone().into(), logistics.clone().into()];
    publish_all(&producer, &registration).await;
    publish_all(&producer, &registration).await;
    wait_for_status(&store, &fx, Status::Accepted).await;

    // Both changes, each published twice: once when applied, once more for the redelivery of
    // the event that caused it.
    let changes = status_changes(&env, 4).await;
    assert_eq!(changes.len(), 4, "{changes:#?}");
    let distinct = distinct_changes(&changes);
    let transitions: Vec<_> = distinct.values().map(|c| (c.from, c.to)).collect();
    assert_eq!(
        transitions,
        [
            (Status::Received, Status::Validated),
            (Status::Validated, Status::Accepted)
        ],
        "ids are UUIDv7 of their causes, so in causal order here"
    );
    // The registrations travel on two topics, so either may have been projected last; the
    // change's id derives from the one that was.
    let record = store
        .receipt(&fx.tenant, fx.receipt_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!((record.version, record.timeline.len()), (4, 4));
    let last = record
        .timeline
        .iter()
        .find(|e| e.status == Status::Accepted)
        .expect("an entry that accepted the receipt");
    let cause = [&tax.meta, &logistics.meta]
        .into_iter()
        .find(|m| m.event_id == last.event_id)
        .expect("accepted by a registration");
    let ids: Vec<EventId> = distinct.keys().copied().collect();
    assert_eq!(
        ids,
        [
            EventMeta::derived(&validated.meta, "status-changed").event_id,
            EventMeta::derived(cause, "status-changed").event_id
        ]
    );
    let accepted = &distinct[&ids[1]];
    assert_eq!(accepted.meta.receipt_id, fx.receipt_id);
    assert_eq!(accepted.meta.tenant_id, fx.tenant);
    assert_eq!(
        accepted.receipt_type,
        receipts_store::conformance::RECEIPT_TYPE
    );
    assert_eq!(accepted.callback_url, submitted.callback_url);
    assert_eq!(
        accepted.registrations,
        [logistics.registration, tax.registration]
    );
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
    let (shutdown, task) = start_projector(&env, &db, store.clone());

    let fx = ReceiptFixture::new();
    publish_all(&producer, &[fx.submitted().into(), fx.validated().into()]).await;
    wait_for_status(&store, &fx, Status::Validated).await;
    let refused = fx.registration_failed(TAX);
    publish_all(&producer, &[refused.clone().into()]).await;
    wait_for_status(&store, &fx, Status::Failed).await;

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
    assert_eq!(
        failed.meta.event_id,
        EventMeta::derived(&refused.meta, "status-changed").event_id
    );
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

    let fx = ReceiptFixture::new();
    let (submitted, validated) = (fx.submitted(), fx.validated());
    // What the crashed projector got done: both events applied, nothing announced.
    for event in [submitted.clone().into(), validated.clone().into()] {
        store.apply(&event).await.expect("apply");
    }
    let (shutdown, task) = start_projector(&env, &db, store.clone());
    publish_all(&producer, &[submitted.into(), validated.clone().into()]).await;

    let distinct = distinct_changes(&status_changes(&env, 1).await);
    let changes: Vec<_> = distinct.iter().map(|(id, c)| (*id, c.from, c.to)).collect();
    assert_eq!(
        changes,
        [(
            EventMeta::derived(&validated.meta, "status-changed").event_id,
            Status::Received,
            Status::Validated
        )]
    );
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
        StatusPolicy::new([receipts_store::conformance::registry(TAX)])
    );

    std::fs::write(&file, "[status]\nrequired_registries = [\"Tax!\"]\n").expect("write config");
    let error = receipts_runtime::load_config::<status_projector::ProjectorConfig>(Some(&file))
        .expect_err("an invalid registry name");
    assert!(error.to_string().contains("required_registries"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
