//! When a failed call is tried again, and after how long.

use std::time::Duration;

/// Bounded retries with exponential backoff; a `Retry-After` from the server wins (capped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1: never retry).
    pub attempts: u32,
    /// The wait before the first retry; doubled for each next one.
    pub initial_backoff: Duration,
    /// The longest wait, `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first retry).
    pub(crate) fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        retry_after.unwrap_or(exponential).min(self.max_backoff)
    }
}

/// Which failures a request may be retried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads: connection failures, timeouts and "try again later" statuses.
    Idempotent,
    /// Submissions, which carry an idempotency key: any transport failure (the request may have
    /// arrived: the key makes a second one harmless) and "try again later" statuses.
    Submission,
    /// Never (creations without a key, deletions, rotations).
    Never,
}

impl Retry {
    pub(crate) fn on_status(self, status: u16) -> bool {
        match self {
            Self::Idempotent => matches!(status, 429 | 502 | 503 | 504),
            // 408: the gateway cut a slow request short and asks for a retry with the same key.
            Self::Submission => matches!(status, 408 | 429 | 502 | 503 | 504),
            Self::Never => false,
        }
    }

    pub(crate) fn on_transport(self, error: &reqwest::Error) -> bool {
        match self {
            Self::Idempotent => error.is_connect() || error.is_timeout(),
            Self::Submission => !error.is_builder(),
            Self::Never => false,
        }
    }
}

/// A `Retry-After` in seconds (the gateway's form; HTTP dates are ignored).
pub(crate) fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_retry_after_wins_within_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1, None), Duration::from_millis(250));
        assert_eq!(policy.backoff(3, None), Duration::from_secs(1));
        assert_eq!(policy.backoff(30, None), Duration::from_secs(10));
        assert_eq!(
            policy.backoff(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.backoff(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn what_is_retried() {
        assert!(Retry::Submission.on_status(503) && Retry::Submission.on_status(408));
        assert!(Retry::Idempotent.on_status(503) && !Retry::Idempotent.on_status(408));
        assert!(!Retry::Submission.on_status(409) && !Retry::Never.on_status(503));
        assert_eq!(retry_after(Some(" 1 ")), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
    }
}
