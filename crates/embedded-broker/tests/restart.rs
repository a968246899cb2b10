//! `receipts up` killed with SIGKILL: the broker and every member of its consumer groups die
//! together, and the restarted consumers must get their partitions at once, not be held (or,
//! with tansu 0.6, stranded without partitions) by members that will never come back.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use receipts_embedded_broker::{BrokerConfig, EmbeddedBroker};

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr")
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "crashed")
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Far longer than the test waits: a dead member still counted would hold the group.
        .set("session.timeout.ms", "60000")
        .create()
        .expect("consumer");
    consumer.subscribe(&["topic"]).expect("subscribe");
    consumer
}

/// Polls until the consumer owns a partition; false if it owns none after `timeout`.
fn assigned(consumer: &BaseConsumer, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let _ = consumer.poll(Duration::from_millis(100));
        if consumer.assignment().is_ok_and(|a| a.count() > 0) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_broker_does_not_keep_the_dead_members_of_its_groups() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = |listen| BrokerConfig {
        listen,
        storage: dir.path().join("broker.db"),
        cluster_id: "restart-test".into(),
    };

    let broker = EmbeddedBroker::start(&config(free_addr()))
        .await
        .expect("broker");
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .expect("admin");
    admin
        .create_topics(
            &[NewTopic::new("topic", 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic");
    drop(admin);
    let first = tokio::task::block_in_place(|| {
        let first = consumer(&broker.bootstrap_servers());
        assert!(
            assigned(&first, Duration::from_secs(30)),
            "first member assigned"
        );
        first
    });
    // The broker and the group's only member die together: the member never leaves.
    broker.stop().await;
    std::mem::forget(first);

    // Restarted on the same storage, on another port, so the dead member cannot come back.
    let broker = EmbeddedBroker::start(&config(free_addr()))
        .await
        .expect("restarted broker");
    tokio::task::block_in_place(|| {
        let second = consumer(&broker.bootstrap_servers());
        assert!(
            assigned(&second, Duration::from_secs(15)),
            "the restarted member got no partition"
        );
    });
}
