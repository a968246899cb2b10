use std::time::Duration;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use rdkafka::Message;
use receipts_domain::Topic;
use receipts_kafka::{TopicNames, headers};
use receipts_telemetry::trace;
use receipts_testkit::header;

use crate::helpers::*;

/// What other teams' consumers see: Confluent wire format (magic byte 0, schema id), decodable
/// with the schema the registry serves for that id; key = receipt id; tracing headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submitted_event_decodes_with_the_registry_schema() {
    let app = TestApp::spawn().await;
    let body = sample(JSON_TYPE, 40);
    let accepted: serde_json::Value = app
        .submit_json("wire-1", body.clone())
        .await
        .json()
        .await
        .expect("json");
    let id = accepted["id"].as_str().expect("id");

    let topic = TopicNames::new(&app.env.kafka).of(&Topic::Submitted);
    let messages = app.env.read_topic(&topic, 1, Duration::from_secs(30));
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(receipts_testkit::key(message), id);
    assert!(trace::is_valid(
        &header(message, headers::TRACEPARENT).expect("traceparent")
    ));
    let event_id = header(message, headers::EVENT_ID).expect("event_id");

    let payload = message.payload().expect("payload");
    assert_eq!(payload[0], 0, "Confluent magic byte");
    let schema_id = u32::from_be_bytes(payload[1..5].try_into().expect("4 bytes"));
    let registry = app
        .env
        .schema_registry
        .url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let schema: serde_json::Value = app
        .http
        .get(format!("{registry}/schemas/ids/{schema_id}"))
        .send()
        .await
        .expect("registry")
        .json()
        .await
        .expect("json");
    let schema =
        Schema::parse_str(schema["schema"].as_str().expect("schema text")).expect("parses");
    let latest: serde_json::Value = app
        .http
        .get(format!("{registry}/subjects/{topic}-value/versions/latest"))
        .send()
        .await
        .expect("registry")
        .json()
        .await
        .expect("json");
    assert_eq!(
        latest["id"], schema_id,
        "registered under the topic's value subject"
    );

    let reader = GenericDatumReader::builder(&schema)
        .build()
        .expect("reader");
    let Value::Record(fields) = reader.read_value(&mut &payload[5..]).expect("decodes") else {
        panic!("not a record")
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect(name)
    };
    assert_eq!(field("receipt_id"), Value::Uuid(id.parse().expect("uuid")));
    assert_eq!(
        field("event_id"),
        Value::Uuid(event_id.parse().expect("uuid"))
    );
    assert_eq!(field("tenant_id"), Value::String("acme".into()));
    assert_eq!(field("receipt_type"), Value::String(JSON_TYPE.into()));
    assert_eq!(field("idempotency_key"), Value::String("wire-1".into()));
    assert_eq!(field("document"), Value::Bytes(body));
    assert!(matches!(field("occurred_at"), Value::TimestampMillis(_)));
}
