//! `POST /v1/registries/{registry}/callbacks`: asynchronous registries report their outcome here.
//! The registry's signature is the authentication; a verified callback becomes, through the
//! registrar's own mapping, the same `receipts.<registry>-registered` / `-failed` event the
//! registrar would have produced (same event id), so whichever arrives first wins and the other
//! is a duplicate.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use receipts_domain::RegistryName;
use receipts_registries::{CallbackError, read_callback};
use receipts_telemetry::metrics::REGISTRY_CALLBACKS;

use crate::app::AppState;
use crate::body::read_limited;
use crate::problem::ApiError;

/// Report a registry outcome
///
/// Asynchronous registries report the outcome of a registration here, signed with the secret
/// the registry shares with the platform (headers as the registry's adapter defines them; see
/// docs/api.md), not an API key.
#[utoipa::path(
    post,
    path = "/v1/registries/{registry}/callbacks",
    tag = "registries",
    operation_id = "registry_callback",
    params(("registry" = String, Path, example = "tax", description = "A registry configured to call back.")),
    request_body(content = Object, content_type = "application/json", description = "The registry's outcome document (see docs/api.md)."),
    responses(
        (status = 204, description = "Recorded."),
        (status = 400, description = "Unreadable callback."),
        (status = 401, description = "The signature does not verify."),
        (status = 404, description = "No such registry, or no such receipt."),
        (status = 413, description = "The body exceeds `gateway.max_body_bytes`."),
    ),
)]
#[tracing::instrument(skip_all, fields(registry = %registry, receipt_id))]
pub async fn registry_callback(
    State(state): State<AppState>,
    Path(registry): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = RegistryName::parse(&registry).map_err(|_| ApiError::NotFound)?;
    let config = state.callbacks.get(&name).ok_or(ApiError::NotFound)?;
    let body = read_limited(&headers, body, state.max_body_bytes).await?;
    let callback = read_callback(config, &headers, &body, Utc::now()).map_err(|error| {
        tracing::warn!(%error, "registry callback refused");
        callback_counted(&name, "refused");
        match error {
            CallbackError::Signature(_) => ApiError::InvalidSignature,
            CallbackError::Body(detail) => ApiError::InvalidCallback(detail),
        }
    })?;
    tracing::Span::current().record("receipt_id", tracing::field::display(callback.receipt_id));
    let tenant = state
        .receipts
        .tenant_of(callback.receipt_id)
        .await
        .map_err(crate::routes::store_unavailable)?
        .ok_or(ApiError::ReceiptNotFound)?;
    // Nothing to report while the registry is still working: acknowledge, the registrar keeps
    // asking.
    let Some(event) =
        registrar::outcome_event(&name, callback.receipt_id, tenant, callback.outcome, 1)
    else {
        callback_counted(&name, "accepted");
        return Ok(StatusCode::NO_CONTENT);
    };
    state.producer.publish(&event).await.map_err(|error| {
        tracing::warn!(%error, "registry outcome not acknowledged");
        ApiError::BrokerUnavailable
    })?;
    tracing::info!(event = %event.kind(), "registry callback accepted");
    callback_counted(&name, "accepted");
    Ok(StatusCode::NO_CONTENT)
}

fn callback_counted(registry: &RegistryName, outcome: &'static str) {
    metrics::counter!(REGISTRY_CALLBACKS, "service" => crate::SERVICE, "registry" => registry.to_string(), "outcome" => outcome)
        .increment(1);
}
