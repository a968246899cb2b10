//! `receipts up` killed with SIGKILL in the middle of a registry outage and restarted at once on
//! the same data: every receipt submitted during the outage still ends ACCEPTED, registered
//! exactly once with each registry. A crash only delays.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use receipts_testkit::{eventually, free_addr};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::helpers::*;

const RECEIPTS: u64 = 40;

/// The addresses `receipts up` serves on, kept across the restart.
#[derive(Clone, Copy)]
struct Ports {
    kafka: SocketAddr,
    registry: SocketAddr,
    gateway: SocketAddr,
    tax: SocketAddr,
    logistics: SocketAddr,
}

impl Ports {
    fn free() -> Self {
        Self {
            kafka: free_addr(),
            registry: free_addr(),
            gateway: free_addr(),
            tax: free_addr(),
            logistics: free_addr(),
        }
    }
}

fn spawn_up(dir: &Path, ports: Ports, run: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("receipts-up-{run}.log"))).expect("log");
    Command::new(env!("CARGO_BIN_EXE_receipts"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(dir.join("receipts.toml"))
        .arg("up")
        .env("RECEIPTS_KAFKA__BOOTSTRAP_SERVERS", ports.kafka.to_string())
        .env(
            "RECEIPTS_SCHEMA_REGISTRY__URL",
            url(ports.registry).as_str(),
        )
        .env("RECEIPTS_GATEWAY__LISTEN", ports.gateway.to_string())
        .env("RECEIPTS_GATEWAY__PUBLIC_URL", url(ports.gateway).as_str())
        .env("RECEIPTS_MOCKS__TAX__LISTEN", ports.tax.to_string())
        .env(
            "RECEIPTS_MOCKS__LOGISTICS__LISTEN",
            ports.logistics.to_string(),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start receipts up")
}

/// `receipts up` on `ports`, once its gateway is ready; `None` if it exited first (a port was
/// taken meanwhile).
async fn start(dir: &Path, ports: Ports, run: &str) -> Option<Child> {
    let http = http_client();
    let mut child = spawn_up(dir, ports, run);
    let ready = eventually("the gateway ready, or receipts up gone", WAIT, || {
        let exited = child.try_wait().expect("child status").is_some();
        let http = &http;
        async move {
            if exited {
                return Some(false);
            }
            let response = http
                .get(format!("http://{}/readyz", ports.gateway))
                .send()
                .await;
            response
                .is_ok_and(|r| r.status().is_success())
                .then_some(true)
        }
    })
    .await;
    ready.then_some(child)
}

async fn registrations(http: &reqwest::Client, mock: SocketAddr) -> Value {
    let stats: Value = http
        .get(format!("http://{mock}/admin/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    stats["registrations"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_outage_then_a_quick_restart_only_delays() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("receipts.toml"),
        "[retry]\nladder = [\"1s\", \"2s\", \"4s\"]\nhorizon = \"1h\"\n",
    )
    .expect("config");
    let mut ports = Ports::free();
    let mut first = None;
    for _ in 0..5 {
        first = start(dir.path(), ports, "first").await;
        if first.is_some() {
            break;
        }
        ports = Ports::free();
    }
    let mut first = first.expect("receipts up started");
    let http = http_client();
    let base = format!("http://{}", ports.gateway);
    let key = std::fs::read_to_string(dir.path().join("dev-api-key"))
        .expect("dev key")
        .trim()
        .to_owned();
    let tax = format!("http://{}", ports.tax);
    let outage = http
        .put(format!("{tax}/admin/faults"))
        .json(&json!({"outage": true}))
        .send()
        .await
        .expect("faults");
    assert!(outage.status().is_success());

    let t = receipts_domain::ReceiptType::lookup("retail-receipt/v1").expect("type");
    let mut ids = Vec::new();
    for seed in 0..RECEIPTS {
        let body = receipts_validation::sample::generate(&t, true, 7_000 + seed);
        ids.push(
            submit(
                &http,
                &base,
                &key,
                "application/json",
                "retail-receipt/v1",
                &format!("crash-{seed}"),
                body,
            )
            .await,
        );
    }
    // Every receipt has met the outage: their registrations wait on the retry tiers.
    eventually("every receipt to hit the outage", WAIT, || async {
        let calls: Value = http
            .get(format!("{tax}/admin/calls"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let failed: std::collections::HashSet<&str> = calls
            .as_array()?
            .iter()
            .filter(|c| c["outcome"] == "503")
            .filter_map(|c| c["receipt_ref"].as_str())
            .collect();
        ids.iter()
            .all(|id| failed.contains(id.as_str()))
            .then_some(())
    })
    .await;

    first.kill().await.expect("kill -9");
    // Back at once, well within the consumer groups' session timeout: the dead process's
    // members are still registered with the broker.
    let mut second = None;
    for _ in 0..10 {
        second = start(dir.path(), ports, "second").await;
        if second.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let mut second = second.expect("receipts up restarted");
    // The mock comes back without its outage.
    for id in &ids {
        let receipt = wait_for_status(&http, &base, &key, id, &["ACCEPTED", "FAILED"]).await;
        assert_eq!(receipt["status"], "ACCEPTED", "{receipt}");
    }
    for mock in [ports.tax, ports.logistics] {
        let counts = registrations(&http, mock).await;
        for id in &ids {
            assert_eq!(counts[id], 1, "{mock}: {id} registered exactly once");
        }
    }
    second.kill().await.expect("stop");
}
