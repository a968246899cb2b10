use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;
use receipts_domain::Secret;
use serde::{Deserialize, Serialize};

/// How a service reaches Kafka. Every librdkafka property can be overridden through
/// `librdkafka` (e.g. security settings in production).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    /// Prepended to every topic and consumer group name (isolates tests and environments).
    pub topic_prefix: String,
    /// Partitions of topics this service creates at startup.
    pub partitions: i32,
    pub replication_factor: i32,
    /// How long a produce may wait for the broker's acknowledgement.
    #[serde(with = "humantime_serde")]
    pub produce_timeout: Duration,
    /// Consumer group session timeout: how soon a crashed consumer's partitions move.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// How long in-flight messages may take to finish on shutdown or partition revocation.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Longest a consumer's fetch waits for new messages (`fetch.wait.max.ms`). Kafka answers a
    /// waiting fetch as soon as data arrives, so this costs no latency there; tansu waits it
    /// out, so there every pipeline hop may add up to this much (and lower costs idle CPU).
    #[serde(with = "humantime_serde")]
    pub fetch_wait: Duration,
    /// Most a consumer fetches in one request and keeps prefetched (`fetch.max.bytes`,
    /// `queued.max.messages.kbytes`): bounds each consumer's memory when it is behind
    /// (librdkafka's defaults, 50 and 64 MiB, let a backlogged platform grow by hundreds of MiB).
    pub max_prefetch_bytes: u32,
    /// How clients talk to the brokers (`security.protocol`).
    pub security_protocol: SecurityProtocol,
    /// SASL authentication, with `sasl_plaintext` or `sasl_ssl`.
    pub sasl: SaslConfig,
    /// TLS, with `ssl` or `sasl_ssl`.
    pub tls: KafkaTls,
    /// Raw librdkafka properties, applied last.
    pub librdkafka: BTreeMap<String, String>,
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }
}

/// SASL credentials (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SaslConfig {
    pub mechanism: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// TLS to the brokers: the system's roots, plus these CAs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaTls {
    /// A PEM file of CA certificates (`ssl.ca.location`).
    pub ca_file: Option<PathBuf>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            topic_prefix: String::new(),
            partitions: 6,
            replication_factor: 1,
            produce_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            fetch_wait: Duration::from_millis(500),
            max_prefetch_bytes: 8 * 1024 * 1024,
            security_protocol: SecurityProtocol::default(),
            sasl: SaslConfig::default(),
            tls: KafkaTls::default(),
            librdkafka: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    pub(crate) fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id)
            .set("security.protocol", self.security_protocol.as_str());
        if let Some(mechanism) = &self.sasl.mechanism {
            config.set("sasl.mechanism", mechanism);
        }
        if let Some(username) = &self.sasl.username {
            config.set("sasl.username", username);
        }
        if let Some(password) = &self.sasl.password {
            config.set("sasl.password", password.expose());
        }
        if let Some(ca) = &self.tls.ca_file {
            config.set("ssl.ca.location", ca.display().to_string());
        }
        config
    }

    pub(crate) fn apply_overrides(&self, config: &mut ClientConfig) {
        for (key, value) in &self.librdkafka {
            config.set(key, value);
        }
    }

    pub(crate) fn producer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = self.client_config(client_id);
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                self.produce_timeout.as_millis().to_string(),
            );
        self.apply_overrides(&mut config);
        config
    }

    pub(crate) fn consumer_config(&self, client_id: &str, group_id: &str) -> ClientConfig {
        let mut config = self.client_config(client_id);
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set(
                "session.timeout.ms",
                self.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (self.session_timeout.as_millis() / 4).max(100).to_string(),
            )
            .set("fetch.wait.max.ms", self.fetch_wait.as_millis().to_string())
            .set("fetch.max.bytes", self.max_prefetch_bytes.to_string())
            .set(
                "queued.max.messages.kbytes",
                self.max_prefetch_bytes.div_ceil(1024).to_string(),
            )
            // Statistics feed the consumer lag gauges.
            .set("statistics.interval.ms", "5000");
        self.apply_overrides(&mut config);
        config
    }

    /// A consumer group name for `service`, prefixed like topics.
    pub fn group_id(&self, service: &str) -> String {
        format!("{}{service}", self.topic_prefix)
    }
}
