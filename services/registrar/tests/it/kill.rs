//! kill -9 of a real tax-registrar process mid-flight, then a restart: every receipt ends
//! registered, and none was registered twice with the registry.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use mock_registries::{Distribution, Faults, Latency, MockConfig, RegistryKind};
use rdkafka::Message;
use receipts_domain::{
    EventMeta, ReceiptEvent, ReceiptId, ReceiptType, TenantId, Topic, Validated,
};
use receipts_kafka::{TopicNames, TopicSpec, ensure_topics};
use receipts_testkit::{TestEnv, eventually};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(120);
const RECEIPTS: usize = 150;

/// The tax-registrar binary on this test's broker and registry, its admin listener on `admin`,
/// logging to `log`.
pub fn spawn_registrar(
    env: &TestEnv,
    registry_url: &str,
    admin: &str,
    log: &std::path::Path,
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    Command::new(env!("CARGO_BIN_EXE_tax-registrar"))
        .env("RECEIPTS_ADMIN__LISTEN", admin)
        .env("RECEIPTS_REGISTRY__BASE_URL", registry_url)
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
        .env("RECEIPTS_KAFKA__FETCH_WAIT", "100ms")
        .env(
            "RECEIPTS_SCHEMA_REGISTRY__URL",
            env.schema_registry.url.as_str(),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start the tax-registrar binary")
}

async fn registrations(http: &reqwest::Client, mock: &str) -> HashMap<String, u64> {
    let stats: serde_json::Value = http
        .get(format!("{mock}/admin/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    serde_json::from_value(stats["registrations"].clone()).expect("a map")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_flight_then_restart_registers_everything_exactly_once() {
    let env = TestEnv::new();
    // Some latency, so that calls are in flight when the process dies.
    let faults = Faults {
        latency: Latency {
            distribution: Distribution::Uniform,
            mean_ms: 40,
            jitter_ms: 20,
        },
        ..Faults::default()
    };
    let mock = mock_registries::start(MockConfig {
        faults,
        ..MockConfig::ephemeral(RegistryKind::Tax)
    })
    .await
    .expect("mock");
    let names = TopicNames::new(&env.kafka);
    ensure_topics(
        &env.kafka,
        &[TopicSpec::new(&env.kafka, names.of(&Topic::Validated))],
    )
    .await
    .expect("topics");

    let receipt_type = ReceiptType::lookup("retail-receipt/v1").expect("type");
    let tenant = TenantId::parse("acme").expect("tenant");
    let producer = env.producer();
    let mut ids = HashSet::new();
    for seed in 0..RECEIPTS as u64 {
        let doc = receipts_validation::sample::generate(&receipt_type, true, seed);
        let receipt =
            receipts_validation::validate(&receipt_type, &doc, Utc::now()).expect("valid");
        let event: ReceiptEvent = Validated {
            meta: EventMeta::new(ReceiptId::new(), tenant.clone()),
            receipt_type: receipt_type.name().to_owned(),
            receipt,
            extension: None,
        }
        .into();
        ids.insert(event.meta().receipt_id.to_string());
        producer.publish(&event).await.expect("published");
    }

    let log = env.dir.path().join("registrar.log");
    let http = reqwest::Client::new();
    let mut registrar = spawn_registrar(&env, &mock.base_url(), "127.0.0.1:0", &log);
    eventually("registrations under way", WAIT, || async {
        (registrations(&http, &mock.base_url()).await.len() >= 10).then_some(())
    })
    .await;
    registrar.kill().await.expect("kill -9");
    let at_kill = registrations(&http, &mock.base_url()).await.len();
    assert!(
        at_kill < RECEIPTS,
        "the kill landed mid-flight ({at_kill} of {RECEIPTS} registered)"
    );

    env.outlive_dead_members().await;
    let mut registrar = spawn_registrar(&env, &mock.base_url(), "127.0.0.1:0", &log);
    let registered_topic = names.of(&Topic::Registered("tax".parse().expect("name")));
    let codec = env.codec();
    let outcomes = eventually("every receipt registered", WAIT, || async {
        let messages = env.read_topic(&registered_topic, RECEIPTS, Duration::from_secs(5));
        let mut by_receipt: HashMap<String, HashSet<String>> = HashMap::new();
        for m in &messages {
            let event = codec
                .decode(m.payload().expect("payload"))
                .await
                .expect("decodes");
            by_receipt
                .entry(event.meta().receipt_id.to_string())
                .or_default()
                .insert(event.meta().event_id.to_string());
        }
        (by_receipt.len() == RECEIPTS).then_some(by_receipt)
    })
    .await;
    registrar.kill().await.expect("stop");

    assert_eq!(outcomes.keys().cloned().collect::<HashSet<_>>(), ids);
    assert!(
        outcomes.values().all(|events| events.len() == 1),
        "one registered event per receipt (copies share its id)"
    );
    let counts = registrations(&http, &mock.base_url()).await;
    assert_eq!(counts.len(), RECEIPTS);
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(doubled.is_empty(), "registered more than once: {doubled:?}");
}
