//! Webhook endpoints, signing secrets and the delivery log (docs/api.md, "Webhooks").
//! Reading needs any key; changing anything, and reading secrets, needs a read-write key.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use receipts_core::DeliveryLog;
use receipts_domain::event::now_millis;
use receipts_domain::{
    CallbackUrl, DeliveryAttempt, DeliveryStatus, Destination, Endpoint, EndpointId, EndpointPatch,
    EventId, EventMeta, NewEndpoint, ReceiptId, StoredSecret, WebhookEventType, WebhookRequested,
    WebhookSecret,
};
use receipts_webhooks::{Attempt, Outcome};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::app::AppState;
use crate::auth::Caller;
use crate::body::read_limited;
use crate::problem::ApiError;
use crate::routes::store_unavailable;

/// Largest accepted endpoint document.
const MAX_ENDPOINT_BODY: usize = 16 * 1024;
const MAX_DESCRIPTION: usize = 500;

/// An endpoint as tenants see it (its secrets only on creation and rotation).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub id: EndpointId,
    pub url: String,
    pub description: Option<String>,
    /// `null`: every terminal status change.
    pub events: Option<Vec<WebhookEventType>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed (`null` while healthy).
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            description: e.description,
            events: e.events,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    pub secret: WebhookSecret,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://partner.example/hooks/receipts", "description": "ERP", "events": ["receipt.accepted", "receipt.rejected"]}))]
struct CreateEndpoint {
    /// Absolute http(s) URL without credentials; not a private or loopback address.
    #[schema(max_length = 2048, pattern = "^https?://")]
    url: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
    /// The event types to send (at least one); absent: every terminal status change.
    #[serde(default)]
    #[schema(value_type = Option<Vec<WebhookEventType>>, min_items = 1)]
    events: Option<Vec<String>>,
}

/// A PATCH: absent fields stay, `null` resets `description` and `events`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
struct PatchEndpoint {
    #[serde(default)]
    #[schema(max_length = 2048, pattern = "^https?://")]
    url: Option<String>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500)]
    description: Option<Option<String>>,
    /// `null`: every terminal status change again.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<WebhookEventType>>, min_items = 1)]
    events: Option<Option<Vec<String>>>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// A field that is present (even as `null`) becomes `Some`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The JSON request body, within a limit; a body that does not fit the request is a 400.
async fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, ApiError> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType(
            "this endpoint takes Content-Type: application/json".into(),
        ));
    }
    let bytes = read_limited(headers, body, MAX_ENDPOINT_BODY).await?;
    parse_object(&bytes)
}

/// A JSON object as `T`. Anything else is refused first: serde would otherwise read a struct
/// from an array of its fields in order (`[null, null]` would clear a description).
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::InvalidRequest(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

impl AppState {
    /// A URL webhooks may be sent to: absolute http(s) without credentials, and not a refused
    /// address when written as one (names are checked again at every send).
    fn endpoint_url(&self, raw: &str) -> Result<String, ApiError> {
        let url = CallbackUrl::parse(raw.trim())
            .map_err(|e| ApiError::InvalidRequest(format!("url: {e}")))?;
        if url.as_url().host_str() == Some("localhost") {
            let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
            if let Err(range) = self.webhook_policy.check(loopback) {
                return Err(ApiError::InvalidRequest(format!(
                    "url: localhost is a {range} address; webhooks go to public addresses"
                )));
            }
        }
        self.webhook_policy
            .check_literal(url.as_url())
            .map_err(|refused| ApiError::InvalidRequest(format!("url: {refused}")))?;
        Ok(url.as_str().to_owned())
    }
}

fn description(raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(ApiError::InvalidRequest(format!(
            "description: at most {MAX_DESCRIPTION} characters"
        ))),
        other => Ok(other),
    }
}

/// Parses a subscription list; an empty list or an unknown type is refused.
fn events(raw: Option<Vec<String>>) -> Result<Option<Vec<WebhookEventType>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.is_empty() {
        return Err(ApiError::InvalidRequest(
            "events: must name at least one event type (omit it for every terminal change)".into(),
        ));
    }
    let mut parsed = raw
        .iter()
        .map(|s| s.parse::<WebhookEventType>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::InvalidRequest(format!("events: {e}")))?;
    parsed.sort();
    parsed.dedup();
    Ok(Some(parsed))
}

fn endpoint_id(raw: &str) -> Result<EndpointId, ApiError> {
    EndpointId::parse(raw).map_err(|_| ApiError::EndpointNotFound)
}

/// Create a webhook endpoint
///
/// Registers an endpoint; the answer holds its signing secret (shown only here and on
/// rotation).
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints",
    tag = "webhooks",
    operation_id = "create_webhook_endpoint",
    security(("api_key" = ["read-write"])),
    request_body(content = CreateEndpoint, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = CreatedEndpoint, headers(("Location" = String, description = "The endpoint's URL."))),
        (status = 400, description = "Not valid JSON, an unknown member, a refused URL or an unknown event type."),
        (status = 413, description = "The body exceeds 16 KiB."),
        (status = 415, description = "The Content-Type is not application/json."),
    ),
)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require_write("managing webhook endpoints")?;
    let request: CreateEndpoint = json_body(&headers, body).await?;
    let new = NewEndpoint {
        id: EndpointId::new(),
        tenant_id: caller.tenant.clone(),
        url: state.endpoint_url(&request.url)?,
        description: description(request.description)?,
        events: events(request.events)?,
        secret: WebhookSecret::generate(),
    };
    let secret = new.secret.clone();
    let endpoint = state
        .webhooks
        .create_endpoint(new, now_millis())
        .await
        .map_err(store_unavailable)?;
    tracing::info!(endpoint_id = %endpoint.id, url = %endpoint.url, "webhook endpoint created");
    let location = format!("{}/v1/webhook-endpoints/{}", state.public_url, endpoint.id);
    let created = CreatedEndpoint {
        endpoint: endpoint.into(),
        secret,
    };
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        Json(created),
    )
        .into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
}

/// List webhook endpoints
///
/// The tenant's endpoints, oldest first (without secrets).
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints",
    tag = "webhooks",
    operation_id = "list_webhook_endpoints",
    security(("api_key" = ["read"])),
    responses((status = 200, description = "The endpoints.", body = EndpointList)),
)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<EndpointList>, ApiError> {
    let endpoints = state
        .webhooks
        .endpoints(&caller.tenant)
        .await
        .map_err(store_unavailable)?;
    Ok(Json(EndpointList {
        endpoints: endpoints.into_iter().map(Into::into).collect(),
    }))
}

/// Get a webhook endpoint
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    operation_id = "get_webhook_endpoint",
    security(("api_key" = ["read"])),
    params(("id" = EndpointId, Path, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "The endpoint.", body = EndpointView),
        (status = 404, description = "No such endpoint."),
    ),
)]
pub async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    let endpoint = state
        .webhooks
        .endpoint(&caller.tenant, endpoint_id(&id)?)
        .await
        .map_err(store_unavailable)?
        .ok_or(ApiError::EndpointNotFound)?;
    Ok(Json(endpoint.into()))
}

/// Update a webhook endpoint
///
/// Changes its URL, description, events or whether it is enabled; absent members stay.
#[utoipa::path(
    patch,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    operation_id = "update_webhook_endpoint",
    security(("api_key" = ["read-write"])),
    params(("id" = EndpointId, Path, description = "The endpoint's id.")),
    request_body(content = PatchEndpoint, content_type = "application/json"),
    responses(
        (status = 200, description = "The endpoint as changed.", body = EndpointView),
        (status = 400, description = "Not valid JSON, an unknown member, a refused URL or an unknown event type."),
        (status = 404, description = "No such endpoint."),
        (status = 413, description = "The body exceeds 16 KiB."),
        (status = 415, description = "The Content-Type is not application/json."),
    ),
)]
pub async fn update_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EndpointView>, ApiError> {
    caller.require_write("managing webhook endpoints")?;
    let id = endpoint_id(&id)?;
    let request: PatchEndpoint = json_body(&headers, body).await?;
    let patch = EndpointPatch {
        url: request.url.map(|u| state.endpoint_url(&u)).transpose()?,
        description: request.description.map(description).transpose()?,
        events: request.events.map(events).transpose()?,
        enabled: request.enabled,
    };
    let endpoint = state
        .webhooks
        .update_endpoint(&caller.tenant, id, &patch, now_millis())
        .await
        .map_err(store_unavailable)?
        .ok_or(ApiError::EndpointNotFound)?;
    tracing::info!(endpoint_id = %id, enabled = endpoint.enabled, "webhook endpoint updated");
    Ok(Json(endpoint.into()))
}

/// Delete a webhook endpoint
///
/// Its deliveries stay in the log.
#[utoipa::path(
    delete,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    operation_id = "delete_webhook_endpoint",
    security(("api_key" = ["read-write"])),
    params(("id" = EndpointId, Path, description = "The endpoint's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such endpoint."),
    ),
)]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_write("managing webhook endpoints")?;
    let id = endpoint_id(&id)?;
    let deleted = state
        .webhooks
        .delete_endpoint(&caller.tenant, id)
        .await
        .map_err(store_unavailable)?;
    if !deleted {
        return Err(ApiError::EndpointNotFound);
    }
    tracing::info!(endpoint_id = %id, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A rotation's answer: the new secret, and until when the previous one still signs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rotated {
    pub secret: WebhookSecret,
    pub previous_valid_until: DateTime<Utc>,
}

/// Rotate a webhook endpoint's secret
///
/// A new secret; messages carry signatures with both until the previous one expires
/// (`webhooks.secret_grace`).
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/rotate-secret",
    tag = "webhooks",
    operation_id = "rotate_webhook_endpoint_secret",
    security(("api_key" = ["read-write"])),
    params(("id" = EndpointId, Path, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "The new secret.", body = Rotated),
        (status = 404, description = "No such endpoint."),
    ),
)]
pub async fn rotate_endpoint_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Rotated>, ApiError> {
    caller.require_write("rotating webhook secrets")?;
    let id = endpoint_id(&id)?;
    let secret = WebhookSecret::generate();
    let now = now_millis();
    let until = now + state.secret_grace;
    state
        .webhooks
        .rotate_endpoint_secret(&caller.tenant, id, secret.clone(), until, now)
        .await
        .map_err(store_unavailable)?
        .ok_or(ApiError::EndpointNotFound)?;
    tracing::info!(endpoint_id = %id, "webhook endpoint secret rotated");
    Ok(Json(Rotated {
        secret,
        previous_valid_until: until,
    }))
}

/// The `type` of an endpoint test message.
const TEST_EVENT: &str = "webhook.test";
const TEST_MESSAGE: &str =
    "A test message from receipts: your endpoint receives and can verify our webhooks.";

/// A test message's body: the Standard Webhooks envelope, like every other message.
#[derive(Debug, Serialize)]
struct TestMessage<'a> {
    #[serde(rename = "type")]
    event_type: &'static str,
    timestamp: DateTime<Utc>,
    data: TestData<'a>,
}

#[derive(Debug, Serialize)]
struct TestData<'a> {
    endpoint_id: &'a EndpointId,
    message: &'static str,
}

/// What an endpoint did with a test message. A refusal or failure is a result, not an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"webhook_id": "msg_test_5f0c1e9a2b7d4c3e8a1f6b2d9c0e7a41", "delivered": true, "http_status": 200, "latency_ms": 12, "response_excerpt": "ok", "error": null}))]
pub struct EndpointTestResult {
    /// The message's `webhook-id` (`msg_test_…`, new for every test).
    pub webhook_id: String,
    /// Whether the endpoint answered 2xx.
    pub delivered: bool,
    /// The endpoint's answer (`null`: none, e.g. refused address, timeout or no connection).
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// The first 1 KiB of the answer.
    pub response_excerpt: Option<String>,
    /// Why it was not delivered (`HTTP 500`, `timeout …`, a refused address, …).
    pub error: Option<String>,
}

impl EndpointTestResult {
    fn new(webhook_id: String, attempt: &Attempt) -> Self {
        Self {
            webhook_id,
            delivered: attempt.outcome == Outcome::Delivered,
            http_status: attempt.http_status,
            latency_ms: u64::try_from(attempt.latency.as_millis()).unwrap_or(u64::MAX),
            response_excerpt: attempt.response_excerpt.clone(),
            error: attempt.error().map(str::to_owned),
        }
    }
}

/// Send a test message to a webhook endpoint
///
/// Sends one `webhook.test` message, signed like every delivery with the endpoint's current
/// secrets, and answers with what the endpoint did, whatever it did (also to a disabled
/// endpoint). Nothing is logged as a delivery and nothing is retried.
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/test",
    tag = "webhooks",
    operation_id = "test_webhook_endpoint",
    security(("api_key" = ["read-write"])),
    params(("id" = EndpointId, Path, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "Sent (or refused); `delivered` says whether the endpoint answered 2xx.", body = EndpointTestResult),
        (status = 404, description = "No such endpoint."),
        (status = 503, description = "The store is unavailable (retry), or this gateway cannot send webhook messages."),
    ),
)]
#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub async fn test_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointTestResult>, ApiError> {
    caller.require_write("testing webhook endpoints")?;
    let endpoint = state
        .webhooks
        .endpoint(&caller.tenant, endpoint_id(&id)?)
        .await
        .map_err(store_unavailable)?
        .ok_or(ApiError::EndpointNotFound)?;
    let sender = state
        .webhook_sender
        .as_ref()
        .ok_or(ApiError::WebhookSenderUnavailable)?;
    let now = now_millis();
    let webhook_id = format!("msg_test_{}", uuid::Uuid::new_v4().simple());
    let message = TestMessage {
        event_type: TEST_EVENT,
        timestamp: now,
        data: TestData {
            endpoint_id: &endpoint.id,
            message: TEST_MESSAGE,
        },
    };
    let payload = serde_json::to_vec(&message).map_err(|_| ApiError::Internal)?;
    // What a delivery would be signed with now (as the dispatcher chooses): the current secret,
    // and any rotated out still within their grace period.
    let secrets: Vec<WebhookSecret> = endpoint
        .live_secrets(now)
        .into_iter()
        .map(|s| s.secret)
        .collect();
    let attempt = sender
        .send(&endpoint.url, &webhook_id, &payload, &secrets)
        .await;
    let result = EndpointTestResult::new(webhook_id, &attempt);
    tracing::info!(
        webhook_id = %result.webhook_id,
        http_status = result.http_status,
        latency_ms = result.latency_ms,
        outcome = attempt.label(),
        error = result.error,
        "webhook endpoint tested"
    );
    Ok(Json(result))
}

/// The tenant's callback secrets: the current one, and rotated-out ones still signing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackSecrets {
    pub secret: WebhookSecret,
    pub previous: Vec<PreviousSecret>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviousSecret {
    pub secret: WebhookSecret,
    pub valid_until: Option<DateTime<Utc>>,
}

impl CallbackSecrets {
    fn from_stored(secrets: Vec<StoredSecret>) -> Result<Self, ApiError> {
        let mut secrets = secrets.into_iter();
        let current = secrets.next().ok_or(ApiError::Internal)?;
        Ok(Self {
            secret: current.secret,
            previous: secrets
                .map(|s| PreviousSecret {
                    secret: s.secret,
                    valid_until: s.expires_at,
                })
                .collect(),
        })
    }
}

/// Get the callback secrets
///
/// What signs deliveries to `Callback-Url`s (created on first use): the current secret and
/// rotated-out ones still signing.
#[utoipa::path(
    get,
    path = "/v1/webhooks/secret",
    tag = "webhooks",
    operation_id = "get_callback_secret",
    security(("api_key" = ["read-write"])),
    responses((status = 200, description = "The secrets.", body = CallbackSecrets)),
)]
pub async fn callback_secret(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CallbackSecrets>, ApiError> {
    caller.require_write("reading webhook secrets")?;
    let secrets = state
        .webhooks
        .callback_secrets(&caller.tenant, WebhookSecret::generate(), now_millis())
        .await
        .map_err(store_unavailable)?;
    Ok(Json(CallbackSecrets::from_stored(secrets)?))
}

/// Rotate the callback secret
///
/// A new current secret; the previous one keeps signing for `webhooks.secret_grace`.
#[utoipa::path(
    post,
    path = "/v1/webhooks/secret/rotate",
    tag = "webhooks",
    operation_id = "rotate_callback_secret",
    security(("api_key" = ["read-write"])),
    responses((status = 200, description = "The secrets after rotation.", body = CallbackSecrets)),
)]
pub async fn rotate_callback_secret(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CallbackSecrets>, ApiError> {
    caller.require_write("rotating webhook secrets")?;
    let now = now_millis();
    let until = now + state.secret_grace;
    let secrets = state
        .webhooks
        .rotate_callback_secret(&caller.tenant, WebhookSecret::generate(), until, now)
        .await
        .map_err(store_unavailable)?;
    tracing::info!("callback secret rotated");
    Ok(Json(CallbackSecrets::from_stored(secrets)?))
}

/// A delivery as tenants see it: the message, its state and every attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id` (stable for every attempt).
    pub id: String,
    pub receipt_id: ReceiptId,
    pub destination: Destination,
    pub url: String,
    pub event_type: WebhookEventType,
    pub status: DeliveryStatus,
    /// Why it failed for good (when `failed`).
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// In attempt order.
    pub attempts: Vec<DeliveryAttempt>,
}

impl From<DeliveryLog> for DeliveryView {
    fn from(log: DeliveryLog) -> Self {
        let d = log.delivery;
        Self {
            id: d.id,
            receipt_id: d.receipt_id,
            destination: d.destination,
            url: d.url,
            event_type: d.event_type,
            status: d.status,
            failure_reason: d.failure_reason,
            created_at: d.created_at,
            updated_at: d.updated_at,
            attempts: log.attempts,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

fn receipt_id(raw: &str) -> Result<ReceiptId, ApiError> {
    ReceiptId::parse(raw).map_err(|_| ApiError::ReceiptNotFound)
}

/// List a receipt's webhook deliveries
///
/// Every webhook message about the receipt, with every attempt at delivering it.
#[utoipa::path(
    get,
    path = "/v1/receipts/{id}/deliveries",
    tag = "webhooks",
    operation_id = "list_deliveries",
    security(("api_key" = ["read"])),
    params(("id" = ReceiptId, Path, description = "The receipt's id.")),
    responses(
        (status = 200, description = "The deliveries.", body = DeliveryList),
        (status = 404, description = "No such receipt for this tenant."),
    ),
)]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryList>, ApiError> {
    let id = receipt_id(&id)?;
    state
        .receipts
        .tenant_of(id)
        .await
        .map_err(store_unavailable)?
        .filter(|tenant| *tenant == caller.tenant)
        .ok_or(ApiError::ReceiptNotFound)?;
    let deliveries = state
        .webhooks
        .deliveries(&caller.tenant, id)
        .await
        .map_err(store_unavailable)?;
    Ok(Json(DeliveryList {
        deliveries: deliveries.into_iter().map(Into::into).collect(),
    }))
}

/// Redeliver a webhook
///
/// Sends a delivered or failed message again (same `webhook-id`, a new series of attempts).
#[utoipa::path(
    post,
    path = "/v1/receipts/{id}/deliveries/{delivery}/retry",
    tag = "webhooks",
    operation_id = "redeliver",
    security(("api_key" = ["read-write"])),
    params(
        ("id" = ReceiptId, Path, description = "The receipt's id."),
        ("delivery" = String, Path, description = "The delivery's `id` (its `webhook-id`)."),
    ),
    responses(
        (status = 202, description = "Queued; the delivery is pending again.", body = DeliveryView),
        (status = 404, description = "No such delivery of this receipt."),
        (status = 409, description = "The delivery is still being attempted."),
    ),
)]
// The message is queued first and the reopening recorded second: a message of a newer series
// than the log knows is sent anyway, so when recording fails nothing is left pending without a
// message to deliver it, and when queueing fails nothing has changed.
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require_write("redelivering webhooks")?;
    let id = receipt_id(&id)?;
    let log = state
        .webhooks
        .delivery(&caller.tenant, &delivery_id)
        .await
        .map_err(store_unavailable)?
        .filter(|log| log.delivery.receipt_id == id)
        .ok_or(ApiError::DeliveryNotFound)?;
    let delivery = &log.delivery;
    if delivery.status == DeliveryStatus::Pending {
        return Err(ApiError::DeliveryPending);
    }
    let series = delivery.next_series(&log.attempts);
    let now = now_millis();
    let message = WebhookRequested {
        meta: EventMeta {
            event_id: EventId::new(),
            receipt_id: id,
            tenant_id: caller.tenant.clone(),
            occurred_at: now,
            attempt: series,
        },
        delivery_id: delivery.id.clone(),
        destination: delivery.destination.clone(),
        url: delivery.url.clone(),
        event_type: delivery.event_type,
        payload: delivery.payload.clone(),
    };
    state
        .producer
        .publish(&message.into())
        .await
        .map_err(|error| {
            tracing::warn!(%error, webhook_id = %delivery.id, "redelivery not queued");
            ApiError::BrokerUnavailable
        })?;
    tracing::info!(webhook_id = %delivery.id, series, "redelivery queued");
    let reopened = match state
        .webhooks
        .reopen_delivery(&delivery.id, series, now)
        .await
    {
        Ok(Some(reopened)) => reopened,
        Ok(None) => return Err(ApiError::DeliveryNotFound),
        Err(error) => {
            // The queued message starts the new series whatever the log says; answer with what
            // the log will say once its first attempt is recorded.
            tracing::warn!(%error, webhook_id = %delivery.id, series, "redelivery queued, but its reopening was not recorded");
            let mut reopened = delivery.clone();
            reopened
                .reopen(series, now)
                .map_err(|_| ApiError::DeliveryPending)?;
            reopened
        }
    };
    let view = DeliveryView::from(DeliveryLog {
        delivery: reopened,
        attempts: log.attempts,
    });
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lists_are_parsed_sorted_and_deduplicated() {
        assert_eq!(events(None).expect("none"), None);
        assert_eq!(
            events(Some(vec![
                "receipt.rejected".into(),
                "receipt.validated".into(),
                "receipt.rejected".into(),
            ]))
            .expect("valid"),
            Some(vec![
                WebhookEventType::Validated,
                WebhookEventType::Rejected
            ])
        );
        assert!(events(Some(vec![])).is_err());
        assert!(events(Some(vec!["receipt.exploded".into()])).is_err());
    }

    #[test]
    fn bodies_must_be_objects() {
        // Regression (found by schemathesis): an array was read as the struct's fields in order.
        for body in ["[null, null]", "[\"https://example.com\"]", "null", "1"] {
            assert!(
                parse_object::<PatchEndpoint>(body.as_bytes()).is_err(),
                "{body} is refused"
            );
            assert!(
                parse_object::<CreateEndpoint>(body.as_bytes()).is_err(),
                "{body}"
            );
        }
        let patch: PatchEndpoint = parse_object(br#"{"enabled": true}"#).expect("object");
        assert_eq!(patch.enabled, Some(true));
    }

    #[test]
    fn patches_tell_absent_from_null() {
        let patch: PatchEndpoint =
            serde_json::from_str(r#"{"events": null, "enabled": false}"#).expect("json");
        assert_eq!(patch.events, Some(None));
        assert_eq!(patch.description, None);
        assert_eq!(patch.enabled, Some(false));
        assert!(serde_json::from_str::<PatchEndpoint>(r#"{"secret": "x"}"#).is_err());
    }
}
