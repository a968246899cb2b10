//! What a run measured, as printed and as written to its JSON summary.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The quantiles of a latency's distribution curve, from the minimum to the maximum.
pub const CURVE_QUANTILES: [f64; 10] = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0];

/// Percentiles of one latency, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The distribution at [`CURVE_QUANTILES`]; empty without samples.
    pub curve: Vec<Percentile>,
}

/// One point of a latency's distribution: `percentile` % of the samples took at most `ms`.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentile {
    pub percentile: f64,
    pub ms: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let curve = if histogram.is_empty() {
            Vec::new()
        } else {
            CURVE_QUANTILES
                .iter()
                .map(|&q| Percentile {
                    percentile: q * 100.0,
                    ms: ms(histogram.value_at_quantile(q)),
                })
                .collect()
        };
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
            curve,
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Second {
    /// Receipts meant to be sent in this second.
    pub sent: u64,
    /// 202s received in this second.
    pub acknowledged: u64,
    /// Terminal statuses heard (or polled) in this second.
    pub terminal: u64,
    /// Acknowledged minus terminal, both so far, at the end of this second.
    pub backlog: u64,
    /// The 202 latency of the receipts meant to be sent in this second (none without a 202).
    pub ack_p50_ms: Option<f64>,
    pub ack_p99_ms: Option<f64>,
    /// The submit -> terminal latency of the receipts meant to be sent in this second.
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p99_ms: Option<f64>,
}

/// Per-second bookkeeping during a run: counts by the second they happened in, latencies by the
/// second their receipt was meant to be sent in. Memory grows with the seconds, not the receipts.
#[derive(Debug, Clone)]
pub struct Timeline {
    seconds: Vec<Tally>,
    /// An empty histogram, cloned for each new second.
    empty: Histogram<u32>,
}

/// One second's counts and latencies (microseconds).
#[derive(Debug, Clone)]
struct Tally {
    sent: u64,
    acknowledged: u64,
    terminal: u64,
    ack: Histogram<u32>,
    e2e: Histogram<u32>,
}

impl Timeline {
    pub fn new() -> anyhow::Result<Self> {
        // 2 significant digits are plenty for a chart; the histograms grow to the largest value.
        Ok(Self {
            seconds: Vec::new(),
            empty: Histogram::new(2)?,
        })
    }

    fn at(&mut self, second: usize) -> &mut Tally {
        if self.seconds.len() <= second {
            let empty = Tally {
                sent: 0,
                acknowledged: 0,
                terminal: 0,
                ack: self.empty.clone(),
                e2e: self.empty.clone(),
            };
            self.seconds.resize(second + 1, empty);
        }
        &mut self.seconds[second]
    }

    /// A receipt meant to be sent in `second`.
    pub fn sent(&mut self, second: usize) {
        self.at(second).sent += 1;
    }

    /// A 202 in `second`, for a receipt meant to be sent in `sent_in`, after `micros`.
    pub fn acknowledged(&mut self, second: usize, sent_in: usize, micros: u64) {
        self.at(second).acknowledged += 1;
        let _ = self.at(sent_in).ack.record(micros.max(1));
    }

    /// A terminal status in `second`, for a receipt meant to be sent in `sent_in`, after `micros`.
    pub fn ended(&mut self, second: usize, sent_in: usize, micros: u64) {
        self.at(second).terminal += 1;
        let _ = self.at(sent_in).e2e.record(micros.max(1));
    }

    /// Every second so far, with its percentiles and the backlog at its end.
    pub fn seconds(&self) -> Vec<Second> {
        let (mut acknowledged, mut terminal) = (0u64, 0u64);
        self.seconds
            .iter()
            .map(|tally| {
                acknowledged += tally.acknowledged;
                terminal += tally.terminal;
                Second {
                    sent: tally.sent,
                    acknowledged: tally.acknowledged,
                    terminal: tally.terminal,
                    // A terminal status can be heard just before its 202 is processed.
                    backlog: acknowledged.saturating_sub(terminal),
                    ack_p50_ms: quantile_ms(&tally.ack, 0.50),
                    ack_p99_ms: quantile_ms(&tally.ack, 0.99),
                    e2e_p50_ms: quantile_ms(&tally.e2e, 0.50),
                    e2e_p99_ms: quantile_ms(&tally.e2e, 0.99),
                }
            })
            .collect()
    }
}

fn quantile_ms(histogram: &Histogram<u32>, quantile: f64) -> Option<f64> {
    (!histogram.is_empty()).then(|| ms(histogram.value_at_quantile(quantile)))
}

/// The sum of the platform's consumer lag at one second of the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LagSample {
    pub at_s: f64,
    /// Messages behind the high watermarks, over every consumer and partition.
    pub lag: f64,
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
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub started_at: String,
    /// Where the generator ran: CPU model, cores, memory.
    pub machine: String,
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
    /// Acknowledgements over the time until the last one came (the sustained 202 rate).
    pub acknowledged_per_s: f64,
    pub terminal_per_s: f64,
    /// What the scenario saw beside the load (an outage's window, list pages, ...), by name.
    pub findings: BTreeMap<String, serde_json::Value>,
    /// The platform's process (with `--pid`): every second, its peak memory and mean CPU.
    pub platform: Vec<ProcessSample>,
    pub platform_rss_max_mib: Option<f64>,
    pub platform_cpu_mean_percent: Option<f64>,
    /// The platform's consumer lag (its `/metrics`), every second it could be read.
    pub lag: Vec<LagSample>,
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
             rates: sent {:.1}/s, acknowledged {:.1}/s, terminal {:.1}/s\n\
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
            self.acknowledged_per_s,
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
        ) + self
            .findings
            .iter()
            .map(|(name, value)| format!("\n{name}: {value}"))
            .collect::<String>()
            .as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within the 1 % of 2 significant digits.
    fn near(actual: Option<f64>, expected: f64) -> bool {
        actual.is_some_and(|a| (a - expected).abs() <= expected / 100.0)
    }

    #[test]
    fn latencies_go_to_the_second_their_receipt_was_meant_to_be_sent_in() {
        let mut timeline = Timeline::new().expect("timeline");
        for n in 1..=100 {
            timeline.sent(0);
            // Acknowledged and ended a second later, after n ms and n s.
            timeline.acknowledged(1, 0, n * 1_000);
            timeline.ended(2, 0, n * 1_000_000);
        }
        timeline.sent(1);
        let seconds = timeline.seconds();
        assert_eq!(seconds.len(), 3);
        let first = &seconds[0];
        assert_eq!(
            (first.sent, first.acknowledged, first.terminal),
            (100, 0, 0)
        );
        assert!(near(first.ack_p50_ms, 50.0), "{first:?}");
        assert!(near(first.ack_p99_ms, 99.0), "{first:?}");
        assert!(near(first.e2e_p50_ms, 50_000.0), "{first:?}");
        assert!(near(first.e2e_p99_ms, 99_000.0), "{first:?}");
        let second = &seconds[1];
        assert_eq!((second.sent, second.acknowledged), (1, 100));
        assert_eq!((second.ack_p50_ms, second.e2e_p50_ms), (None, None));
        assert_eq!(seconds[2].terminal, 100);
    }

    #[test]
    fn the_backlog_is_acknowledged_minus_terminal_so_far() {
        let mut timeline = Timeline::new().expect("timeline");
        for _ in 0..10 {
            timeline.acknowledged(0, 0, 1);
        }
        for _ in 0..4 {
            timeline.ended(1, 0, 1);
        }
        timeline.ended(3, 0, 1);
        // A status heard before its 202 does not make the backlog negative.
        for _ in 0..6 {
            timeline.ended(4, 0, 1);
        }
        let backlog: Vec<u64> = timeline.seconds().iter().map(|s| s.backlog).collect();
        assert_eq!(backlog, [10, 6, 6, 5, 0]);
    }

    #[test]
    fn an_empty_histogram_has_no_curve() {
        let histogram = Histogram::<u64>::new(3).expect("histogram");
        assert!(Latency::of(&histogram).curve.is_empty());
        let mut histogram = histogram;
        histogram.record(2_000).expect("record");
        let curve = Latency::of(&histogram).curve;
        assert_eq!(curve.len(), CURVE_QUANTILES.len());
        assert_eq!(curve[0].percentile, 0.0);
        assert_eq!(
            curve[9],
            Percentile {
                percentile: 100.0,
                ms: 2.0
            }
        );
    }
}
