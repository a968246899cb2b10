//! The random parts of fault injection, kept pure (the caller supplies the randomness) so they
//! can be tested without a server.

use std::time::Duration;

use rand::Rng;

use crate::config::{Distribution, ErrorRates, FaultKind, Latency};

/// No sampled latency exceeds this, whatever the distribution's tail.
const MAX_LATENCY_MS: f64 = 600_000.0;

/// One latency sample.
pub(crate) fn sample_latency(latency: &Latency, rng: &mut impl Rng) -> Duration {
    let mean = latency.mean_ms as f64;
    let jitter = latency.jitter_ms as f64;
    let ms = match latency.distribution {
        Distribution::Fixed => mean,
        Distribution::Uniform => {
            if jitter == 0.0 {
                mean
            } else {
                rng.random_range((mean - jitter)..=(mean + jitter))
            }
        }
        Distribution::Normal => {
            // Box-Muller: u1 in (0, 1] keeps the logarithm finite.
            let u1 = 1.0 - rng.random::<f64>();
            let u2 = rng.random::<f64>();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            mean + jitter * z
        }
        Distribution::Exponential => {
            let u = rng.random::<f64>();
            -mean * (1.0 - u).ln()
        }
    };
    Duration::from_secs_f64(ms.clamp(0.0, MAX_LATENCY_MS) / 1000.0)
}

/// Which fault, if any, a draw `u` in `[0, 1)` selects: the rates are stacked in a fixed order.
pub(crate) fn pick_error(rates: &ErrorRates, u: f64) -> Option<FaultKind> {
    let stacked = [
        (rates.http_500, FaultKind::Http500),
        (rates.http_503, FaultKind::Http503),
        (rates.http_429, FaultKind::Http429),
        (rates.reset, FaultKind::Reset),
        (rates.timeout, FaultKind::Timeout),
    ];
    let mut threshold = 0.0;
    for (rate, kind) in stacked {
        threshold += rate;
        if rate > 0.0 && u < threshold {
            return Some(kind);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn mean_ms(latency: Latency, samples: u32) -> (f64, f64) {
        let mut rng = StdRng::seed_from_u64(7);
        let mut sum = 0.0;
        let mut min = f64::MAX;
        for _ in 0..samples {
            let ms = sample_latency(&latency, &mut rng).as_secs_f64() * 1000.0;
            sum += ms;
            min = min.min(ms);
        }
        (sum / f64::from(samples), min)
    }

    #[test]
    fn distributions_have_their_mean_and_stay_non_negative() {
        let n = 20_000;
        let fixed = Latency {
            distribution: Distribution::Fixed,
            mean_ms: 40,
            jitter_ms: 30,
        };
        assert_eq!(mean_ms(fixed, 10), (40.0, 40.0));

        let uniform = Latency {
            distribution: Distribution::Uniform,
            ..fixed
        };
        let (mean, min) = mean_ms(uniform, n);
        assert!((mean - 40.0).abs() < 2.0, "{mean}");
        assert!(min >= 10.0, "{min}");

        let normal = Latency {
            distribution: Distribution::Normal,
            mean_ms: 100,
            jitter_ms: 10,
        };
        let (mean, min) = mean_ms(normal, n);
        assert!((mean - 100.0).abs() < 2.0, "{mean}");
        assert!(min >= 0.0);

        let clamped = Latency {
            distribution: Distribution::Normal,
            mean_ms: 0,
            jitter_ms: 50,
        };
        assert!(mean_ms(clamped, n).1 >= 0.0);

        let exponential = Latency {
            distribution: Distribution::Exponential,
            mean_ms: 50,
            jitter_ms: 0,
        };
        let (mean, min) = mean_ms(exponential, n);
        assert!((mean - 50.0).abs() < 3.0, "{mean}");
        assert!(min >= 0.0);
    }

    #[test]
    fn errors_are_stacked_in_order() {
        let rates = ErrorRates {
            http_500: 0.1,
            http_503: 0.2,
            http_429: 0.0,
            reset: 0.3,
            timeout: 0.1,
        };
        assert_eq!(pick_error(&rates, 0.0), Some(FaultKind::Http500));
        assert_eq!(pick_error(&rates, 0.15), Some(FaultKind::Http503));
        assert_eq!(pick_error(&rates, 0.35), Some(FaultKind::Reset));
        assert_eq!(pick_error(&rates, 0.65), Some(FaultKind::Timeout));
        assert_eq!(pick_error(&rates, 0.75), None);
        assert_eq!(pick_error(&ErrorRates::default(), 0.0), None);
        let always = ErrorRates {
            http_429: 1.0,
            ..ErrorRates::default()
        };
        assert_eq!(pick_error(&always, 0.999_999), Some(FaultKind::Http429));
    }
}
