//! W3C trace context on Kafka messages. The producer writes the current span's `traceparent`;
//! the consumer makes it the parent of the handler's span, so one trace follows a receipt from the
//! HTTP request through every consumer.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rand::RngCore;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header (and Kafka header) carrying the trace context.
pub const TRACEPARENT: &str = "traceparent";

tokio::task_local! {
    /// The `traceparent` of the message being handled, for when no OpenTelemetry layer is
    /// installed (tests, tools): outgoing events then still continue the incoming trace.
    static INBOUND: Option<String>;
}

/// The `traceparent` to put on an event produced now.
pub fn outgoing_traceparent() -> String {
    let context = tracing::Span::current().context();
    let span = context.span();
    let sc = span.span_context();
    if sc.is_valid() {
        return format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        );
    }
    if let Ok(Some(inbound)) = INBOUND.try_with(Clone::clone) {
        return inbound;
    }
    fresh_traceparent()
}

/// The client span of one outgoing HTTP request, per the OpenTelemetry HTTP conventions.
/// Record `http.response.status_code` on it once the answer arrives.
pub fn http_client_span(method: &http::Method, url: &url::Url) -> tracing::Span {
    tracing::info_span!(
        "http.client",
        otel.name = %method,
        otel.kind = "client",
        http.request.method = %method,
        url.full = %redacted(url),
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default().unwrap_or_default(),
        http.response.status_code = tracing::field::Empty,
    )
}

/// `url` without credentials or query (which may carry tokens), for span attributes.
fn redacted(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.to_string()
}

/// A new root trace context (sampled).
pub fn fresh_traceparent() -> String {
    let mut rng = rand::rng();
    let (mut trace, mut span) = ([0u8; 16], [0u8; 8]);
    rng.fill_bytes(&mut trace);
    rng.fill_bytes(&mut span);
    format!("00-{}-{}-01", hex(&trace), hex(&span))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes `traceparent` the parent of `span` (no-op without an OpenTelemetry layer).
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

/// Runs `future` with `traceparent` as the inbound trace context.
pub async fn with_inbound<F: Future>(traceparent: Option<String>, future: F) -> F::Output {
    INBOUND.scope(traceparent, future).await
}

/// Whether `value` is a syntactically valid version-00 `traceparent`.
pub fn is_valid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex_of = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 4
        && parts[0] == "00"
        && hex_of(parts[1], 32)
        && hex_of(parts[2], 16)
        && hex_of(parts[3], 2)
        && parts[1] != "0".repeat(32)
        && parts[2] != "0".repeat(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_contexts_are_valid_and_distinct() {
        let a = fresh_traceparent();
        assert!(is_valid(&a), "{a}");
        assert_ne!(a, fresh_traceparent());
        assert!(!is_valid(
            "00-00000000000000000000000000000000-0000000000000000-01"
        ));
        assert!(!is_valid("garbage"));
    }

    #[test]
    fn with_an_otel_layer_the_span_is_a_child_of_the_inbound_trace() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;

        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let partner = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let outgoing = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("handler");
            set_parent(&span, Some(partner));
            let _entered = span.enter();
            outgoing_traceparent()
        });
        assert!(is_valid(&outgoing), "{outgoing}");
        let parts: Vec<&str> = outgoing.split('-').collect();
        assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
        assert_ne!(parts[2], "00f067aa0ba902b7", "a new span of ours");
    }

    #[tokio::test]
    async fn inbound_context_is_continued_without_an_otel_layer() {
        let inbound = fresh_traceparent();
        let seen = with_inbound(Some(inbound.clone()), async { outgoing_traceparent() }).await;
        assert_eq!(seen, inbound);
        assert!(is_valid(&outgoing_traceparent()));
    }
}
