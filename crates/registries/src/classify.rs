//! Turning transport errors and HTTP answers into outcomes and retry decisions, the same way for
//! every registry.

use receipts_runtime::http::retry_after;
use receipts_telemetry::trace;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use tracing::Instrument;

use crate::CallError;

/// Sends a call and reads the whole answer; no answer at all is a retryable transport failure.
/// The call is a client span of the current trace, whose context goes to the registry as
/// `traceparent`.
pub(crate) async fn send(
    call: reqwest::RequestBuilder,
) -> Result<(StatusCode, HeaderMap, String), CallError> {
    let (client, request) = call.build_split();
    let mut request =
        request.map_err(|e| CallError::Fatal(format!("cannot build the request: {e}")))?;
    let span = trace::http_client_span(request.method(), request.url());
    let traceparent = span.in_scope(trace::outgoing_traceparent);
    if let Ok(value) = HeaderValue::from_str(&traceparent) {
        request.headers_mut().insert(trace::TRACEPARENT, value);
    }
    let exchange = async {
        let response = client.execute(request).await.map_err(|e| transport(&e))?;
        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|e| transport(&e))?;
        Ok((status, headers, text))
    };
    exchange.instrument(span).await
}

/// A request that got no HTTP answer: retry later.
pub(crate) fn transport(error: &reqwest::Error) -> CallError {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "connection"
    };
    CallError::Retryable {
        kind: kind.into(),
        message: error.to_string(),
        retry_after: None,
    }
}

/// An HTTP status no adapter handles specially: 429 and 5xx (and 401/403: credentials get
/// fixed) are retried, the rest is for a person to look at.
pub(crate) fn status(status: StatusCode, headers: &HeaderMap, body: &str) -> CallError {
    let detail = format!("HTTP {}: {}", status.as_u16(), snippet(body));
    if status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
        || matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::REQUEST_TIMEOUT
        )
    {
        CallError::Retryable {
            kind: format!("http-{}", status.as_u16()),
            message: detail,
            retry_after: retry_after(headers),
        }
    } else {
        CallError::Fatal(detail)
    }
}

/// At most 300 characters of a body, for messages.
pub(crate) fn snippet(body: &str) -> String {
    body.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::RETRY_AFTER,
            retry_after.parse().expect("header"),
        );
        h
    }

    #[test]
    fn statuses() {
        let none = HeaderMap::new();
        for (code, retryable) in [
            (503, true),
            (500, true),
            (429, true),
            (401, true),
            (400, false),
            (404, false),
            (409, false),
        ] {
            let error = status(StatusCode::from_u16(code).expect("code"), &none, "body");
            assert_eq!(
                matches!(error, CallError::Retryable { .. }),
                retryable,
                "{code}"
            );
        }
        let CallError::Retryable {
            kind, retry_after, ..
        } = status(StatusCode::TOO_MANY_REQUESTS, &headers("7"), "")
        else {
            panic!("retryable")
        };
        assert_eq!(
            (kind.as_str(), retry_after),
            ("http-429", Some(Duration::from_secs(7)))
        );
    }
}
