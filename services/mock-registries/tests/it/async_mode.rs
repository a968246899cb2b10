use std::time::Duration;

use axum::http::StatusCode;
use mock_registries::RegistryKind::{Logistics, Tax};
use serde_json::json;

use crate::helpers::*;

const SECRET: &str = "whsec-test-4711";

fn async_faults(callback_url: Option<&str>, delay_ms: u64) -> serde_json::Value {
    json!({
        "async": {"enabled": true, "delay_ms": delay_ms, "callback_url": callback_url, "secret": SECRET},
        "reject": [{"tax_id": BLACKLISTED, "reason": "seller blacklisted"}],
    })
}

#[tokio::test]
async fn tax_answers_202_then_calls_back_signed_and_replays_the_registration() {
    let mut receiver = callback_receiver(0).await;
    let mock = spawn(Tax).await;
    mock.put_faults(async_faults(Some(&receiver.url), 300))
        .await;
    let receipt = body(Tax, "r-1", SELLER);

    let (status, pending) = mock.submit("k", &receipt).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        pending,
        json!({"status": "PENDING", "request_id": "k", "receipt_ref": "r-1"})
    );
    assert_eq!(
        mock.submit("k", &receipt).await,
        (StatusCode::ACCEPTED, pending.clone())
    );
    assert_eq!(
        mock.query("k").await,
        (StatusCode::ACCEPTED, pending.clone())
    );
    let mut changed = receipt.clone();
    changed["line_count"] = json!(9);
    assert_eq!(mock.submit("k", &changed).await.0, StatusCode::CONFLICT);
    assert_eq!(mock.registrations().await, json!({}));
    assert_eq!(mock.stats().await["pending"], 1);

    let delivery = receiver.next().await;
    verify_tax_signature(&delivery, SECRET);
    assert_eq!(
        delivery.headers["content-type"].to_str().expect("ascii"),
        "application/json"
    );
    let event = delivery.json();
    assert_eq!(event["event"], "fiscal_receipt.registered");
    assert_eq!(event["request_id"], "k");
    assert_eq!(event["receipt_ref"], "r-1");
    assert_ms_utc(&event["registered_at"]);

    let (status, registered) = mock.submit("k", &receipt).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(registered["status"], "REGISTERED");
    assert_eq!(registered["fiscal_number"], event["fiscal_number"]);
    assert_eq!(registered["registered_at"], event["registered_at"]);
    assert_eq!(mock.query("k").await, (StatusCode::OK, registered));
    let stats = mock.stats().await;
    assert_eq!(stats["registrations"], json!({"r-1": 1}));
    assert_eq!(stats["pending"], 0);
    assert_eq!(stats["callbacks"]["delivered"], 1);
    receiver.assert_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn tax_async_rejection_is_called_back_and_then_answered_422() {
    let mut receiver = callback_receiver(0).await;
    let mock = spawn(Tax).await;
    mock.put_faults(async_faults(Some(&receiver.url), 100))
        .await;
    let receipt = body(Tax, "r-1", BLACKLISTED);
    assert_eq!(mock.submit("k", &receipt).await.0, StatusCode::ACCEPTED);

    let delivery = receiver.next().await;
    verify_tax_signature(&delivery, SECRET);
    assert_eq!(
        delivery.json(),
        json!({
            "event": "fiscal_receipt.rejected",
            "request_id": "k",
            "receipt_ref": "r-1",
            "error": {"code": "SELLER_BLACKLISTED", "message": "seller blacklisted"},
        })
    );
    let rejected =
        json!({"error": {"code": "SELLER_BLACKLISTED", "message": "seller blacklisted"}});
    assert_eq!(
        mock.submit("k", &receipt).await,
        (StatusCode::UNPROCESSABLE_ENTITY, rejected.clone())
    );
    assert_eq!(
        mock.query("k").await,
        (StatusCode::UNPROCESSABLE_ENTITY, rejected)
    );
    assert_eq!(mock.registrations().await, json!({}));
}

#[tokio::test]
async fn logistics_calls_back_completed_and_failed_registrations() {
    let mut receiver = callback_receiver(0).await;
    let mock = spawn(Logistics).await;
    mock.put_faults(async_faults(Some(&receiver.url), 100))
        .await;

    let (status, pending) = mock.submit("ok", &body(Logistics, "r-ok", SELLER)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        pending,
        json!({"registration": {"request_id": "ok", "reference": "r-ok", "state": "PROCESSING"}})
    );
    let delivery = receiver.next().await;
    verify_logistics_signature(&delivery, SECRET);
    let event = delivery.json();
    assert_eq!(event["type"], "registration.completed");
    let (status, registered) = mock.query("ok").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event["registration"], registered["registration"]);
    assert_eq!(registered["registration"]["state"], "REGISTERED");

    assert_eq!(
        mock.submit("bad", &body(Logistics, "r-bad", BLACKLISTED))
            .await
            .0,
        StatusCode::ACCEPTED
    );
    let delivery = receiver.next().await;
    verify_logistics_signature(&delivery, SECRET);
    assert_eq!(
        delivery.json(),
        json!({
            "type": "registration.failed",
            "registration": {"request_id": "bad", "reference": "r-bad", "state": "REJECTED"},
            "errors": [{"field": "sender.vat_id", "reason": "seller blacklisted"}],
        })
    );
    assert_eq!(
        mock.query("bad").await,
        (
            StatusCode::BAD_REQUEST,
            json!({"errors": [{"field": "sender.vat_id", "reason": "seller blacklisted"}], "retryable": false})
        )
    );
    assert_eq!(mock.registrations().await, json!({"r-ok": 1}));
}

#[tokio::test]
async fn without_a_callback_url_the_result_is_found_by_querying_again() {
    for kind in [Tax, Logistics] {
        let mock = spawn(kind).await;
        mock.put_faults(async_faults(None, 200)).await;
        let receipt = body(kind, "r-1", SELLER);
        assert_eq!(mock.submit("k", &receipt).await.0, StatusCode::ACCEPTED);
        assert_eq!(mock.query("k").await.0, StatusCode::ACCEPTED);
        let (status, done) = mock.await_completion("k").await;
        assert_eq!(status, StatusCode::OK, "{kind}: {done}");
        // Re-submitting after completion replays the registration.
        assert_eq!(mock.submit("k", &receipt).await, (StatusCode::OK, done));
        assert_eq!(mock.registrations().await, json!({"r-1": 1}));
    }
}

#[tokio::test]
async fn failed_callback_deliveries_are_retried_with_backoff() {
    let mut receiver = callback_receiver(2).await;
    let mock = spawn(Logistics).await;
    mock.put_faults(async_faults(Some(&receiver.url), 50)).await;
    assert_eq!(
        mock.submit("k", &body(Logistics, "r-1", SELLER)).await.0,
        StatusCode::ACCEPTED
    );
    let first = receiver.next().await;
    let second = receiver.next().await;
    let third = receiver.next().await;
    for delivery in [&first, &second, &third] {
        verify_logistics_signature(delivery, SECRET);
        assert_eq!(delivery.json(), first.json());
    }
    assert!(second.at - first.at >= Duration::from_millis(200));
    assert!(third.at - second.at >= Duration::from_millis(400));
    receiver.assert_quiet(Duration::from_millis(500)).await;
    let callbacks = &mock.stats().await["callbacks"];
    assert_eq!(
        *callbacks,
        json!({"delivered": 1, "failed_attempts": 2, "given_up": 0})
    );
}

#[tokio::test]
async fn an_unreachable_callback_url_is_given_up_after_five_attempts() {
    // A port that was just free: connections are refused.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mock = spawn(Tax).await;
    mock.put_faults(async_faults(
        Some(&format!("http://127.0.0.1:{port}/cb")),
        10,
    ))
    .await;
    assert_eq!(
        mock.submit("k", &body(Tax, "r-1", SELLER)).await.0,
        StatusCode::ACCEPTED
    );
    // 200 + 400 + 800 + 1600 ms of backoff.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let callbacks = mock.stats().await["callbacks"].clone();
        if callbacks["given_up"] == 1 {
            assert_eq!(callbacks["failed_attempts"], 5);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{callbacks}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The registration itself happened; the platform finds it by querying.
    assert_eq!(mock.query("k").await.0, StatusCode::OK);
}
