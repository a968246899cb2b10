//! The tax authority's API shape: `POST /api/v1/fiscal-receipts` with an `Idempotency-Key`
//! header, fiscal numbers `TX-<year>-<8 digits>`, errors as `{"error": {"code", "message"}}`.

use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Utc};
use serde_json::{Value, json};

use crate::api::{Answer, Fields, Problem, Record, RecordState, Shape, Submission, sign};
use crate::config::FaultKind;

pub(crate) struct Tax;

fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    Answer::new(status, json!({"error": {"code": code, "message": message}}))
}

impl Shape for Tax {
    fn receipt_ref_field(&self) -> &'static str {
        "receipt_ref"
    }

    fn key_field(&self) -> &'static str {
        "Idempotency-Key"
    }

    fn serial_of(&self, registry_id: &str) -> Option<u64> {
        registry_id.rsplit('-').next()?.parse().ok()
    }

    fn parse(&self, body: &Value) -> Result<Submission, Vec<Problem>> {
        let mut fields = Fields::new(body);
        let receipt_ref = fields.text("receipt_ref");
        let seller_tax_id = fields.text("seller_tax_id");
        let issued_at = fields.timestamp("issued_at");
        let currency = fields.code("currency", 3, "an ISO 4217 code, e.g. \"EUR\"");
        let total_gross = fields.decimal("total_gross");
        let total_vat = fields.decimal("total_vat");
        let line_count = fields.count("line_count");
        match (
            receipt_ref,
            seller_tax_id,
            issued_at,
            currency,
            total_gross,
            total_vat,
            line_count,
        ) {
            (
                Some(receipt_ref),
                Some(seller_tax_id),
                Some(issued_at),
                Some(currency),
                Some(total_gross),
                Some(total_vat),
                Some(line_count),
            ) if fields.problems.is_empty() => Ok(Submission {
                request: json!({
                    "receipt_ref": receipt_ref,
                    "seller_tax_id": seller_tax_id,
                    "issued_at": issued_at,
                    "currency": currency,
                    "total_gross": total_gross,
                    "total_vat": total_vat,
                    "line_count": line_count,
                }),
                receipt_ref,
                party_id: seller_tax_id,
            }),
            _ => Err(fields.problems),
        }
    }

    fn registry_id(&self, serial: u64, at: DateTime<Utc>) -> String {
        format!("TX-{}-{serial:08}", at.year())
    }

    fn invalid(&self, problems: &[Problem]) -> Answer {
        let message = problems
            .iter()
            .map(|(field, reason)| format!("{field} {reason}"))
            .collect::<Vec<_>>()
            .join("; ");
        error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &message)
    }

    fn registered(&self, record: &Record, created: bool) -> Answer {
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let (fiscal_number, registered_at) = match &record.state {
            RecordState::Registered {
                registry_id,
                registered_at,
            } => (registry_id.as_str(), registered_at.as_str()),
            _ => return self.replay(record),
        };
        Answer::new(
            status,
            json!({
                "status": "REGISTERED",
                "fiscal_number": fiscal_number,
                "receipt_ref": record.receipt_ref,
                "registered_at": registered_at,
            }),
        )
    }

    fn pending(&self, record: &Record) -> Answer {
        Answer::new(
            StatusCode::ACCEPTED,
            json!({
                "status": "PENDING",
                "request_id": record.key,
                "receipt_ref": record.receipt_ref,
            }),
        )
    }

    fn rejected(&self, _key: &str, _receipt_ref: &str, reason: &str) -> Answer {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "SELLER_BLACKLISTED",
            reason,
        )
    }

    fn conflict(&self) -> Answer {
        error(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_CONFLICT",
            "the Idempotency-Key was already used with a different request body",
        )
    }

    fn not_found(&self) -> Answer {
        error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no fiscal receipt was submitted with this idempotency key",
        )
    }

    fn fault(&self, kind: FaultKind, retry_after_seconds: u64) -> Answer {
        match kind {
            FaultKind::Http429 => Answer {
                retry_after: Some(retry_after_seconds),
                ..error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    "too many requests, retry later",
                )
            },
            FaultKind::Http503 => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the fiscal registry is temporarily unavailable",
            ),
            FaultKind::Http500 | FaultKind::Reset | FaultKind::Timeout => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            ),
        }
    }

    fn callback(&self, record: &Record) -> Option<Value> {
        match &record.state {
            RecordState::Pending => None,
            RecordState::Registered {
                registry_id,
                registered_at,
            } => Some(json!({
                "event": "fiscal_receipt.registered",
                "request_id": record.key,
                "receipt_ref": record.receipt_ref,
                "fiscal_number": registry_id,
                "registered_at": registered_at,
            })),
            RecordState::Rejected { reason } => Some(json!({
                "event": "fiscal_receipt.rejected",
                "request_id": record.key,
                "receipt_ref": record.receipt_ref,
                "error": {"code": "SELLER_BLACKLISTED", "message": reason},
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
        vec![("x-tax-signature", format!("t={timestamp},v1={signature}"))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_numbers() {
        let at: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().expect("time");
        assert_eq!(Tax.registry_id(42, at), "TX-2026-00000042");
        assert_eq!(Tax.serial_of("TX-2026-00000042"), Some(42));
    }

    #[test]
    fn parse_names_every_bad_field() {
        let problems = Tax
            .parse(&json!({"receipt_ref": "r", "total_gross": 1}))
            .expect_err("invalid");
        let fields: Vec<_> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "seller_tax_id",
                "issued_at",
                "currency",
                "total_gross",
                "total_vat",
                "line_count"
            ]
        );
    }
}
