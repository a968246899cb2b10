use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::Utc;
use mock_registries::RegistryKind::{self, Logistics, Tax};
use serde_json::{Value, json};

use crate::helpers::*;

fn unavailable(kind: RegistryKind) -> Value {
    match kind {
        Tax => {
            json!({"error": {"code": "UNAVAILABLE", "message": "the fiscal registry is temporarily unavailable"}})
        }
        Logistics => json!({"fault": "maintenance"}),
    }
}

#[tokio::test]
async fn outage_is_switched_on_and_off_through_the_admin_api() {
    for kind in [Tax, Logistics] {
        let mock = spawn(kind).await;
        let receipt = body(kind, "r-1", SELLER);

        let faults = mock.put_faults(json!({"outage": true})).await;
        assert_eq!(faults["outage"], true);
        assert_eq!(faults["retry_after_seconds"], 1, "defaults for the rest");
        assert_eq!(mock.admin("/admin/faults").await, faults);

        let (status, error) = mock.submit("k", &receipt).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error, unavailable(kind));
        assert_eq!(mock.query("k").await.0, StatusCode::SERVICE_UNAVAILABLE);
        // The admin API and health check are never faulted.
        assert_eq!(mock.registrations().await, json!({}));
        assert_eq!(
            mock.http
                .get(mock.url("/healthz"))
                .send()
                .await
                .expect("healthz")
                .status(),
            200
        );

        mock.put_faults(json!({"outage": false})).await;
        assert_eq!(mock.submit("k", &receipt).await.0, StatusCode::CREATED);
        assert_eq!(mock.registrations().await, json!({"r-1": 1}));
        assert_eq!(mock.outcomes().await, ["503", "503", "201"]);
    }
}

#[tokio::test]
async fn a_current_outage_window_answers_503_and_a_past_one_does_not() {
    let mock = spawn(Tax).await;
    let now = Utc::now();
    let past = json!({"from": now - chrono::Duration::hours(2), "until": now - chrono::Duration::hours(1)});
    let current = json!({"from": now - chrono::Duration::minutes(1), "until": now + chrono::Duration::hours(1)});

    mock.put_faults(json!({"outage_windows": [past, current]}))
        .await;
    let (status, error) = mock.submit("k", &body(Tax, "r-1", SELLER)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error, unavailable(Tax));

    mock.put_faults(json!({"outage_windows": [past]})).await;
    assert_eq!(
        mock.submit("k", &body(Tax, "r-1", SELLER)).await.0,
        StatusCode::CREATED
    );

    // A window that ends a moment from now: down, then back up by itself.
    let until = Utc::now() + chrono::Duration::seconds(2);
    let short = json!({"from": now - chrono::Duration::minutes(1), "until": until});
    mock.put_faults(json!({"outage_windows": [short]})).await;
    assert_eq!(
        mock.submit("k2", &body(Tax, "r-2", SELLER)).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let remaining = (until - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(remaining + Duration::from_millis(50)).await;
    assert_eq!(
        mock.submit("k2", &body(Tax, "r-2", SELLER)).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn injected_http_errors_have_each_registrys_bodies() {
    let cases = [
        (
            Tax,
            "http_500",
            500,
            json!({"error": {"code": "INTERNAL", "message": "internal error"}}),
        ),
        (Tax, "http_503", 503, unavailable(Tax)),
        (
            Tax,
            "http_429",
            429,
            json!({"error": {"code": "RATE_LIMITED", "message": "too many requests, retry later"}}),
        ),
        (
            Logistics,
            "http_500",
            500,
            json!({"fault": "internal error"}),
        ),
        (Logistics, "http_503", 503, unavailable(Logistics)),
        (Logistics, "http_429", 429, json!({"fault": "throttled"})),
    ];
    for (kind, rate, status, expected) in cases {
        let mock = spawn(kind).await;
        mock.put_faults(json!({"errors": {rate: 1.0}, "retry_after_seconds": 7}))
            .await;
        let receipt = body(kind, "r-1", SELLER);
        let response = mock.try_submit("k", &receipt).await.expect("answered");
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("ascii").to_owned());
        let (got, error) = read(response).await;
        assert_eq!(got.as_u16(), status, "{kind} {rate}");
        assert_eq!(error, expected, "{kind} {rate}");
        assert_eq!(
            retry_after.as_deref(),
            (status == 429).then_some("7"),
            "{kind} {rate}"
        );
        assert_eq!(mock.query("k").await.0.as_u16(), status);

        // A fault never uses the key: the retry registers.
        mock.put_faults(json!({})).await;
        assert_eq!(mock.submit("k", &receipt).await.0, StatusCode::CREATED);
        assert_eq!(mock.registrations().await, json!({"r-1": 1}));
        let outcome = status.to_string();
        assert_eq!(
            mock.outcomes().await,
            [outcome.as_str(), outcome.as_str(), "201"]
        );
    }
}

/// The I/O error under a client error, if any.
fn io_error_kind(error: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = current.source();
    }
    None
}

#[tokio::test]
async fn reset_drops_the_connection_without_any_response() {
    for kind in [Tax, Logistics] {
        let mock = spawn(kind).await;
        let receipt = body(kind, "r-1", SELLER);
        // A first, normal request leaves a pooled keep-alive connection behind.
        assert_eq!(
            mock.submit("warm", &body(kind, "r-0", SELLER)).await.0,
            StatusCode::CREATED
        );

        mock.put_faults(json!({"errors": {"reset": 1.0}})).await;
        for _ in 0..2 {
            let error = mock
                .try_submit("k", &receipt)
                .await
                .expect_err("no HTTP response");
            assert!(error.status().is_none(), "{error:?}");
            assert_eq!(
                io_error_kind(&error),
                Some(std::io::ErrorKind::ConnectionReset),
                "{error:?}"
            );
            assert!(!error.is_timeout(), "{error:?}");
        }
        mock.put_faults(json!({})).await;
        assert_eq!(mock.submit("k", &receipt).await.0, StatusCode::CREATED);
        assert_eq!(mock.registrations().await, json!({"r-0": 1, "r-1": 1}));
        // Exactly the calls the client made: it did not retry behind our back.
        assert_eq!(mock.outcomes().await, ["201", "reset", "reset", "201"]);
    }
}

#[tokio::test]
async fn timeout_holds_the_request_until_the_client_gives_up() {
    let mock = spawn(Logistics).await;
    mock.put_faults(json!({"errors": {"timeout": 1.0}, "timeout_seconds": 30}))
        .await;
    let impatient = client_with_timeout(Duration::from_millis(600));
    let started = Instant::now();
    let error = mock
        .try_submit_with(&impatient, "k", &body(Logistics, "r-1", SELLER))
        .await
        .expect_err("held");
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(mock.outcomes().await, ["timeout"]);
    assert_eq!(mock.registrations().await, json!({}));

    // After `timeout_seconds` the mock itself gives up: the connection closes unanswered.
    mock.put_faults(json!({"errors": {"timeout": 1.0}, "timeout_seconds": 1}))
        .await;
    let started = Instant::now();
    let error = mock
        .try_submit("k", &body(Logistics, "r-1", SELLER))
        .await
        .expect_err("closed unanswered");
    assert!(!error.is_timeout(), "{error:?}");
    assert!(error.status().is_none());
    assert!(started.elapsed() >= Duration::from_secs(1));

    mock.put_faults(json!({})).await;
    assert_eq!(
        mock.submit("k", &body(Logistics, "r-1", SELLER)).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn fail_first_faults_each_key_then_serves_it() {
    let mock = spawn(Tax).await;
    mock.put_faults(json!({"fail_first": {"count": 2, "kind": "http_503"}}))
        .await;
    for key in ["a", "b"] {
        let receipt = body(Tax, key, SELLER);
        assert_eq!(
            mock.submit(key, &receipt).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            mock.submit(key, &receipt).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(mock.submit(key, &receipt).await.0, StatusCode::CREATED);
        assert_eq!(mock.submit(key, &receipt).await.0, StatusCode::OK);
    }
    assert_eq!(mock.registrations().await, json!({"a": 1, "b": 1}));

    // Replacing the faults restarts the count; other kinds work the same way.
    mock.put_faults(
        json!({"fail_first": {"count": 1, "kind": "http_429"}, "retry_after_seconds": 3}),
    )
    .await;
    let response = mock
        .try_submit("c", &body(Tax, "c", SELLER))
        .await
        .expect("answered");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(
        mock.submit("c", &body(Tax, "c", SELLER)).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn fail_first_can_reset_connections() {
    let mock = spawn(Logistics).await;
    mock.put_faults(json!({"fail_first": {"count": 2, "kind": "reset"}}))
        .await;
    let shipment = body(Logistics, "r-1", SELLER);
    assert!(mock.try_submit("k", &shipment).await.is_err());
    assert!(mock.try_submit("k", &shipment).await.is_err());
    assert_eq!(mock.submit("k", &shipment).await.0, StatusCode::CREATED);
    assert_eq!(mock.outcomes().await, ["reset", "reset", "201"]);
}

async fn timed_submit(mock: &Mock, key: &str) -> (StatusCode, Duration) {
    let started = Instant::now();
    let (status, _) = mock.submit(key, &body(mock.kind, key, SELLER)).await;
    (status, started.elapsed())
}

#[tokio::test]
async fn latency_is_added_to_every_answer_faulted_or_not() {
    let mock = spawn(Tax).await;
    mock.put_faults(json!({"latency": {"distribution": "fixed", "mean_ms": 300}}))
        .await;
    let (status, took) = timed_submit(&mock, "a").await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let started = Instant::now();
    assert_eq!(mock.query("a").await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    mock.put_faults(json!({"latency": {"distribution": "fixed", "mean_ms": 300}, "outage": true}))
        .await;
    let (status, took) = timed_submit(&mock, "b").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took >= Duration::from_millis(300), "{took:?}");

    mock.put_faults(
        json!({"latency": {"distribution": "uniform", "mean_ms": 400, "jitter_ms": 100}}),
    )
    .await;
    for key in ["c", "d", "e"] {
        let (_, took) = timed_submit(&mock, key).await;
        assert!(took >= Duration::from_millis(300), "{took:?}");
    }

    // A normal distribution without spread is its mean.
    mock.put_faults(json!({"latency": {"distribution": "normal", "mean_ms": 250, "jitter_ms": 0}}))
        .await;
    let (_, took) = timed_submit(&mock, "f").await;
    assert!(took >= Duration::from_millis(250), "{took:?}");

    // Exponential: no lower bound to check, but it is accepted and applied.
    mock.put_faults(json!({"latency": {"distribution": "exponential", "mean_ms": 20}}))
        .await;
    assert_eq!(timed_submit(&mock, "g").await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_fault_configurations_are_refused_with_a_message() {
    let mock = spawn(Tax).await;
    mock.put_faults(json!({"outage": true})).await;
    let bodies = [
        "{not json",
        r#"{"outgae": true}"#,
        r#"{"errors": {"http_500": 0.7, "http_503": 0.7}}"#,
        r#"{"fail_first": {"count": 1, "kind": "http_502"}}"#,
        r#"{"latency": {"distribution": "gamma"}}"#,
        r#"{"async": {"enabled": true, "callback_url": "http://127.0.0.1:1/cb"}}"#,
    ];
    for body in bodies {
        let response = mock
            .http
            .put(mock.url("/admin/faults"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        let (status, error) = read(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            error["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
    // The previous configuration is still in effect.
    assert_eq!(mock.admin("/admin/faults").await["outage"], true);
}

#[tokio::test]
async fn random_error_rates_are_mixed_with_successes() {
    let mock = spawn(Tax).await;
    mock.put_faults(json!({"errors": {"http_500": 0.25, "http_503": 0.25}}))
        .await;
    let mut statuses = Vec::new();
    for i in 0..60 {
        let key = format!("k{i}");
        statuses.push(mock.submit(&key, &body(Tax, &key, SELLER)).await.0.as_u16());
    }
    // With p = 0.5 each, 60 draws all equal has probability ~1e-18.
    assert!(statuses.contains(&201), "{statuses:?}");
    assert!(statuses.iter().any(|s| *s >= 500), "{statuses:?}");
    assert!(statuses.iter().all(|s| [201, 500, 503].contains(s)));
    let registered = statuses.iter().filter(|s| **s == 201).count();
    let stats = mock.stats().await;
    assert_eq!(
        stats["registrations"].as_object().expect("map").len(),
        registered
    );
}
