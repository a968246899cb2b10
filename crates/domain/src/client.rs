//! API clients: a credential bound to a tenant, with a scope. Keys are 256 random bits, shown
//! once and stored as a SHA-256 hash: a slow password hash buys nothing for keys this long, and a
//! fast one keeps authentication off the latency budget.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ClientId, Secret, TenantId};

/// What a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Read its tenant's receipts.
    Read,
    /// Read, and submit receipts.
    ReadWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "read-write",
        }
    }

    pub fn can_write(self) -> bool {
        matches!(self, Self::ReadWrite)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Self::Read),
            "read-write" => Ok(Self::ReadWrite),
            other => Err(format!("unknown scope {other:?}: use read or read-write")),
        }
    }
}

/// What creating a client takes. The key itself never reaches a store: only its hash and a short
/// prefix that lets people tell keys apart in listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    pub id: ClientId,
    pub tenant_id: TenantId,
    pub scope: Scope,
    pub key_hash: String,
    pub key_prefix: String,
    pub label: Option<String>,
}

/// A stored client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiClient {
    pub id: ClientId,
    pub tenant_id: TenantId,
    pub scope: Scope,
    pub key_prefix: String,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiClient {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A freshly generated key. The secret is only available until this value is dropped.
pub struct ApiKey {
    secret: Secret,
}

impl ApiKey {
    /// Every key starts with this, so leaked keys are easy to find by secret scanners.
    pub const PREFIX: &str = "rk_";

    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self {
            secret: Secret::new(format!("{}{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(bytes))),
        }
    }

    /// The key to hand to the client, once.
    pub fn expose(&self) -> &str {
        self.secret.expose()
    }

    pub fn hash(&self) -> String {
        Self::hash_of(self.expose())
    }

    /// The first characters, safe to show in listings.
    pub fn display_prefix(&self) -> String {
        self.expose().chars().take(Self::PREFIX.len() + 6).collect()
    }

    /// The stored form of a presented key.
    pub fn hash_of(presented: &str) -> String {
        hex::encode(Sha256::digest(presented.as_bytes()))
    }

    /// What creating a client with this key stores.
    pub fn new_client(
        &self,
        tenant_id: TenantId,
        scope: Scope,
        label: Option<String>,
    ) -> NewClient {
        NewClient {
            id: ClientId::new(),
            tenant_id,
            scope,
            key_hash: self.hash(),
            key_prefix: self.display_prefix(),
            label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_prefixed_and_hash_stably() {
        let a = ApiKey::generate();
        let b = ApiKey::generate();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(ApiKey::PREFIX));
        assert_eq!(a.expose().len(), ApiKey::PREFIX.len() + 43);
        assert_eq!(a.hash(), ApiKey::hash_of(a.expose()));
        assert_ne!(a.hash(), b.hash());
        assert!(a.expose().starts_with(&a.display_prefix()));
        let client = a.new_client(TenantId::parse("acme").expect("tenant"), Scope::Read, None);
        assert_eq!(
            (client.key_hash, client.key_prefix),
            (a.hash(), a.display_prefix())
        );
    }

    #[test]
    fn scopes() {
        for scope in [Scope::Read, Scope::ReadWrite] {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
        assert!("admin".parse::<Scope>().is_err());
        assert!(Scope::ReadWrite.can_write() && !Scope::Read.can_write());
    }
}
