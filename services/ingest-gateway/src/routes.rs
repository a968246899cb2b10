//! Receipt endpoints.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use receipts_domain::event::now_millis;
use receipts_domain::{
    CallbackUrl, DocumentFormat, EventId, EventMeta, IdempotencyDecision, IdempotencyKey,
    NormalizedReceipt, Reason, ReceiptEvent, ReceiptId, ReceiptRecord, Registration,
    RegistrationFailure, RequestFingerprint, Reservation, Status, Submitted, TenantId,
    TimelineEntry,
};
use receipts_store::{Document, Reserved};
use receipts_validation::types::{self, LookupError};
use serde::Serialize;

use crate::app::AppState;
use crate::auth::Caller;
use crate::body::read_limited;
use crate::problem::ApiError;

pub const RECEIPT_TYPE: &str = "receipt-type";
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const CALLBACK_URL: &str = "callback-url";
/// Set on a 202 that replays an earlier submission's answer.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The 202 answer to a submission.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "01936f0e-7c1a-7d52-9a6e-3c2b1f0e9d41", "status": "RECEIVED", "status_url": "https://receipts.example/v1/receipts/01936f0e-7c1a-7d52-9a6e-3c2b1f0e9d41"}))]
pub struct Accepted {
    pub id: ReceiptId,
    pub status: Status,
    pub status_url: String,
}

/// A validated submission request.
pub(crate) struct Submission {
    /// As the `Receipt-Type` header named it (an alias stays an alias).
    receipt_type: String,
    format: DocumentFormat,
    /// A deprecated type's `(deprecated_since, sunset)`.
    deprecation: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    content_type: String,
    key: IdempotencyKey,
    callback_url: Option<CallbackUrl>,
    document: Bytes,
}

/// Submit a receipt
///
/// The document as issued (JSON or XML, of the type `Receipt-Type` names). The answer is 202
/// only once the receipt is durably recorded; its outcome follows asynchronously (poll
/// `status_url`, or receive a webhook). Retrying with the same `Idempotency-Key` and the same
/// request is safe: it answers the same receipt (`Idempotent-Replayed: true`).
#[utoipa::path(
    post,
    path = "/v1/receipts",
    tag = "receipts",
    operation_id = "submit_receipt",
    security(("api_key" = ["read-write"])),
    params(
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[ -~]+$", example = "order-2026-000123", description = "Chosen by the client, unique per receipt: a retry with the same key and request answers the same receipt; the same key with another request is a 409."),
        ("Receipt-Type" = String, Header, example = "retail-receipt/v1", description = "`name/version` (or an alias) of a type `GET /v1/receipt-types` lists."),
        ("Callback-Url" = Option<String>, Header, nullable = false, max_length = 2048, pattern = "^https?://", example = "https://partner.example/receipts/outcome", description = "Where to deliver this receipt's outcome as a signed webhook (http(s), at most 2048 characters, no credentials)."),
    ),
    request_body(
        description = "The receipt document as issued: `application/json` or `application/xml` (UTF-8), at most `gateway.max_body_bytes`.",
        content(
            (Object = "application/json", example = json!({"receipt_number": "2026-004711", "issued_at": "2026-11-14T08:12:31+01:00", "seller": {"tax_id": "DE136695976", "name": "Bäckerei Beispiel GmbH"}, "currency": "EUR", "lines": [{"description": "Roggenbrot", "quantity": "1", "unit_price": "3.50", "vat_rate": "7", "net_amount": "3.50", "vat_amount": "0.25", "gross_amount": "3.75"}, {"description": "Croissant", "quantity": "4", "unit_price": "1.20", "vat_rate": "7", "net_amount": "4.80", "vat_amount": "0.34", "gross_amount": "5.14"}], "totals": {"net_amount": "8.30", "vat_amount": "0.59", "gross_amount": "8.89"}, "payments": [{"method": "card", "amount": "8.89"}]})),
            (String = "application/xml", example = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Receipt xmlns=\"urn:receipts:retail-receipt:v1\"><Number>WK-2026-11-16-0193</Number><IssuedAt>2026-11-16T15:20:00+01:00</IssuedAt><Seller><TaxId>ATU13585627</TaxId><Name>Wiener Kaffeehaus KG</Name></Seller><Currency>EUR</Currency><Lines><Line><Description>Wiener Melange</Description><Quantity>2</Quantity><UnitPrice>4.90</UnitPrice><VatRate>20</VatRate><NetAmount>9.80</NetAmount><VatAmount>1.96</VatAmount><GrossAmount>11.76</GrossAmount></Line></Lines><Totals><NetAmount>9.80</NetAmount><VatAmount>1.96</VatAmount><GrossAmount>11.76</GrossAmount></Totals><Payments><Payment method=\"card\">11.76</Payment></Payments></Receipt>"),
        ),
    ),
    responses(
        (status = 202, description = "Recorded durably; the outcome follows.", body = Accepted, headers(
            ("Location" = String, description = "The receipt's status URL."),
            ("Idempotent-Replayed" = String, description = "`true` when the key replayed an earlier submission."),
            ("Deprecation" = String, description = "A deprecated type: `@<unix seconds>` since when (RFC 9745)."),
            ("Sunset" = String, description = "A deprecated type: when it stops being accepted (RFC 8594)."),
        )),
        (status = 400, description = "A header is missing or invalid, the receipt type is unknown, or the document is empty, not UTF-8, malformed JSON/XML or has a DTD."),
        (status = 409, description = "The Idempotency-Key was used for a different request (`receipt_id` names the first)."),
        (status = 413, description = "The body exceeds `limit_bytes`."),
        (status = 415, description = "No or an unsupported Content-Type, or one the receipt type does not take."),
    ),
)]
#[tracing::instrument(skip_all, fields(receipt_id))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require_write("submitting receipts")?;
    // Held until the answer: refusing beyond the limit keeps an overloaded gateway's memory
    // and answers bounded instead of queueing without end.
    let _admitted = state
        .submissions
        .try_acquire()
        .map_err(|_| ApiError::Overloaded)?;
    let submission = parse_submission(&state, &headers, body).await?;
    let deprecation = submission.deprecation;
    let (receipt_id, replay) = accept(&state, &caller.tenant, submission).await?;
    let status_url = status_url(&state, receipt_id);
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: receipt_id,
            status: Status::Received,
            status_url: status_url.clone(),
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Some((since, sunset)) = deprecation {
        crate::receipt_types::deprecation_headers(response.headers_mut(), since, sunset);
    }
    if replay {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Records one parsed submission: reserves its idempotency key, produces the `submitted` event
/// (acknowledged by the broker) and stores the document. Returns the receipt id and whether the
/// key replayed an earlier submission. Shared by single and batch submissions.
pub(crate) async fn accept(
    state: &AppState,
    tenant: &TenantId,
    submission: Submission,
) -> Result<(ReceiptId, bool), ApiError> {
    let format = submission.format;
    let fingerprint = RequestFingerprint::of(
        &submission.receipt_type,
        format,
        submission.callback_url.as_ref().map(CallbackUrl::as_str),
        &submission.document,
    );
    let fresh = Reservation {
        tenant_id: tenant.clone(),
        idempotency_key: submission.key.clone(),
        fingerprint: fingerprint.clone(),
        receipt_id: ReceiptId::new(),
        event_id: EventId::new(),
        received_at: now_millis(),
        receipt_type: submission.receipt_type.clone(),
        content_type: submission.content_type.clone(),
        callback_url: submission.callback_url.clone(),
    };
    let (reservation, replay) = match state
        .reservations
        .reserve(&fresh)
        .await
        .map_err(store_unavailable)?
    {
        Reserved::New => (fresh, false),
        Reserved::Existing(earlier) => match earlier.decide(&fingerprint) {
            IdempotencyDecision::Conflict(receipt_id) => {
                return Err(ApiError::IdempotencyConflict { receipt_id });
            }
            IdempotencyDecision::Replay(_) | IdempotencyDecision::Fresh => (*earlier, true),
        },
    };
    let receipt_id = reservation.receipt_id;
    tracing::Span::current().record("receipt_id", tracing::field::display(receipt_id));

    // The document is stored once the event is acknowledged, so a replay that finds it answers
    // as before. Otherwise (first attempt, or an earlier one that failed or crashed before
    // answering) the same event is produced again: it carries the reservation's ids, so a copy
    // downstream is harmless.
    let completed = replay
        && state
            .documents
            .document(receipt_id)
            .await
            .map_err(store_unavailable)?
            .is_some();
    if !completed {
        let event: ReceiptEvent = Submitted {
            meta: EventMeta {
                event_id: reservation.event_id,
                receipt_id,
                tenant_id: tenant.clone(),
                occurred_at: reservation.received_at,
                attempt: 1,
            },
            receipt_type: submission.receipt_type.clone(),
            content_type: submission.content_type.clone(),
            document: submission.document.to_vec(),
            idempotency_key: submission.key,
            callback_url: submission.callback_url,
        }
        .into();
        state.producer.publish(&event).await.map_err(|error| {
            tracing::warn!(%error, "submitted event not acknowledged");
            ApiError::BrokerUnavailable
        })?;
        state
            .documents
            .put_document(&Document {
                receipt_id,
                tenant_id: tenant.clone(),
                content_type: submission.content_type,
                bytes: submission.document.to_vec(),
            })
            .await
            .map_err(store_unavailable)?;
        tracing::info!(receipt_type = %submission.receipt_type, replay, "receipt accepted");
    }
    Ok((receipt_id, replay))
}

async fn parse_submission(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Submission, ApiError> {
    let mut submission = prepare(
        state,
        header_str(headers, header::CONTENT_TYPE.as_str())?,
        header_str(headers, RECEIPT_TYPE)?,
        header_str(headers, IDEMPOTENCY_KEY)?,
        header_str(headers, CALLBACK_URL)?,
    )?;
    let document = read_limited(headers, body, state.max_body_bytes).await?;
    submission.attach(document)?;
    Ok(submission)
}

/// Checks what a submission states besides its document (the headers of a single submission,
/// the envelope of a batch item), in a fixed order; the document is attached afterwards.
pub(crate) fn prepare(
    state: &AppState,
    content_type: Option<&str>,
    receipt_type: Option<&str>,
    idempotency_key: Option<&str>,
    callback_url: Option<&str>,
) -> Result<Submission, ApiError> {
    let content_type = content_type.ok_or_else(|| {
        ApiError::UnsupportedMediaType("a Content-Type header is required".into())
    })?;
    let format = DocumentFormat::from_content_type(content_type).map_err(ApiError::Document)?;
    let receipt_type = receipt_type
        .ok_or(ApiError::MissingHeader("Receipt-Type"))?
        .trim();
    let resolved = state
        .receipt_types
        .current()
        .resolve(receipt_type, format)
        .map_err(|e| match e {
            LookupError::Unknown { .. } => ApiError::UnknownReceiptType(e.to_string()),
            LookupError::Format { name, formats, .. } => ApiError::MediaTypeMismatch {
                name,
                expected: formats.join(" or "),
                got: content_type.to_owned(),
            },
        })?;
    let definition = &resolved.definition;
    let deprecation = match (
        definition.status,
        definition.deprecated_since,
        definition.sunset,
    ) {
        (types::Status::Deprecated, Some(since), Some(sunset)) => Some((since, sunset)),
        _ => None,
    };
    let key = idempotency_key.ok_or(ApiError::MissingHeader("Idempotency-Key"))?;
    let key = IdempotencyKey::parse(key).map_err(|e| ApiError::InvalidHeader {
        name: "Idempotency-Key",
        reason: e.to_string(),
    })?;
    let callback_url = callback_url
        .map(|v| CallbackUrl::parse(v.trim()))
        .transpose()
        .map_err(|e| ApiError::InvalidHeader {
            name: "Callback-Url",
            reason: e.to_string(),
        })?;
    Ok(Submission {
        receipt_type: receipt_type.to_owned(),
        format,
        deprecation,
        content_type: content_type.to_owned(),
        key,
        callback_url,
        document: Bytes::new(),
    })
}

impl Submission {
    /// Attaches the document once it is known to be well-formed in the submission's format.
    pub(crate) fn attach(&mut self, document: Bytes) -> Result<(), ApiError> {
        self.format
            .check_well_formed(&document)
            .map_err(ApiError::Document)?;
        self.document = document;
        Ok(())
    }
}

/// A header as text; a header that is not visible ASCII is invalid rather than absent.
fn header_str<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| ApiError::InvalidHeader {
            name,
            reason: "not visible ASCII".into(),
        }),
    }
}

pub(crate) fn status_url(state: &AppState, id: ReceiptId) -> String {
    format!("{}/v1/receipts/{id}", state.public_url)
}

/// A store that failed: the client may retry. (Also for the core's errors, which wrap the
/// store's.)
pub(crate) fn store_unavailable(error: impl std::fmt::Display) -> ApiError {
    tracing::warn!(%error, "store error");
    ApiError::StoreUnavailable
}

/// Ids that cannot exist are simply not found (no hint about id formats).
fn parse_id(raw: &str) -> Result<ReceiptId, ApiError> {
    ReceiptId::parse(raw).map_err(|_| ApiError::ReceiptNotFound)
}

/// A receipt as partners see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReceiptView {
    pub id: ReceiptId,
    pub status: Status,
    /// Unknown while only a registry has reported on the receipt.
    pub receipt_type: Option<String>,
    pub content_type: Option<String>,
    pub callback_url: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Why the receipt was rejected; empty otherwise.
    pub reasons: Vec<Reason>,
    /// The normalized receipt, once validated.
    pub receipt: Option<NormalizedReceipt>,
    /// One per registry that registered the receipt, in registry-name order.
    pub registrations: Vec<Registration>,
    /// One per registry that failed for good, in registry-name order.
    pub failures: Vec<RegistrationFailure>,
    pub timeline: Vec<TimelineEntry>,
    pub links: Links,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    pub this: String,
    pub document: String,
}

impl ReceiptView {
    fn new(record: ReceiptRecord, self_url: String) -> Self {
        Self {
            id: record.id,
            status: record.status,
            receipt_type: record.receipt_type,
            content_type: record.content_type,
            callback_url: record.callback_url.map(|url| url.as_str().to_owned()),
            received_at: record.received_at,
            updated_at: record.updated_at,
            reasons: record.reasons,
            receipt: record.receipt,
            registrations: record.registrations,
            failures: record.failures,
            timeline: record.timeline,
            links: Links {
                document: format!("{self_url}/document"),
                this: self_url,
            },
        }
    }
}

/// Get a receipt
///
/// Its status, the reasons of a rejection, the normalized receipt once validated, its
/// registrations and failures, and every event in its history.
#[utoipa::path(
    get,
    path = "/v1/receipts/{id}",
    tag = "receipts",
    operation_id = "get_receipt",
    security(("api_key" = ["read"])),
    params(("id" = receipts_domain::ReceiptId, Path, description = "The receipt's id (from the 202).")),
    responses(
        (status = 200, description = "The receipt.", body = ReceiptView),
        (status = 404, description = "No such receipt for this tenant."),
    ),
)]
#[tracing::instrument(skip_all, fields(receipt_id = %id))]
pub async fn receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReceiptView>, ApiError> {
    let id = parse_id(&id)?;
    let record = state
        .receipts
        .receipt(&caller.tenant, id)
        .await
        .map_err(store_unavailable)?
        .ok_or(ApiError::ReceiptNotFound)?;
    Ok(Json(ReceiptView::new(record, status_url(&state, id))))
}

/// Get a receipt's document
///
/// The document exactly as submitted, with its original content type.
#[utoipa::path(
    get,
    path = "/v1/receipts/{id}/document",
    tag = "receipts",
    operation_id = "get_receipt_document",
    security(("api_key" = ["read"])),
    params(("id" = receipts_domain::ReceiptId, Path, description = "The receipt's id.")),
    responses(
        (status = 200, description = "The original bytes.", content(
            (Object = "application/json"),
            (String = "application/xml"),
        )),
        (status = 404, description = "No such receipt for this tenant."),
    ),
)]
#[tracing::instrument(skip_all, fields(receipt_id = %id))]
pub async fn document(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let document = state
        .receipts
        .document(&caller.tenant, id)
        .await
        .map_err(store_unavailable)?
        .ok_or(ApiError::ReceiptNotFound)?;
    let content_type = HeaderValue::from_str(&document.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    Ok(([(header::CONTENT_TYPE, content_type)], document.bytes).into_response())
}
