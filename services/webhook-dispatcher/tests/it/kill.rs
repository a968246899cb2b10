//! kill -9 of a real dispatcher process while its request is in flight, then a restart: the
//! message is sent again with the same `webhook-id`, and the log shows one delivered attempt.

use std::path::Path;
use std::process::Stdio;

use receipts_domain::DeliveryStatus;
use receipts_domain::Status;
use tokio::process::{Child, Command};

use crate::support::{Dispatcher, Receiver, Reply};

fn spawn_dispatcher(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    Command::new(env!("CARGO_BIN_EXE_webhook-dispatcher"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        // Any free port: tests run side by side.
        .env("RECEIPTS_ADMIN__LISTEN", "127.0.0.1:0")
        .env_remove("RECEIPTS_CONFIG")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start the webhook-dispatcher binary")
}

/// The process's configuration: this test's broker, topics, registry and database.
fn write_config(dispatcher: &Dispatcher, path: &Path) {
    let kafka = &dispatcher.env.kafka;
    let toml = format!(
        r#"
[kafka]
bootstrap_servers = "{servers}"
topic_prefix = "{prefix}"
partitions = {partitions}
session_timeout = "6s"
fetch_wait = "100ms"

[schema_registry]
url = "{registry}"

[store]
url = "sqlite://{db}"

[webhooks]
request_timeout = "120s"
allow_private = ["127.0.0.0/8", "::1/128"]
"#,
        servers = kafka.bootstrap_servers,
        prefix = kafka.topic_prefix,
        partitions = kafka.partitions,
        registry = dispatcher.env.schema_registry.url,
        db = dispatcher.db.display(),
    );
    std::fs::write(path, toml).expect("write config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_delivery_redelivers_with_the_same_webhook_id() {
    // The first request is never answered (the process dies waiting); later ones succeed.
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let harness = Dispatcher::environment().await;
    let config = harness.env.dir.path().join("dispatcher.toml");
    write_config(&harness, &config);
    harness.endpoint(&receiver.url("/hooks"), None).await;
    let log = harness.env.dir.path().join("dispatcher.log");

    let mut process = spawn_dispatcher(&config, &log);
    let receipt = harness.change(Status::Accepted, None).await;
    let first = receiver.wait_for(1).await.remove(0);
    process.kill().await.expect("kill -9");

    harness.env.outlive_dead_members().await;
    let mut process = spawn_dispatcher(&config, &log);
    let requests = receiver.wait_for(2).await;
    assert_eq!(
        requests[1].webhook_id(),
        first.webhook_id(),
        "the same webhook-id"
    );
    assert_eq!(requests[1].body, first.body, "the same message");
    let deliveries = harness
        .deliveries_when(receipt, "the delivery confirmed", |d| {
            d.len() == 1 && d[0].status == DeliveryStatus::Delivered
        })
        .await;
    let attempts: Vec<(u32, Option<u16>)> = deliveries[0]
        .attempts
        .iter()
        .map(|a| (a.number, a.http_status))
        .collect();
    assert_eq!(
        attempts,
        [(1, Some(200))],
        "the unfinished attempt was made again"
    );
    assert_eq!(deliveries[0].id, first.webhook_id());
    process.kill().await.expect("stop");
    harness.stop().await;
}
