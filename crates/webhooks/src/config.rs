//! `[webhooks]`: how webhook messages are sent, shared by the dispatcher (which sends them) and
//! the gateway (which checks endpoint URLs against the same policy and rotates secrets with the
//! same grace period).

use std::time::Duration;

use ipnet::IpNet;
use std::num::NonZeroU32;

use receipts_kafka::RetryPolicy;
use serde::{Deserialize, Serialize};
use url::Url;

/// How webhook messages are sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// One attempt's whole exchange (connect, send, first 1 KiB of the answer); longer is a
    /// `timeout` failure.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// After a failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (±20 %), 8 attempts in
    /// all; a longer `Retry-After` wins.
    pub retry: RetryPolicy,
    /// Per-destination rate limit and concurrency cap.
    pub per_destination: DestinationLimits,
    /// An endpoint whose deliveries have only failed for this long is disabled.
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    /// Special-purpose networks (private, loopback, link-local, ...) webhooks may reach anyway,
    /// checked at every send (and by the gateway when an endpoint is registered). Empty by
    /// default: only public addresses.
    pub allow_private: Vec<IpNet>,
    /// How long a rotated-out secret keeps signing next to the new one (the gateway's
    /// rotation API).
    #[serde(with = "humantime_serde")]
    pub secret_grace: Duration,
    /// The gateway's external base URL, for the receipt link in payloads (none: no link).
    pub public_url: Option<Url>,
    pub user_agent: String,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        Self {
            request_timeout: Duration::from_secs(15),
            retry: RetryPolicy {
                ladder: vec![
                    Duration::from_secs(5),
                    minutes(5),
                    minutes(30),
                    minutes(2 * 60),
                    minutes(5 * 60),
                    minutes(10 * 60),
                    minutes(10 * 60),
                ],
                horizon: minutes(36 * 60),
                max_attempts: Some(8),
                jitter: 0.2,
            },
            per_destination: DestinationLimits::default(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            allow_private: Vec::new(),
            secret_grace: Duration::from_secs(24 * 3600),
            public_url: None,
            user_agent: concat!("receipts-webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationLimits {
    /// Requests in flight to one destination at most.
    pub concurrency: NonZeroU32,
    /// Requests started per second to one destination at most (also the burst).
    pub rate_per_second: NonZeroU32,
    /// How long a delivery to a busy destination waits before it is tried again.
    #[serde(with = "humantime_serde")]
    pub busy_delay: Duration,
}

impl Default for DestinationLimits {
    fn default() -> Self {
        Self {
            concurrency: NonZeroU32::new(8).unwrap_or(NonZeroU32::MIN),
            rate_per_second: NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
            busy_delay: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_svix_like() {
        let config = WebhookConfig::default();
        let total: Duration = config.retry.ladder.iter().sum();
        assert_eq!(config.retry.max_attempts, Some(8));
        assert_eq!(
            config.retry.ladder.len(),
            7,
            "a retry after each of 7 failures"
        );
        assert!(
            config.retry.horizon > total.mul_f64(1.0 + config.retry.jitter),
            "the horizon never cuts the schedule short"
        );
    }
}
