//! The conformance suite against a live ScyllaDB (or Cassandra) cluster, run by
//! `scripts/test-scylla` with `SCYLLA_URI=scylla://host:9042/<keyspace>[?dc=<dc>]`. The keyspace
//! is created and migrated first; every test uses its own tenants and ids, so they share it.

use receipts_store::{StoreConfig, Stores};

async fn open() -> (Stores, ()) {
    let url = std::env::var("SCYLLA_URI")
        .expect("SCYLLA_URI names the cluster (run scripts/test-scylla)");
    let config = StoreConfig {
        url,
        ..StoreConfig::default()
    };
    Stores::migrate(&config).await.expect("migrate");
    (Stores::open(&config).await.expect("open"), ())
}

receipts_store::conformance_suite!(open);

/// Migrating again changes nothing, and a service finds the schema it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent() {
    let (stores, ()) = open().await;
    let config = StoreConfig {
        url: std::env::var("SCYLLA_URI").expect("SCYLLA_URI"),
        ..StoreConfig::default()
    };
    let version = Stores::migrate(&config).await.expect("again");
    assert_eq!(Stores::migrate(&config).await.expect("and again"), version);
    stores.health.ping().await.expect("ping");
    assert_eq!(stores.health.backend(), "scylla");
}
