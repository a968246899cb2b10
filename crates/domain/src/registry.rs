//! External registries (the tax authority, the logistics provider, ...): their names and what
//! registering a receipt with one of them produced.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A registry's name as configured (`tax`, `logistics`, `tax-2`): it names the registrar service,
/// the registration topics (`receipts.<name>-registered`, `receipts.<name>-failed`) and the
/// registrations shown to partners.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RegistryName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry name must be 1-32 characters of a-z, 0-9 and '-', starting with a letter: {0:?}")]
pub struct InvalidRegistryName(String);

impl RegistryName {
    pub fn parse(s: &str) -> Result<Self, InvalidRegistryName> {
        let valid = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidRegistryName(s.chars().take(64).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegistryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RegistryName {
    type Err = InvalidRegistryName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for RegistryName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A receipt registered with one registry.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub registry: RegistryName,
    /// The registry's own id for it: a fiscal number, a shipment id, ...
    pub registration_id: String,
    pub registered_at: DateTime<Utc>,
    /// Calls it took (1 when the first call succeeded).
    pub attempts: u32,
}

/// Why registering with one registry failed for good.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationFailure {
    pub registry: RegistryName,
    /// `rejected-by-registry` (the registry refused the receipt) or `horizon-exceeded` (it could
    /// not be reached within the retry horizon).
    pub code: String,
    pub reason: String,
    pub failed_at: DateTime<Utc>,
    pub attempts: u32,
}

/// Stable codes of [`RegistrationFailure::code`].
pub mod failure_code {
    pub const REJECTED_BY_REGISTRY: &str = "rejected-by-registry";
    pub const HORIZON_EXCEEDED: &str = "horizon-exceeded";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["tax", "logistics", "tax-2", "a"] {
            assert!(RegistryName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Tax", "2tax", "tax_2", "tax.x", &"x".repeat(33)] {
            assert!(RegistryName::parse(bad).is_err(), "{bad}");
        }
    }
}
