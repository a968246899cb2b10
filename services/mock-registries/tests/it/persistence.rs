use std::io::Write;
use std::path::Path;

use axum::http::StatusCode;
use mock_registries::RegistryKind::{self, Logistics, Tax};
use mock_registries::{Faults, MockConfig};
use serde_json::json;

use crate::helpers::*;

fn persistent(kind: RegistryKind, file: &Path) -> MockConfig {
    MockConfig {
        state_file: Some(file.to_path_buf()),
        ..MockConfig::ephemeral(kind)
    }
}

#[tokio::test]
async fn registrations_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("nested/tax.jsonl");
    let receipt = body(Tax, "r-1", SELLER);

    let mock = spawn_with(persistent(Tax, &file)).await;
    let (status, first) = mock.submit("k-1", &receipt).await;
    assert_eq!(status, StatusCode::CREATED);
    mock.running.stop().await;

    let mock = spawn_with(persistent(Tax, &file)).await;
    assert_eq!(
        mock.submit("k-1", &receipt).await,
        (StatusCode::OK, first.clone())
    );
    assert_eq!(mock.query("k-1").await, (StatusCode::OK, first));
    let mut changed = receipt.clone();
    changed["total_vat"] = json!("0.00");
    assert_eq!(mock.submit("k-1", &changed).await.0, StatusCode::CONFLICT);
    assert_eq!(mock.registrations().await, json!({"r-1": 1}));
    // Fiscal numbers continue where they stopped.
    let (status, second) = mock.submit("k-2", &body(Tax, "r-2", SELLER)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        second["fiscal_number"]
            .as_str()
            .expect("number")
            .ends_with("-00000002"),
        "{second}"
    );
}

#[tokio::test]
async fn a_pending_async_registration_completes_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("logistics.jsonl");
    let shipment = body(Logistics, "r-1", SELLER);

    let mut config = persistent(Logistics, &file);
    config.faults.async_mode.enabled = true;
    config.faults.async_mode.delay_ms = 60_000;
    let mock = spawn_with(config.clone()).await;
    assert_eq!(mock.submit("k", &shipment).await.0, StatusCode::ACCEPTED);
    mock.running.stop().await;

    config.faults.async_mode.delay_ms = 100;
    let mock = spawn_with(config).await;
    assert_eq!(mock.stats().await["pending"], 1);
    let (status, done) = mock.await_completion("k").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(mock.registrations().await, json!({"r-1": 1}));
}

#[tokio::test]
async fn a_torn_last_line_is_cut_off_but_a_corrupt_line_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tax.jsonl");
    let mock = spawn_with(persistent(Tax, &file)).await;
    let (_, first) = mock.submit("k", &body(Tax, "r-1", SELLER)).await;
    mock.running.stop().await;

    let append = |text: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .expect("open");
        f.write_all(text.as_bytes()).expect("write");
    };
    // A crash in the middle of an append.
    append(r#"{"kind":"tax","record":{"key":"k2","rec"#);
    let mock = spawn_with(persistent(Tax, &file)).await;
    assert_eq!(mock.query("k").await, (StatusCode::OK, first));
    assert_eq!(
        mock.submit("k2", &body(Tax, "r-2", SELLER)).await.0,
        StatusCode::CREATED
    );
    mock.running.stop().await;
    let lines = std::fs::read_to_string(&file).expect("read");
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(lines.ends_with('\n'));

    append("garbage\n");
    let error = mock_registries::start(persistent(Tax, &file))
        .await
        .expect_err("corrupt");
    assert!(error.to_string().contains("line 3"), "{error}");

    // Another registry's state file is refused too.
    let error = mock_registries::start(persistent(Logistics, &file))
        .await
        .expect_err("wrong kind");
    assert!(error.to_string().contains("line 1"), "{error}");
}

#[tokio::test]
async fn admin_reset_empties_the_state_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tax.jsonl");
    let mock = spawn_with(persistent(Tax, &file)).await;
    assert_eq!(
        mock.submit("k", &body(Tax, "r-1", SELLER)).await.0,
        StatusCode::CREATED
    );
    let response = mock
        .http
        .post(mock.url("/admin/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(response.status(), 204);
    mock.running.stop().await;

    let mock = spawn_with(persistent(Tax, &file)).await;
    assert_eq!(mock.query("k").await.0, StatusCode::NOT_FOUND);
    assert_eq!(mock.registrations().await, json!({}));
}

#[tokio::test]
async fn an_invalid_fault_configuration_refuses_to_start() {
    let mut config = MockConfig::ephemeral(Tax);
    config.faults = Faults {
        errors: mock_registries::ErrorRates {
            http_500: 2.0,
            ..Default::default()
        },
        ..Faults::default()
    };
    let error = mock_registries::start(config).await.expect_err("invalid");
    assert!(error.to_string().contains("http_500"), "{error}");
}
