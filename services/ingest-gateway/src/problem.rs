//! Every error the API returns, and its one mapping to an RFC 9457 problem document. Problem
//! `type`s are stable URNs (`urn:receipts:problem:<slug>`), documented in docs/api.md; internals
//! never leak into `detail`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use receipts_domain::{DocumentError, ReceiptId};
use serde::Serialize;
use serde_json::{Map, Value};

pub const PROBLEM_JSON: &str = "application/problem+json";
const TYPE_PREFIX: &str = "urn:receipts:problem:";

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("this API key's scope does not allow {0}")]
    Forbidden(&'static str),
    #[error("no such receipt")]
    ReceiptNotFound,
    #[error("no such resource")]
    NotFound,
    #[error("no such webhook endpoint")]
    EndpointNotFound,
    #[error("no such webhook delivery")]
    DeliveryNotFound,
    #[error("the delivery is still being attempted; it can be retried once delivered or failed")]
    DeliveryPending,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("query parameter `{parameter}`: {reason}")]
    InvalidQuery { parameter: String, reason: String },
    #[error("{0}")]
    InvalidCursor(receipts_core::CursorError),
    #[error("query parameter `{0}` differs from the query the cursor continues")]
    CursorMismatch(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the {0} header is required")]
    MissingHeader(&'static str),
    #[error("the {name} header is invalid: {reason}")]
    InvalidHeader { name: &'static str, reason: String },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("receipt type {name:?} expects {expected} documents, got {got}")]
    MediaTypeMismatch {
        name: String,
        expected: String,
        got: String,
    },
    #[error("{0}")]
    UnknownReceiptType(String),
    #[error("the request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("a batch holds at most {limit} items")]
    BatchTooLarge { limit: usize },
    #[error("{0}")]
    InvalidBatch(String),
    #[error("{0}")]
    InvalidBatchItem(String),
    #[error("{0}")]
    Document(DocumentError),
    #[error("could not read the request body")]
    UnreadableBody,
    #[error("the request took too long; retry (with the same Idempotency-Key for submissions)")]
    Timeout,
    #[error("the callback's signature does not verify")]
    InvalidSignature,
    #[error("unreadable callback: {0}")]
    InvalidCallback(String),
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyConflict { receipt_id: ReceiptId },
    #[error("the event broker is unavailable; retry with the same Idempotency-Key")]
    BrokerUnavailable,
    #[error("the status store is unavailable; retry shortly")]
    StoreUnavailable,
    #[error("too many submissions in flight on this gateway; retry with the same Idempotency-Key")]
    Overloaded,
    #[error("this gateway cannot send webhook messages (its HTTP client did not start)")]
    WebhookSenderUnavailable,
    #[error("internal error")]
    Internal,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

impl ApiError {
    /// The HTTP status, stable slug and title of this error.
    pub fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::Unauthenticated => (
                S::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            Self::Forbidden(_) => (S::FORBIDDEN, "forbidden", "Not allowed for this API key"),
            Self::ReceiptNotFound => (S::NOT_FOUND, "receipt-not-found", "Receipt not found"),
            Self::NotFound => (S::NOT_FOUND, "not-found", "Not found"),
            Self::EndpointNotFound => (
                S::NOT_FOUND,
                "endpoint-not-found",
                "Webhook endpoint not found",
            ),
            Self::DeliveryNotFound => (
                S::NOT_FOUND,
                "delivery-not-found",
                "Webhook delivery not found",
            ),
            Self::DeliveryPending => (
                S::CONFLICT,
                "delivery-pending",
                "Delivery still in progress",
            ),
            Self::InvalidRequest(_) => (S::BAD_REQUEST, "invalid-request", "Invalid request"),
            Self::InvalidQuery { .. } => (
                S::BAD_REQUEST,
                "invalid-query-parameter",
                "Invalid query parameter",
            ),
            Self::InvalidCursor(_) => (S::BAD_REQUEST, "invalid-cursor", "Invalid cursor"),
            Self::CursorMismatch(_) => (
                S::BAD_REQUEST,
                "cursor-query-mismatch",
                "The cursor belongs to another query",
            ),
            Self::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::MissingHeader(_) => (S::BAD_REQUEST, "missing-header", "Required header missing"),
            Self::InvalidHeader { .. } => (S::BAD_REQUEST, "invalid-header", "Invalid header"),
            Self::UnsupportedMediaType(_) => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::MediaTypeMismatch { .. } => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "media-type-mismatch",
                "Media type does not match the receipt type",
            ),
            Self::UnknownReceiptType(_) => (
                S::BAD_REQUEST,
                "unknown-receipt-type",
                "Unknown receipt type",
            ),
            Self::PayloadTooLarge { .. } => (
                S::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            Self::BatchTooLarge { .. } => {
                (S::PAYLOAD_TOO_LARGE, "batch-too-large", "Batch too large")
            }
            Self::InvalidBatch(_) => (S::BAD_REQUEST, "invalid-batch", "Invalid batch"),
            Self::InvalidBatchItem(_) => {
                (S::BAD_REQUEST, "invalid-batch-item", "Invalid batch item")
            }
            Self::Document(e) => match e {
                DocumentError::UnsupportedMediaType(_) => (
                    S::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "Unsupported media type",
                ),
                DocumentError::UnsupportedCharset(_) => (
                    S::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-charset",
                    "Unsupported charset",
                ),
                DocumentError::Empty => (S::BAD_REQUEST, "empty-document", "Empty document"),
                DocumentError::InvalidUtf8 { .. } => {
                    (S::BAD_REQUEST, "invalid-utf8", "Document is not UTF-8")
                }
                DocumentError::MalformedJson { .. } | DocumentError::JsonNotObject => {
                    (S::BAD_REQUEST, "malformed-json", "Malformed JSON document")
                }
                DocumentError::MalformedXml { .. } => {
                    (S::BAD_REQUEST, "malformed-xml", "Malformed XML document")
                }
                DocumentError::XmlDtdForbidden => (
                    S::BAD_REQUEST,
                    "xml-dtd-forbidden",
                    "XML document type declarations are not accepted",
                ),
            },
            Self::UnreadableBody => (S::BAD_REQUEST, "unreadable-body", "Unreadable request body"),
            Self::Timeout => (S::REQUEST_TIMEOUT, "request-timeout", "Request timeout"),
            Self::InvalidSignature => (
                S::UNAUTHORIZED,
                "invalid-signature",
                "Invalid callback signature",
            ),
            Self::InvalidCallback(_) => (S::BAD_REQUEST, "invalid-callback", "Unreadable callback"),
            Self::IdempotencyConflict { .. } => (
                S::CONFLICT,
                "idempotency-key-conflict",
                "Idempotency-Key reused with a different request",
            ),
            Self::BrokerUnavailable => (
                S::SERVICE_UNAVAILABLE,
                "broker-unavailable",
                "Temporarily unavailable",
            ),
            Self::StoreUnavailable => (
                S::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "Temporarily unavailable",
            ),
            Self::Overloaded => (S::SERVICE_UNAVAILABLE, "overloaded", "Overloaded"),
            Self::WebhookSenderUnavailable => (
                S::SERVICE_UNAVAILABLE,
                "webhook-sender-unavailable",
                "Webhook sending unavailable",
            ),
            Self::Internal => (S::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.classify();
        let mut extensions = Map::new();
        if let Self::IdempotencyConflict { receipt_id } = self {
            extensions.insert("receipt_id".into(), Value::String(receipt_id.to_string()));
        }
        if let Self::InvalidQuery { parameter, .. } = self {
            extensions.insert("parameter".into(), Value::String(parameter.clone()));
        }
        if let Self::CursorMismatch(parameter) = self {
            extensions.insert("parameter".into(), Value::String((*parameter).to_owned()));
        }
        if let Self::PayloadTooLarge { limit } = self {
            extensions.insert("limit_bytes".into(), Value::from(*limit));
        }
        if let Self::BatchTooLarge { limit } = self {
            extensions.insert("limit_items".into(), Value::from(*limit));
        }
        Problem {
            kind: format!("{TYPE_PREFIX}{slug}"),
            title,
            status: status.as_u16(),
            detail: self.to_string(),
            extensions,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(status = problem.status, problem = %problem.kind, "request failed");
        }
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match self {
            Self::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"receipts\""),
                );
            }
            Self::BrokerUnavailable | Self::StoreUnavailable | Self::Overloaded => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    fn all_errors() -> Vec<ApiError> {
        vec![
            ApiError::Unauthenticated,
            ApiError::Forbidden("submitting receipts"),
            ApiError::ReceiptNotFound,
            ApiError::NotFound,
            ApiError::EndpointNotFound,
            ApiError::DeliveryNotFound,
            ApiError::DeliveryPending,
            ApiError::InvalidRequest("url: x".into()),
            ApiError::InvalidQuery {
                parameter: "limit".into(),
                reason: "x".into(),
            },
            ApiError::InvalidCursor(receipts_core::CursorError::Foreign),
            ApiError::CursorMismatch("status"),
            ApiError::MethodNotAllowed,
            ApiError::MissingHeader("Receipt-Type"),
            ApiError::InvalidHeader {
                name: "Callback-Url",
                reason: "x".into(),
            },
            ApiError::UnsupportedMediaType("text/plain".into()),
            ApiError::MediaTypeMismatch {
                name: "t".into(),
                expected: "application/json".into(),
                got: "application/xml".into(),
            },
            ApiError::UnknownReceiptType("x".into()),
            ApiError::PayloadTooLarge { limit: 65536 },
            ApiError::BatchTooLarge { limit: 1000 },
            ApiError::InvalidBatch("x".into()),
            ApiError::InvalidBatchItem("x".into()),
            ApiError::Document(DocumentError::Empty),
            ApiError::Document(DocumentError::InvalidUtf8 { offset: 3 }),
            ApiError::Document(DocumentError::MalformedJson {
                line: 1,
                column: 2,
                message: "m".into(),
            }),
            ApiError::Document(DocumentError::JsonNotObject),
            ApiError::Document(DocumentError::MalformedXml {
                position: "1:1".into(),
                message: "m".into(),
            }),
            ApiError::Document(DocumentError::XmlDtdForbidden),
            ApiError::Document(DocumentError::UnsupportedCharset("latin1".into())),
            ApiError::Document(DocumentError::UnsupportedMediaType("text/plain".into())),
            ApiError::UnreadableBody,
            ApiError::Timeout,
            ApiError::InvalidSignature,
            ApiError::InvalidCallback("x".into()),
            ApiError::IdempotencyConflict {
                receipt_id: ReceiptId::new(),
            },
            ApiError::BrokerUnavailable,
            ApiError::StoreUnavailable,
            ApiError::Overloaded,
            ApiError::WebhookSenderUnavailable,
            ApiError::Internal,
        ]
    }

    #[test]
    fn client_errors_are_4xx_and_only_outages_are_5xx() {
        for error in all_errors() {
            let (status, slug, _) = error.classify();
            let outage = matches!(
                error,
                ApiError::BrokerUnavailable
                    | ApiError::StoreUnavailable
                    | ApiError::Overloaded
                    | ApiError::WebhookSenderUnavailable
                    | ApiError::Internal
            );
            assert_eq!(status.is_server_error(), outage, "{error:?}");
            assert!(status.is_client_error() || outage, "{error:?}");
            assert!(
                slug.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{slug}"
            );
        }
    }

    #[test]
    fn specific_statuses() {
        use StatusCode as S;
        let cases = [
            (ApiError::Unauthenticated, S::UNAUTHORIZED),
            (ApiError::Forbidden("x"), S::FORBIDDEN),
            (ApiError::ReceiptNotFound, S::NOT_FOUND),
            (ApiError::PayloadTooLarge { limit: 1 }, S::PAYLOAD_TOO_LARGE),
            (
                ApiError::IdempotencyConflict {
                    receipt_id: ReceiptId::new(),
                },
                S::CONFLICT,
            ),
            (
                ApiError::UnsupportedMediaType("x".into()),
                S::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                ApiError::Document(DocumentError::XmlDtdForbidden),
                S::BAD_REQUEST,
            ),
            (ApiError::UnknownReceiptType("x".into()), S::BAD_REQUEST),
        ];
        for (error, status) in cases {
            assert_eq!(error.classify().0, status, "{error:?}");
        }
    }

    #[tokio::test]
    async fn responses_are_problem_json_with_stable_types() {
        let response = ApiError::IdempotencyConflict {
            receipt_id: ReceiptId::new(),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = to_bytes(response.into_body(), 4096).await.expect("body");
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            json["type"],
            "urn:receipts:problem:idempotency-key-conflict"
        );
        assert_eq!(json["status"], 409);
        assert!(json["title"].is_string() && json["detail"].is_string());
        assert!(json["receipt_id"].is_string());

        let response = ApiError::Unauthenticated.into_response();
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        let response = ApiError::BrokerUnavailable.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn types_are_unique_per_slug() {
        let mut seen = std::collections::HashMap::new();
        for error in all_errors() {
            let problem = error.problem();
            let status = seen.entry(problem.kind.clone()).or_insert(problem.status);
            assert_eq!(
                *status, problem.status,
                "{} maps to two statuses",
                problem.kind
            );
        }
    }
}
