use std::net::SocketAddr;
use std::time::Duration;

use receipts::{Platform, PlatformConfig, PlatformError};
use receipts_testkit::free_addr;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

fn embedded_config(
    dir: &std::path::Path,
    kafka: SocketAddr,
    registry: SocketAddr,
    gateway: SocketAddr,
) -> PlatformConfig {
    let mut config = PlatformConfig::default().with_data_dir(dir);
    config.kafka.bootstrap_servers = kafka.to_string();
    config.kafka.partitions = 3;
    config.kafka.session_timeout = Duration::from_secs(6);
    config.schema_registry.url = url(registry);
    config.gateway.listen = gateway;
    ephemeral_mocks(&mut config);
    config
}

type Addresses = (SocketAddr, SocketAddr, SocketAddr);

/// The platform on free ports. Another test process may take a port between `free_addr` and
/// the bind, so a failed start tries again on new ports (in a new directory, since a partly
/// started platform may still hold the old one's files).
async fn first_start() -> (tempfile::TempDir, Addresses, Platform) {
    let mut last_error = None;
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("dir");
        let (kafka, registry, gateway) = (free_addr(), free_addr(), free_addr());
        match Platform::start(embedded_config(dir.path(), kafka, registry, gateway)).await {
            Ok(platform) => return (dir, (kafka, registry, gateway), platform),
            Err(error) => last_error = Some(error),
        }
    }
    panic!("first start: {last_error:?}");
}

/// The platform again on the same addresses, which a moment ago were its own; a port briefly
/// taken by another process's connection is waited for.
async fn restart(
    dir: &std::path::Path,
    kafka: SocketAddr,
    registry: SocketAddr,
    gateway: SocketAddr,
) -> Platform {
    let mut last_error = None;
    for _ in 0..10 {
        match Platform::start(embedded_config(dir, kafka, registry, gateway)).await {
            Ok(platform) => return platform,
            Err(error @ PlatformError::Bind { .. }) => last_error = Some(error),
            Err(error) => panic!("second start: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("second start: {last_error:?}");
}

/// The embedded default keeps everything: stop it, start it again on the same directory, and
/// every receipt, its status and the dev key are still there; an idempotent retry still replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_survives_a_restart() {
    let (dir, (kafka, registry, gateway), platform) = first_start().await;
    let http = http_client();
    let key = platform
        .new_dev_key
        .clone()
        .expect("dev key created on first start");
    let stored_key = std::fs::read_to_string(dir.path().join("dev-api-key")).expect("key file");
    assert_eq!(stored_key.trim(), key);
    let base = format!("http://{}", platform.gateway_addr);
    let stop = CancellationToken::new();
    let running = tokio::spawn(platform.run_until(stop.clone()));

    let examples = manifest();
    let mut ids = Vec::new();
    for example in &examples {
        let body = std::fs::read(examples_dir().join(&example.file)).expect("example");
        let id = submit(
            &http,
            &base,
            &key,
            &example.content_type,
            &example.receipt_type,
            &example.file,
            body,
        )
        .await;
        ids.push((id, example.expect.clone()));
    }
    let mut before = Vec::new();
    for (id, expect) in &ids {
        before.push(wait_for_settled(&http, &base, &key, id, expect).await);
    }
    stop.cancel();
    running.await.expect("join").expect("clean stop");

    let platform = restart(dir.path(), kafka, registry, gateway).await;
    assert!(platform.new_dev_key.is_none(), "the dev key is kept");
    let base = format!("http://{}", platform.gateway_addr);
    let stop = CancellationToken::new();
    let running = tokio::spawn(platform.run_until(stop.clone()));
    for ((id, _), earlier) in ids.iter().zip(&before) {
        let response = http
            .get(format!("{base}/v1/receipts/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200);
        let now: serde_json::Value = response.json().await.expect("json");
        assert_eq!(
            &now, earlier,
            "status and timeline unchanged by the restart"
        );
    }
    // The idempotency record survived too.
    let first = &examples[0];
    let body = std::fs::read(examples_dir().join(&first.file)).expect("example");
    let replayed = submit(
        &http,
        &base,
        &key,
        &first.content_type,
        &first.receipt_type,
        &first.file,
        body,
    )
    .await;
    assert_eq!(replayed, ids[0].0);
    stop.cancel();
    running.await.expect("join").expect("clean stop");
}
