//! The webhook message body: the Standard Webhooks envelope (`type`, `timestamp`, `data`) around
//! the receipt's outcome. A pure function of the status change, so rendering it again after a
//! crash gives the same bytes.

use chrono::{DateTime, Utc};
use receipts_domain::{
    Reason, ReceiptId, Registration, RegistrationFailure, Status, StatusChanged, WebhookEventType,
};
use serde::Serialize;
use url::Url;

#[derive(Debug, Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    event_type: WebhookEventType,
    /// When the status changed.
    timestamp: DateTime<Utc>,
    data: Data<'a>,
}

/// Shaped like the receipt resource of `GET /v1/receipts/{id}`, so partners parse one thing.
#[derive(Debug, Serialize)]
struct Data<'a> {
    id: ReceiptId,
    status: Status,
    previous_status: Status,
    receipt_type: &'a str,
    changed_at: DateTime<Utc>,
    reasons: &'a [Reason],
    registrations: &'a [Registration],
    failures: &'a [RegistrationFailure],
    #[serde(skip_serializing_if = "Option::is_none")]
    links: Option<Links>,
}

#[derive(Debug, Serialize)]
struct Links {
    #[serde(rename = "self")]
    receipt: String,
}

/// The JSON body announcing `change` as `event_type`; `public_url` (the gateway's external base
/// URL), when known, adds a link to the receipt.
pub fn render(
    change: &StatusChanged,
    event_type: WebhookEventType,
    public_url: Option<&Url>,
) -> Vec<u8> {
    let links = public_url.map(|base| Links {
        receipt: format!(
            "{}/v1/receipts/{}",
            base.as_str().trim_end_matches('/'),
            change.meta.receipt_id
        ),
    });
    let envelope = Envelope {
        event_type,
        timestamp: change.meta.occurred_at,
        data: Data {
            id: change.meta.receipt_id,
            status: change.to,
            previous_status: change.from,
            receipt_type: &change.receipt_type,
            changed_at: change.meta.occurred_at,
            reasons: &change.reasons,
            registrations: &change.registrations,
            failures: &change.failures,
            links,
        },
    };
    // Serializing plain data structs to a Vec cannot fail; an empty object is a safe fallback.
    serde_json::to_vec(&envelope).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use receipts_domain::{EventMeta, RegistryName, TenantId};
    use serde_json::{Value, json};

    use super::*;

    fn accepted() -> StatusChanged {
        let at = DateTime::from_timestamp_millis(1_795_000_000_123).expect("time");
        StatusChanged {
            meta: EventMeta {
                occurred_at: at,
                ..EventMeta::new(ReceiptId::new(), TenantId::parse("acme").expect("tenant"))
            },
            from: Status::Validated,
            to: Status::Accepted,
            receipt_type: "retail-receipt/v1".into(),
            callback_url: None,
            reasons: vec![],
            registrations: vec![
                Registration {
                    registry: RegistryName::parse("tax").expect("name"),
                    registration_id: "TX-2026-00000001".into(),
                    registered_at: at,
                    attempts: 2,
                },
                Registration {
                    registry: RegistryName::parse("logistics").expect("name"),
                    registration_id: "LG-ZCVUSGKLXJ".into(),
                    registered_at: at,
                    attempts: 1,
                },
            ],
            failures: vec![],
        }
    }

    #[test]
    fn the_envelope_carries_type_timestamp_and_the_outcome() {
        let change = accepted();
        let base = Url::parse("https://receipts.example/").expect("url");
        let body: Value =
            serde_json::from_slice(&render(&change, WebhookEventType::Accepted, Some(&base)))
                .expect("json");
        let id = change.meta.receipt_id.to_string();
        assert_eq!(
            body,
            json!({
                "type": "receipt.accepted",
                "timestamp": "2026-11-18T11:06:40.123Z",
                "data": {
                    "id": id,
                    "status": "ACCEPTED",
                    "previous_status": "VALIDATED",
                    "receipt_type": "retail-receipt/v1",
                    "changed_at": "2026-11-18T11:06:40.123Z",
                    "reasons": [],
                    "registrations": [
                        {"registry": "tax", "registration_id": "TX-2026-00000001",
                         "registered_at": "2026-11-18T11:06:40.123Z", "attempts": 2},
                        {"registry": "logistics", "registration_id": "LG-ZCVUSGKLXJ",
                         "registered_at": "2026-11-18T11:06:40.123Z", "attempts": 1}
                    ],
                    "failures": [],
                    "links": {"self": format!("https://receipts.example/v1/receipts/{id}")}
                }
            })
        );
    }

    #[test]
    fn rendering_is_deterministic_and_links_are_optional() {
        let change = accepted();
        let once = render(&change, WebhookEventType::Accepted, None);
        assert_eq!(once, render(&change, WebhookEventType::Accepted, None));
        let body: Value = serde_json::from_slice(&once).expect("json");
        assert!(body["data"].get("links").is_none());
    }
}
