use mock_registries::{Faults, RegistryKind};
use rdkafka::message::OwnedHeaders;
use receipts_domain::{ReceiptEvent, Topic};
use receipts_kafka::{TopicNames, dead_letters};
use serde_json::json;

use crate::helpers::*;

/// A registry answering 409 (this idempotency key was used with another payload) is a problem for
/// a person, not a retry: the event is dead-lettered. Once the conflict is resolved at the
/// registry, replaying the dead letter registers the receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_topic_and_a_replay_after_the_fix_is_processed() {
    let h = Harness::start(RegistryKind::Tax, Faults::default(), ladder(&[200], 3600)).await;
    let event = validated(1);
    let id = event.meta.receipt_id;
    // Someone registered this receipt's key earlier with different contents.
    let key = receipts_registries::idempotency_key(id, &h.registry);
    let earlier = h
        .http
        .post(format!("{}/api/v1/fiscal-receipts", h.mock.base_url()))
        .header("Idempotency-Key", &key)
        .json(&json!({"receipt_ref": id.to_string(), "seller_tax_id": "DE136695976", "issued_at": "2026-11-01T10:00:00Z",
                      "currency": "EUR", "total_gross": "0.01", "total_vat": "0.00", "line_count": 1}))
        .send()
        .await
        .expect("earlier registration");
    assert_eq!(earlier.status(), 201);

    // Plus a message that is not an event at all.
    let names = TopicNames::new(&h.env.kafka);
    let validated_topic = names.of(&Topic::Validated);
    h.env
        .producer()
        .send(&validated_topic, b"k", b"not avro", OwnedHeaders::new())
        .await
        .expect("raw");
    h.publish(&[event.into()]).await;

    let dlt = names.dead_letter("tax-registrar", &validated_topic);
    let dead = h.env.read_topic(&dlt, 2, WAIT);
    assert_eq!(dead.len(), 2);
    let listed = dead_letters::list(&h.env.kafka).await.expect("list");
    let entry = listed.iter().find(|t| t.name == dlt).expect("listed");
    assert_eq!(
        (entry.messages, entry.pending, entry.service.as_str()),
        (2, 2, "tax-registrar")
    );
    let inspected = dead_letters::inspect(&h.env.kafka, &dlt, 10)
        .await
        .expect("inspect");
    let conflict = inspected
        .iter()
        .find(|d| d.key == id.to_string())
        .expect("the receipt's dead letter");
    assert_eq!(conflict.error_kind.as_deref(), Some("poison"));
    assert!(
        conflict
            .error_message
            .as_deref()
            .unwrap_or_default()
            .contains("409"),
        "{conflict:?}"
    );
    assert!(
        conflict
            .original
            .as_deref()
            .unwrap_or_default()
            .starts_with(&validated_topic)
    );
    assert!(
        inspected
            .iter()
            .any(|d| d.error_kind.as_deref() == Some("undecodable"))
    );

    // The registry's support removes the conflicting record; replay.
    let reset = h
        .http
        .post(format!("{}/admin/reset", h.mock.base_url()))
        .send()
        .await
        .expect("reset");
    assert!(reset.status().is_success());
    let replayed = dead_letters::replay(&h.env.kafka, &h.env.producer(), &dlt, 100)
        .await
        .expect("replay");
    assert_eq!(replayed, 2);
    let registered = h.events(&Topic::Registered(h.registry.clone()), 1).await;
    let [ReceiptEvent::Registered(r)] = registered.as_slice() else {
        panic!("{registered:?}")
    };
    assert_eq!(r.meta.receipt_id, id);
    assert_eq!(h.registrations(id).await, 1);

    // Each dead letter was replayed once; the still-undecodable one came back as a new dead letter,
    // which is all that is pending now.
    let dead_again = h.env.read_topic(&dlt, 3, WAIT);
    assert_eq!(dead_again.len(), 3);
    let listed = dead_letters::list(&h.env.kafka).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .find(|t| t.name == dlt)
            .map(|t| (t.messages, t.pending)),
        Some((3, 1))
    );
    let inspected = dead_letters::inspect(&h.env.kafka, &dlt, 10)
        .await
        .expect("inspect");
    assert_eq!(inspected.iter().filter(|d| d.replayed).count(), 2);
    h.stop().await;
}
