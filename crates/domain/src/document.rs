//! Receipt documents as partners send them: their format, and the syntax check the gateway runs
//! before anything is produced. Semantic checks are the validator's job.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The two document syntaxes the platform accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentFormat {
    Json,
    Xml,
}

/// Why a document (or its declared media type) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("unsupported media type {0:?}: send application/json or application/xml")]
    UnsupportedMediaType(String),
    #[error("unsupported charset {0:?}: documents must be UTF-8")]
    UnsupportedCharset(String),
    #[error("the document is empty")]
    Empty,
    #[error("the document is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("malformed XML at {position}: {message}")]
    MalformedXml { position: String, message: String },
    #[error("XML document type declarations (DTDs, entities) are not accepted")]
    XmlDtdForbidden,
    #[error("the JSON document must be an object at the top level")]
    JsonNotObject,
}

impl DocumentFormat {
    /// The canonical media type stored and served back for this format when none was given.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Xml => "application/xml",
        }
    }

    /// Reads a `Content-Type` header value. Parameters other than `charset=utf-8` are ignored;
    /// any other charset is refused because every document is stored and validated as UTF-8.
    pub fn from_content_type(value: &str) -> Result<Self, DocumentError> {
        let mut parts = value.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        for param in parts {
            let Some((name, val)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("charset") {
                let charset = val.trim().trim_matches('"');
                if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
                    return Err(DocumentError::UnsupportedCharset(charset.to_owned()));
                }
            }
        }
        match essence.as_str() {
            "application/json" => Ok(Self::Json),
            "application/xml" | "text/xml" => Ok(Self::Xml),
            _ => Err(DocumentError::UnsupportedMediaType(
                value.chars().take(100).collect(),
            )),
        }
    }

    /// Checks that `bytes` is a well-formed UTF-8 document of this format. XML with a DOCTYPE is
    /// refused outright, which rules out entity-expansion ("billion laughs") and external-entity
    /// attacks before any parser could expand anything.
    pub fn check_well_formed(self, bytes: &[u8]) -> Result<(), DocumentError> {
        let text = as_utf8(bytes)?;
        if text.trim().is_empty() {
            return Err(DocumentError::Empty);
        }
        match self {
            Self::Json => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(_)) => Ok(()),
                Ok(_) => Err(DocumentError::JsonNotObject),
                Err(e) => Err(DocumentError::MalformedJson {
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                }),
            },
            Self::Xml => parse_xml(text).map(drop),
        }
    }
}

impl fmt::Display for DocumentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "json",
            Self::Xml => "xml",
        })
    }
}

/// Borrows `bytes` as UTF-8, naming the first bad byte.
pub fn as_utf8(bytes: &[u8]) -> Result<&str, DocumentError> {
    std::str::from_utf8(bytes).map_err(|e| DocumentError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })
}

/// Parses XML with the platform's safe options (no DTD, bounded nesting by roxmltree itself).
pub fn parse_xml(text: &str) -> Result<roxmltree::Document<'_>, DocumentError> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => DocumentError::XmlDtdForbidden,
        other => DocumentError::MalformedXml {
            position: other.pos().to_string(),
            message: other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        use DocumentFormat::*;
        assert_eq!(
            DocumentFormat::from_content_type("application/json"),
            Ok(Json)
        );
        assert_eq!(
            DocumentFormat::from_content_type("Application/JSON; charset=UTF-8"),
            Ok(Json)
        );
        assert_eq!(
            DocumentFormat::from_content_type("application/xml"),
            Ok(Xml)
        );
        assert_eq!(
            DocumentFormat::from_content_type("text/xml;charset=\"utf-8\""),
            Ok(Xml)
        );
        assert!(matches!(
            DocumentFormat::from_content_type("text/plain"),
            Err(DocumentError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            DocumentFormat::from_content_type("application/xml; charset=iso-8859-1"),
            Err(DocumentError::UnsupportedCharset(_))
        ));
    }

    #[test]
    fn json_well_formedness() {
        let json = DocumentFormat::Json;
        assert_eq!(json.check_well_formed(br#"{"a": 1}"#), Ok(()));
        assert_eq!(
            json.check_well_formed(b"[1,2]"),
            Err(DocumentError::JsonNotObject)
        );
        assert_eq!(json.check_well_formed(b"  "), Err(DocumentError::Empty));
        assert!(matches!(
            json.check_well_formed(b"{\"a\": }"),
            Err(DocumentError::MalformedJson { .. })
        ));
        assert_eq!(
            json.check_well_formed(b"{\"a\": \"\xff\"}"),
            Err(DocumentError::InvalidUtf8 { offset: 7 })
        );
    }

    #[test]
    fn xml_well_formedness() {
        let xml = DocumentFormat::Xml;
        assert_eq!(
            xml.check_well_formed(b"<?xml version=\"1.0\"?><a><b/></a>"),
            Ok(())
        );
        assert!(matches!(
            xml.check_well_formed(b"<a><b></a>"),
            Err(DocumentError::MalformedXml { .. })
        ));
        let bomb = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"#;
        assert_eq!(
            xml.check_well_formed(bomb),
            Err(DocumentError::XmlDtdForbidden)
        );
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert_eq!(
            xml.check_well_formed(xxe),
            Err(DocumentError::XmlDtdForbidden)
        );
    }
}
