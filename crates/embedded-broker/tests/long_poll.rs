//! A waiting fetch is answered when data arrives, not at the end of its wait (tansu alone waits
//! it out), and a fetch that has data is not held.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use receipts_embedded_broker::{BrokerConfig, EmbeddedBroker};

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// Far longer than any answer may take here: a fetch that is only answered at its deadline
/// shows as a receive taking at least this long.
const FETCH_WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_fetch_is_answered_when_a_record_arrives() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = EmbeddedBroker::start(&BrokerConfig {
        listen: free_addr(),
        storage: dir.path().join("broker.db"),
        cluster_id: "long-poll-test".into(),
    })
    .await
    .expect("broker");
    let bootstrap = broker.bootstrap_servers();
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin");
    admin
        .create_topics(
            &[NewTopic::new("waited", 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic");

    tokio::task::block_in_place(|| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "long-poll")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", FETCH_WAIT.as_millis().to_string())
            .create()
            .expect("consumer");
        consumer.subscribe(&["waited"]).expect("subscribe");
        // Joined and fetching (each poll returns within a second; the fetch keeps waiting).
        let joined = Instant::now();
        while consumer.assignment().map_or(0, |a| a.count()) == 0 {
            assert!(joined.elapsed() < Duration::from_secs(30), "never assigned");
            let _ = consumer.poll(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(2));

        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("producer");
        for n in 0..3 {
            let sent = Instant::now();
            producer
                .send(
                    BaseRecord::to("waited")
                        .key("k")
                        .payload(&format!("record {n}")),
                )
                .expect("send");
            producer.flush(Duration::from_secs(10)).expect("flush");
            let received = loop {
                if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                    break message.expect("message");
                }
                // tansu alone answers no sooner than half the wait after the record came.
                assert!(
                    sent.elapsed() < FETCH_WAIT / 4,
                    "record {n} not delivered before the fetch's deadline"
                );
            };
            assert_eq!(
                rdkafka::Message::payload(&received),
                Some(format!("record {n}").as_bytes())
            );
        }
    });
}
