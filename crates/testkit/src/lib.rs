//! Test infrastructure on real parts: a tansu broker (durable SQLite engine) and the embedded
//! Schema Registry, started once per test process on free loopback ports, plus per-test isolation
//! (a unique topic/group prefix and a private directory).
//!
//! Set `TESTKIT_KAFKA=host:port` (and optionally `TESTKIT_SCHEMA_REGISTRY=url`) to run
//! the same tests against an external Kafka-API broker and registry instead; per-test topic and
//! group prefixes keep tests apart on it. (Not named `RECEIPTS_…`: the services read every
//! `RECEIPTS_*` variable as configuration.)
#![forbid(unsafe_code)]

pub mod receiver;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use receipts_avro::{EventCodec, SchemaRegistryConfig};
use receipts_embedded_broker::{BrokerConfig, EmbeddedBroker};
use receipts_kafka::{EventProducer, KafkaConfig};
use receipts_schema_registry::SchemaRegistry;
use tokio_util::sync::CancellationToken;
use url::Url;

/// The broker and registry shared by every test of this process.
#[derive(Debug, Clone)]
pub struct Infra {
    pub bootstrap_servers: String,
    pub schema_registry: Url,
}

static INFRA: OnceLock<Infra> = OnceLock::new();

/// Starts (once) or returns the shared infrastructure.
pub fn infra() -> &'static Infra {
    INFRA.get_or_init(|| {
        init_logging();
        let external_kafka = std::env::var("TESTKIT_KAFKA")
            .ok()
            .filter(|s| !s.is_empty());
        let external_registry = std::env::var("TESTKIT_SCHEMA_REGISTRY")
            .ok()
            .and_then(|s| Url::parse(&s).ok());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-infra".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("test infra runtime");
                runtime.block_on(async move {
                    let dir = scratch_dir("infra");
                    let (bootstrap_servers, _broker) = match external_kafka {
                        Some(servers) => (servers, None),
                        None => {
                            let broker = start_broker(&dir).await;
                            (broker.bootstrap_servers(), Some(broker))
                        }
                    };
                    let schema_registry = match external_registry {
                        Some(url) => url,
                        None => start_registry(&dir).await,
                    };
                    tx.send(Infra {
                        bootstrap_servers,
                        schema_registry,
                    })
                    .expect("test waits for infra");
                    // Serve for the rest of the process.
                    std::future::pending::<()>().await;
                });
            })
            .expect("spawn test infra thread");
        rx.recv_timeout(Duration::from_secs(120))
            .expect("test infrastructure started")
    })
}

async fn start_broker(dir: &Path) -> EmbeddedBroker {
    let mut last_error = None;
    for _ in 0..5 {
        let config = BrokerConfig {
            listen: free_addr(),
            storage: dir.join("broker.db"),
            cluster_id: "receipts-test".into(),
        };
        match EmbeddedBroker::start(&config).await {
            Ok(broker) => return broker,
            Err(error) => last_error = Some(error),
        }
    }
    panic!("cannot start the test broker: {last_error:?}");
}

async fn start_registry(dir: &Path) -> Url {
    let registry = SchemaRegistry::open(dir.join("schema-registry.json"))
        .await
        .expect("open test registry");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind registry");
    let addr = listener.local_addr().expect("registry addr");
    tokio::spawn(receipts_schema_registry::serve(
        registry,
        listener,
        CancellationToken::new(),
    ));
    Url::parse(&format!("http://{addr}")).expect("registry url")
}

/// Messages read so far, and how far each partition has been read.
#[derive(Default)]
struct Read {
    messages: Vec<OwnedMessage>,
    next: HashMap<i32, i64>,
}

impl Read {
    fn poll(&mut self, consumer: &BaseConsumer, wait: Duration) {
        if let Some(Ok(m)) = consumer.poll(wait) {
            let m = m.detach();
            let at = self.next.entry(m.partition()).or_default();
            *at = (*at).max(m.offset() + 1);
            self.messages.push(m);
        }
    }

    /// Whether some partition is not yet read up to its end in `ends`.
    fn behind(&self, ends: &[(i32, i64)]) -> bool {
        ends.iter()
            .any(|(p, high)| self.next.get(p).copied().unwrap_or(0) < *high)
    }
}

/// A loopback address whose port was free a moment ago.
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr")
}

/// A fresh directory under the system temp dir for this test process. Directories left by
/// earlier runs (older than an hour) are removed, since statics are never dropped.
pub fn scratch_dir(label: &str) -> PathBuf {
    let root = std::env::temp_dir().join("receipts-tests");
    if let Ok(entries) = std::fs::read_dir(&root) {
        let stale = SystemTime::now() - Duration::from_secs(3600);
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < stale);
            if old {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = root.join(format!(
        "{label}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn init_logging() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// One test's view of the infrastructure: its own topic prefix and directory.
pub struct TestEnv {
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        let infra = infra();
        let prefix = format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let kafka = KafkaConfig {
            bootstrap_servers: infra.bootstrap_servers.clone(),
            topic_prefix: prefix,
            partitions: 3,
            session_timeout: Duration::from_secs(6),
            drain_timeout: Duration::from_secs(10),
            fetch_wait: Duration::from_millis(100),
            ..KafkaConfig::default()
        };
        let schema_registry = SchemaRegistryConfig {
            url: infra.schema_registry.clone(),
            ..Default::default()
        };
        let dir = tempfile::Builder::new()
            .prefix("receipts-test-")
            .tempdir()
            .expect("test dir");
        Self {
            kafka,
            schema_registry,
            dir,
        }
    }

    /// Waits until the broker has certainly evicted the group members of a process killed with
    /// `kill -9`, before its replacement starts. tansu 0.6 strands partitions otherwise: when a
    /// new member joins while a dead one is still registered, the dead one keeps its partitions
    /// in the new generation, and its later eviction by heartbeat leaves the group "formed"
    /// without a rebalance, so nobody consumes them (Kafka rebalances; see docs/architecture.md).
    pub async fn outlive_dead_members(&self) {
        tokio::time::sleep(self.kafka.session_timeout + Duration::from_secs(1)).await;
    }

    pub fn codec(&self) -> Arc<EventCodec> {
        Arc::new(EventCodec::new(&self.schema_registry).expect("codec"))
    }

    pub fn producer(&self) -> EventProducer {
        EventProducer::new(&self.kafka, "test", self.codec()).expect("producer")
    }

    /// `name` with this test's prefix.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.kafka.topic_prefix)
    }

    /// Every message on `topic` (all partitions, from the beginning), waiting until at least
    /// `expected` have arrived or `timeout` passed.
    pub fn read_topic(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<OwnedMessage> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.bootstrap_servers)
            .set(
                "group.id",
                format!(
                    "{}reader-{}",
                    self.kafka.topic_prefix,
                    uuid::Uuid::new_v4().simple()
                ),
            )
            .set("enable.auto.commit", "false")
            .create()
            .expect("reader consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        let mut assignment = TopicPartitionList::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                assignment
                    .add_partition_offset(topic, p.id(), Offset::Beginning)
                    .expect("assign offset");
            }
        }
        consumer.assign(&assignment).expect("assign");
        let deadline = Instant::now() + timeout;
        let mut read = Read::default();
        while read.messages.len() < expected && Instant::now() < deadline {
            read.poll(&consumer, Duration::from_millis(100));
        }
        // Then everything written so far (duplicates included), so that copies of a message
        // cannot stand in for messages not read yet.
        let ends: Vec<(i32, i64)> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions())
            .filter_map(|p| {
                consumer
                    .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                    .ok()
                    .map(|(_, high)| (p.id(), high))
            })
            .collect();
        while read.behind(&ends) && Instant::now() < deadline {
            read.poll(&consumer, Duration::from_millis(100));
        }
        // And whatever arrives right after (late duplicates), briefly.
        let settle = Instant::now() + Duration::from_millis(300);
        while Instant::now() < settle {
            read.poll(&consumer, Duration::from_millis(50));
        }
        read.messages
    }

    /// The number of messages ever written to `topic` (sum of high watermarks), 0 if it does not exist.
    pub fn message_count(&self, topic: &str) -> i64 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.bootstrap_servers)
            .create()
            .expect("watermark consumer");
        let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
            return 0;
        };
        let mut total = 0;
        for t in metadata.topics() {
            for p in t.partitions() {
                if let Ok((low, high)) =
                    consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                {
                    total += high - low.min(high);
                }
            }
        }
        total
    }
}

impl TestEnv {
    /// Waits until consumer group `service` (this test's prefix added) has committed every
    /// message of `topic` so far: the observable sign that it has finished with all of them,
    /// rather than a guess at how long that takes.
    pub async fn wait_until_consumed(&self, service: &str, topic: &str) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.bootstrap_servers)
            .set("group.id", self.kafka.group_id(service))
            .set("enable.auto.commit", "false")
            .create()
            .expect("offset reader");
        eventually(
            &format!("{service} to consume {topic} to its end"),
            Duration::from_secs(90),
            || async { consumed_to_end(&consumer, topic).then_some(()) },
        )
        .await;
    }
}

/// Whether `consumer`'s group has committed up to the end of every partition of `topic`.
fn consumed_to_end(consumer: &BaseConsumer, topic: &str) -> bool {
    let wait = Duration::from_secs(5);
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), wait) else {
        return false;
    };
    let mut list = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        list.add_partition(topic, p.id());
        match consumer.fetch_watermarks(topic, p.id(), wait) {
            Ok((_, high)) => ends.push((p.id(), high)),
            Err(_) => return false,
        }
    }
    let Ok(committed) = consumer.committed_offsets(list, wait) else {
        return false;
    };
    ends.iter().all(|(partition, high)| {
        // A partition nothing was committed for has had nothing consumed: offset 0.
        let at = match committed
            .find_partition(topic, *partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(at)) => at,
            _ => 0,
        };
        at >= *high
    })
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`. For waiting on
/// asynchronous outcomes; the timeout only bounds a hang, it never measures speed.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Helper for message headers in assertions.
pub fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Shorthand for message keys in assertions.
pub fn key(message: &OwnedMessage) -> String {
    String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned()
}

/// A Python virtual environment under `target/tools/<name>` with `requirements` installed from
/// PyPI (pinned versions): built once in a private directory and renamed into place, because
/// nextest runs tests as parallel processes. Returns the venv's directory.
pub fn python_venv(name: &str, requirements: &[&str]) -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/tools")
        .join(name);
    if venv.join(".installed").exists() {
        return venv;
    }
    std::fs::create_dir_all(venv.parent().expect("tools dir")).expect("create target/tools");
    let building = venv.with_extension(format!("building-{}", std::process::id()));
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&building)
        .status()
        .expect("python3 (with venv) is installed");
    assert!(status.success(), "creating the venv {name}");
    let status = Command::new(building.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(requirements)
        .status()
        .expect("pip runs");
    assert!(status.success(), "installing {requirements:?} from PyPI");
    std::fs::write(building.join(".installed"), "").expect("mark installed");
    if std::fs::rename(&building, &venv).is_err() {
        if !venv.join(".installed").exists() {
            // A stale, half-built venv from an interrupted run: replace it.
            std::fs::remove_dir_all(&venv).expect("remove stale venv");
            std::fs::rename(&building, &venv).expect("move venv into place");
        } else {
            // Another test process won the race; use its venv.
            std::fs::remove_dir_all(&building).expect("remove spare venv");
        }
    }
    venv
}
