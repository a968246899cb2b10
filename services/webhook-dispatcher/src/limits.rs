//! Per-destination isolation: at most `concurrency` requests in flight and `rate_per_second`
//! started per second for each destination. A delivery that finds its destination busy is not
//! waited for in place (that would hold a consumer slot other destinations need): the caller
//! defers it instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use receipts_webhooks::DestinationLimits;

/// Why a destination cannot take a request now, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// `concurrency` requests are in flight.
    InFlight(Duration),
    /// The rate limit allows the next request after this long.
    RateLimited(Duration),
}

impl Busy {
    pub fn retry_in(self) -> Duration {
        match self {
            Self::InFlight(d) | Self::RateLimited(d) => d,
        }
    }
}

/// The limits of every destination.
pub struct Limiter {
    limits: DestinationLimits,
    in_flight: Arc<Mutex<HashMap<String, u32>>>,
    rate: DefaultKeyedRateLimiter<String>,
}

impl Limiter {
    pub fn new(limits: DestinationLimits) -> Self {
        let rate = RateLimiter::keyed(Quota::per_second(limits.rate_per_second));
        Self {
            limits,
            in_flight: Arc::default(),
            rate,
        }
    }

    /// A slot for one request to `destination`, held until the permit is dropped.
    pub fn try_acquire(&self, destination: &str) -> Result<Permit, Busy> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = in_flight.get(destination).copied().unwrap_or(0);
        if count >= self.limits.concurrency.get() {
            return Err(Busy::InFlight(self.limits.busy_delay));
        }
        if let Err(not_until) = self.rate.check_key(&destination.to_owned()) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Busy::RateLimited(wait.max(Duration::from_millis(10))));
        }
        in_flight.insert(destination.to_owned(), count + 1);
        if in_flight.len().is_multiple_of(1024) {
            // Forget the rate state of destinations not seen for a while (bounded memory).
            self.rate.retain_recent();
        }
        Ok(Permit {
            destination: destination.to_owned(),
            in_flight: Arc::clone(&self.in_flight),
        })
    }
}

/// One request's slot at its destination.
#[derive(Debug)]
pub struct Permit {
    destination: String,
    in_flight: Arc<Mutex<HashMap<String, u32>>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = in_flight.get_mut(&self.destination) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&self.destination);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn limits(concurrency: u32, rate: u32) -> DestinationLimits {
        DestinationLimits {
            concurrency: NonZeroU32::new(concurrency).expect("nonzero"),
            rate_per_second: NonZeroU32::new(rate).expect("nonzero"),
            busy_delay: Duration::from_millis(500),
        }
    }

    #[test]
    fn concurrency_is_capped_per_destination_and_released_on_drop() {
        let limiter = Limiter::new(limits(2, 1000));
        let a1 = limiter.try_acquire("a").expect("first");
        let _a2 = limiter.try_acquire("a").expect("second");
        assert_eq!(
            limiter.try_acquire("a").expect_err("third"),
            Busy::InFlight(Duration::from_millis(500))
        );
        let _b = limiter
            .try_acquire("b")
            .expect("another destination is not affected");
        drop(a1);
        let _a3 = limiter.try_acquire("a").expect("a slot came free");
    }

    #[test]
    fn the_rate_is_limited_per_destination() {
        let limiter = Limiter::new(limits(100, 2));
        let _p1 = limiter.try_acquire("a").expect("first");
        let _p2 = limiter.try_acquire("a").expect("burst of two");
        let Err(Busy::RateLimited(wait)) = limiter.try_acquire("a") else {
            panic!("rate limited")
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        let _b = limiter
            .try_acquire("b")
            .expect("another destination is not affected");
    }
}
