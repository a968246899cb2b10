//! Webhooks: what partners can subscribe to, where deliveries go, and the secrets they are signed
//! with (Standard Webhooks: `whsec_` + base64 key).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{EndpointId, EventId, Status};

mod delivery;
mod endpoint;
mod secret;

pub use delivery::{Delivery, DeliveryAttempt, DeliveryError, DeliveryStatus, NewDelivery};
pub use endpoint::{
    DISABLED_BY_OWNER, Endpoint, EndpointHealth, EndpointPatch, NewEndpoint, auto_disabled_reason,
};
pub use secret::{CallbackSecrets, SecretRing, StoredSecret, WebhookSecret};

/// The event types of webhook messages (`type` in the payload), one per status worth telling.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WebhookEventType {
    #[serde(rename = "receipt.validated")]
    Validated,
    #[serde(rename = "receipt.accepted")]
    Accepted,
    #[serde(rename = "receipt.rejected")]
    Rejected,
    #[serde(rename = "receipt.failed")]
    Failed,
}

impl WebhookEventType {
    pub const ALL: [WebhookEventType; 4] = [
        Self::Validated,
        Self::Accepted,
        Self::Rejected,
        Self::Failed,
    ];
    /// What an endpoint registered without `events` receives: every terminal status change.
    pub const TERMINAL: [WebhookEventType; 3] = [Self::Accepted, Self::Rejected, Self::Failed];

    /// The event type announcing that a receipt reached `status`, if partners are told about it.
    pub fn for_status(status: Status) -> Option<Self> {
        match status {
            Status::Validated => Some(Self::Validated),
            Status::Accepted => Some(Self::Accepted),
            Status::Rejected => Some(Self::Rejected),
            Status::Failed => Some(Self::Failed),
            Status::Received => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validated => "receipt.validated",
            Self::Accepted => "receipt.accepted",
            Self::Rejected => "receipt.rejected",
            Self::Failed => "receipt.failed",
        }
    }

    pub fn is_terminal(self) -> bool {
        Self::TERMINAL.contains(&self)
    }
}

impl fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookEventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
                format!("unknown event type {s:?}; known: {}", known.join(", "))
            })
    }
}

/// Where one webhook message goes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Destination {
    /// A registered endpoint (signed with its own secrets).
    Endpoint(EndpointId),
    /// The receipt's own `Callback-Url` (signed with the tenant's callback secrets).
    Callback,
}

impl Destination {
    /// A short, stable name for logs, keys and limits: `ep_…` or `callback`.
    pub fn key(&self) -> String {
        match self {
            Self::Endpoint(id) => id.to_string(),
            Self::Callback => "callback".into(),
        }
    }

    /// The destination a [`Destination::key`] names.
    pub fn parse(key: &str) -> Option<Self> {
        if key == "callback" {
            Some(Self::Callback)
        } else {
            EndpointId::parse(key).ok().map(Self::Endpoint)
        }
    }
}

/// The `webhook-id` of the message announcing status-change event `cause` to `destination`:
/// stable across every attempt and redelivery, so receivers can deduplicate.
pub fn webhook_id(cause: EventId, destination: &Destination) -> String {
    let mut hash = Sha256::new();
    hash.update(cause.as_uuid().as_bytes());
    hash.update(destination.key().as_bytes());
    let digest = hash.finalize();
    format!("msg_{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types() {
        assert_eq!(
            WebhookEventType::for_status(Status::Accepted),
            Some(WebhookEventType::Accepted)
        );
        assert_eq!(WebhookEventType::for_status(Status::Received), None);
        for t in WebhookEventType::ALL {
            assert_eq!(t.as_str().parse::<WebhookEventType>(), Ok(t));
            assert_eq!(serde_json::to_string(&t).expect("json"), format!("\"{t}\""));
        }
        assert!("receipt.nope".parse::<WebhookEventType>().is_err());
        assert!(!WebhookEventType::Validated.is_terminal());
    }

    #[test]
    fn destinations_round_trip_through_their_keys() {
        for d in [
            Destination::Callback,
            Destination::Endpoint(EndpointId::new()),
        ] {
            assert_eq!(Destination::parse(&d.key()), Some(d));
        }
        assert_eq!(Destination::parse("ep_nope"), None);
    }

    #[test]
    fn webhook_ids_are_stable_per_message() {
        let (a, b) = (EventId::new(), EventId::new());
        let ep = Destination::Endpoint(EndpointId::new());
        assert_eq!(webhook_id(a, &ep), webhook_id(a, &ep));
        assert_ne!(webhook_id(a, &ep), webhook_id(b, &ep));
        assert_ne!(webhook_id(a, &ep), webhook_id(a, &Destination::Callback));
        assert!(webhook_id(a, &ep).starts_with("msg_"));
    }
}
