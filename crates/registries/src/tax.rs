//! The tax authority's fiscal-receipt API (`tax-authority-v1`).
//!
//! `POST /api/v1/fiscal-receipts` with `Idempotency-Key`: 201/200 registered (fiscal number),
//! 202 pending (callback follows), 422 rejected (`{"error": {"code", "message"}}`). Callbacks are
//! signed `X-Tax-Signature: t=<unix>,v1=<hex>` over `<t>.<body>`.

use chrono::{DateTime, Utc};
use http::HeaderMap;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::{
    CallError, Callback, CallbackConfig, CallbackError, Outcome, RegistrationRequest,
    RegistryConfig, classify, signature,
};

const SIGNATURE_HEADER: &str = "x-tax-signature";

pub(crate) async fn register(
    http: &reqwest::Client,
    config: &RegistryConfig,
    key: &str,
    request: RegistrationRequest<'_>,
) -> Result<Outcome, CallError> {
    let receipt = request.receipt;
    let body = json!({
        "receipt_ref": request.receipt_id.to_string(),
        "seller_tax_id": receipt.seller.tax_id,
        "issued_at": receipt.issued_at.to_rfc3339(),
        "currency": receipt.currency,
        "total_gross": receipt.totals.gross_amount.to_string(),
        "total_vat": receipt.totals.vat_amount.to_string(),
        "line_count": receipt.lines.len(),
    });
    let url = config
        .base_url
        .join("api/v1/fiscal-receipts")
        .map_err(|e| CallError::Fatal(e.to_string()))?;
    let mut call = http.post(url).header("Idempotency-Key", key).json(&body);
    if let Some(api_key) = &config.api_key {
        call = call.bearer_auth(api_key.expose());
    }
    let (status, headers, text) = classify::send(call).await?;
    match status {
        StatusCode::OK | StatusCode::CREATED => registered(&text),
        StatusCode::ACCEPTED => Ok(Outcome::Pending),
        StatusCode::UNPROCESSABLE_ENTITY => Ok(rejected(&text)),
        other => Err(classify::status(other, &headers, &text)),
    }
}

#[derive(Deserialize)]
struct Registration {
    fiscal_number: String,
    registered_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

fn registered(text: &str) -> Result<Outcome, CallError> {
    let r: Registration = serde_json::from_str(text).map_err(|e| {
        CallError::Fatal(format!(
            "unreadable registration ({e}): {}",
            classify::snippet(text)
        ))
    })?;
    Ok(Outcome::Registered {
        registration_id: r.fiscal_number,
        registered_at: r.registered_at,
    })
}

fn rejected(text: &str) -> Outcome {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => Outcome::Rejected {
            code: body.error.code,
            reason: body.error.message,
        },
        Err(_) => Outcome::Rejected {
            code: "REJECTED".into(),
            reason: classify::snippet(text),
        },
    }
}

#[derive(Deserialize)]
struct CallbackBody {
    event: String,
    receipt_ref: String,
    fiscal_number: Option<String>,
    registered_at: Option<DateTime<Utc>>,
    error: Option<ErrorDetail>,
}

pub(crate) fn read_callback(
    config: &CallbackConfig,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Callback, CallbackError> {
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(signature::SignatureError::Missing("X-Tax-Signature"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", s)) => signatures.push(s),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(signature::SignatureError::Malformed("X-Tax-Signature"))?;
    signature::verify(
        &config.secrets,
        timestamp,
        body,
        &signatures,
        now,
        config.tolerance,
        "X-Tax-Signature",
    )?;

    let callback: CallbackBody =
        serde_json::from_slice(body).map_err(|e| CallbackError::Body(e.to_string()))?;
    let receipt_id = receipts_domain::ReceiptId::parse(&callback.receipt_ref)
        .map_err(|e| CallbackError::Body(format!("receipt_ref: {e}")))?;
    let outcome = match (
        callback.event.as_str(),
        callback.fiscal_number,
        callback.registered_at,
        callback.error,
    ) {
        ("fiscal_receipt.registered", Some(registration_id), Some(registered_at), _) => {
            Outcome::Registered {
                registration_id,
                registered_at,
            }
        }
        ("fiscal_receipt.rejected", _, _, Some(error)) => Outcome::Rejected {
            code: error.code,
            reason: error.message,
        },
        (event, ..) => {
            return Err(CallbackError::Body(format!(
                "unexpected callback {event:?} or missing fields"
            )));
        }
    };
    Ok(Callback {
        receipt_id,
        outcome,
    })
}
