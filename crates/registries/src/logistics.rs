//! The logistics provider's registration API (`logistics-v2`).
//!
//! `PUT /v2/registrations/{request_id}` (the idempotency key is the path): 201/200 registered
//! (`{"registration": {"id", ...}}`), 202 processing (callback follows), 400 with
//! `"retryable": false` rejected (`{"errors": [{"field", "reason"}]}`). Callbacks are signed
//! `X-Signature-256: sha256=<hex>` over `<X-Timestamp>.<body>`.

use chrono::{DateTime, Utc};
use http::HeaderMap;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::{
    CallError, Callback, CallbackConfig, CallbackError, Outcome, RegistrationRequest,
    RegistryConfig, classify, signature,
};

pub(crate) async fn register(
    http: &reqwest::Client,
    config: &RegistryConfig,
    key: &str,
    request: RegistrationRequest<'_>,
) -> Result<Outcome, CallError> {
    let receipt = request.receipt;
    let body = json!({
        "reference": request.receipt_id.to_string(),
        "sender": {"vat_id": receipt.seller.tax_id, "country": receipt.seller.country},
        "declared_value": {"amount": receipt.totals.gross_amount.to_string(), "currency": receipt.currency},
        "item_count": receipt.lines.len(),
        "issued_at": receipt.issued_at.to_rfc3339(),
    });
    let url = config
        .base_url
        .join(&format!("v2/registrations/{key}"))
        .map_err(|e| CallError::Fatal(e.to_string()))?;
    let mut call = http.put(url).json(&body);
    if let Some(api_key) = &config.api_key {
        call = call.header("X-Api-Key", api_key.expose());
    }
    let (status, headers, text) = classify::send(call).await?;
    match status {
        StatusCode::OK | StatusCode::CREATED => registered(&text),
        StatusCode::ACCEPTED => Ok(Outcome::Pending),
        StatusCode::BAD_REQUEST => match serde_json::from_str::<Refusal>(&text) {
            // Only a refusal the provider marks final is a rejection of the receipt; any other
            // 400 means our request is wrong.
            Ok(refusal) if refusal.retryable == Some(false) => Ok(refusal.into_outcome()),
            _ => Err(CallError::Fatal(format!(
                "HTTP 400: {}",
                classify::snippet(&text)
            ))),
        },
        other => Err(classify::status(other, &headers, &text)),
    }
}

#[derive(Deserialize)]
struct Envelope {
    registration: Registration,
}

#[derive(Deserialize)]
struct Registration {
    id: Option<String>,
    reference: Option<String>,
    created_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Refusal {
    errors: Vec<FieldError>,
    retryable: Option<bool>,
}

#[derive(Deserialize)]
struct FieldError {
    field: String,
    reason: String,
}

impl Refusal {
    fn into_outcome(self) -> Outcome {
        let reason = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect::<Vec<_>>()
            .join("; ");
        Outcome::Rejected {
            code: "REJECTED".into(),
            reason,
        }
    }
}

fn registered(text: &str) -> Result<Outcome, CallError> {
    let unreadable = |why: &str| {
        CallError::Fatal(format!(
            "unreadable registration ({why}): {}",
            classify::snippet(text)
        ))
    };
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| unreadable(&e.to_string()))?;
    let registration = envelope.registration;
    match (registration.id, registration.created_at) {
        (Some(id), Some(at)) => Ok(Outcome::Registered {
            registration_id: id,
            registered_at: at,
        }),
        _ => Err(unreadable("no id or created_at")),
    }
}

#[derive(Deserialize)]
struct CallbackBody {
    #[serde(rename = "type")]
    kind: String,
    registration: Registration,
    #[serde(default)]
    errors: Vec<FieldError>,
}

pub(crate) fn read_callback(
    config: &CallbackConfig,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Callback, CallbackError> {
    let header = |name: &'static str, shown: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(signature::SignatureError::Missing(shown))
    };
    let timestamp = header("x-timestamp", "X-Timestamp")?;
    let signature = header("x-signature-256", "X-Signature-256")?
        .strip_prefix("sha256=")
        .ok_or(signature::SignatureError::Malformed("X-Signature-256"))?;
    signature::verify(
        &config.secrets,
        timestamp,
        body,
        &[signature],
        now,
        config.tolerance,
        "X-Signature-256",
    )?;

    let callback: CallbackBody =
        serde_json::from_slice(body).map_err(|e| CallbackError::Body(e.to_string()))?;
    let reference = callback
        .registration
        .reference
        .clone()
        .ok_or_else(|| CallbackError::Body("no reference".into()))?;
    let receipt_id = receipts_domain::ReceiptId::parse(&reference)
        .map_err(|e| CallbackError::Body(format!("reference: {e}")))?;
    let outcome = match callback.kind.as_str() {
        "registration.completed" => {
            match (callback.registration.id, callback.registration.created_at) {
                (Some(id), Some(at)) => Outcome::Registered {
                    registration_id: id,
                    registered_at: at,
                },
                _ => {
                    return Err(CallbackError::Body(
                        "completed registration without id or created_at".into(),
                    ));
                }
            }
        }
        "registration.failed" => Refusal {
            errors: callback.errors,
            retryable: Some(false),
        }
        .into_outcome(),
        other => {
            return Err(CallbackError::Body(format!(
                "unexpected callback type {other:?}"
            )));
        }
    };
    Ok(Callback {
        receipt_id,
        outcome,
    })
}
