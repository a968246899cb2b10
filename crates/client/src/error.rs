//! The client's one error type, and the RFC 9457 problem documents the API answers with.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error (an RFC 9457 problem, or a bare status turned into one).
    #[error("{0}")]
    Problem(Box<Problem>),
    /// No answer: the connection failed, timed out or broke.
    #[error("could not reach {url}: {message}")]
    Transport {
        url: String,
        /// The innermost cause (`reqwest`'s own message names only the URL), so the message is
        /// complete on its own; the error is kept for callers who want to inspect it.
        message: String,
        error: reqwest::Error,
    },
    /// An answer the client cannot read (not the JSON it expects).
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
    /// A base URL, id or key that cannot be used in a request.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The problem, when the API answered with one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Problem(problem) => Some(problem),
            _ => None,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        self.problem().map(|p| p.status)
    }

    /// How long the server asked to wait before trying again.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.problem().and_then(|p| p.retry_after)
    }

    /// The server is unavailable or broken (5xx), or could not be reached: worth retrying later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Problem(p) => p.status >= 500,
            Self::Transport { .. } | Self::Decode { .. } => true,
            Self::Invalid(_) => false,
        }
    }

    pub(crate) fn transport(url: &url::Url, error: reqwest::Error) -> Self {
        let mut innermost: &dyn std::error::Error = &error;
        while let Some(inner) = innermost.source() {
            innermost = inner;
        }
        let mut message = innermost.to_string();
        if error.is_timeout() && !message.contains("timed out") {
            message = format!("timed out ({message})");
        }
        Self::Transport {
            url: url.to_string(),
            message,
            error,
        }
    }
}

/// Problem `type`s are URNs with this prefix, followed by a stable slug.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:receipts:problem:";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// A stable URN, e.g. `urn:receipts:problem:unauthenticated` (`about:blank` when absent).
    #[serde(rename = "type", default = "about_blank")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Members beyond the standard ones (`receipt_id`, `parameter`, `limit_bytes`, ...).
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
    /// The answer's `Retry-After`, when it had one (a header, not part of the document).
    #[serde(skip)]
    pub retry_after: Option<std::time::Duration>,
}

fn about_blank() -> String {
    "about:blank".into()
}

impl Problem {
    /// The slug of a `urn:receipts:problem:<slug>` type.
    pub fn slug(&self) -> Option<&str> {
        self.problem_type.strip_prefix(PROBLEM_TYPE_PREFIX)
    }

    /// Reads an error answer: a problem document when it is one, else a problem made of the
    /// status and the start of the body (a proxy's HTML page, say).
    pub fn from_response(status: u16, content_type: Option<&str>, body: &[u8]) -> Self {
        let json = content_type
            .and_then(|t| t.split(';').next())
            .is_some_and(|t| t.trim().ends_with("json"));
        if json && let Ok(mut problem) = serde_json::from_slice::<Problem>(body) {
            // The status line is the truth (a problem document may disagree with it).
            problem.status = status;
            return problem;
        }
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(200).collect();
        Self {
            problem_type: about_blank(),
            title: reason_phrase(status).to_owned(),
            status,
            detail: (!text.is_empty()).then_some(text),
            instance: None,
            extensions: Map::new(),
            retry_after: None,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.title, self.status)?;
        if let Some(detail) = self.detail.as_deref().filter(|d| !d.is_empty()) {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

fn reason_phrase(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("HTTP error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_documents_are_read_with_their_extensions() {
        let body = br#"{"type":"urn:receipts:problem:idempotency-key-conflict","title":"Idempotency-Key reused with a different request","status":409,"detail":"this Idempotency-Key was already used for a different request","receipt_id":"01a1"}"#;
        let problem = Problem::from_response(409, Some("application/problem+json"), body);
        assert_eq!(problem.slug(), Some("idempotency-key-conflict"));
        assert_eq!(problem.extensions["receipt_id"], "01a1");
        assert_eq!(
            problem.to_string(),
            "Idempotency-Key reused with a different request (409): this Idempotency-Key was already used for a different request"
        );
    }

    #[test]
    fn other_error_bodies_become_problems() {
        let problem = Problem::from_response(502, Some("text/html"), b"<html>bad gateway</html>");
        assert_eq!(problem.problem_type, "about:blank");
        assert_eq!(problem.title, "Bad Gateway");
        assert_eq!(problem.detail.as_deref(), Some("<html>bad gateway</html>"));
        let empty = Problem::from_response(503, None, b"");
        assert_eq!(empty.to_string(), "Service Unavailable (503)");
        assert!(Error::Problem(Box::new(empty)).is_unavailable());
    }
}
