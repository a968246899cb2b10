//! Configuration: which registry a mock plays, where it listens, and its fault injection. The
//! same [`Faults`] struct is read from the configuration file at start and replaced at run time
//! through `PUT /admin/faults`; fields left out take their defaults.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use receipts_domain::Secret;
use serde::{Deserialize, Serialize};
use url::Url;

/// The registry a mock plays. Each has its own API shape (paths, fields, error bodies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    /// The tax authority: `POST /api/v1/fiscal-receipts`, returns a fiscal number.
    #[default]
    Tax,
    /// The logistics provider: `PUT /v2/registrations/{request_id}`, returns a registration id.
    Logistics,
}

impl RegistryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tax => "tax",
            Self::Logistics => "logistics",
        }
    }

    /// Where the embedded default expects this registry: tax on 8091, logistics on 8092.
    pub fn default_listen(self) -> SocketAddr {
        let port = match self {
            Self::Tax => 8091,
            Self::Logistics => 8092,
        };
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }
}

impl fmt::Display for RegistryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One mock registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockConfig {
    pub kind: RegistryKind,
    /// Address to bind; port 0 picks a free port (see [`crate::RunningMock::addr`]).
    pub listen: SocketAddr,
    /// Fault injection in effect at start.
    pub faults: Faults,
    /// When set, registrations are kept in this append-only JSON-lines file (fsync'd before the
    /// registry answers) and reloaded at start; when unset, memory only.
    pub state_file: Option<PathBuf>,
    /// Where asynchronous results go when the fault configuration names no `callback_url`
    /// (the embedded default points it at the platform's gateway, so `{"async": {"enabled":
    /// true}}` is all it takes to switch a mock to asynchronous mode).
    pub callback: Option<CallbackTarget>,
}

/// A callback endpoint and the secret callbacks to it are signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackTarget {
    pub url: Url,
    pub secret: Secret,
}

impl MockConfig {
    /// A fault-free, memory-only mock of `kind` on its default address.
    pub fn new(kind: RegistryKind) -> Self {
        Self {
            kind,
            listen: kind.default_listen(),
            faults: Faults::default(),
            state_file: None,
            callback: None,
        }
    }

    /// A fault-free, memory-only mock of `kind` on `127.0.0.1`, any free port (for tests).
    pub fn ephemeral(kind: RegistryKind) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ..Self::new(kind)
        }
    }
}

impl Default for MockConfig {
    fn default() -> Self {
        Self::new(RegistryKind::Tax)
    }
}

/// Both mocks, as the binary and the embedded default run them. It holds no telemetry settings:
/// the binary wraps it with its own, and an embedding process has its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MocksConfig {
    pub tax: MockConfig,
    pub logistics: MockConfig,
}

impl Default for MocksConfig {
    fn default() -> Self {
        Self {
            tax: MockConfig::new(RegistryKind::Tax),
            logistics: MockConfig::new(RegistryKind::Logistics),
        }
    }
}

/// Fault injection. `Faults::default()` injects nothing and answers synchronously.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Every registration/query request answers the registry's 503.
    pub outage: bool,
    /// Outages by wall-clock time: a request inside `[from, until)` answers 503.
    pub outage_windows: Vec<OutageWindow>,
    /// Added before every registration/query answer, faulted answers included.
    pub latency: Latency,
    /// Per-request probabilities of each fault kind.
    pub errors: ErrorRates,
    /// The first `count` requests of each idempotency key get fault `kind`.
    pub fail_first: FailFirst,
    /// Value of `Retry-After` on 429 answers.
    pub retry_after_seconds: u64,
    /// How long a `timeout` fault holds a request before closing the connection unanswered.
    pub timeout_seconds: u64,
    /// Permanent rejections by seller tax id (tax) or `sender.vat_id` (logistics).
    pub reject: Vec<RejectRule>,
    /// Answer 202 and deliver the result later by a signed callback.
    #[serde(rename = "async")]
    pub async_mode: AsyncMode,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            outage: false,
            outage_windows: Vec::new(),
            latency: Latency::default(),
            errors: ErrorRates::default(),
            fail_first: FailFirst::default(),
            retry_after_seconds: 1,
            timeout_seconds: 30,
            reject: Vec::new(),
            async_mode: AsyncMode::default(),
        }
    }
}

impl Faults {
    /// Checks what serde cannot: probabilities, windows, callback settings.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("errors.http_500", self.errors.http_500),
            ("errors.http_503", self.errors.http_503),
            ("errors.http_429", self.errors.http_429),
            ("errors.reset", self.errors.reset),
            ("errors.timeout", self.errors.timeout),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!(
                    "{name} must be a probability in [0, 1], got {rate}"
                ));
            }
        }
        let sum: f64 = rates.iter().map(|(_, rate)| rate).sum();
        if sum > 1.0 + 1e-9 {
            return Err(format!(
                "the error probabilities must sum to at most 1, got {sum}"
            ));
        }
        for (i, window) in self.outage_windows.iter().enumerate() {
            if window.from >= window.until {
                return Err(format!(
                    "outage_windows[{i}]: `from` must be before `until`"
                ));
            }
        }
        for (i, rule) in self.reject.iter().enumerate() {
            if rule.tax_id.trim().is_empty() || rule.tax_id.trim() == "*" {
                return Err(format!(
                    "reject[{i}].tax_id must name a tax id (or a prefix ending in `*`)"
                ));
            }
        }
        if let Some(url) = &self.async_mode.callback_url {
            if !matches!(url.scheme(), "http" | "https") {
                return Err("async.callback_url must be an http or https URL".into());
            }
            if self
                .async_mode
                .secret
                .as_ref()
                .is_none_or(|s| s.expose().is_empty())
            {
                return Err("async.secret is required when async.callback_url is set".into());
            }
        }
        Ok(())
    }

    /// Whether `now` falls in an outage (the switch or a window).
    pub fn in_outage(&self, now: DateTime<Utc>) -> bool {
        self.outage || self.outage_windows.iter().any(|w| w.contains(now))
    }

    /// The first rule rejecting `tax_id`, if any.
    pub fn rejection_for(&self, tax_id: &str) -> Option<&RejectRule> {
        self.reject.iter().find(|rule| rule.matches(tax_id))
    }
}

/// A scheduled outage, `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageWindow {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl OutageWindow {
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.from <= now && now < self.until
    }
}

/// Shape of the added latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Always `mean_ms`.
    #[default]
    Fixed,
    /// Uniform in `mean_ms ± jitter_ms` (clamped at 0).
    Uniform,
    /// Normal with mean `mean_ms` and standard deviation `jitter_ms` (clamped at 0).
    Normal,
    /// Exponential with mean `mean_ms`.
    Exponential,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Latency {
    pub distribution: Distribution,
    pub mean_ms: u64,
    pub jitter_ms: u64,
}

/// Per-request fault probabilities; they must sum to at most 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorRates {
    pub http_500: f64,
    pub http_503: f64,
    /// Answered with `Retry-After: retry_after_seconds`.
    pub http_429: f64,
    /// The connection is reset without any HTTP response.
    pub reset: f64,
    /// The request is held unanswered for `timeout_seconds` (or until the client gives up).
    pub timeout: f64,
}

/// A fault injected instead of the normal answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultKind {
    #[serde(rename = "http_500")]
    Http500,
    #[default]
    #[serde(rename = "http_503")]
    Http503,
    #[serde(rename = "http_429")]
    Http429,
    #[serde(rename = "reset")]
    Reset,
    #[serde(rename = "timeout")]
    Timeout,
}

/// Deterministic faults for tests: the first `count` requests of each idempotency key get
/// `kind`; later ones are served normally. Counting restarts whenever the faults are replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailFirst {
    pub count: u32,
    pub kind: FaultKind,
}

/// A permanent rejection: registrations for `tax_id` are refused with `reason`. The match is
/// case-insensitive; a trailing `*` makes `tax_id` a prefix (`"XX*"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectRule {
    pub tax_id: String,
    #[serde(default = "default_reject_reason")]
    pub reason: String,
}

fn default_reject_reason() -> String {
    "seller blacklisted".into()
}

impl RejectRule {
    pub fn matches(&self, tax_id: &str) -> bool {
        let pattern = self.tax_id.trim();
        let candidate = tax_id.trim();
        match pattern.strip_suffix('*') {
            Some(prefix) => candidate
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
            None => candidate.eq_ignore_ascii_case(pattern),
        }
    }
}

/// Asynchronous mode: registrations answer 202, complete after `delay_ms`, then the result is
/// POSTed to `callback_url` signed with `secret` (no callback when `callback_url` is unset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AsyncMode {
    pub enabled: bool,
    pub delay_ms: u64,
    pub callback_url: Option<Url>,
    /// HMAC-SHA256 key for callback signatures (a test secret: it is shown by
    /// `GET /admin/faults`, but never by `Debug`).
    pub secret: Option<Secret>,
}

impl Default for AsyncMode {
    fn default() -> Self {
        Self {
            enabled: false,
            delay_ms: 200,
            callback_url: None,
            secret: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Faults, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn omitted_fields_take_defaults() {
        let faults = parse(r#"{"outage": true}"#).expect("parses");
        assert_eq!(
            faults,
            Faults {
                outage: true,
                ..Faults::default()
            }
        );
        assert_eq!(parse("{}").expect("parses"), Faults::default());
    }

    #[test]
    fn the_documented_example_parses() {
        let faults = parse(
            r#"{
              "outage": false,
              "outage_windows": [{"from": "2026-01-01T00:00:00Z", "until": "2026-01-01T01:00:00Z"}],
              "latency": {"distribution": "normal", "mean_ms": 20, "jitter_ms": 5},
              "errors": {"http_500": 0.1, "http_503": 0.1, "http_429": 0.1, "reset": 0.1, "timeout": 0.1},
              "fail_first": {"count": 2, "kind": "reset"},
              "retry_after_seconds": 3,
              "timeout_seconds": 30,
              "reject": [{"tax_id": "DE000000000", "reason": "seller blacklisted"}],
              "async": {"enabled": true, "delay_ms": 200, "callback_url": "http://127.0.0.1:1/cb", "secret": "s"}
            }"#,
        )
        .expect("parses");
        faults.validate().expect("valid");
        assert_eq!(faults.fail_first.kind, FaultKind::Reset);
        assert_eq!(faults.latency.distribution, Distribution::Normal);
        assert!(faults.async_mode.enabled);
        let round_trip: Faults =
            serde_json::from_value(serde_json::to_value(&faults).expect("serializes"))
                .expect("parses");
        assert_eq!(round_trip, faults);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(parse(r#"{"outgae": true}"#).is_err());
        assert!(parse(r#"{"fail_first": {"kind": "http_502"}}"#).is_err());
        let too_likely =
            parse(r#"{"errors": {"http_500": 0.6, "http_503": 0.6}}"#).expect("parses");
        assert!(too_likely.validate().is_err());
        let negative = parse(r#"{"errors": {"reset": -0.1}}"#).expect("parses");
        assert!(negative.validate().is_err());
        let unsigned = parse(r#"{"async": {"callback_url": "http://x/cb"}}"#).expect("parses");
        assert!(
            unsigned
                .validate()
                .expect_err("unsigned")
                .contains("secret")
        );
        let backwards = parse(
            r#"{"outage_windows": [{"from": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}]}"#,
        )
        .expect("parses");
        assert!(backwards.validate().is_err());
    }

    #[test]
    fn reject_rules_match_exactly_or_by_prefix() {
        let exact = RejectRule {
            tax_id: "DE136695976".into(),
            reason: "r".into(),
        };
        assert!(exact.matches("de136695976"));
        assert!(!exact.matches("DE1366959761"));
        let prefix = RejectRule {
            tax_id: "XX*".into(),
            reason: "r".into(),
        };
        assert!(prefix.matches("xx123"));
        assert!(!prefix.matches("X"));
        assert!(!prefix.matches("DE123"));
    }

    #[test]
    fn windows_are_half_open() {
        let from: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
        let until: DateTime<Utc> = "2026-01-01T01:00:00Z".parse().expect("time");
        let faults = Faults {
            outage_windows: vec![OutageWindow { from, until }],
            ..Faults::default()
        };
        assert!(faults.in_outage(from));
        assert!(!faults.in_outage(until));
        assert!(!Faults::default().in_outage(from));
    }

    #[test]
    fn debug_hides_the_secret() {
        let mode = AsyncMode {
            secret: Some(Secret::new("hunter2")),
            ..AsyncMode::default()
        };
        assert!(!format!("{mode:?}").contains("hunter2"));
    }
}
