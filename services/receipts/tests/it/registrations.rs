use std::time::Duration;

use receipts_kafka::RetryPolicy;
use serde_json::json;

use crate::helpers::*;

const SHORT_LADDER: fn(&mut receipts::PlatformConfig) = |config| {
    config.retry = RetryPolicy {
        ladder: vec![Duration::from_millis(300), Duration::from_millis(600)],
        horizon: Duration::from_secs(3600),
        ..RetryPolicy::default()
    };
};

/// Receipts submitted during a registry outage wait, then all end ACCEPTED once it is over, each
/// registered exactly once with each registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_delays_receipts_which_then_end_accepted_registered_once() {
    let platform = RunningPlatform::start_with(SHORT_LADDER).await;
    platform.put_faults("tax", json!({"outage": true})).await;
    let mut ids = Vec::new();
    for seed in 0..8 {
        ids.push(platform.submit_sample(1000 + seed).await);
    }
    receipts_testkit::eventually("every receipt to hit the outage", WAIT, || async {
        let calls = platform.admin("tax", "/admin/calls").await;
        let failed: usize = calls
            .as_array()?
            .iter()
            .filter(|c| c["outcome"] == "503")
            .count();
        (failed >= ids.len()).then_some(())
    })
    .await;
    // Valid, registered with logistics, waiting for the tax registry.
    for id in &ids {
        wait_for_status(
            &platform.http,
            &platform.base,
            &platform.key,
            id,
            &["VALIDATED"],
        )
        .await;
    }
    platform.put_faults("tax", json!({"outage": false})).await;
    for id in &ids {
        let receipt = wait_for_status(
            &platform.http,
            &platform.base,
            &platform.key,
            id,
            &["ACCEPTED", "FAILED"],
        )
        .await;
        assert_eq!(receipt["status"], "ACCEPTED");
        let tax = receipt["registrations"]
            .as_array()
            .expect("list")
            .iter()
            .find(|r| r["registry"] == "tax")
            .cloned()
            .expect("tax");
        assert!(tax["attempts"].as_u64().expect("attempts") >= 2, "{tax}");
    }
    for registry in ["tax", "logistics"] {
        let stats = platform.admin(registry, "/admin/stats").await;
        for id in &ids {
            assert_eq!(
                stats["registrations"][id], 1,
                "{registry}: {id} registered once"
            );
        }
    }
    platform.stop().await;
}

/// A registry refusing the receipt fails it for good, with the registry's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_rejection_fails_the_receipt_with_its_reason() {
    let platform = RunningPlatform::start_with(SHORT_LADDER).await;
    let t = receipts_domain::ReceiptType::lookup("retail-receipt/v1").expect("type");
    let document: serde_json::Value =
        serde_json::from_slice(&receipts_validation::sample::generate(&t, true, 2000))
            .expect("json sample");
    let seller = document["seller"]["tax_id"]
        .as_str()
        .expect("seller")
        .to_owned();
    platform
        .put_faults(
            "logistics",
            json!({"reject": [{"tax_id": seller, "reason": "no shipping contract"}]}),
        )
        .await;
    let id = platform.submit_sample(2000).await;
    let receipt = wait_for_status(
        &platform.http,
        &platform.base,
        &platform.key,
        &id,
        &["FAILED", "ACCEPTED"],
    )
    .await;
    assert_eq!(receipt["status"], "FAILED");
    let failure = &receipt["failures"][0];
    assert_eq!(failure["registry"], "logistics");
    assert_eq!(failure["code"], "rejected-by-registry");
    assert!(
        failure["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no shipping contract"),
        "{failure}"
    );
    // The registrar has finished with every message there is: no call can come any more.
    let names = receipts_kafka::TopicNames::new(&platform.env.kafka);
    let validated = names.of(&receipts_domain::Topic::Validated);
    let service = "logistics-registrar";
    platform.env.wait_until_consumed(service, &validated).await;
    for tier in 1..=2 {
        let tier = names.retry_tier(service, &validated, tier);
        platform.env.wait_until_consumed(service, &tier).await;
    }
    let calls = platform
        .admin("logistics", &format!("/admin/calls?receipt_ref={id}"))
        .await;
    assert_eq!(
        calls.as_array().map(Vec::len),
        Some(1),
        "no further calls after the rejection"
    );
    platform.stop().await;
}

/// An asynchronous registry answers 202 and calls the gateway back, signed: the receipt is
/// ACCEPTED through the callback (long before the registrar would ask again). A forged callback
/// is refused with 401 and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_callbacks_complete_registrations_and_forged_ones_are_refused() {
    let platform = RunningPlatform::start().await;
    platform
        .put_faults("tax", json!({"async": {"enabled": true, "delay_ms": 200}}))
        .await;
    let id = platform.submit_sample(3000).await;
    let receipt = wait_for_status(
        &platform.http,
        &platform.base,
        &platform.key,
        &id,
        &["ACCEPTED", "FAILED"],
    )
    .await;
    assert_eq!(receipt["status"], "ACCEPTED");
    let stats = platform.admin("tax", "/admin/stats").await;
    assert_eq!(stats["registrations"][&id], 1);
    assert!(
        stats["callbacks"]["delivered"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );
    let calls = platform
        .admin("tax", &format!("/admin/calls?receipt_ref={id}"))
        .await;
    assert_eq!(
        calls.as_array().map(Vec::len),
        Some(1),
        "one call: the result came by callback"
    );

    // A receipt the tax registry cannot reach now, and a forged "registered" callback for it.
    platform.put_faults("tax", json!({"outage": true})).await;
    let pending = platform.submit_sample(3001).await;
    wait_for_status(
        &platform.http,
        &platform.base,
        &platform.key,
        &pending,
        &["VALIDATED"],
    )
    .await;
    let body = json!({"event": "fiscal_receipt.registered", "request_id": format!("{pending}-tax"), "receipt_ref": pending,
                      "fiscal_number": "TX-FORGED-1", "registered_at": "2026-11-21T10:00:00Z"})
    .to_string();
    let t = chrono::Utc::now().timestamp();
    let forged =
        receipts_registries::sign(&receipts_domain::Secret::new("guessed"), t, body.as_bytes());
    let response = platform
        .http
        .post(format!("{}/v1/registries/tax/callbacks", platform.base))
        .header("Content-Type", "application/json")
        .header("X-Tax-Signature", format!("t={t},v1={forged}"))
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    let problem: serde_json::Value = response.json().await.expect("problem");
    assert_eq!(problem["type"], "urn:receipts:problem:invalid-signature");
    let unsigned = platform
        .http
        .post(format!("{}/v1/registries/tax/callbacks", platform.base))
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(unsigned.status(), 401);
    let unknown = platform
        .http
        .post(format!("{}/v1/registries/nope/callbacks", platform.base))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status(), 404);

    // Refused callbacks produce nothing: the only tax registration on Kafka is the first
    // receipt's, so the projector has nothing to change the pending receipt with.
    let registered = receipts_kafka::TopicNames::new(&platform.env.kafka).of(
        &receipts_domain::Topic::Registered(
            receipts_domain::RegistryName::parse("tax").expect("name"),
        ),
    );
    assert_eq!(platform.env.message_count(&registered), 1);
    let receipt = platform.receipt(&pending).await;
    assert_eq!(receipt["status"], "VALIDATED", "no state change");
    assert!(
        receipt["registrations"]
            .as_array()
            .expect("list")
            .iter()
            .all(|r| r["registry"] != "tax")
    );
    platform.stop().await;
}
