//! Identifiers. Each has a private field and one way in (`parse` / `new`), so a value of the type
//! is always valid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a valid id: {0}")]
    Uuid(String),
    #[error(
        "tenant id must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
    )]
    Tenant,
    #[error("idempotency key must be 1-255 printable ASCII characters")]
    IdempotencyKey,
    #[error(
        "callback URL must be an absolute http(s) URL of at most 2048 characters without credentials: {0}"
    )]
    CallbackUrl(String),
}

/// Declares a UUID identifier: a private field, `new` (a time-ordered UUIDv7), `parse` as the one
/// way in, and the same text form for `Display`, `FromStr` and serde. An optional prefix (as in
/// `ep_…`) makes the text form `<prefix><uuid without hyphens>`; without one it is the
/// hyphenated UUID.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        uuid_id!($(#[$doc])* $name, "");
    };
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (UUIDv7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                s.strip_prefix($prefix)
                    .and_then(|uuid| Uuid::parse_str(uuid).ok())
                    .map(Self)
                    .ok_or_else(|| IdError::Uuid(s.chars().take(64).collect()))
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if $prefix.is_empty() {
                    self.0.hyphenated().fmt(f)
                } else {
                    write!(f, "{}{}", $prefix, self.0.simple())
                }
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::id_schema($prefix)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

uuid_id!(
    /// The platform's id of one receipt; the Kafka key of every event about it.
    ReceiptId
);
uuid_id!(
    /// The id of one event; consumers deduplicate by it.
    EventId
);
uuid_id!(
    /// An API client (not its key).
    ClientId
);
uuid_id!(
    /// A tenant's registered webhook endpoint (`ep_<uuid>`).
    EndpointId,
    "ep_"
);

/// The tenant a client (and every receipt it submits) belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        let starts_well = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if (1..=64).contains(&s.len()) && starts_well && s.chars().all(valid_char) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Tenant)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The client-chosen key that makes a submission safe to retry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let printable = |c: char| c.is_ascii_graphic() || c == ' ';
        if !s.is_empty() && s.len() <= Self::MAX_LEN && s.chars().all(printable) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::IdempotencyKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where the partner wants to hear about the receipt's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CallbackUrl(Url);

impl CallbackUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let refuse = || IdError::CallbackUrl(s.chars().take(100).collect());
        if s.len() > Self::MAX_LEN {
            return Err(refuse());
        }
        let url = Url::parse(s).map_err(|_| refuse())?;
        let credentials = !url.username().is_empty() || url.password().is_some();
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || credentials {
            return Err(refuse());
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for CallbackUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        assert!(TenantId::parse("dev").is_ok());
        assert!(TenantId::parse("acme-retail_01").is_ok());
        for bad in ["", "-x", "Acme", "a b", &"x".repeat(65), "tenant/1"] {
            assert_eq!(TenantId::parse(bad), Err(IdError::Tenant), "{bad:?}");
        }
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("order-42/attempt 1").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "tab\there", "nl\n", "ünicode", &"k".repeat(256)] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(IdError::IdempotencyKey),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn callback_urls() {
        assert!(CallbackUrl::parse("https://partner.example/hooks?x=1").is_ok());
        assert!(CallbackUrl::parse("http://127.0.0.1:9000/cb").is_ok());
        for bad in [
            "ftp://x.example/",
            "not a url",
            "https://user:pw@x.example/",
            "/relative",
        ] {
            assert!(CallbackUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixed_ids_round_trip() {
        let id = EndpointId::new();
        assert!(id.to_string().starts_with("ep_"));
        assert!(!id.to_string().contains('-'));
        assert_eq!(EndpointId::parse(&id.to_string()), Ok(id));
        assert!(EndpointId::parse("nope").is_err());
        assert!(
            EndpointId::parse(&id.as_uuid().to_string()).is_err(),
            "prefix required"
        );
        let json = serde_json::to_string(&id).expect("serializes");
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(
            serde_json::from_str::<EndpointId>(&json).expect("reads"),
            id
        );
    }

    #[test]
    fn receipt_ids_round_trip() {
        let id = ReceiptId::new();
        assert_eq!(ReceiptId::parse(&id.to_string()), Ok(id));
        assert!(ReceiptId::parse("42").is_err());
    }
}
