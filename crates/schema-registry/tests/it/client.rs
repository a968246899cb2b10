//! Interop with the client the services use: `schema_registry_converter`'s async Avro
//! encoder and decoder, Confluent wire format.

use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_all_subjects, get_schema_by_id, get_schema_by_subject_and_version,
};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedReference, SuppliedSchema,
};

use crate::helpers::spawn_app;

const SUBMITTED_V1: &str = r#"{
  "type": "record", "name": "ReceiptSubmitted", "namespace": "receipts.events",
  "fields": [
    {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "receipt_id", "type": "string"},
    {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "attempt", "type": "int"},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["JSON", "XML"]}},
    {"name": "callback_url", "type": ["null", "string"], "default": null},
    {"name": "document", "type": "bytes"}
  ]
}"#;

/// SUBMITTED_V1 plus a field with a default.
const SUBMITTED_V2: &str = r#"{
  "type": "record", "name": "ReceiptSubmitted", "namespace": "receipts.events",
  "fields": [
    {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "receipt_id", "type": "string"},
    {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "attempt", "type": "int"},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["JSON", "XML"]}},
    {"name": "callback_url", "type": ["null", "string"], "default": null},
    {"name": "document", "type": "bytes"},
    {"name": "tenant_id", "type": "string", "default": "unknown"}
  ]
}"#;

fn supplied(schema: &str) -> SuppliedSchema {
    SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned())
}

fn with_schema(topic: &str, schema: &str) -> SubjectNameStrategy {
    SubjectNameStrategy::TopicNameStrategyWithSchema(topic.to_owned(), false, supplied(schema))
}

fn v1_values() -> Vec<(&'static str, Value)> {
    vec![
        (
            "event_id",
            Value::Uuid(
                "0190a5e4-7b1c-7cc3-9a3e-2f4b5c6d7e8f"
                    .parse()
                    .expect("uuid"),
            ),
        ),
        ("receipt_id", Value::String("r-1".to_owned())),
        ("occurred_at", Value::TimestampMillis(1_732_000_000_000)),
        ("attempt", Value::Int(1)),
        ("kind", Value::Enum(1, "XML".to_owned())),
        (
            "callback_url",
            Value::Union(
                1,
                Box::new(Value::String("https://example.test/cb".to_owned())),
            ),
        ),
        ("document", Value::Bytes(b"<receipt/>".to_vec())),
    ]
}

fn record(values: Vec<(&'static str, Value)>) -> Value {
    Value::Record(
        values
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    )
}

/// Splits a Confluent-framed payload: magic byte 0, 4-byte big-endian id, Avro body.
fn wire_id(bytes: &[u8]) -> u32 {
    assert!(bytes.len() > 5, "payload too short: {bytes:?}");
    assert_eq!(bytes[0], 0, "magic byte");
    u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]])
}

#[tokio::test]
async fn encoder_registers_and_decoder_resolves_by_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;

    let encoder = AvroEncoder::new(SrSettings::new(app.url.clone()));
    let bytes = encoder
        .encode(v1_values(), with_schema("receipts.submitted", SUBMITTED_V1))
        .await
        .expect("encode");

    // The encoder registered the schema under the topic's value subject.
    let (status, latest) = app
        .get("/subjects/receipts.submitted-value/versions/latest")
        .await;
    assert_eq!(status, 200, "{latest}");
    assert_eq!(latest["version"], 1);
    assert_eq!(
        u64::from(wire_id(&bytes)),
        latest["id"].as_u64().expect("id")
    );

    // A fresh decoder knows nothing: it fetches the writer schema by the id in the payload.
    let decoder = AvroDecoder::new(SrSettings::new(app.url.clone()));
    let decoded = decoder.decode(Some(&bytes)).await.expect("decode");
    assert_eq!(decoded.value, record(v1_values()));
    assert_eq!(
        decoded.name.map(|n| n.fullname(None)).as_deref(),
        Some("receipts.events.ReceiptSubmitted")
    );

    // Another encoder (another service) supplying the same schema gets the same id.
    let other = AvroEncoder::new(SrSettings::new(app.url.clone()));
    let again = other
        .encode(v1_values(), with_schema("receipts.submitted", SUBMITTED_V1))
        .await
        .expect("encode");
    assert_eq!(again, bytes);

    // Encoding without supplying a schema uses the latest registered one.
    let latest_encoder = AvroEncoder::new(SrSettings::new(app.url.clone()));
    let by_latest = latest_encoder
        .encode(
            v1_values(),
            SubjectNameStrategy::TopicNameStrategy("receipts.submitted".to_owned(), false),
        )
        .await
        .expect("encode with latest");
    assert_eq!(by_latest, bytes);
    app.stop().await;
}

#[tokio::test]
async fn evolution_through_the_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    let settings = SrSettings::new(app.url.clone());

    let old_bytes = AvroEncoder::new(settings.clone())
        .encode(v1_values(), with_schema("receipts.submitted", SUBMITTED_V1))
        .await
        .expect("encode v1");
    let mut v2_values = v1_values();
    v2_values.push(("tenant_id", Value::String("t-1".to_owned())));
    let new_bytes = AvroEncoder::new(settings.clone())
        .encode(
            v2_values.clone(),
            with_schema("receipts.submitted", SUBMITTED_V2),
        )
        .await
        .expect("encode v2 (compatible)");
    assert_ne!(wire_id(&old_bytes), wire_id(&new_bytes));

    // Each message decodes with its own writer schema.
    let decoder = AvroDecoder::new(settings.clone());
    assert_eq!(
        decoder.decode(Some(&old_bytes)).await.expect("old").value,
        record(v1_values())
    );
    assert_eq!(
        decoder.decode(Some(&new_bytes)).await.expect("new").value,
        record(v2_values)
    );

    // An incompatible schema (a new field without a default) is refused, and the client sees
    // the registry's 409.
    let incompatible = SUBMITTED_V2.replace(
        r#"{"name": "tenant_id", "type": "string", "default": "unknown"}"#,
        r#"{"name": "tenant_id", "type": "string"}, {"name": "currency", "type": "string"}"#,
    );
    assert_ne!(incompatible, SUBMITTED_V2);
    let mut incompatible_values = v1_values();
    incompatible_values.push(("tenant_id", Value::String("t-1".to_owned())));
    incompatible_values.push(("currency", Value::String("EUR".to_owned())));
    let refused = AvroEncoder::new(settings.clone())
        .encode(
            incompatible_values,
            with_schema("receipts.submitted", &incompatible),
        )
        .await
        .expect_err("incompatible");
    assert!(!refused.retriable);
    let cause = refused.cause.clone().unwrap_or_default();
    assert!(cause.contains("409"), "{refused:?}");

    // The plain registry calls of the client.
    assert_eq!(
        get_all_subjects(&settings).await.expect("subjects"),
        vec!["receipts.submitted-value".to_owned()]
    );
    let v1 = get_schema_by_subject_and_version(&settings, "receipts.submitted-value", Some(1))
        .await
        .expect("version 1");
    assert_eq!(
        (v1.id, v1.version, v1.schema.as_str()),
        (wire_id(&old_bytes), Some(1), SUBMITTED_V1)
    );
    let by_id = get_schema_by_id(wire_id(&new_bytes), &settings)
        .await
        .expect("by id");
    assert_eq!(by_id.schema, SUBMITTED_V2);
    assert_eq!(by_id.schema_type, SchemaType::Avro);
    let missing = get_schema_by_id(999, &settings)
        .await
        .expect_err("unknown id");
    assert!(missing.cause.unwrap_or_default().contains("40403"));
    app.stop().await;
}

#[tokio::test]
async fn schema_references_through_the_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(&dir.path().join("sr.json")).await;
    let settings = SrSettings::new(app.url.clone());
    // The client inlines a referenced schema only where it is named by its short name in the
    // same namespace (or as ".namespace.Name"), so the referenced type shares the namespace.
    let money = r#"{"type":"record","name":"Money","namespace":"receipts.events","fields":[
        {"name":"amount","type":"string"},{"name":"currency","type":"string"}]}"#;
    let line = r#"{"type":"record","name":"ReceiptLine","namespace":"receipts.events","fields":[
        {"name":"sku","type":"string"},{"name":"price","type":"Money"}]}"#;
    let schema = supplied(line).with_references(vec![SuppliedReference::new(
        "receipts.events.Money".to_owned(),
        "receipts.events.Money".to_owned(),
        money.to_owned(),
    )]);
    let values = vec![
        ("sku", Value::String("A-1".to_owned())),
        (
            "price",
            Value::Record(vec![
                ("amount".to_owned(), Value::String("9.99".to_owned())),
                ("currency".to_owned(), Value::String("EUR".to_owned())),
            ]),
        ),
    ];
    // The client registers the reference (POST versions, then POST /subjects/{s} for its
    // version), then the schema with `references`.
    let bytes = AvroEncoder::new(settings.clone())
        .encode(
            values.clone(),
            SubjectNameStrategy::TopicNameStrategyWithSchema(
                "receipts.lines".to_owned(),
                false,
                schema,
            ),
        )
        .await
        .expect("encode with reference");
    let (_, referenced) = app.get(&format!("/schemas/ids/{}", wire_id(&bytes))).await;
    assert_eq!(
        referenced["references"],
        serde_json::json!([{ "name": "receipts.events.Money", "subject": "receipts.events.Money", "version": 1 }])
    );
    // The decoder fetches the schema by id, then the reference by subject and version.
    let decoded = AvroDecoder::new(settings)
        .decode(Some(&bytes))
        .await
        .expect("decode with reference");
    assert_eq!(decoded.value, record(values));
    app.stop().await;
}
