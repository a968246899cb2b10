//! The ramp's answer: the highest rate at which both p99s stayed within their targets.

use serde::Serialize;

use crate::summary::Second;

/// The latency targets a second must meet.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Target {
    pub ack_p99_ms: f64,
    pub e2e_p99_ms: f64,
}

impl Target {
    /// The specification's: the 202 within 25 ms, submit -> ACCEPTED within 1 s, at p99.
    pub const SPECIFIED: Self = Self {
        ack_p99_ms: 25.0,
        e2e_p99_ms: 1_000.0,
    };

    /// Whether the receipts meant to be sent in `second` met the target (a second whose
    /// receipts never got a 202 or a terminal status did not).
    fn met_by(&self, second: &Second) -> bool {
        second.sent == 0
            || (second.ack_p99_ms.is_some_and(|ms| ms <= self.ack_p99_ms)
                && second.e2e_p99_ms.is_some_and(|ms| ms <= self.e2e_p99_ms))
    }
}

/// What a ramp found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WithinTarget {
    pub target: Target,
    /// The highest rate (receipts meant to be sent in one second) before the target was first
    /// missed for `window` seconds in a row; `None` when it was missed from the start.
    pub highest_rate: Option<u64>,
    /// The second the target was first missed for good, if it was.
    pub missed_from_s: Option<usize>,
    pub window: usize,
}

/// Walks a ramp's seconds in order: the target is missed for good at the first run of `window`
/// consecutive seconds that miss it (one noisy second on a shared machine does not end a ramp).
pub fn highest_rate_within(seconds: &[Second], target: Target, window: usize) -> WithinTarget {
    let window = window.max(1);
    let mut missed_in_a_row = 0;
    let mut missed_from = None;
    for (n, second) in seconds.iter().enumerate() {
        if target.met_by(second) {
            missed_in_a_row = 0;
            continue;
        }
        missed_in_a_row += 1;
        if missed_in_a_row == window {
            missed_from = Some(n + 1 - window);
            break;
        }
    }
    let within = &seconds[..missed_from.unwrap_or(seconds.len())];
    WithinTarget {
        target,
        highest_rate: within
            .iter()
            .filter(|second| target.met_by(second) && second.sent > 0)
            .map(|second| second.sent)
            .max(),
        missed_from_s: missed_from,
        window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(sent: u64, ack_ms: f64, e2e_ms: f64) -> Second {
        Second {
            sent,
            ack_p99_ms: Some(ack_ms),
            e2e_p99_ms: Some(e2e_ms),
            ..Second::default()
        }
    }

    #[test]
    fn the_answer_is_the_last_rate_before_the_target_is_missed_for_good() {
        let seconds = [
            second(10, 5.0, 500.0),
            second(20, 5.0, 500.0),
            // One noisy second does not end the ramp.
            second(30, 80.0, 500.0),
            second(40, 10.0, 900.0),
            second(50, 10.0, 1_500.0),
            second(60, 30.0, 900.0),
            second(70, 10.0, 2_000.0),
            // Back within target, but after the window had been missed.
            second(80, 10.0, 500.0),
        ];
        let found = highest_rate_within(&seconds, Target::SPECIFIED, 3);
        assert_eq!(found.highest_rate, Some(40));
        assert_eq!(found.missed_from_s, Some(4));
    }

    #[test]
    fn a_ramp_within_target_throughout_reports_its_top_rate() {
        let seconds = [second(10, 5.0, 500.0), second(20, 5.0, 500.0)];
        let found = highest_rate_within(&seconds, Target::SPECIFIED, 3);
        assert_eq!((found.highest_rate, found.missed_from_s), (Some(20), None));
    }

    #[test]
    fn receipts_that_never_ended_miss_the_target() {
        let unfinished = Second {
            sent: 10,
            ack_p99_ms: Some(5.0),
            ..Second::default()
        };
        let found = highest_rate_within(&[unfinished.clone(), unfinished], Target::SPECIFIED, 2);
        assert_eq!((found.highest_rate, found.missed_from_s), (None, Some(0)));
    }
}
