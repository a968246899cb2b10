//! A tenant's webhook endpoint and its rules: changes by its owner, secret rotation, and health
//! (an endpoint whose deliveries have only failed for longer than a configured period is
//! disabled, so the platform stops hammering a dead receiver).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{EndpointId, SecretRing, StoredSecret, WebhookEventType, WebhookSecret};
use crate::TenantId;

/// The `disabled_reason` of an endpoint its owner disabled.
pub const DISABLED_BY_OWNER: &str = "disabled by its owner";

/// The `disabled_reason` of an endpoint disabled automatically after failing since
/// `failing_since` for longer than `disable_after`.
pub fn auto_disabled_reason(disable_after: Duration, failing_since: DateTime<Utc>) -> String {
    format!(
        "disabled automatically: every delivery has failed for longer than {} (since {})",
        humantime::format_duration(disable_after),
        failing_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// A tenant's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: EndpointId,
    pub tenant_id: TenantId,
    pub url: String,
    pub description: Option<String>,
    /// The event types it receives; `None`: every terminal status change.
    pub events: Option<Vec<WebhookEventType>>,
    pub enabled: bool,
    /// Why it was disabled (by its owner, or automatically after failing for too long).
    pub disabled_reason: Option<String>,
    pub secrets: SecretRing,
    /// Since when every delivery to it has failed (cleared by a success).
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; stores compare it before writing.
    pub version: u64,
}

/// What registering an endpoint takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub id: EndpointId,
    pub tenant_id: TenantId,
    pub url: String,
    pub description: Option<String>,
    pub events: Option<Vec<WebhookEventType>>,
    pub secret: WebhookSecret,
}

/// Changes to an endpoint; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    /// `Some(None)` resets to "every terminal status change".
    pub events: Option<Option<Vec<WebhookEventType>>>,
    /// Enabling clears `disabled_reason` and `failing_since`; disabling records
    /// [`DISABLED_BY_OWNER`].
    pub enabled: Option<bool>,
}

/// What a delivery result did to its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointHealth {
    Healthy,
    /// Failing, but not yet for long enough to disable (or disabled already).
    Failing,
    /// This failure disabled it: it had only failed for longer than the allowed period.
    DisabledNow,
}

impl Endpoint {
    pub fn new(new: NewEndpoint, now: DateTime<Utc>) -> Self {
        Self {
            id: new.id,
            tenant_id: new.tenant_id,
            url: new.url,
            description: new.description,
            events: new.events,
            enabled: true,
            disabled_reason: None,
            secrets: SecretRing::new(new.secret),
            failing_since: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Whether it wants messages of `event`.
    pub fn subscribes_to(&self, event: WebhookEventType) -> bool {
        match &self.events {
            Some(events) => events.contains(&event),
            None => event.is_terminal(),
        }
    }

    /// Whether it should be sent messages of `event` now.
    pub fn wants(&self, event: WebhookEventType) -> bool {
        self.enabled && self.subscribes_to(event)
    }

    /// The secrets that sign its messages at `now`, current first.
    pub fn live_secrets(&self, now: DateTime<Utc>) -> Vec<StoredSecret> {
        self.secrets.live(now)
    }

    /// Applies its owner's changes.
    pub fn patch(&mut self, patch: &EndpointPatch, now: DateTime<Utc>) {
        if let Some(url) = &patch.url {
            self.url.clone_from(url);
        }
        if let Some(description) = &patch.description {
            self.description.clone_from(description);
        }
        if let Some(events) = &patch.events {
            self.events.clone_from(events);
        }
        match patch.enabled {
            Some(true) => {
                self.enabled = true;
                self.disabled_reason = None;
                self.failing_since = None;
            }
            Some(false) => {
                self.enabled = false;
                self.disabled_reason = Some(DISABLED_BY_OWNER.to_owned());
            }
            None => {}
        }
        self.touch(now);
    }

    /// A new current secret; the previous one signs until `previous_until`.
    pub fn rotate_secret(
        &mut self,
        secret: WebhookSecret,
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        self.secrets.rotate(secret, previous_until, now);
        self.touch(now);
    }

    /// Records the outcome of a delivery attempt made at `at`: a success clears
    /// `failing_since`; a failure sets it if unset, and disables the endpoint (with a reason
    /// naming the period) when it has been failing for longer than `disable_after`. Returns
    /// what that did, and whether the endpoint changed (and needs to be stored).
    pub fn record_result(
        &mut self,
        succeeded: bool,
        at: DateTime<Utc>,
        disable_after: Duration,
        now: DateTime<Utc>,
    ) -> (EndpointHealth, bool) {
        if succeeded {
            let changed = self.failing_since.take().is_some();
            return (EndpointHealth::Healthy, changed);
        }
        let since = *self.failing_since.get_or_insert(at);
        let changed_since = since == at;
        // A period too long to represent is never exceeded.
        let overdue = TimeDelta::from_std(disable_after).is_ok_and(|limit| at - since > limit);
        if self.enabled && overdue {
            self.enabled = false;
            self.disabled_reason = Some(auto_disabled_reason(disable_after, since));
            self.touch(now);
            return (EndpointHealth::DisabledNow, true);
        }
        (EndpointHealth::Failing, changed_since)
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_714_550_400, 0).expect("time") + TimeDelta::minutes(minutes)
    }

    fn endpoint(events: Option<Vec<WebhookEventType>>) -> Endpoint {
        Endpoint::new(
            NewEndpoint {
                id: EndpointId::new(),
                tenant_id: TenantId::parse("acme").expect("tenant"),
                url: "https://a.example/hook".into(),
                description: None,
                events,
                secret: WebhookSecret::generate(),
            },
            at(0),
        )
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn subscriptions() {
        let all_terminal = endpoint(None);
        assert!(all_terminal.wants(WebhookEventType::Accepted));
        assert!(!all_terminal.wants(WebhookEventType::Validated));
        let mut only_validated = endpoint(Some(vec![WebhookEventType::Validated]));
        assert!(only_validated.wants(WebhookEventType::Validated));
        assert!(!only_validated.wants(WebhookEventType::Failed));
        only_validated.patch(
            &EndpointPatch {
                enabled: Some(false),
                ..EndpointPatch::default()
            },
            at(1),
        );
        assert!(!only_validated.wants(WebhookEventType::Validated));
        assert_eq!(
            only_validated.disabled_reason.as_deref(),
            Some(DISABLED_BY_OWNER)
        );
        assert_eq!(only_validated.updated_at, at(1));
    }

    #[test]
    fn patches_change_only_what_they_name() {
        let mut e = endpoint(Some(vec![WebhookEventType::Validated]));
        let before = e.clone();
        e.patch(
            &EndpointPatch {
                description: Some(Some("ops".into())),
                ..EndpointPatch::default()
            },
            at(5),
        );
        assert_eq!(e.description.as_deref(), Some("ops"));
        assert_eq!((&e.url, &e.events), (&before.url, &before.events));
        e.patch(
            &EndpointPatch {
                events: Some(None),
                url: Some("https://b.example/".into()),
                ..EndpointPatch::default()
            },
            at(6),
        );
        assert_eq!(e.events, None);
        assert_eq!(e.url, "https://b.example/");
    }

    #[test]
    fn failing_longer_than_the_period_disables_once_and_enabling_heals() {
        let mut e = endpoint(None);
        assert_eq!(
            e.record_result(true, at(0), HOUR, at(0)),
            (EndpointHealth::Healthy, false),
            "nothing to store"
        );
        assert_eq!(
            e.record_result(false, at(1), HOUR, at(1)),
            (EndpointHealth::Failing, true)
        );
        assert_eq!(e.failing_since, Some(at(1)));
        assert_eq!(
            e.record_result(false, at(30), HOUR, at(30)),
            (EndpointHealth::Failing, false),
            "still failing since the first failure"
        );
        assert_eq!(
            e.record_result(false, at(61), HOUR, at(61)),
            (EndpointHealth::Failing, false),
            "exactly the period is not longer than it"
        );
        assert_eq!(
            e.record_result(false, at(62), HOUR, at(62)),
            (EndpointHealth::DisabledNow, true)
        );
        assert!(!e.enabled);
        assert_eq!(
            e.disabled_reason.as_deref(),
            Some(auto_disabled_reason(HOUR, at(1)).as_str())
        );
        assert!(
            e.disabled_reason
                .as_deref()
                .is_some_and(|r| r.contains("1h"))
        );
        assert_eq!(
            e.record_result(false, at(90), HOUR, at(90)),
            (EndpointHealth::Failing, false),
            "disabled once"
        );
        e.patch(
            &EndpointPatch {
                enabled: Some(true),
                ..EndpointPatch::default()
            },
            at(100),
        );
        assert!(e.enabled && e.disabled_reason.is_none() && e.failing_since.is_none());

        // A success in between starts the count again.
        e.record_result(false, at(110), HOUR, at(110));
        assert_eq!(
            e.record_result(true, at(120), HOUR, at(120)),
            (EndpointHealth::Healthy, true)
        );
        assert_eq!(
            e.record_result(false, at(200), HOUR, at(200)).0,
            EndpointHealth::Failing
        );
    }

    #[test]
    fn an_endlessly_long_period_never_disables() {
        let mut e = endpoint(None);
        e.record_result(false, at(0), Duration::MAX, at(0));
        assert_eq!(
            e.record_result(false, at(1_000_000), Duration::MAX, at(1_000_000))
                .0,
            EndpointHealth::Failing
        );
    }

    #[test]
    fn rotating_touches_the_endpoint() {
        let mut e = endpoint(None);
        let next = WebhookSecret::generate();
        e.rotate_secret(next.clone(), at(30), at(10));
        assert_eq!(e.live_secrets(at(11))[0].secret, next);
        assert_eq!(e.live_secrets(at(11)).len(), 2);
        assert_eq!(e.updated_at, at(10));
    }
}
