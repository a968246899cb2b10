use std::time::Duration;

use axum::http::StatusCode;
use mock_registries::Faults;
use mock_registries::RegistryKind::{Logistics, Tax};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn calls_list_every_request_in_arrival_order() {
    let mock = spawn(Tax).await;
    let r1 = body(Tax, "r-1", SELLER);
    let mut r1_changed = r1.clone();
    r1_changed["line_count"] = json!(1);

    mock.submit("k1", &r1).await;
    mock.submit("k1", &r1).await;
    mock.query("k1").await;
    mock.submit("k1", &r1_changed).await;
    mock.query("unknown").await;
    mock.put_faults(json!({"outage": true})).await;
    mock.submit("k2", &body(Tax, "r-2", SELLER)).await;
    mock.put_faults(json!({})).await;
    mock.http
        .post(mock.url("/api/v1/fiscal-receipts"))
        .json(&body(Tax, "r-3", SELLER))
        .send()
        .await
        .expect("send");

    let calls = mock.calls().await;
    let outcomes: Vec<_> = calls.iter().map(|c| c["outcome"].as_str()).collect();
    assert_eq!(
        outcomes,
        ["201", "200", "200", "409", "404", "503", "400"].map(Some)
    );
    assert_eq!(
        calls[0],
        json!({
            "at": calls[0]["at"],
            "method": "POST",
            "path": "/api/v1/fiscal-receipts",
            "receipt_ref": "r-1",
            "idempotency_key": "k1",
            "outcome": "201",
        })
    );
    assert_eq!(calls[2]["method"], "GET");
    assert_eq!(calls[2]["path"], "/api/v1/fiscal-receipts/k1");
    assert_eq!(
        calls[2]["receipt_ref"], "r-1",
        "a query names the receipt it found"
    );
    assert_eq!(calls[4]["receipt_ref"], json!(null));
    assert_eq!(calls[6]["idempotency_key"], json!(null));
    assert_eq!(calls[6]["receipt_ref"], "r-3");
    let times: Vec<_> = calls
        .iter()
        .map(|c| {
            assert_ms_utc(&c["at"]);
            chrono::DateTime::parse_from_rfc3339(c["at"].as_str().expect("at")).expect("time")
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    let r1_calls = mock.admin("/admin/calls?receipt_ref=r-1").await;
    assert_eq!(r1_calls.as_array().expect("array").len(), 4);
    let k2_calls = mock.admin("/admin/calls?idempotency_key=k2").await;
    assert_eq!(k2_calls[0]["outcome"], "503");

    let stats = mock.stats().await;
    assert_eq!(stats["requests"], 7);
    assert_eq!(
        stats["outcomes"],
        json!({"201": 1, "200": 2, "409": 1, "404": 1, "503": 1, "400": 1})
    );
    assert_eq!(stats["registry"], "tax");
}

#[tokio::test]
async fn the_arrival_time_is_logged_before_the_added_latency() {
    let mock = spawn(Logistics).await;
    mock.put_faults(json!({"latency": {"mean_ms": 1000}})).await;
    let before = chrono::Utc::now();
    mock.submit("k", &body(Logistics, "r-1", SELLER)).await;
    let at = mock.calls().await[0]["at"].as_str().expect("at").to_owned();
    let at = chrono::DateTime::parse_from_rfc3339(&at).expect("time");
    assert!(at.signed_duration_since(before) < chrono::Duration::milliseconds(1000));
}

#[tokio::test]
async fn a_client_gone_during_the_latency_is_logged_as_aborted() {
    let mock = spawn(Tax).await;
    mock.put_faults(json!({"latency": {"mean_ms": 2000}})).await;
    let impatient = client_with_timeout(Duration::from_millis(200));
    let result = mock
        .try_submit_with(&impatient, "k", &body(Tax, "r-1", SELLER))
        .await;
    assert!(result.expect_err("timed out").is_timeout());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while mock.outcomes().await != ["aborted"] {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            mock.calls().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mock.registrations().await, json!({}));
}

#[tokio::test]
async fn reset_clears_registrations_calls_counters_and_faults() {
    let mock = spawn(Tax).await;
    mock.submit("k", &body(Tax, "r-1", SELLER)).await;
    mock.put_faults(json!({"outage": true, "latency": {"mean_ms": 5}}))
        .await;
    let response = mock
        .http
        .post(mock.url("/admin/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(response.status(), 204);

    let stats = mock.stats().await;
    assert_eq!(stats["registrations"], json!({}));
    assert_eq!(stats["requests"], 0);
    assert_eq!(stats["outcomes"], json!({}));
    assert_eq!(mock.calls().await.len(), 0);
    assert_eq!(
        mock.admin("/admin/faults").await,
        serde_json::to_value(Faults::default()).expect("json")
    );
    let (status, again) = mock.submit("k", &body(Tax, "r-1", SELLER)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        again["fiscal_number"]
            .as_str()
            .expect("n")
            .ends_with("-00000001")
    );
}

#[tokio::test]
async fn reset_cancels_pending_async_work() {
    let mut receiver = callback_receiver(0).await;
    let mock = spawn(Tax).await;
    mock.put_faults(json!({"async": {"enabled": true, "delay_ms": 300, "callback_url": receiver.url, "secret": "s"}}))
        .await;
    assert_eq!(
        mock.submit("k", &body(Tax, "r-1", SELLER)).await.0,
        StatusCode::ACCEPTED
    );
    mock.http
        .post(mock.url("/admin/reset"))
        .send()
        .await
        .expect("reset");
    receiver.assert_quiet(Duration::from_millis(700)).await;
    assert_eq!(mock.query("k").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_admin_answer_during_faults() {
    let mock = spawn(Logistics).await;
    mock.put_faults(
        json!({"outage": true, "errors": {"reset": 1.0}, "latency": {"mean_ms": 3000}}),
    )
    .await;
    let quick = client_with_timeout(Duration::from_secs(2));
    for path in ["/healthz", "/admin/stats", "/admin/calls", "/admin/faults"] {
        let response = quick.get(mock.url(path)).send().await.expect(path);
        assert_eq!(response.status(), 200, "{path}");
    }
    let (_, health) = read(
        quick
            .get(mock.url("/healthz"))
            .send()
            .await
            .expect("healthz"),
    )
    .await;
    assert_eq!(health, json!({"status": "ok", "registry": "logistics"}));
}

#[tokio::test]
async fn a_stopped_mock_releases_its_port_and_a_dropped_one_stops() {
    let mock = spawn(Tax).await;
    let addr = mock.running.addr();
    assert_eq!(mock.running.base_url(), format!("http://{addr}"));
    mock.running.stop().await;
    let rebound = tokio::net::TcpListener::bind(addr).await;
    assert!(rebound.is_ok(), "{rebound:?}");
    drop(rebound);

    let mock = spawn(Logistics).await;
    let url = mock.url("/healthz");
    let http = mock.http.clone();
    drop(mock);
    // Stopping is asynchronous; it is done once the port refuses connections.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while http.get(url.clone()).send().await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped mock still answers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
