//! The `mock-registries` binary: configuration layering, both mocks, SIGTERM.

use std::process::Stdio;
use std::time::{Duration, Instant};

use mock_registries::RegistryKind::{Logistics, Tax};
use tokio::process::Command;

use crate::helpers::*;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn command(config: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mock-registries"));
    command
        .arg("--config")
        .arg(config)
        .env_clear()
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn wait_healthy(url: &str) {
    let http = client_with_timeout(Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "{url} never became healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_binary_runs_both_mocks_until_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tax_port, logistics_port) = (free_port(), free_port());
    let config = dir.path().join("mocks.toml");
    std::fs::write(
        &config,
        format!(
            "[tax]\nlisten = \"127.0.0.1:{tax_port}\"\n\
             [tax.faults]\nretry_after_seconds = 9\n\
             [logistics]\nlisten = \"127.0.0.1:{logistics_port}\"\n\
             [telemetry]\nlog_format = \"pretty\"\n"
        ),
    )
    .expect("config");
    let mut child = command(&config)
        .env("RECEIPTS_LOGISTICS__FAULTS__OUTAGE", "true")
        .spawn()
        .expect("spawn");
    let tax_base = format!("http://127.0.0.1:{tax_port}");
    let logistics_base = format!("http://127.0.0.1:{logistics_port}");
    wait_healthy(&format!("{tax_base}/healthz")).await;
    wait_healthy(&format!("{logistics_base}/healthz")).await;

    let http = client();
    let response = http
        .post(format!("{tax_base}/api/v1/fiscal-receipts"))
        .header("Idempotency-Key", "k")
        .json(&body(Tax, "r-1", SELLER))
        .send()
        .await
        .expect("tax");
    assert_eq!(response.status(), 201);
    let faults: serde_json::Value = http
        .get(format!("{tax_base}/admin/faults"))
        .send()
        .await
        .expect("faults")
        .json()
        .await
        .expect("json");
    assert_eq!(faults["retry_after_seconds"], 9, "from the file");
    let response = http
        .put(format!("{logistics_base}/v2/registrations/k"))
        .json(&body(Logistics, "r-1", SELLER))
        .send()
        .await
        .expect("logistics");
    assert_eq!(response.status(), 503, "outage from the environment");

    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_binary_refuses_a_bad_configuration_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("mocks.toml");
    std::fs::write(&config, "[tax.faults]\noutgae = true\n").expect("config");
    let output = tokio::time::timeout(Duration::from_secs(15), command(&config).output())
        .await
        .expect("exits")
        .expect("output");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("outgae"), "{stderr}");

    std::fs::write(&config, "[logistics]\nkind = \"tax\"\n").expect("config");
    let output = command(&config).output().await.expect("output");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("logistics.kind"), "{stderr}");
}
