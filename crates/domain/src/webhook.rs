//! Webhooks: what partners can subscribe to, where deliveries go, and the secrets they are signed
//! with (Standard Webhooks: `whsec_` + base64 key).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{EventId, Status};

/// The event types of webhook messages (`type` in the payload), one per status worth telling.
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

/// A tenant's registered webhook endpoint (`ep_<uuid>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(Uuid);

impl EndpointId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.strip_prefix("ep_")
            .and_then(|u| Uuid::parse_str(u).ok())
            .map(Self)
    }
}

impl Default for EndpointId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ep_{}", self.0.simple())
    }
}

impl Serialize for EndpointId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EndpointId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an endpoint id: {s:?}")))
    }
}

/// Where one webhook message goes.
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
            EndpointId::parse(key).map(Self::Endpoint)
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

/// A webhook signing secret: `whsec_` and the base64 of the key (Standard Webhooks).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub const PREFIX: &str = "whsec_";

    /// A new random secret (256-bit key).
    pub fn generate() -> Self {
        let key: [u8; 32] = rand::random();
        Self(format!("{}{}", Self::PREFIX, STANDARD.encode(key)))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let encoded = s
            .strip_prefix(Self::PREFIX)
            .ok_or("a webhook secret starts with whsec_")?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|e| format!("not base64 after whsec_: {e}"))?;
        if key.len() < 16 {
            return Err("a webhook secret key has at least 128 bits".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret as shown to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key.
    pub fn key(&self) -> Vec<u8> {
        self.0
            .strip_prefix(Self::PREFIX)
            .and_then(|e| STANDARD.decode(e).ok())
            .unwrap_or_default()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_[redacted]")
    }
}

impl TryFrom<String> for WebhookSecret {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<WebhookSecret> for String {
    fn from(s: WebhookSecret) -> Self {
        s.0
    }
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
    fn endpoint_ids_round_trip() {
        let id = EndpointId::new();
        assert!(id.to_string().starts_with("ep_"));
        assert_eq!(EndpointId::parse(&id.to_string()), Some(id));
        assert_eq!(EndpointId::parse("nope"), None);
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

    #[test]
    fn secrets() {
        let secret = WebhookSecret::generate();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.key().len(), 32);
        assert_eq!(WebhookSecret::parse(secret.expose()), Ok(secret.clone()));
        assert!(WebhookSecret::parse("whsec_%%%").is_err());
        assert!(WebhookSecret::parse("secret").is_err());
        assert_eq!(format!("{secret:?}"), "whsec_[redacted]");
        // The Standard Webhooks reference secret.
        assert_eq!(
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .expect("valid")
                .key()
                .len(),
            24
        );
    }
}
