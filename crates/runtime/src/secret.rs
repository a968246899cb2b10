//! Secrets in configuration: deserialized like a string, never shown by `Debug`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret value (API key, signing secret). `Debug` prints `[redacted]`; the value is only
/// reachable through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A random secret (256 bits, hex), for development defaults.
    pub fn random() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
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
    }
}
