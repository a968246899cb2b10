//! The HTTP routes: each registry's own API, plus the admin API both share.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::config::{Faults, RegistryKind};
use crate::registry::{App, Op, Reply, Request};

/// Marks a response that must not be sent: the connection layer drops the connection instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Abort {
    pub reset: bool,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Answer(answer) => answer.into_response(),
            Reply::Abort { reset } => {
                let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
                response.extensions_mut().insert(Abort { reset });
                response
            }
        }
    }
}

pub(crate) fn router(app: Arc<App>) -> Router {
    let api = match app.kind {
        RegistryKind::Tax => Router::new()
            .route("/api/v1/fiscal-receipts", post(tax_submit))
            .route("/api/v1/fiscal-receipts/{key}", get(query)),
        RegistryKind::Logistics => {
            Router::new().route("/v2/registrations/{key}", put(logistics_submit).get(query))
        }
    };
    api.route("/admin/stats", get(stats))
        .route("/admin/calls", get(calls))
        .route("/admin/faults", get(get_faults).put(put_faults))
        .route("/admin/reset", post(reset))
        .route("/healthz", get(healthz))
        .with_state(app)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn traceparent(headers: &HeaderMap) -> Option<String> {
    headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

async fn tax_submit(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let key = headers
        .get("idempotency-key")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    app.handle(Request {
        method: "POST",
        path: uri.path().to_owned(),
        key,
        op: Op::Submit {
            json_content_type: is_json(&headers),
            body,
        },
        traceparent: traceparent(&headers),
    })
    .await
}

async fn logistics_submit(
    State(app): State<Arc<App>>,
    uri: Uri,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    app.handle(Request {
        method: "PUT",
        path: uri.path().to_owned(),
        key: Some(key),
        op: Op::Submit {
            json_content_type: is_json(&headers),
            body,
        },
        traceparent: traceparent(&headers),
    })
    .await
}

async fn query(State(app): State<Arc<App>>, uri: Uri, Path(key): Path<String>) -> Reply {
    app.handle(Request {
        method: "GET",
        path: uri.path().to_owned(),
        key: Some(key),
        op: Op::Query,
        traceparent: None,
    })
    .await
}

async fn stats(State(app): State<Arc<App>>) -> Response {
    Json(app.stats()).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallFilter {
    receipt_ref: Option<String>,
    idempotency_key: Option<String>,
}

async fn calls(State(app): State<Arc<App>>, Query(filter): Query<CallFilter>) -> Response {
    Json(app.calls(
        filter.receipt_ref.as_deref(),
        filter.idempotency_key.as_deref(),
    ))
    .into_response()
}

async fn get_faults(State(app): State<Arc<App>>) -> Response {
    Json(app.faults().as_ref()).into_response()
}

fn admin_error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn put_faults(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(error) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("invalid fault configuration: {error}"),
            );
        }
    };
    if let Err(message) = faults.validate() {
        return admin_error(
            StatusCode::BAD_REQUEST,
            format!("invalid fault configuration: {message}"),
        );
    }
    app.set_faults(faults);
    Json(app.faults().as_ref()).into_response()
}

async fn reset(State(app): State<Arc<App>>) -> Response {
    match app.reset().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => {
            tracing::error!(registry = %app.kind, %error, "reset failed");
            admin_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot empty the state file: {error}"),
            )
        }
    }
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    Json(json!({"status": "ok", "registry": app.kind})).into_response()
}
