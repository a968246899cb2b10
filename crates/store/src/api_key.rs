//! API keys: 256 random bits, shown once, stored as a SHA-256 hash. A slow password hash buys
//! nothing for keys this long, and a fast one keeps authentication off the latency budget.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Every key starts with this, so leaked keys are easy to find by secret scanners.
pub const KEY_PREFIX: &str = "rk_";

/// A freshly generated key. The secret is only available until this value is dropped.
pub struct ApiKey {
    secret: SecretString,
}

impl ApiKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self {
            secret: SecretString::from(format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))),
        }
    }

    /// The key to hand to the client, once.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }

    pub fn hash(&self) -> String {
        hash_key(self.expose())
    }

    /// The first characters, safe to show in listings.
    pub fn display_prefix(&self) -> String {
        self.expose().chars().take(KEY_PREFIX.len() + 6).collect()
    }
}

/// The stored form of a presented key.
pub fn hash_key(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_prefixed_and_hash_stably() {
        let a = ApiKey::generate();
        let b = ApiKey::generate();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(KEY_PREFIX));
        assert_eq!(a.expose().len(), KEY_PREFIX.len() + 43);
        assert_eq!(a.hash(), hash_key(a.expose()));
        assert_ne!(a.hash(), b.hash());
        assert!(a.expose().starts_with(&a.display_prefix()));
    }
}
