//! The one wrapper for secret values (API keys, signing secrets, passwords in configuration): it
//! serializes like a string but never shows in `Debug` output, so a secret cannot reach a log
//! line by accident; the value is reachable only through [`Secret::expose`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string. `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A random secret: 256 bits, hex.
    pub fn random() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(hex::encode(bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_debug_printed() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(secret.expose(), "hunter2");
        assert_ne!(Secret::random(), Secret::random());
        assert_eq!(Secret::random().expose().len(), 64);
        assert_eq!(
            serde_json::to_string(&secret).expect("serializes"),
            "\"hunter2\""
        );
    }
}
