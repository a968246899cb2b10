//! API clients: a tenant-bound credential with a scope.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use receipts_domain::TenantId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// A client's id (not its secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(Uuid);

impl ClientId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for ClientId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for ClientId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// What is needed to create a client. The key itself never reaches the store: only its hash
/// and a short prefix that lets people tell keys apart in listings.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
