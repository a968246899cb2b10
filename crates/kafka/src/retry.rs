//! Non-blocking retries (ARCHITECTURE.md section 3): a message whose handling failed in a way
//! worth retrying later is copied to `<service>.<topic>.retry.<n>` with the time it becomes due;
//! the consumer of that tier holds it until then (pausing the partition, never sleeping in a
//! handler). The delay ladder grows per attempt and then stays on its last step, up to a horizon
//! counted from the first attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The delay ladder and the horizon of one consumer's retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Delay before attempt n + 1 is `ladder[n - 1]` (the last step repeats): one retry topic
    /// per step.
    #[serde(with = "durations")]
    pub ladder: Vec<Duration>,
    /// No retry is scheduled later than this after the first attempt; then the handler's
    /// `exhausted` decides (registrars: FAILED `horizon-exceeded`).
    #[serde(with = "humantime_serde")]
    pub horizon: Duration,
    /// At most this many attempts in all (unset: as many as the horizon allows).
    pub max_attempts: Option<u32>,
    /// Each delay is spread by up to ± this fraction (0.2: ±20%), so retries of many messages
    /// that failed together do not all come back at once.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 10 s, 1 min, 10 min, 1 h, then hourly, for up to 36 h (fiscal offline windows).
    fn default() -> Self {
        Self {
            ladder: vec![
                Duration::from_secs(10),
                Duration::from_secs(60),
                Duration::from_secs(600),
                Duration::from_secs(3600),
            ],
            horizon: Duration::from_secs(36 * 3600),
            max_attempts: None,
            jitter: 0.0,
        }
    }
}

/// Where a failed attempt goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAttempt {
    /// Retry tier `tier` (1-based), due at `due`.
    Tier { tier: usize, due: DateTime<Utc> },
    /// The next attempt would be due after the horizon.
    Exhausted,
}

impl RetryPolicy {
    /// A single tier without delay: what services without retries use, so that a dead-letter
    /// replay still has a retry topic to go to.
    pub fn replay_only() -> Self {
        Self {
            ladder: vec![Duration::ZERO],
            ..Self::default()
        }
    }

    /// The number of retry tiers (topics).
    pub fn tiers(&self) -> usize {
        self.ladder.len().max(1)
    }

    /// What follows failed attempt `attempt` (1 = the first), given when the first attempt
    /// happened and how long the remote side asked us to wait.
    pub fn next(
        &self,
        attempt: u32,
        first_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
        retry_after: Option<Duration>,
    ) -> NextAttempt {
        if self.max_attempts.is_some_and(|max| attempt >= max) {
            return NextAttempt::Exhausted;
        }
        let tier = usize::try_from(attempt)
            .unwrap_or(usize::MAX)
            .clamp(1, self.tiers());
        let step = self.jittered(self.ladder.get(tier - 1).copied().unwrap_or_default());
        let delay = step.max(retry_after.unwrap_or_default());
        let due = now + chrono::Duration::from_std(delay).unwrap_or(chrono::TimeDelta::MAX);
        let horizon = chrono::Duration::from_std(self.horizon).unwrap_or(chrono::TimeDelta::MAX);
        if due - first_attempt_at > horizon {
            NextAttempt::Exhausted
        } else {
            NextAttempt::Tier { tier, due }
        }
    }
}

impl RetryPolicy {
    /// `step` spread uniformly by up to ± `jitter` of itself.
    fn jittered(&self, step: Duration) -> Duration {
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || step.is_zero() {
            return step;
        }
        step.mul_f64(1.0 + rand::random_range(-jitter..=jitter))
    }
}

/// `Vec<Duration>` as a list of human-readable durations (`["10s", "1m"]`).
mod durations {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ladder: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            ladder
                .iter()
                .map(|d| humantime::format_duration(*d).to_string()),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| humantime::parse_duration(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("time")
    }

    #[test]
    fn the_ladder_climbs_then_repeats_its_last_step() {
        let policy = RetryPolicy::default();
        let first = at(0);
        let due = |attempt, now: i64| match policy.next(attempt, first, at(now), None) {
            NextAttempt::Tier { tier, due } => (tier, (due - at(now)).num_seconds()),
            NextAttempt::Exhausted => (0, -1),
        };
        assert_eq!(due(1, 0), (1, 10));
        assert_eq!(due(2, 10), (2, 60));
        assert_eq!(due(3, 70), (3, 600));
        assert_eq!(due(4, 670), (4, 3600));
        assert_eq!(due(9, 20_000), (4, 3600), "hourly after the ladder");
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let policy = RetryPolicy::default();
        let NextAttempt::Tier { due, .. } =
            policy.next(1, at(0), at(0), Some(Duration::from_secs(90)))
        else {
            panic!("not exhausted")
        };
        assert_eq!((due - at(0)).num_seconds(), 90);
        let NextAttempt::Tier { due, .. } =
            policy.next(1, at(0), at(0), Some(Duration::from_secs(2)))
        else {
            panic!("not exhausted")
        };
        assert_eq!(
            (due - at(0)).num_seconds(),
            10,
            "the ladder's step is the minimum"
        );
    }

    #[test]
    fn the_horizon_ends_retries() {
        let policy = RetryPolicy {
            horizon: Duration::from_secs(36 * 3600),
            ..RetryPolicy::default()
        };
        assert!(matches!(
            policy.next(40, at(0), at(35 * 3600), None),
            NextAttempt::Tier { .. }
        ));
        assert_eq!(
            policy.next(41, at(0), at(35 * 3600 + 1), None),
            NextAttempt::Exhausted
        );
    }

    #[test]
    fn max_attempts_ends_retries() {
        let policy = RetryPolicy {
            max_attempts: Some(3),
            ..RetryPolicy::default()
        };
        assert!(matches!(
            policy.next(2, at(0), at(10), None),
            NextAttempt::Tier { tier: 2, .. }
        ));
        assert_eq!(policy.next(3, at(0), at(100), None), NextAttempt::Exhausted);
    }

    #[test]
    fn jitter_spreads_delays_within_bounds() {
        let policy = RetryPolicy {
            jitter: 0.2,
            ..RetryPolicy::default()
        };
        let delays: std::collections::HashSet<i64> = (0..50)
            .map(|_| match policy.next(2, at(0), at(0), None) {
                NextAttempt::Tier { due, .. } => (due - at(0)).num_milliseconds(),
                NextAttempt::Exhausted => -1,
            })
            .collect();
        assert!(
            delays.iter().all(|ms| (48_000..=72_000).contains(ms)),
            "{delays:?}"
        );
        assert!(delays.len() > 1, "spread");
    }

    #[test]
    fn ladders_read_from_config() {
        let policy: RetryPolicy =
            serde_json::from_str(r#"{"ladder": ["200ms", "1s", "2m"], "horizon": "5s"}"#)
                .expect("parses");
        assert_eq!(
            policy.ladder,
            [
                Duration::from_millis(200),
                Duration::from_secs(1),
                Duration::from_secs(120)
            ]
        );
        assert_eq!(policy.horizon, Duration::from_secs(5));
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"ladder": ["soon"]}"#).is_err());
        let json = serde_json::to_string(&RetryPolicy::default()).expect("serializes");
        assert_eq!(
            serde_json::from_str::<RetryPolicy>(&json).expect("round trip"),
            RetryPolicy::default()
        );
    }
}
