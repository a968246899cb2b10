//! Logs and traces. Logs go to stderr (JSON by default, for collectors). The W3C `traceparent`
//! carried on every Kafka event links one receipt's journey across services; when an OTLP/HTTP
//! endpoint is set, spans get OpenTelemetry context and are exported (without one, no
//! OpenTelemetry layer is installed and each event carries on the trace it came from).
//!
//! The standard OpenTelemetry variables win over the configuration: `OTEL_SERVICE_NAME`,
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (a base: traces go to `<base>/v1/traces`),
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is), `OTEL_EXPORTER_OTLP_PROTOCOL` /
//! `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (`http/protobuf`, `http/json`; this build has no gRPC),
//! `OTEL_TRACES_SAMPLER` with `OTEL_TRACES_SAMPLER_ARG`, and `OTEL_SDK_DISABLED`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, global};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// `tracing` filter directives; `RUST_LOG` overrides it when set.
    pub log_filter: String,
    /// OTLP/HTTP traces endpoint base, e.g. `http://otel-collector:4318`. Unset: no export.
    pub otlp_endpoint: Option<Url>,
    /// Fraction of new traces sampled (parent decisions are always followed).
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Json,
            log_filter: "info,librdkafka=warn,rdkafka=warn,tansu_broker=warn,tansu_storage=warn,tansu_sans_io=warn,tansu_schema=warn,libsql=warn".into(),
            otlp_endpoint: None,
            sample_ratio: 1.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("{variable}: {detail}")]
    Variable {
        variable: &'static str,
        detail: String,
    },
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the tracer provider alive; call [`Telemetry::shutdown`] to flush spans on exit.
#[must_use = "dropping the guard early stops span export"]
pub struct Telemetry {
    /// `None` when spans are not exported.
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops span export.
    pub fn shutdown(self) {
        if let Some(Err(error)) = self.provider.map(|provider| provider.shutdown()) {
            tracing::warn!(%error, "flushing traces failed");
        }
    }
}

/// Installs the global subscriber and propagator for `service`.
pub fn init(service: &str, config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives)?,
        _ => EnvFilter::try_new(&config.log_filter)?,
    };
    let fmt = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(std::io::stderr)
            .boxed(),
    };

    let export = Export::resolve(service, config, |name| std::env::var(name).ok())?;
    global::set_text_map_propagator(TraceContextPropagator::new());
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    // Without an exporter the OpenTelemetry layer would build spans nobody reads (~5 % of a
    // loaded platform's CPU); trace context still flows from message to message through
    // `receipts_telemetry::trace`'s inbound fallback.
    let Some(endpoint) = &export.endpoint else {
        registry
            .try_init()
            .map_err(|_| TelemetryError::AlreadyInstalled)?;
        return Ok(Telemetry { provider: None });
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(export.protocol)
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let provider = SdkTracerProvider::builder()
        .with_sampler(export.sampler)
        .with_resource(
            Resource::builder()
                .with_service_name(export.service_name.clone())
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build(),
        )
        .with_batch_exporter(exporter)
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(export.service_name));
    global::set_tracer_provider(provider.clone());
    registry
        .with(otel)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// How spans are exported: the configuration, overridden by the standard `OTEL_*` variables.
#[derive(Debug)]
struct Export {
    service_name: String,
    /// The full OTLP/HTTP traces URL; `None`: no export.
    endpoint: Option<String>,
    protocol: Protocol,
    sampler: Sampler,
}

impl Export {
    fn resolve(
        service: &str,
        config: &TelemetryConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TelemetryError> {
        let var = |name| env(name).filter(|v| !v.trim().is_empty());
        let traces_url = |base: &str| format!("{}/v1/traces", base.trim_end_matches('/'));
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = if disabled {
            None
        } else if let Some(url) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(url)
        } else if let Some(base) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(traces_url(&base))
        } else {
            config
                .otlp_endpoint
                .as_ref()
                .map(|u| traces_url(u.as_str()))
        };
        let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .map(|v| ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", v))
            .or_else(|| {
                var("OTEL_EXPORTER_OTLP_PROTOCOL").map(|v| ("OTEL_EXPORTER_OTLP_PROTOCOL", v))
            }) {
            None => Protocol::HttpBinary,
            Some((_, v)) if v == "http/protobuf" => Protocol::HttpBinary,
            Some((_, v)) if v == "http/json" => Protocol::HttpJson,
            Some((variable, v)) => {
                return Err(TelemetryError::Variable {
                    variable,
                    detail: format!("{v:?} is not supported (use http/protobuf or http/json)"),
                });
            }
        };
        let sampler = match var("OTEL_TRACES_SAMPLER") {
            Some(name) => sampler(&name, var("OTEL_TRACES_SAMPLER_ARG").as_deref())?,
            None => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio))),
        };
        Ok(Self {
            service_name: var("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_owned()),
            endpoint,
            protocol,
            sampler,
        })
    }
}

/// The sampler `OTEL_TRACES_SAMPLER` names, with its ratio argument.
fn sampler(name: &str, arg: Option<&str>) -> Result<Sampler, TelemetryError> {
    let ratio = || match arg {
        None => Ok(1.0),
        Some(arg) => arg
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| TelemetryError::Variable {
                variable: "OTEL_TRACES_SAMPLER_ARG",
                detail: format!("{arg:?} is not a ratio between 0 and 1"),
            }),
    };
    let parent_based = |root| Sampler::ParentBased(Box::new(root));
    Ok(match name.trim() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
        "parentbased_always_on" => parent_based(Sampler::AlwaysOn),
        "parentbased_always_off" => parent_based(Sampler::AlwaysOff),
        "parentbased_traceidratio" => parent_based(Sampler::TraceIdRatioBased(ratio()?)),
        other => {
            return Err(TelemetryError::Variable {
                variable: "OTEL_TRACES_SAMPLER",
                detail: format!("unknown sampler {other:?}"),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(vars: &[(&str, &str)], config: &TelemetryConfig) -> Result<Export, TelemetryError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Export::resolve("validator", config, |name| vars.get(name).cloned())
    }

    #[test]
    fn without_variables_the_configuration_decides() {
        let export = resolve(&[], &TelemetryConfig::default()).expect("export");
        assert_eq!(export.service_name, "validator");
        assert_eq!(export.endpoint, None);
        assert_eq!(export.protocol, Protocol::HttpBinary);
        let config = TelemetryConfig {
            otlp_endpoint: Some(Url::parse("http://collector:4318/").expect("url")),
            ..TelemetryConfig::default()
        };
        let export = resolve(&[], &config).expect("export");
        assert_eq!(
            export.endpoint.as_deref(),
            Some("http://collector:4318/v1/traces")
        );
    }

    #[test]
    fn the_standard_variables_win() {
        let config = TelemetryConfig {
            otlp_endpoint: Some(Url::parse("http://ignored:4318").expect("url")),
            ..TelemetryConfig::default()
        };
        let export = resolve(
            &[
                ("OTEL_SERVICE_NAME", "validator-eu"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ],
            &config,
        )
        .expect("export");
        assert_eq!(export.service_name, "validator-eu");
        assert_eq!(
            export.endpoint.as_deref(),
            Some("http://otel:4318/v1/traces")
        );
        assert_eq!(export.protocol, Protocol::HttpJson);
        assert!(
            format!("{:?}", export.sampler).contains("0.25"),
            "{:?}",
            export.sampler
        );

        let export = resolve(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://traces:4318/custom",
                ),
            ],
            &config,
        )
        .expect("export");
        assert_eq!(
            export.endpoint.as_deref(),
            Some("http://traces:4318/custom")
        );
        let export = resolve(&[("OTEL_SDK_DISABLED", "true")], &config).expect("export");
        assert_eq!(export.endpoint, None);
    }

    #[test]
    fn unsupported_values_are_named() {
        let config = TelemetryConfig::default();
        let error =
            resolve(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")], &config).expect_err("no grpc");
        assert!(
            error.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
            "{error}"
        );
        let error =
            resolve(&[("OTEL_TRACES_SAMPLER", "sometimes")], &config).expect_err("unknown sampler");
        assert!(error.to_string().contains("sometimes"), "{error}");
        let error = resolve(
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
            &config,
        )
        .expect_err("ratio above 1");
        assert!(
            error.to_string().contains("OTEL_TRACES_SAMPLER_ARG"),
            "{error}"
        );
    }
}
