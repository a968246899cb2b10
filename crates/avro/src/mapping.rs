//! Domain events to Avro values and back, by hand: explicit about every field, logical types and
//! unions, so the wire format is exactly what `proto-schemas/` says.

use std::str::FromStr;

use apache_avro::types::Value;
use chrono::{DateTime, FixedOffset, Utc};
use receipts_domain::{
    CallbackUrl, EventId, EventKind, EventMeta, IdempotencyKey, Line, NormalizedReceipt, Party,
    Payment, Reason, ReceiptEvent, ReceiptId, Registered, Registration, RegistrationFailed,
    RegistrationFailure, RegistryName, Rejected, Status, StatusChanged, Submitted, TenantId,
    Totals, Validated, WebhookFailed, WebhookRequested,
};
use receipts_domain::{Destination, WebhookEventType};
use rust_decimal::Decimal;

use crate::DecodeError;

/// The Avro value of an event, shaped by its kind's schema.
pub fn event_to_value(event: &ReceiptEvent) -> Value {
    let mut fields = meta_fields(event.meta());
    match event {
        ReceiptEvent::Submitted(e) => {
            fields.push(("receipt_type", string(&e.receipt_type)));
            fields.push(("content_type", string(&e.content_type)));
            fields.push(("document", Value::Bytes(e.document.clone())));
            fields.push(("idempotency_key", string(e.idempotency_key.as_str())));
            fields.push((
                "callback_url",
                optional(e.callback_url.as_ref().map(|u| string(u.as_str()))),
            ));
        }
        ReceiptEvent::Validated(e) => {
            fields.push(("receipt_type", string(&e.receipt_type)));
            fields.push(("receipt", receipt_value(&e.receipt)));
            fields.push((
                "extension",
                optional(e.extension.as_ref().map(|x| string(&x.to_string()))),
            ));
        }
        ReceiptEvent::Rejected(e) => {
            fields.push(("receipt_type", string(&e.receipt_type)));
            fields.push(("reasons", reasons_value(&e.reasons)));
        }
        ReceiptEvent::Registered(e) => {
            let r = &e.registration;
            fields.push(("registry", string(r.registry.as_str())));
            fields.push(("registration_id", string(&r.registration_id)));
            fields.push((
                "registered_at",
                Value::TimestampMillis(r.registered_at.timestamp_millis()),
            ));
        }
        ReceiptEvent::RegistrationFailed(e) => {
            let f = &e.failure;
            fields.push(("registry", string(f.registry.as_str())));
            fields.push(("code", string(&f.code)));
            fields.push(("reason", string(&f.reason)));
            fields.push((
                "failed_at",
                Value::TimestampMillis(f.failed_at.timestamp_millis()),
            ));
        }
        ReceiptEvent::StatusChanged(e) => {
            fields.push(("from_status", string(e.from.as_str())));
            fields.push(("to_status", string(e.to.as_str())));
            fields.push(("receipt_type", string(&e.receipt_type)));
            fields.push((
                "callback_url",
                optional(e.callback_url.as_ref().map(|u| string(u.as_str()))),
            ));
            fields.push(("reasons", reasons_value(&e.reasons)));
            fields.push((
                "registrations",
                Value::Array(e.registrations.iter().map(registration_value).collect()),
            ));
            fields.push((
                "failures",
                Value::Array(e.failures.iter().map(failure_value).collect()),
            ));
        }
        ReceiptEvent::WebhookRequested(e) => {
            fields.push(("delivery_id", string(&e.delivery_id)));
            fields.push(("destination", string(&e.destination.key())));
            fields.push(("url", string(&e.url)));
            fields.push(("event_type", string(e.event_type.as_str())));
            fields.push(("payload", Value::Bytes(e.payload.clone())));
        }
        ReceiptEvent::WebhookFailed(e) => {
            fields.push(("delivery_id", string(&e.delivery_id)));
            fields.push(("destination", string(&e.destination.key())));
            fields.push(("url", string(&e.url)));
            fields.push(("event_type", string(e.event_type.as_str())));
            fields.push(("reason", string(&e.reason)));
        }
    }
    record(fields)
}

/// The event an Avro value (already resolved against our reader schema) describes.
pub fn event_from_value(kind: EventKind, value: Value) -> Result<ReceiptEvent, DecodeError> {
    let fields = Fields::of(value, "event")?;
    let meta = EventMeta {
        event_id: EventId::from_uuid(fields.uuid("event_id")?),
        receipt_id: ReceiptId::from_uuid(fields.uuid("receipt_id")?),
        tenant_id: TenantId::parse(fields.str("tenant_id")?).map_err(malformed("tenant_id"))?,
        occurred_at: fields.timestamp("occurred_at")?,
        attempt: u32::try_from(fields.int("attempt")?).map_err(malformed("attempt"))?,
    };
    Ok(match kind {
        EventKind::Submitted => ReceiptEvent::Submitted(Submitted {
            receipt_type: fields.str("receipt_type")?.to_owned(),
            content_type: fields.str("content_type")?.to_owned(),
            document: fields.bytes("document")?.to_vec(),
            idempotency_key: IdempotencyKey::parse(fields.str("idempotency_key")?)
                .map_err(malformed("idempotency_key"))?,
            callback_url: callback_url(&fields)?,
            meta,
        }),
        EventKind::Validated => ReceiptEvent::Validated(Validated {
            receipt_type: fields.str("receipt_type")?.to_owned(),
            receipt: receipt_from(fields.record("receipt")?)?,
            extension: fields
                .optional_str("extension")?
                .map(serde_json::from_str)
                .transpose()
                .map_err(malformed("extension"))?,
            meta,
        }),
        EventKind::Rejected => ReceiptEvent::Rejected(Rejected {
            receipt_type: fields.str("receipt_type")?.to_owned(),
            reasons: reasons_from(&fields)?,
            meta,
        }),
        EventKind::Registered => ReceiptEvent::Registered(Registered {
            registration: Registration {
                registry: registry(&fields)?,
                registration_id: fields.str("registration_id")?.to_owned(),
                registered_at: fields.timestamp("registered_at")?,
                attempts: meta.attempt,
            },
            meta,
        }),
        EventKind::RegistrationFailed => ReceiptEvent::RegistrationFailed(RegistrationFailed {
            failure: RegistrationFailure {
                registry: registry(&fields)?,
                code: fields.str("code")?.to_owned(),
                reason: fields.str("reason")?.to_owned(),
                failed_at: fields.timestamp("failed_at")?,
                attempts: meta.attempt,
            },
            meta,
        }),
        EventKind::StatusChanged => ReceiptEvent::StatusChanged(StatusChanged {
            from: status(&fields, "from_status")?,
            to: status(&fields, "to_status")?,
            receipt_type: fields.str("receipt_type")?.to_owned(),
            callback_url: callback_url(&fields)?,
            reasons: reasons_from(&fields)?,
            registrations: fields
                .array("registrations")?
                .iter()
                .map(|v| {
                    let r = Fields::of(v.clone(), "registration")?;
                    Ok(Registration {
                        registry: registry(&r)?,
                        registration_id: r.str("registration_id")?.to_owned(),
                        registered_at: r.timestamp("registered_at")?,
                        attempts: u32::try_from(r.int("attempts")?)
                            .map_err(malformed("attempts"))?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
            failures: fields
                .array("failures")?
                .iter()
                .map(|v| {
                    let f = Fields::of(v.clone(), "failure")?;
                    Ok(RegistrationFailure {
                        registry: registry(&f)?,
                        code: f.str("code")?.to_owned(),
                        reason: f.str("reason")?.to_owned(),
                        failed_at: f.timestamp("failed_at")?,
                        attempts: u32::try_from(f.int("attempts")?)
                            .map_err(malformed("attempts"))?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
            meta,
        }),
        EventKind::WebhookRequested => ReceiptEvent::WebhookRequested(WebhookRequested {
            delivery_id: fields.str("delivery_id")?.to_owned(),
            destination: destination(&fields)?,
            url: fields.str("url")?.to_owned(),
            event_type: webhook_event_type(&fields)?,
            payload: fields.bytes("payload")?.to_vec(),
            meta,
        }),
        EventKind::WebhookFailed => ReceiptEvent::WebhookFailed(WebhookFailed {
            delivery_id: fields.str("delivery_id")?.to_owned(),
            destination: destination(&fields)?,
            url: fields.str("url")?.to_owned(),
            event_type: webhook_event_type(&fields)?,
            reason: fields.str("reason")?.to_owned(),
            meta,
        }),
    })
}

fn destination(fields: &Fields) -> Result<Destination, DecodeError> {
    let key = fields.str("destination")?;
    Destination::parse(key)
        .ok_or_else(|| DecodeError::Malformed(format!("field destination: {key:?}")))
}

fn webhook_event_type(fields: &Fields) -> Result<WebhookEventType, DecodeError> {
    fields
        .str("event_type")?
        .parse()
        .map_err(malformed("event_type"))
}

fn reasons_value(reasons: &[Reason]) -> Value {
    Value::Array(
        reasons
            .iter()
            .map(|r| {
                record(vec![
                    ("path", string(&r.path)),
                    ("code", string(&r.code)),
                    ("message", string(&r.message)),
                ])
            })
            .collect(),
    )
}

fn reasons_from(fields: &Fields) -> Result<Vec<Reason>, DecodeError> {
    fields
        .array("reasons")?
        .iter()
        .map(|v| {
            let r = Fields::of(v.clone(), "reason")?;
            Ok(Reason::new(
                r.str("path")?,
                r.str("code")?,
                r.str("message")?,
            ))
        })
        .collect()
}

fn registration_value(r: &Registration) -> Value {
    record(vec![
        ("registry", string(r.registry.as_str())),
        ("registration_id", string(&r.registration_id)),
        (
            "registered_at",
            Value::TimestampMillis(r.registered_at.timestamp_millis()),
        ),
        (
            "attempts",
            Value::Int(i32::try_from(r.attempts).unwrap_or(i32::MAX)),
        ),
    ])
}

fn failure_value(f: &RegistrationFailure) -> Value {
    record(vec![
        ("registry", string(f.registry.as_str())),
        ("code", string(&f.code)),
        ("reason", string(&f.reason)),
        (
            "failed_at",
            Value::TimestampMillis(f.failed_at.timestamp_millis()),
        ),
        (
            "attempts",
            Value::Int(i32::try_from(f.attempts).unwrap_or(i32::MAX)),
        ),
    ])
}

fn registry(fields: &Fields) -> Result<RegistryName, DecodeError> {
    RegistryName::parse(fields.str("registry")?).map_err(malformed("registry"))
}

fn status(fields: &Fields, name: &'static str) -> Result<Status, DecodeError> {
    let text = fields.str(name)?;
    Status::parse(text)
        .ok_or_else(|| DecodeError::Malformed(format!("field {name}: unknown status {text:?}")))
}

fn callback_url(fields: &Fields) -> Result<Option<CallbackUrl>, DecodeError> {
    fields
        .optional_str("callback_url")?
        .map(CallbackUrl::parse)
        .transpose()
        .map_err(malformed("callback_url"))
}

fn meta_fields(meta: &EventMeta) -> Vec<(&'static str, Value)> {
    vec![
        ("event_id", Value::Uuid(meta.event_id.as_uuid())),
        ("receipt_id", Value::Uuid(meta.receipt_id.as_uuid())),
        ("tenant_id", string(meta.tenant_id.as_str())),
        (
            "occurred_at",
            Value::TimestampMillis(meta.occurred_at.timestamp_millis()),
        ),
        (
            "attempt",
            Value::Int(i32::try_from(meta.attempt).unwrap_or(i32::MAX)),
        ),
    ]
}

fn receipt_value(r: &NormalizedReceipt) -> Value {
    record(vec![
        ("receipt_number", string(&r.receipt_number)),
        ("issued_at", string(&r.issued_at.to_rfc3339())),
        ("seller", party_value(&r.seller)),
        ("buyer", optional(r.buyer.as_ref().map(party_value))),
        ("currency", string(&r.currency)),
        (
            "lines",
            Value::Array(
                r.lines
                    .iter()
                    .map(|l| {
                        record(vec![
                            ("description", string(&l.description)),
                            ("quantity", decimal(l.quantity)),
                            ("unit_price", decimal(l.unit_price)),
                            ("vat_rate", decimal(l.vat_rate)),
                            ("net_amount", decimal(l.net_amount)),
                            ("vat_amount", decimal(l.vat_amount)),
                            ("gross_amount", decimal(l.gross_amount)),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "totals",
            record(vec![
                ("net_amount", decimal(r.totals.net_amount)),
                ("vat_amount", decimal(r.totals.vat_amount)),
                ("gross_amount", decimal(r.totals.gross_amount)),
            ]),
        ),
        (
            "payments",
            Value::Array(
                r.payments
                    .iter()
                    .map(|p| {
                        record(vec![
                            ("method", string(&p.method)),
                            ("amount", decimal(p.amount)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

fn party_value(p: &Party) -> Value {
    record(vec![
        ("tax_id", string(&p.tax_id)),
        ("country", string(&p.country)),
        ("name", optional(p.name.as_deref().map(string))),
    ])
}

fn receipt_from(f: Fields) -> Result<NormalizedReceipt, DecodeError> {
    let issued_at = DateTime::<FixedOffset>::parse_from_rfc3339(f.str("issued_at")?)
        .map_err(malformed("issued_at"))?;
    let lines = f
        .array("lines")?
        .iter()
        .map(|v| {
            let l = Fields::of(v.clone(), "line")?;
            Ok(Line {
                description: l.str("description")?.to_owned(),
                quantity: l.decimal("quantity")?,
                unit_price: l.decimal("unit_price")?,
                vat_rate: l.decimal("vat_rate")?,
                net_amount: l.decimal("net_amount")?,
                vat_amount: l.decimal("vat_amount")?,
                gross_amount: l.decimal("gross_amount")?,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    let totals = f.record("totals")?;
    let payments = f
        .array("payments")?
        .iter()
        .map(|v| {
            let p = Fields::of(v.clone(), "payment")?;
            Ok(Payment {
                method: p.str("method")?.to_owned(),
                amount: p.decimal("amount")?,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(NormalizedReceipt {
        receipt_number: f.str("receipt_number")?.to_owned(),
        issued_at,
        seller: party_from(f.record("seller")?)?,
        buyer: f
            .optional("buyer")?
            .map(|v| Fields::of(v, "buyer").and_then(party_from))
            .transpose()?,
        currency: f.str("currency")?.to_owned(),
        lines,
        totals: Totals {
            net_amount: totals.decimal("net_amount")?,
            vat_amount: totals.decimal("vat_amount")?,
            gross_amount: totals.decimal("gross_amount")?,
        },
        payments,
    })
}

fn party_from(f: Fields) -> Result<Party, DecodeError> {
    Ok(Party {
        tax_id: f.str("tax_id")?.to_owned(),
        country: f.str("country")?.to_owned(),
        name: f.optional_str("name")?.map(str::to_owned),
    })
}

fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn decimal(d: Decimal) -> Value {
    Value::String(d.to_string())
}

/// A `["null", T]` union value.
fn optional(v: Option<Value>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(v)),
    }
}

fn malformed<E: std::fmt::Display>(field: &'static str) -> impl Fn(E) -> DecodeError {
    move |e| DecodeError::Malformed(format!("field {field}: {e}"))
}

/// Typed access to a record's fields with errors naming the field.
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn of(value: Value, what: &str) -> Result<Self, DecodeError> {
        match value {
            Value::Record(fields) => Ok(Self(fields)),
            other => Err(DecodeError::Malformed(format!(
                "{what} is not a record: {other:?}"
            ))),
        }
    }

    fn get(&self, name: &'static str) -> Result<&Value, DecodeError> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| unwrap_union(v))
            .ok_or_else(|| DecodeError::Malformed(format!("field {name} is missing")))
    }

    fn wrong(name: &'static str, v: &Value) -> DecodeError {
        DecodeError::Malformed(format!("field {name} has an unexpected value: {v:?}"))
    }

    fn str(&self, name: &'static str) -> Result<&str, DecodeError> {
        match self.get(name)? {
            Value::String(s) => Ok(s),
            v => Err(Self::wrong(name, v)),
        }
    }

    fn optional(&self, name: &'static str) -> Result<Option<Value>, DecodeError> {
        match self.get(name)? {
            Value::Null => Ok(None),
            v => Ok(Some(v.clone())),
        }
    }

    fn optional_str(&self, name: &'static str) -> Result<Option<&str>, DecodeError> {
        match self.get(name)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            v => Err(Self::wrong(name, v)),
        }
    }

    fn uuid(&self, name: &'static str) -> Result<uuid::Uuid, DecodeError> {
        match self.get(name)? {
            Value::Uuid(u) => Ok(*u),
            Value::String(s) => uuid::Uuid::parse_str(s).map_err(malformed(name)),
            v => Err(Self::wrong(name, v)),
        }
    }

    fn timestamp(&self, name: &'static str) -> Result<DateTime<Utc>, DecodeError> {
        match self.get(name)? {
            Value::TimestampMillis(ms) | Value::Long(ms) => DateTime::from_timestamp_millis(*ms)
                .ok_or_else(|| {
                    DecodeError::Malformed(format!("field {name}: timestamp out of range"))
                }),
            v => Err(Self::wrong(name, v)),
        }
    }

    fn int(&self, name: &'static str) -> Result<i32, DecodeError> {
        match self.get(name)? {
            Value::Int(i) => Ok(*i),
            v => Err(Self::wrong(name, v)),
        }
    }

    fn bytes(&self, name: &'static str) -> Result<&[u8], DecodeError> {
        match self.get(name)? {
            Value::Bytes(b) => Ok(b),
            v => Err(Self::wrong(name, v)),
        }
    }

    fn decimal(&self, name: &'static str) -> Result<Decimal, DecodeError> {
        Decimal::from_str(self.str(name)?).map_err(malformed(name))
    }

    fn array(&self, name: &'static str) -> Result<&[Value], DecodeError> {
        match self.get(name)? {
            Value::Array(items) => Ok(items),
            v => Err(Self::wrong(name, v)),
        }
    }

    fn record(&self, name: &'static str) -> Result<Fields, DecodeError> {
        Fields::of(self.get(name)?.clone(), name)
    }
}

fn unwrap_union(v: &Value) -> &Value {
    match v {
        Value::Union(_, inner) => inner,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::writer::datum::GenericDatumWriter;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use receipts_domain::EndpointId;

    use super::*;
    use crate::schemas;

    fn meta() -> EventMeta {
        EventMeta::new(ReceiptId::new(), TenantId::parse("dev").expect("tenant"))
    }

    fn normalized(buyer: bool) -> NormalizedReceipt {
        let party = |tax_id: &str, country: &str, name: Option<&str>| Party {
            tax_id: tax_id.into(),
            country: country.into(),
            name: name.map(Into::into),
        };
        NormalizedReceipt {
            receipt_number: "2026-000123".into(),
            issued_at: FixedOffset::east_opt(3600)
                .expect("offset")
                .with_ymd_and_hms(2026, 11, 20, 14, 3, 0)
                .single()
                .expect("time"),
            seller: party("DE136695976", "DE", Some("Bäckerei")),
            buyer: buyer.then(|| party("FR40303265045", "FR", None)),
            currency: "EUR".into(),
            lines: vec![Line {
                description: "Roggenbrot".into(),
                quantity: Decimal::new(1, 0),
                unit_price: Decimal::new(350, 2),
                vat_rate: Decimal::new(7, 0),
                net_amount: Decimal::new(350, 2),
                vat_amount: Decimal::new(25, 2),
                gross_amount: Decimal::new(375, 2),
            }],
            totals: Totals {
                net_amount: Decimal::new(350, 2),
                vat_amount: Decimal::new(25, 2),
                gross_amount: Decimal::new(375, 2),
            },
            payments: vec![Payment {
                method: "cash".into(),
                amount: Decimal::new(375, 2),
            }],
        }
    }

    /// Encodes with the kind's schema, decodes, resolves and maps back: the full wire path minus
    /// the registry.
    fn round_trip(event: &ReceiptEvent) -> ReceiptEvent {
        let schema = schemas::schema(event.kind()).expect("schema");
        let writer = GenericDatumWriter::builder(schema).build().expect("writer");
        let bytes = writer
            .write_value_to_vec(event_to_value(event))
            .expect("encode");
        let reader = GenericDatumReader::builder(schema).build().expect("reader");
        let value = reader.read_value(&mut bytes.as_slice()).expect("decode");
        let value = value.resolve(schema).expect("resolve");
        event_from_value(event.kind(), value).expect("map back")
    }

    #[test]
    fn every_kind_round_trips() {
        let events: Vec<ReceiptEvent> = vec![
            Submitted {
                meta: meta(),
                receipt_type: "retail-receipt/v1".into(),
                content_type: "application/json".into(),
                document: b"{\"x\": \"\xc3\xa4\"}".to_vec(),
                idempotency_key: IdempotencyKey::parse("order-1").expect("key"),
                callback_url: Some(CallbackUrl::parse("https://partner.example/cb").expect("url")),
            }
            .into(),
            Submitted {
                meta: meta(),
                receipt_type: "retail-receipt-xml/v1".into(),
                content_type: "application/xml".into(),
                document: b"<a/>".to_vec(),
                idempotency_key: IdempotencyKey::parse("order-2").expect("key"),
                callback_url: None,
            }
            .into(),
            Validated {
                meta: meta(),
                receipt_type: "retail-receipt/v1".into(),
                receipt: normalized(true),
                extension: Some(serde_json::json!({"table": "12", "lines": [{"course": "main"}]})),
            }
            .into(),
            Validated {
                meta: meta(),
                receipt_type: "retail-receipt/v1".into(),
                receipt: normalized(false),
                extension: None,
            }
            .into(),
            Rejected {
                meta: meta(),
                receipt_type: "retail-receipt/v1".into(),
                reasons: vec![
                    Reason::new(
                        "/lines/0/vat_amount",
                        "vat-amount-mismatch",
                        "expected 0.25, found 0.24",
                    ),
                    Reason::new("/seller/tax_id", "invalid-tax-id", "check digit"),
                ],
            }
            .into(),
            Registered {
                meta: EventMeta {
                    attempt: 3,
                    ..meta()
                },
                registration: Registration {
                    registry: RegistryName::parse("tax").expect("name"),
                    registration_id: "TX-2026-00000042".into(),
                    registered_at: chrono::DateTime::from_timestamp_millis(1_795_000_000_123)
                        .expect("time"),
                    attempts: 3,
                },
            }
            .into(),
            RegistrationFailed {
                meta: EventMeta {
                    attempt: 2,
                    ..meta()
                },
                failure: RegistrationFailure {
                    registry: RegistryName::parse("logistics").expect("name"),
                    code: "rejected-by-registry".into(),
                    reason: "sender is not registered for shipping".into(),
                    failed_at: chrono::DateTime::from_timestamp_millis(1_795_000_000_456)
                        .expect("time"),
                    attempts: 2,
                },
            }
            .into(),
            StatusChanged {
                meta: meta(),
                from: Status::Validated,
                to: Status::Accepted,
                receipt_type: "retail-receipt/v1".into(),
                callback_url: Some(CallbackUrl::parse("https://partner.example/cb").expect("url")),
                reasons: vec![Reason::new("/x", "required", "m")],
                registrations: vec![Registration {
                    registry: RegistryName::parse("tax").expect("name"),
                    registration_id: "TX-1".into(),
                    registered_at: chrono::DateTime::from_timestamp_millis(1_795_000_000_000)
                        .expect("time"),
                    attempts: 1,
                }],
                failures: vec![RegistrationFailure {
                    registry: RegistryName::parse("logistics").expect("name"),
                    code: "horizon-exceeded".into(),
                    reason: "503".into(),
                    failed_at: chrono::DateTime::from_timestamp_millis(1_795_000_000_999)
                        .expect("time"),
                    attempts: 7,
                }],
            }
            .into(),
            StatusChanged {
                meta: meta(),
                from: Status::Received,
                to: Status::Rejected,
                receipt_type: "retail-receipt-xml/v1".into(),
                callback_url: None,
                reasons: vec![],
                registrations: vec![],
                failures: vec![],
            }
            .into(),
            WebhookRequested {
                meta: meta(),
                delivery_id: "msg_0123456789abcdef0123456789abcdef".into(),
                destination: Destination::Endpoint(EndpointId::new()),
                url: "https://partner.example/hooks".into(),
                event_type: WebhookEventType::Accepted,
                payload: br#"{"type":"receipt.accepted"}"#.to_vec(),
            }
            .into(),
            WebhookFailed {
                meta: EventMeta {
                    attempt: 8,
                    ..meta()
                },
                delivery_id: "msg_x".into(),
                destination: Destination::Callback,
                url: "https://partner.example/cb".into(),
                event_type: WebhookEventType::Rejected,
                reason: "HTTP 500 eight times".into(),
            }
            .into(),
        ];
        let kinds: std::collections::HashSet<EventKind> =
            events.iter().map(ReceiptEvent::kind).collect();
        assert_eq!(kinds.len(), EventKind::ALL.len(), "every kind is covered");
        for event in events {
            assert_eq!(round_trip(&event), event);
        }
    }

    proptest! {
        #[test]
        fn submitted_documents_survive_byte_exact(document in prop::collection::vec(any::<u8>(), 0..4096), key in "[ -~]{1,64}") {
            let event: ReceiptEvent = Submitted {
                meta: meta(),
                receipt_type: "retail-receipt/v1".into(),
                content_type: "application/json".into(),
                document,
                idempotency_key: IdempotencyKey::parse(&key).expect("key"),
                callback_url: None,
            }.into();
            prop_assert_eq!(round_trip(&event), event);
        }
    }

    #[test]
    fn wrong_shapes_are_malformed_not_panics() {
        let err = event_from_value(EventKind::Submitted, Value::Null).expect_err("not a record");
        assert!(matches!(err, DecodeError::Malformed(_)));
        let partial = record(vec![("event_id", Value::Uuid(uuid::Uuid::now_v7()))]);
        assert!(matches!(
            event_from_value(EventKind::Rejected, partial),
            Err(DecodeError::Malformed(_))
        ));
    }
}
