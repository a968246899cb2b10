//! What the gateway's benchmarks share.

use std::net::SocketAddr;
use std::sync::Arc;

use ingest_gateway::{AppState, HttpConfig};
use receipts_avro::{EventCodec, SchemaRegistryConfig};
use receipts_kafka::{EventProducer, KafkaConfig};
use receipts_store::Stores;

/// Whether this is a `cargo bench` run: test runners start bench targets too, and speed is never
/// measured in a test run.
pub fn is_bench_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The gateway's state on `stores`, for a router serving reads only: its producer points at no
/// broker and is never used.
pub fn read_only_state(stores: Stores, addr: SocketAddr) -> AppState {
    let codec = Arc::new(EventCodec::new(&SchemaRegistryConfig::default()).expect("codec"));
    let producer = EventProducer::new(&KafkaConfig::default(), "bench", codec).expect("producer");
    AppState::new(
        stores,
        producer,
        &HttpConfig::default(),
        &receipts_webhooks::WebhookConfig::default(),
        addr,
    )
}
