//! Signing secrets (Standard Webhooks: `whsec_` + base64 key) and their rotation: a new secret
//! becomes current at once, while the previous one keeps signing until its grace period ends, so
//! receivers can switch without missing a message.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Secret, TenantId};

/// A webhook signing secret: `whsec_` and the base64 of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookSecret(Secret);

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for WebhookSecret {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::secret_schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for WebhookSecret {}

impl WebhookSecret {
    pub const PREFIX: &str = "whsec_";

    /// A new random secret (256-bit key).
    pub fn generate() -> Self {
        let key: [u8; 32] = rand::random();
        Self(Secret::new(format!(
            "{}{}",
            Self::PREFIX,
            STANDARD.encode(key)
        )))
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
        Ok(Self(Secret::new(s)))
    }

    /// The secret as shown to its owner.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The HMAC key.
    pub fn key(&self) -> Vec<u8> {
        self.expose()
            .strip_prefix(Self::PREFIX)
            .and_then(|e| STANDARD.decode(e).ok())
            .unwrap_or_default()
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
        s.expose().to_owned()
    }
}

/// A signing secret and, once rotated out, until when it still signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub secret: WebhookSecret,
    /// `None` for the current secret.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The secrets one destination is signed with: the current one first, then the rotated-out ones
/// still within their grace period, most recently rotated out first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRing {
    secrets: Vec<StoredSecret>,
}

impl SecretRing {
    pub fn new(current: WebhookSecret) -> Self {
        Self {
            secrets: vec![StoredSecret {
                secret: current,
                expires_at: None,
            }],
        }
    }

    /// The secrets that sign at `now`, current first. Secrets past their grace period are
    /// never returned.
    pub fn live(&self, now: DateTime<Utc>) -> Vec<StoredSecret> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|until| until > now))
            .cloned()
            .collect()
    }

    /// Makes `secret` the current one; the previous current one keeps signing until
    /// `previous_until` (a time already past ends it at once). Secrets rotated out earlier keep
    /// their own expiry; those expired by `now` are forgotten.
    pub fn rotate(
        &mut self,
        secret: WebhookSecret,
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        for stored in &mut self.secrets {
            stored.expires_at.get_or_insert(previous_until);
        }
        self.secrets
            .retain(|s| s.expires_at.is_some_and(|until| until > now));
        self.secrets.insert(
            0,
            StoredSecret {
                secret,
                expires_at: None,
            },
        );
    }
}

/// A tenant's secrets for deliveries to `Callback-Url`s, with the version stores compare
/// before writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackSecrets {
    pub tenant_id: TenantId,
    pub secrets: SecretRing,
    pub version: u64,
}

impl CallbackSecrets {
    /// A tenant's first callback secret.
    pub fn new(tenant_id: TenantId, current: WebhookSecret) -> Self {
        Self {
            tenant_id,
            secrets: SecretRing::new(current),
            version: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn secrets_parse_and_never_print() {
        let secret = WebhookSecret::generate();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.key().len(), 32);
        assert_eq!(WebhookSecret::parse(secret.expose()), Ok(secret.clone()));
        assert!(WebhookSecret::parse("whsec_%%%").is_err());
        assert!(WebhookSecret::parse("secret").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err(), "too short");
        assert!(!format!("{secret:?}").contains(secret.expose()));
        // The Standard Webhooks reference secret.
        assert_eq!(
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .expect("valid")
                .key()
                .len(),
            24
        );
        let json = serde_json::to_string(&secret).expect("serializes");
        assert_eq!(
            serde_json::from_str::<WebhookSecret>(&json).expect("reads"),
            secret
        );
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_714_550_400, 0).expect("time") + TimeDelta::minutes(minutes)
    }

    fn current(ring: &SecretRing, now: DateTime<Utc>) -> WebhookSecret {
        ring.live(now)[0].secret.clone()
    }

    #[test]
    fn rotation_keeps_the_previous_secret_for_its_grace_period() {
        let (first, second, third) = (
            WebhookSecret::generate(),
            WebhookSecret::generate(),
            WebhookSecret::generate(),
        );
        let mut ring = SecretRing::new(first.clone());
        assert_eq!(ring.live(at(0)).len(), 1);

        ring.rotate(second.clone(), at(60), at(0));
        let live = ring.live(at(1));
        assert_eq!(live.len(), 2);
        assert_eq!(live[0].secret, second, "the new secret is current");
        assert_eq!(live[0].expires_at, None);
        assert_eq!(
            (&live[1].secret, live[1].expires_at),
            (&first, Some(at(60)))
        );
        assert_eq!(ring.live(at(60)).len(), 1, "the grace period has ended");

        // Rotating again: the first keeps its own expiry, the second gets the new one.
        ring.rotate(third.clone(), at(30), at(10));
        let live = ring.live(at(11));
        let secrets: Vec<&WebhookSecret> = live.iter().map(|s| &s.secret).collect();
        assert_eq!(secrets, [&third, &second, &first]);
        assert_eq!(live[1].expires_at, Some(at(30)));
        assert_eq!(live[2].expires_at, Some(at(60)));
        assert_eq!(current(&ring, at(45)), third);
        assert_eq!(ring.live(at(45)).len(), 2);

        // A grace period already over ends the previous secret at once; expired ones go.
        ring.rotate(first.clone(), at(0), at(100));
        assert_eq!(ring.live(at(100)).len(), 1);
        assert_eq!(ring.secrets.len(), 1, "expired secrets are forgotten");
    }
}
