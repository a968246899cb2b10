//! The admin listener of a real tax-registrar process: alive at once, ready only while its
//! registry answers (the broker and the schema registry already do), and its metrics in the
//! Prometheus text format.

use std::time::Duration;

use mock_registries::{MockConfig, RegistryKind};
use receipts_testkit::{TestEnv, eventually, free_addr};
use serde_json::Value;

use crate::kill::spawn_registrar;

const WAIT: Duration = Duration::from_secs(60);

/// `path` of the admin listener: status and body, once it answers at all.
async fn get(http: &reqwest::Client, admin: &str, path: &str) -> (u16, String) {
    eventually("the admin listener answers", WAIT, || async {
        let response = http
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_while_the_registry_answers_and_metrics_are_served() {
    let env = TestEnv::new();
    let (admin, registry) = (free_addr().to_string(), free_addr());
    let log = env.dir.path().join("registrar.log");
    let mut registrar = spawn_registrar(&env, &format!("http://{registry}/"), &admin, &log);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    assert_eq!(get(&http, &admin, "/livez").await.0, 200);
    let (status, body) = get(&http, &admin, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let report: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(report["registry"]["ok"], false, "{report}");
    assert!(report["registry"]["error"].is_string(), "{report}");
    assert_eq!(report["broker"]["ok"], true, "{report}");
    assert_eq!(report["schema_registry"]["ok"], true, "{report}");

    let _mock = mock_registries::start(MockConfig {
        listen: registry,
        ..MockConfig::ephemeral(RegistryKind::Tax)
    })
    .await
    .expect("mock on the registry's address");
    eventually("ready once the registry answers", WAIT, || async {
        let (status, _) = get(&http, &admin, "/readyz").await;
        (status == 200).then_some(())
    })
    .await;

    let (status, metrics) = get(&http, &admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# TYPE receipts_build_info gauge"),
        "{metrics}"
    );
    assert!(
        metrics.contains("receipts_build_info{version="),
        "{metrics}"
    );
    assert!(
        registrar.try_wait().expect("status").is_none(),
        "the registrar keeps running: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    registrar.kill().await.expect("kill");
}
