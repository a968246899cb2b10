//! The logistics provider's API shape: `PUT /v2/registrations/{request_id}` (the key is the path
//! segment), ids `LG-<10 base32 characters>`, errors as `{"errors": [{"field", "reason"}]}`,
//! faults as `{"fault": "..."}`.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Value, json};

use crate::api::{Answer, Fields, Problem, Record, RecordState, Shape, Submission, sign};
use crate::config::FaultKind;

const ID_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub(crate) struct Logistics;

fn errors(status: StatusCode, problems: &[Problem]) -> Answer {
    let errors: Vec<Value> = problems
        .iter()
        .map(|(field, reason)| json!({"field": field, "reason": reason}))
        .collect();
    Answer::new(status, json!({ "errors": errors }))
}

fn fault(status: StatusCode, text: &str) -> Answer {
    Answer::new(status, json!({ "fault": text }))
}

impl Shape for Logistics {
    fn receipt_ref_field(&self) -> &'static str {
        "reference"
    }

    fn key_field(&self) -> &'static str {
        "request_id"
    }

    fn parse(&self, body: &Value) -> Result<Submission, Vec<Problem>> {
        let mut fields = Fields::new(body);
        let reference = fields.text("reference");
        let vat_id = fields.text("sender.vat_id");
        let country = fields.code(
            "sender.country",
            2,
            "an ISO 3166-1 alpha-2 code, e.g. \"DE\"",
        );
        let amount = fields.decimal("declared_value.amount");
        let currency = fields.code(
            "declared_value.currency",
            3,
            "an ISO 4217 code, e.g. \"EUR\"",
        );
        let item_count = fields.count("item_count");
        let issued_at = fields.timestamp("issued_at");
        match (
            reference, vat_id, country, amount, currency, item_count, issued_at,
        ) {
            (
                Some(reference),
                Some(vat_id),
                Some(country),
                Some(amount),
                Some(currency),
                Some(item_count),
                Some(issued_at),
            ) if fields.problems.is_empty() => Ok(Submission {
                request: json!({
                    "reference": reference,
                    "sender": {"vat_id": vat_id, "country": country},
                    "declared_value": {"amount": amount, "currency": currency},
                    "item_count": item_count,
                    "issued_at": issued_at,
                }),
                receipt_ref: reference,
                party_id: vat_id,
            }),
            _ => Err(fields.problems),
        }
    }

    fn registry_id(&self, _serial: u64, _at: DateTime<Utc>) -> String {
        let mut rng = rand::rng();
        let suffix: String = (0..10)
            .map(|_| char::from(ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())]))
            .collect();
        format!("LG-{suffix}")
    }

    fn invalid(&self, problems: &[Problem]) -> Answer {
        errors(StatusCode::BAD_REQUEST, problems)
    }

    fn registered(&self, record: &Record, created: bool) -> Answer {
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        match registration(record) {
            Some(registration) => Answer::new(status, json!({ "registration": registration })),
            None => self.replay(record),
        }
    }

    fn pending(&self, record: &Record) -> Answer {
        Answer::new(
            StatusCode::ACCEPTED,
            json!({"registration": {
                "request_id": record.key,
                "reference": record.receipt_ref,
                "state": "PROCESSING",
            }}),
        )
    }

    fn rejected(&self, _key: &str, _receipt_ref: &str, reason: &str) -> Answer {
        Answer::new(
            StatusCode::BAD_REQUEST,
            json!({
                "errors": [{"field": "sender.vat_id", "reason": reason}],
                "retryable": false,
            }),
        )
    }

    fn conflict(&self) -> Answer {
        errors(
            StatusCode::CONFLICT,
            &[(
                "request_id".into(),
                "already used with a different payload".into(),
            )],
        )
    }

    fn not_found(&self) -> Answer {
        errors(
            StatusCode::NOT_FOUND,
            &[("request_id".into(), "unknown".into())],
        )
    }

    fn fault(&self, kind: FaultKind, retry_after_seconds: u64) -> Answer {
        match kind {
            FaultKind::Http429 => Answer {
                retry_after: Some(retry_after_seconds),
                ..fault(StatusCode::TOO_MANY_REQUESTS, "throttled")
            },
            FaultKind::Http503 => fault(StatusCode::SERVICE_UNAVAILABLE, "maintenance"),
            FaultKind::Http500 | FaultKind::Reset | FaultKind::Timeout => {
                fault(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }

    fn callback(&self, record: &Record) -> Option<Value> {
        match &record.state {
            RecordState::Pending => None,
            RecordState::Registered { .. } => Some(json!({
                "type": "registration.completed",
                "registration": registration(record)?,
            })),
            RecordState::Rejected { reason } => Some(json!({
                "type": "registration.failed",
                "registration": {
                    "request_id": record.key,
                    "reference": record.receipt_ref,
                    "state": "REJECTED",
                },
                "errors": [{"field": "sender.vat_id", "reason": reason}],
            })),
        }
    }

    fn signature_headers(
        &self,
        secret: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let signature = sign(secret, timestamp, body);
        vec![
            ("x-timestamp", timestamp.to_string()),
            ("x-signature-256", format!("sha256={signature}")),
        ]
    }
}

/// The `registration` object of a registered record.
fn registration(record: &Record) -> Option<Value> {
    match &record.state {
        RecordState::Registered {
            registry_id,
            registered_at,
        } => Some(json!({
            "id": registry_id,
            "request_id": record.key,
            "reference": record.receipt_ref,
            "state": "REGISTERED",
            "created_at": registered_at,
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lg_and_ten_base32_characters() {
        let id = Logistics.registry_id(1, Utc::now());
        let suffix = id.strip_prefix("LG-").expect("prefix");
        assert_eq!(suffix.len(), 10);
        assert!(suffix.bytes().all(|b| ID_ALPHABET.contains(&b)), "{id}");
    }

    #[test]
    fn parse_reports_nested_paths() {
        let problems = Logistics
            .parse(
                &json!({"reference": "r", "sender": {"country": "de"}, "item_count": 1,
                           "declared_value": {"amount": "1.00", "currency": "EUR"},
                           "issued_at": "2026-01-01T00:00:00Z"}),
            )
            .expect_err("invalid");
        let fields: Vec<_> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["sender.vat_id", "sender.country"]);
    }
}
