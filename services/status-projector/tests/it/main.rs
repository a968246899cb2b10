//! The projector as a real process against a real broker: crash it, restart it, and check that
//! no event was lost and none is counted twice.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use receipts_domain::{
    EventKind, EventMeta, IdempotencyKey, Reason, ReceiptEvent, ReceiptId, Rejected, Status,
    Submitted, TenantId,
};
use receipts_kafka::{EventProducer, TopicNames, TopicSpec, ensure_topics};
use receipts_store::{SqliteConfig, SqliteStore, StatusStore};
use receipts_testkit::{TestEnv, eventually};
use tokio::process::{Child, Command};

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
    let names = TopicNames::new(&env.kafka);
    let topics: Vec<TopicSpec> = EventKind::ALL
        .iter()
        .map(|&k| TopicSpec::new(&env.kafka, names.event(k)))
        .collect();
    ensure_topics(&env.kafka, &topics).await.expect("topics");
    let producer = env.producer();
    let db = env.dir.path().join("receipts.db");
    let log = env.dir.path().join("projector.log");
    let store = Arc::new(
        SqliteStore::open(&SqliteConfig::new(&db))
            .await
            .expect("store"),
    );

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_delivered_twice_changes_nothing() {
    let env = TestEnv::new();
    let producer = env.producer();
    let db = env.dir.path().join("receipts.db");
    let store: Arc<SqliteStore> = Arc::new(
        SqliteStore::open(&SqliteConfig::new(&db))
            .await
            .expect("store"),
    );
    let config = status_projector::ProjectorConfig {
        kafka: env.kafka.clone(),
        schema_registry: env.schema_registry.clone(),
        store: SqliteConfig::new(&db),
        ..Default::default()
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(status_projector::run(
        config,
        store.clone(),
        shutdown.clone(),
    ));

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
