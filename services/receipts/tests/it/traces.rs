//! One trace per receipt: spans exported over OTLP/HTTP to a receiver in this test (decoded with
//! `opentelemetry-proto`) show the receipt's whole journey under one trace id, each hop a child
//! of the one before: the gateway's request, the `submitted` send, the validator, both
//! registrars with their registry calls (one registry answering by callback, which joins the
//! trace), the projector, the webhook fan-out and the delivery with its HTTP call (whose
//! `traceparent` the receiver sees).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use receipts_runtime::{LogFormat, TelemetryConfig};
use receipts_testkit::receiver::Receiver;

use crate::helpers::*;

type Spans = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP traces receiver on loopback; returns its base URL and what it received.
async fn otlp_receiver() -> (url::Url, Spans) {
    async fn traces(State(spans): State<Spans>, body: Bytes) -> impl axum::response::IntoResponse {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP traces request");
        let mut received = spans.lock().expect("spans");
        for resource in request.resource_spans {
            for scope in resource.scope_spans {
                received.extend(scope.spans);
            }
        }
        (
            [("content-type", "application/x-protobuf")],
            ExportTraceServiceResponse::default().encode_to_vec(),
        )
    }
    let spans = Spans::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(traces))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        url::Url::parse(&format!("http://{addr}")).expect("url"),
        spans,
    )
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(AnyValue::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}

/// The spans of one trace, and how they hang together.
struct Trace(Vec<Span>);

impl Trace {
    fn parent(&self, span: &Span) -> Option<&Span> {
        self.0.iter().find(|s| s.span_id == span.parent_span_id)
    }

    /// Whether `ancestor` is `span`'s parent, grandparent, ...
    fn descends(&self, span: &Span, ancestor: &Span) -> bool {
        let mut current = self.parent(span);
        while let Some(s) = current {
            if s.span_id == ancestor.span_id {
                return true;
            }
            current = self.parent(s);
        }
        false
    }

    /// The spans named `name` (and, if given, of service `service`).
    fn named(&self, name: &str, service: Option<&str>) -> Vec<&Span> {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| service.is_none_or(|svc| attribute(s, "service") == Some(svc)))
            .collect()
    }

    /// The one span named `name` of `service` whose parent is `parent`.
    fn child(&self, name: &str, service: Option<&str>, parent: &Span) -> &Span {
        let found: Vec<_> = self
            .named(name, service)
            .into_iter()
            .filter(|s| s.parent_span_id == parent.span_id)
            .collect();
        assert!(
            !found.is_empty(),
            "no {name:?} ({service:?}) under {:?}; spans: {:?}",
            parent.name,
            self.0.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        found[0]
    }

    /// A span named `name` under `ancestor`, at any depth.
    fn below(&self, name: &str, ancestor: &Span) -> &Span {
        self.0
            .iter()
            .find(|s| s.name == name && self.descends(s, ancestor))
            .unwrap_or_else(|| panic!("no {name:?} below {:?}", ancestor.name))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_receipt_through_every_service() {
    let (otlp, spans) = otlp_receiver().await;
    let telemetry = receipts_runtime::telemetry::init(
        "receipts",
        &TelemetryConfig {
            log_format: LogFormat::Pretty,
            otlp_endpoint: Some(otlp),
            ..TelemetryConfig::default()
        },
    )
    .expect("telemetry");
    let receiver = Receiver::ok().await;
    let platform = RunningPlatform::start().await;
    platform
        .put_faults(
            "logistics",
            serde_json::json!({"async": {"enabled": true, "delay_ms": 100}}),
        )
        .await;
    platform
        .submit_until_accepted("traced-journey", &receiver.url("/cb"), 9_001)
        .await;
    let delivered = receiver.wait_for(1).await;
    let prefix = platform.env.kafka.topic_prefix.clone();
    platform.stop().await;
    // Flushes every finished span to the receiver.
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .expect("flush");

    let all = spans.lock().expect("spans").clone();
    let gateway = all
        .iter()
        .find(|s| {
            attribute(s, "service") == Some("ingest-gateway")
                && attribute(s, "http.request.method") == Some("POST")
                && attribute(s, "url.path") == Some("/v1/receipts")
        })
        .expect("the gateway's span of the submission")
        .clone();
    assert_eq!(gateway.kind, SpanKind::Server as i32);
    assert!(
        gateway.parent_span_id.is_empty(),
        "the receipt's trace starts at the gateway"
    );
    let trace = Trace(
        all.into_iter()
            .filter(|s| s.trace_id == gateway.trace_id)
            .collect(),
    );
    let topic = |name: &str| format!("{prefix}receipts.{name}");

    // gateway -> validator
    let submitted = trace.below(&format!("send {}", topic("submitted")), &gateway);
    assert_eq!(submitted.kind, SpanKind::Producer as i32);
    assert_eq!(attribute(submitted, "messaging.system"), Some("kafka"));
    let validator = trace.child(
        &format!("process {}", topic("submitted")),
        Some("validator"),
        submitted,
    );
    assert_eq!(validator.kind, SpanKind::Consumer as i32);
    assert_eq!(
        attribute(validator, "messaging.operation.type"),
        Some("process")
    );
    let validated = trace.below(&format!("send {}", topic("validated")), validator);

    // validator -> both registrars -> their registries -> the projector
    for registry in ["tax", "logistics"] {
        let service = format!("{registry}-registrar");
        let registrar = trace.child(
            &format!("process {}", topic("validated")),
            Some(&service),
            validated,
        );
        let call = trace
            .0
            .iter()
            .find(|s| s.kind == SpanKind::Client as i32 && trace.descends(s, registrar))
            .unwrap_or_else(|| panic!("{service}'s registry call"));
        assert!(
            attribute(call, "url.full").is_some_and(|u| u.starts_with("http://127.0.0.1")),
            "{:?}",
            call.attributes
        );
        // The logistics registry answers asynchronously: its signed callback to the gateway
        // carries the call's trace context, and the gateway reports the outcome from there.
        let reporter = if registry == "logistics" {
            let callback = trace
                .0
                .iter()
                .find(|s| attribute(s, "url.path") == Some("/v1/registries/logistics/callbacks"))
                .expect("the registry's callback to the gateway");
            assert_eq!(
                trace.parent(callback).map(|p| &p.span_id),
                Some(&call.span_id)
            );
            callback
        } else {
            registrar
        };
        let registered = trace.below(
            &format!("send {}", topic(&format!("{registry}-registered"))),
            reporter,
        );
        trace.child(
            &format!("process {}", topic(&format!("{registry}-registered"))),
            Some("status-projector"),
            registered,
        );
    }

    // projector -> fan-out -> delivery -> the partner's callback URL: walk back from the call
    // the receiver got.
    let traceparent = delivered[0].header("traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(
        parts.get(1).copied(),
        Some(hex(&gateway.trace_id).as_str()),
        "the partner can continue the receipt's trace"
    );
    let post = trace
        .0
        .iter()
        .find(|s| Some(hex(&s.span_id).as_str()) == parts.get(2).copied())
        .expect("the span of the call the receiver got");
    assert_eq!(post.kind, SpanKind::Client as i32);
    let delivery = trace
        .named(
            &format!("process {}", topic("webhook-deliveries")),
            Some("webhook-dispatcher"),
        )
        .into_iter()
        .find(|d| trace.descends(post, d))
        .expect("the delivery consumer's span above the call");
    let deliveries_send = trace.parent(delivery).expect("the delivery's send");
    assert_eq!(
        deliveries_send.name,
        format!("send {}", topic("webhook-deliveries"))
    );
    let fanout = trace
        .named(
            &format!("process {}", topic("status-changed")),
            Some("webhook-dispatcher-fanout"),
        )
        .into_iter()
        .find(|f| trace.descends(deliveries_send, f))
        .expect("the fan-out above the delivery");
    let status_send = trace.parent(fanout).expect("the status change's send");
    assert_eq!(
        status_send.name,
        format!("send {}", topic("status-changed"))
    );
    let projector = trace
        .0
        .iter()
        .find(|p| {
            attribute(p, "service") == Some("status-projector") && trace.descends(status_send, p)
        })
        .expect("the projector announced the status change");
    assert_eq!(projector.kind, SpanKind::Consumer as i32);
    assert!(
        trace.descends(post, &gateway),
        "one trace from the gateway to the webhook"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
