//! What a run measured, as printed and as written to its JSON summary.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Percentiles of one latency, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1_000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Second {
    pub sent: u64,
    pub acknowledged: u64,
    pub terminal: u64,
}

/// The platform's process at one second of the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ProcessSample {
    pub at_s: f64,
    /// Percent of one core over the second before.
    pub cpu_percent: f64,
    pub rss_mib: f64,
}

/// What the run checked, besides measuring.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Verification {
    /// Acknowledged receipts without a terminal status at the end of the drain, by webhook or by
    /// polling: a backlog the platform had not worked off yet, or a loss (run again with a longer
    /// `--drain` to tell them apart).
    pub unfinished: Vec<String>,
    /// Terminal statuses learnt by polling because no webhook came in time.
    pub polled: u64,
    /// Webhook deliveries whose signature did not verify.
    pub forged_webhooks: u64,
    /// Per registry: accepted receipts it did not register exactly once (id -> count).
    pub registrations_not_once: BTreeMap<String, BTreeMap<String, u64>>,
    /// Whether the registries' counts could be read at all.
    pub registrations_checked: bool,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.unfinished.is_empty()
            && self.forged_webhooks == 0
            && self.registrations_not_once.values().all(BTreeMap::is_empty)
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub started_at: String,
    /// Intended arrival rates: first and last second's.
    pub rate_from: f64,
    pub rate_to: f64,
    pub duration_s: f64,
    pub sent: u64,
    pub acknowledged: u64,
    /// Failed submissions by kind (`http-503`, `timeout`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Terminal statuses seen, by status.
    pub terminal: BTreeMap<String, u64>,
    /// From the intended send time to the 202.
    pub acknowledgement: Latency,
    /// From the intended send time to the terminal status's webhook.
    pub end_to_end: Latency,
    /// Receipts sent per second of the run, and acknowledged / ended in that second.
    pub seconds: Vec<Second>,
    /// The sustained rates over the sending window.
    pub sent_per_s: f64,
    pub terminal_per_s: f64,
    /// The platform's process (with `--pid`): every second, its peak memory and mean CPU.
    pub platform: Vec<ProcessSample>,
    pub platform_rss_max_mib: Option<f64>,
    pub platform_cpu_mean_percent: Option<f64>,
    pub verification: Verification,
}

impl Summary {
    /// The figures, for a terminal.
    pub fn render(&self) -> String {
        let l = |x: &Latency| {
            format!(
                "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  p99.9 {:.1} ms  max {:.1} ms  (n={})",
                x.p50_ms, x.p90_ms, x.p99_ms, x.p999_ms, x.max_ms, x.count
            )
        };
        let v = &self.verification;
        format!(
            "scenario {} ({:.0}/s -> {:.0}/s over {:.0} s)\n\
             sent {}  acknowledged {}  errors {:?}\n\
             terminal {:?}  ({} by polling)\n\
             202:               {}\n\
             submit -> terminal: {}\n\
             rates: sent {:.1}/s, terminal {:.1}/s\n\
             platform: {}\n\
             verification: {} (unfinished {}, forged webhooks {}, registrations not exactly once {}{})",
            self.scenario,
            self.rate_from,
            self.rate_to,
            self.duration_s,
            self.sent,
            self.acknowledged,
            self.errors,
            self.terminal,
            v.polled,
            l(&self.acknowledgement),
            l(&self.end_to_end),
            self.sent_per_s,
            self.terminal_per_s,
            match (self.platform_cpu_mean_percent, self.platform_rss_max_mib) {
                (Some(cpu), Some(rss)) =>
                    format!("CPU {cpu:.0}% of a core on average, RSS peak {rss:.0} MiB"),
                _ => "not sampled (--pid)".to_owned(),
            },
            if v.passed() { "PASSED" } else { "FAILED" },
            v.unfinished.len(),
            v.forged_webhooks,
            v.registrations_not_once
                .values()
                .map(BTreeMap::len)
                .sum::<usize>(),
            if v.registrations_checked {
                ""
            } else {
                "; registries' counts not read"
            },
        )
    }
}
