//! Receipt types: which document schema a submission claims to follow. The catalog of types the
//! platform knows is data (`ReceiptType::builtin()`), not scattered `match`es.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DocumentFormat;

/// A named, versioned receipt type, e.g. `retail-receipt/v1`, and the format its documents use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReceiptType {
    name: String,
    format: DocumentFormat,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptTypeError {
    #[error("unknown receipt type {0:?}")]
    Unknown(String),
}

/// JSON retail receipt, version 1.
pub const RETAIL_RECEIPT_V1: &str = "retail-receipt/v1";
/// XML retail receipt, version 1.
pub const RETAIL_RECEIPT_XML_V1: &str = "retail-receipt-xml/v1";

impl ReceiptType {
    /// The receipt types built into this release.
    pub fn builtin() -> [ReceiptType; 2] {
        [
            ReceiptType {
                name: RETAIL_RECEIPT_V1.to_owned(),
                format: DocumentFormat::Json,
            },
            ReceiptType {
                name: RETAIL_RECEIPT_XML_V1.to_owned(),
                format: DocumentFormat::Xml,
            },
        ]
    }

    /// Looks a type up by name among the known types.
    pub fn lookup(name: &str) -> Result<ReceiptType, ReceiptTypeError> {
        Self::builtin()
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ReceiptTypeError::Unknown(name.chars().take(100).collect()))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn format(&self) -> DocumentFormat {
        self.format
    }
}

impl fmt::Display for ReceiptType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_known_and_unknown() {
        assert_eq!(
            ReceiptType::lookup("retail-receipt/v1").map(|t| t.format()),
            Ok(DocumentFormat::Json)
        );
        assert_eq!(
            ReceiptType::lookup("retail-receipt-xml/v1").map(|t| t.format()),
            Ok(DocumentFormat::Xml)
        );
        assert!(ReceiptType::lookup("retail-receipt/v9").is_err());
    }
}
