//! Metrics of the whole platform: one receipt through every service moves the counters each
//! service exports, the gateway's `/metrics` shows them all, every series is in the catalogue,
//! and `promtool check metrics` accepts the text.

use std::collections::BTreeMap;

use receipts_telemetry::metrics::CATALOGUE;
use receipts_testkit::eventually;
use receipts_testkit::receiver::Receiver;

use crate::helpers::*;

/// One sample of the text format: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (no escapes in our label values but `\"`).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => (name, labels(rest.trim_end_matches('}'))),
            };
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

fn labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_owned(), value);
        rest = &after[end..];
    }
    out
}

/// The sum of the samples of `name` whose labels include every pair of `with`.
fn total(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape(platform: &RunningPlatform) -> String {
    let response = platform
        .http
        .get(format!("{}/metrics", platform.base))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_receipt_moves_every_services_counters() {
    let receiver = Receiver::ok().await;
    let platform = RunningPlatform::start().await;
    platform
        .submit_until_accepted("metrics-1", &receiver.url("/cb"), 4242)
        .await;
    receiver.wait_for(1).await;

    // Consumer lag comes from librdkafka's statistics, every 5 s; the webhook's delivery is
    // counted after its attempt is logged.
    let text = eventually("lag and the delivery in the scrape", WAIT, || {
        let platform = &platform;
        async move {
            let text = scrape(platform).await;
            let parsed = samples(&text);
            let lag = parsed.iter().any(|s| s.name == "receipts_consumer_lag");
            let delivered = total(
                &parsed,
                "receipts_webhook_deliveries_total",
                &[("outcome", "delivered")],
            ) >= 1.0;
            (lag && delivered).then_some(text)
        }
    })
    .await;
    let parsed = samples(&text);
    let prefix = &platform.env.kafka.topic_prefix;
    let (submitted, validated) = (
        format!("{prefix}receipts.submitted"),
        format!("{prefix}receipts.validated"),
    );
    let at_least_one = |name: &str, with: &[(&str, &str)]| {
        let value = total(&parsed, name, with);
        assert!(value >= 1.0, "{name} {with:?} = {value}\n{text}");
    };
    at_least_one(
        "receipts_http_requests_total",
        &[
            ("service", "ingest-gateway"),
            ("method", "POST"),
            ("route", "/v1/receipts"),
            ("status", "202"),
        ],
    );
    at_least_one(
        "receipts_http_request_duration_seconds_count",
        &[("route", "/v1/receipts/{id}"), ("method", "GET")],
    );
    at_least_one(
        "receipts_producer_messages_total",
        &[
            ("service", "ingest-gateway"),
            ("topic", &submitted),
            ("outcome", "acked"),
        ],
    );
    at_least_one(
        "receipts_consumer_messages_total",
        &[
            ("service", "validator"),
            ("topic", &submitted),
            ("outcome", "handled"),
        ],
    );
    at_least_one(
        "receipts_consumer_processing_duration_seconds_count",
        &[("service", "status-projector")],
    );
    for registry in ["tax", "logistics"] {
        let service = format!("{registry}-registrar");
        at_least_one(
            "receipts_registry_calls_total",
            &[
                ("service", &service),
                ("registry", registry),
                ("outcome", "registered"),
            ],
        );
        at_least_one(
            "receipts_registry_call_duration_seconds_count",
            &[("registry", registry)],
        );
        at_least_one(
            "receipts_consumer_messages_total",
            &[
                ("service", &service),
                ("topic", &validated),
                ("outcome", "handled"),
            ],
        );
    }
    at_least_one("receipts_projector_apply_duration_seconds_count", &[]);
    at_least_one("receipts_projector_events_total", &[("outcome", "applied")]);
    at_least_one(
        "receipts_terminal_receipts_total",
        &[("status", "ACCEPTED")],
    );
    at_least_one("receipts_status_changes_total", &[("status", "ACCEPTED")]);
    at_least_one(
        "receipts_webhook_attempt_duration_seconds_count",
        &[("outcome", "success")],
    );
    at_least_one(
        "receipts_store_operation_duration_seconds_count",
        &[("backend", "sqlite"), ("operation", "save_receipt")],
    );
    at_least_one("receipts_build_info", &[]);
    assert!(
        parsed
            .iter()
            .filter(|s| s.name == "receipts_consumer_lag")
            .all(|s| s.labels.contains_key("partition") && s.value >= 0.0),
        "lag per partition"
    );

    // Every family the platform exported is in the catalogue (and so in the documentation).
    for sample in &parsed {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| sample.name.strip_suffix(suffix))
            .filter(|base| CATALOGUE.iter().any(|m| m.name == *base))
            .unwrap_or(&sample.name);
        assert!(
            CATALOGUE.iter().any(|m| m.name == family),
            "{} is not in the catalogue",
            sample.name
        );
    }

    promtool_accepts(&text);
    platform.stop().await;
}

/// `promtool check metrics` (Prometheus's own linter) finds nothing wrong with `text`.
/// `scripts/test` provides promtool (Debian's package, unpacked) as `PROMTOOL`.
fn promtool_accepts(text: &str) {
    let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {promtool} ({e}): run the tests with scripts/test, which installs it"
            )
        });
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("promtool");
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_parser_reads_labels_with_braces_and_escapes() {
    let parsed = samples(
        "# HELP x y\nx_total{route=\"/v1/receipts/{id}\",detail=\"a \\\"b\\\"\"} 3\nplain 1.5\n",
    );
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].labels["route"], "/v1/receipts/{id}");
    assert_eq!(parsed[0].labels["detail"], "a \"b\"");
    assert_eq!(parsed[1].value, 1.5);
}
