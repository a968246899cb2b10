//! The router and what every handler shares.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse, Response};
use axum::{Router, middleware};
use receipts_core::{CursorKey, Receipts, Webhooks};
use receipts_domain::RegistryName;
use receipts_kafka::EventProducer;
use receipts_registries::CallbackConfig;
use receipts_service::{Readiness, admin};
use receipts_store::{ClientStore, DocumentStore, ReservationStore, Stores};
use receipts_telemetry::metrics::Recorder;
use receipts_validation::types::Catalog;
use receipts_webhooks::{AddressPolicy, Sender, WebhookConfig};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::HttpConfig;
use crate::problem::ApiError;
use crate::{batch, callbacks, receipt_types};
use crate::{list, openapi, routes, webhooks};

/// Shared by all handlers; cheap to clone. The gateway writes only reservations and documents;
/// everything else it reads (receipts) or changes through the core's use cases (webhooks).
#[derive(Clone)]
pub struct AppState {
    pub receipts: Receipts,
    pub reservations: Arc<dyn ReservationStore>,
    pub documents: Arc<dyn DocumentStore>,
    pub clients: Arc<dyn ClientStore>,
    pub webhooks: Webhooks,
    /// What `/readyz` checks: the broker and the store (and, once running, the schema registry).
    pub readiness: Readiness,
    pub producer: EventProducer,
    /// Base of status URLs, without a trailing slash.
    pub public_url: Arc<str>,
    pub max_body_bytes: usize,
    pub max_batch_items: usize,
    pub max_batch_bytes: usize,
    pub request_timeout: Duration,
    /// Admission of submissions (`max_in_flight_submissions` permits).
    pub submissions: Arc<tokio::sync::Semaphore>,
    /// Registries allowed to call back, and how to verify them.
    pub callbacks: Arc<BTreeMap<RegistryName, CallbackConfig>>,
    /// Which webhook URLs are refused at registration (IP literals and `localhost`).
    pub webhook_policy: Arc<AddressPolicy>,
    /// Sends endpoint test messages (the dispatcher's policy and user agent); `None` when its
    /// HTTP client could not be built, and tests then answer 503.
    pub webhook_sender: Option<Sender>,
    /// How long a rotated-out webhook secret keeps signing.
    pub secret_grace: chrono::TimeDelta,
    /// Seals the cursors of receipt lists.
    pub cursor_key: CursorKey,
    /// Every metric of the process, for `/metrics`.
    pub metrics: Recorder,
    /// The receipt types submissions may name (reloaded when their directory changes).
    pub receipt_types: Catalog,
    /// The OpenAPI document, serialized once.
    pub openapi: axum::body::Bytes,
}

impl AppState {
    /// State for a gateway configured by `http` and listening on `local_addr`.
    pub fn new(
        stores: Stores,
        producer: EventProducer,
        http: &HttpConfig,
        webhooks: &WebhookConfig,
        local_addr: SocketAddr,
    ) -> Self {
        let public_url = match &http.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{local_addr}"),
        };
        Self {
            receipts: Receipts::new(
                stores.receipts,
                stores.reservations.clone(),
                stores.documents.clone(),
            ),
            reservations: stores.reservations,
            documents: stores.documents,
            clients: stores.clients,
            webhooks: Webhooks::new(stores.endpoints, stores.deliveries),
            readiness: broker_readiness(&producer).store(stores.health),
            producer,
            public_url: public_url.into(),
            max_body_bytes: http.max_body_bytes,
            max_batch_items: http.max_batch_items.max(1),
            max_batch_bytes: http.max_batch_bytes,
            request_timeout: http.request_timeout,
            submissions: Arc::new(tokio::sync::Semaphore::new(
                http.max_in_flight_submissions.max(1),
            )),
            callbacks: Arc::default(),
            webhook_policy: Arc::new(AddressPolicy::new(webhooks.allow_private.clone())),
            webhook_sender: test_sender(webhooks),
            secret_grace: chrono::TimeDelta::from_std(webhooks.secret_grace)
                .unwrap_or(chrono::TimeDelta::MAX),
            cursor_key: match &http.cursor_key {
                Some(secret) => CursorKey::new(secret.expose().as_bytes()),
                None => {
                    tracing::warn!(
                        "gateway.cursor_key is not set: list cursors hold only until this gateway restarts, and only on this gateway"
                    );
                    CursorKey::random()
                }
            },
            metrics: receipts_telemetry::metrics::install(),
            receipt_types: Catalog::builtin(),
            openapi: openapi::document_json().into(),
        }
    }

    /// Accepts the types of `catalog` (default: the built-in ones).
    pub fn with_receipt_types(mut self, catalog: Catalog) -> Self {
        self.receipt_types = catalog;
        self
    }

    /// Accepts callbacks from these registries.
    pub fn with_callbacks(mut self, callbacks: BTreeMap<RegistryName, CallbackConfig>) -> Self {
        self.callbacks = Arc::new(callbacks);
        self
    }
}

/// The longest an endpoint test waits for the receiver (less when `webhooks.request_timeout` is).
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The sender of endpoint test messages, or `None` (logged) when its HTTP client cannot be built.
fn test_sender(webhooks: &WebhookConfig) -> Option<Sender> {
    Sender::new(
        AddressPolicy::new(webhooks.allow_private.clone()),
        webhooks.request_timeout.min(TEST_TIMEOUT),
        &webhooks.user_agent,
    )
    .inspect_err(|error| {
        tracing::error!(%error, "no webhook sender: endpoint tests will answer 503");
    })
    .ok()
}

/// Every route of the HTTP API with its OpenAPI operation: each handler is registered through
/// its `#[utoipa::path]` annotation, so a route cannot exist without its documentation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(routes::submit, list::list))
        .routes(routes!(batch::submit_batch))
        .routes(routes!(routes::receipt))
        .routes(routes!(routes::document))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(webhooks::create_endpoint, webhooks::list_endpoints))
        .routes(routes!(
            webhooks::get_endpoint,
            webhooks::update_endpoint,
            webhooks::delete_endpoint
        ))
        .routes(routes!(webhooks::rotate_endpoint_secret))
        .routes(routes!(webhooks::test_endpoint))
        .routes(routes!(receipt_types::list))
        .routes(routes!(receipt_types::get))
        .routes(routes!(webhooks::callback_secret))
        .routes(routes!(webhooks::rotate_callback_secret))
        .routes(routes!(callbacks::registry_callback))
        .routes(routes!(livez))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs_page))
        .routes(routes!(openapi::docs_asset))
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api().split_for_parts();
    routes
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // The submit handler enforces its own, configurable limit with a problem document.
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal.into_response()
        }))
        .layer(middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(middleware::from_fn_with_state(
            crate::SERVICE,
            admin::http_metrics,
        ))
        .layer(middleware::from_fn(continue_partner_trace))
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        .with_state(state)
}

/// Bounds every request by `request_timeout` (a stalled upload holds no connection forever).
/// Cutting a submission short is safe: the client retries with the same Idempotency-Key.
async fn time_limit(
    State(state): State<AppState>,
    request: Request,
    next: middleware::Next,
) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Makes the partner's `traceparent` the inbound context of the request, so events produced while
/// handling it continue the partner's trace even where no OpenTelemetry layer is installed.
async fn continue_partner_trace(request: Request, next: middleware::Next) -> Response {
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .filter(|v| receipts_telemetry::trace::is_valid(v))
        .map(str::to_owned);
    receipts_telemetry::trace::with_inbound(traceparent, next.run(request)).await
}

fn make_span(request: &Request) -> tracing::Span {
    let span = tracing::info_span!(
        "http",
        otel.name = %request.method(),
        otel.kind = "server",
        service = crate::SERVICE,
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        tenant = tracing::field::Empty,
        receipt_id = tracing::field::Empty,
    );
    // A partner's own trace continues through the platform.
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    receipts_telemetry::trace::set_parent(&span, traceparent);
    span
}

/// Liveness
///
/// The process serves HTTP.
#[utoipa::path(
    get,
    path = "/livez",
    tag = "operations",
    operation_id = "livez",
    responses((status = 200, description = "Serving.", content_type = "text/plain", body = String, example = "ok")),
)]
async fn livez() -> &'static str {
    admin::livez().await
}

/// Liveness (an alias of `/livez`)
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    responses((status = 200, description = "Serving.", content_type = "text/plain", body = String, example = "ok")),
)]
async fn healthz() -> &'static str {
    admin::livez().await
}

/// Readiness
///
/// 200 when the broker, the store and the schema registry answer, 503 otherwise; the body names
/// each check.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready.", body = Object, example = json!({"broker": {"ok": true}, "store": {"ok": true}})),
        (status = 503, description = "A check fails.", body = Object, example = json!({"broker": {"ok": false, "error": "no answer to a metadata request"}, "store": {"ok": true}})),
    ),
)]
async fn readyz(State(state): State<AppState>) -> Response {
    admin::readyz(State(state.readiness)).await
}

/// Metrics
///
/// Every series of the process, in the Prometheus text format (docs/observability.md).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses((status = 200, description = "The metrics.", content_type = "text/plain", body = String)),
)]
async fn metrics(State(state): State<AppState>) -> Response {
    admin::metrics(State(state.metrics)).await
}

/// The broker answers a metadata request through the gateway's own producer.
fn broker_readiness(producer: &EventProducer) -> Readiness {
    let producer = producer.clone();
    Readiness::default().check("broker", move || {
        let producer = producer.clone();
        async move {
            if producer.check_connectivity(Duration::from_secs(2)).await {
                Ok(())
            } else {
                Err("no answer to a metadata request".to_owned())
            }
        }
    })
}
