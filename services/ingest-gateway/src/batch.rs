//! `POST /v1/receipts/batch`: many receipts in one request, as NDJSON (one envelope per line).
//! Every item is checked and recorded on its own, exactly as a single submission would be
//! (its own idempotency key, durable in Kafka before the answer), so one bad item never refuses
//! the others and a retried batch creates nothing twice. The answer lists every item's outcome
//! in order.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use futures::StreamExt;
use receipts_domain::{ReceiptId, Status};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::Caller;
use crate::body::read_limited;
use crate::problem::{ApiError, Problem};
use crate::routes;

/// Items recorded at once: enough to hide the broker's acknowledgement latency, few enough to
/// leave room for other requests.
const CONCURRENCY: usize = 16;

/// The media types a batch may be sent as.
const NDJSON: &[&str] = &[
    "application/x-ndjson",
    "application/jsonl",
    "application/ndjson",
];

/// One line of a batch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = BatchEnvelope, example = json!({"receipt_type": "retail-receipt-xml/v1", "content_type": "application/xml", "idempotency_key": "eod-2026-11-30-0001", "document": "<Receipt xmlns=\"urn:receipts:retail:1\">…</Receipt>"}))]
#[serde(deny_unknown_fields)]
struct Envelope {
    receipt_type: String,
    content_type: String,
    idempotency_key: String,
    #[serde(default)]
    callback_url: Option<String>,
    /// The document as issued (JSON or XML text), as a JSON string.
    document: String,
}

/// The outcome of one item.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemOutcome {
    /// The item's position in the batch, from 0 (blank lines do not count).
    pub index: usize,
    /// What a single submission of this item would have answered: 202, or a problem's status.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<ReceiptId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
    /// The idempotency key replayed an earlier submission (no new receipt).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::openapi::ProblemDocument>)]
    pub problem: Option<Problem>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchOutcome {
    /// Items accepted (202), replays included.
    pub accepted: usize,
    /// Items refused with a problem.
    pub refused: usize,
    pub items: Vec<ItemOutcome>,
}

/// Submit receipts in a batch
///
/// NDJSON: one envelope per line (blank lines are skipped), at most `gateway.max_batch_items`
/// items and `gateway.max_batch_bytes`. Every item is checked and recorded exactly as a single
/// submission (its own idempotency key, durable before the answer); one bad item never refuses
/// the others, and a retried batch records nothing twice. The answer lists every item's outcome
/// in order.
#[utoipa::path(
    post,
    path = "/v1/receipts/batch",
    tag = "receipts",
    operation_id = "submit_batch",
    security(("api_key" = ["read-write"])),
    request_body(
        description = "One `BatchEnvelope` per line, as `application/x-ndjson` (also `application/jsonl`, `application/ndjson`); the schema is the sequence of lines, as an array.",
        content((Vec<Envelope> = "application/x-ndjson")),
    ),
    responses(
        (status = 200, description = "Every item's outcome, in order.", body = BatchOutcome),
        (status = 400, description = "The batch is not UTF-8, holds no item, or a line is not an envelope (`invalid-batch`)."),
        (status = 413, description = "More than `limit_items` items, or more than `limit_bytes` bytes."),
        (status = 415, description = "The Content-Type is not NDJSON."),
    ),
)]
#[tracing::instrument(skip_all, fields(items))]
pub async fn submit_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BatchOutcome>, ApiError> {
    caller.require_write("submitting receipts")?;
    let _admitted = state
        .submissions
        .try_acquire()
        .map_err(|_| ApiError::Overloaded)?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !NDJSON.contains(&media_type.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "a batch is NDJSON: Content-Type: application/x-ndjson, not {media_type:?}"
        )));
    }
    let body = read_limited(&headers, body, state.max_batch_bytes).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::InvalidBatch(format!("the batch is not UTF-8: {e}")))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err(ApiError::InvalidBatch("the batch holds no item".into()));
    }
    if lines.len() > state.max_batch_items {
        return Err(ApiError::BatchTooLarge {
            limit: state.max_batch_items,
        });
    }
    tracing::Span::current().record("items", lines.len());
    // By index: a closure over borrowed lines would need a higher-ranked lifetime.
    let outcomes: Vec<ItemOutcome> = futures::stream::iter(0..lines.len())
        .map(|index| item(&state, &caller, index, lines[index]))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let accepted = outcomes.iter().filter(|o| o.status == 202).count();
    tracing::info!(
        accepted,
        refused = outcomes.len() - accepted,
        "batch answered"
    );
    Ok(Json(BatchOutcome {
        accepted,
        refused: outcomes.len() - accepted,
        items: outcomes,
    }))
}

/// Checks and records one item; every failure is its own problem.
async fn item(state: &AppState, caller: &Caller, index: usize, line: &str) -> ItemOutcome {
    match record(state, caller, line).await {
        Ok((id, replayed)) => ItemOutcome {
            index,
            status: 202,
            id: Some(id),
            receipt_status: Some(Status::Received),
            status_url: Some(routes::status_url(state, id)),
            replayed,
            problem: None,
        },
        Err(error) => {
            let problem = error.problem();
            ItemOutcome {
                index,
                status: problem.status,
                id: None,
                receipt_status: None,
                status_url: None,
                replayed: false,
                problem: Some(problem),
            }
        }
    }
}

async fn record(
    state: &AppState,
    caller: &Caller,
    line: &str,
) -> Result<(ReceiptId, bool), ApiError> {
    let envelope: Envelope = serde_json::from_str(line)
        .map_err(|e| ApiError::InvalidBatchItem(format!("not a batch envelope: {e}")))?;
    let mut submission = routes::prepare(
        state,
        Some(&envelope.content_type),
        Some(&envelope.receipt_type),
        Some(&envelope.idempotency_key),
        envelope.callback_url.as_deref(),
    )?;
    if envelope.document.len() > state.max_body_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit: state.max_body_bytes,
        });
    }
    submission.attach(Bytes::from(envelope.document))?;
    routes::accept(state, &caller.tenant, submission).await
}
