//! When each receipt is due: an arrival rate that may ramp linearly from one rate to another.

use std::time::Duration;

/// Arrivals at `from` per second rising (or falling) linearly to `to` over `over`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub from: f64,
    pub to: f64,
    pub over: Duration,
}

impl Schedule {
    /// A constant rate.
    pub fn steady(rate: f64, over: Duration) -> Self {
        Self {
            from: rate,
            to: rate,
            over,
        }
    }

    /// The rate at `t` after the start.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let total = self.over.as_secs_f64();
        if total <= 0.0 {
            return self.to;
        }
        let f = (t.as_secs_f64() / total).clamp(0.0, 1.0);
        self.from + (self.to - self.from) * f
    }

    /// The intended send times (offsets from the start), at most `max` of them.
    pub fn arrivals(&self, max: u64) -> Vec<Duration> {
        let mut out = Vec::new();
        let mut t = 0.0f64;
        let end = self.over.as_secs_f64();
        while t < end && (out.len() as u64) < max {
            out.push(Duration::from_secs_f64(t));
            // At least one a second, so a ramp from zero starts.
            let rate = self.rate_at(Duration::from_secs_f64(t)).max(1.0);
            t += 1.0 / rate;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_spaces_arrivals_evenly() {
        let arrivals = Schedule::steady(100.0, Duration::from_secs(2)).arrivals(u64::MAX);
        assert_eq!(arrivals.len(), 200);
        assert_eq!(arrivals[1], Duration::from_millis(10));
        assert!(arrivals.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn a_ramp_sends_the_area_under_its_rate() {
        let ramp = Schedule {
            from: 0.0,
            to: 200.0,
            over: Duration::from_secs(10),
        };
        let n = ramp.arrivals(u64::MAX).len();
        // ∫ 20 t dt over 10 s = 1,000.
        assert!((950..=1_050).contains(&n), "{n}");
        assert_eq!(ramp.rate_at(Duration::from_secs(5)), 100.0);
    }

    #[test]
    fn the_count_is_bounded() {
        let arrivals = Schedule::steady(1_000.0, Duration::from_secs(60)).arrivals(50);
        assert_eq!(arrivals.len(), 50);
    }
}
