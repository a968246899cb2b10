//! The crate's error (startup, storage, serving) and the rejections a request can meet.

use std::path::PathBuf;

/// Errors of opening, persisting and serving the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the persistence file (or its directory) failed.
    #[error("schema registry file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The persistence file exists but does not hold a consistent registry.
    #[error("schema registry file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// The HTTP server failed.
    #[error("schema registry server: {0}")]
    Serve(#[source] std::io::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a request was refused. Mapped to HTTP status and Confluent `error_code` in one place
/// (`api.rs`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {0} not found.")]
    VersionNotFound(u32),
    #[error("Schema not found")]
    SchemaNotFound,
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error(
        "Invalid schema type '{0}': this embedded registry supports AVRO only (use a Confluent Schema Registry for PROTOBUF or JSON)"
    )]
    UnsupportedSchemaType(String),
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    #[error("{0}")]
    Incompatible(String),
    /// The request body is JSON of the wrong shape (e.g. no `schema`).
    #[error("{0}")]
    UnprocessableBody(String),
    /// The request is malformed (body not JSON, undecodable path, ...).
    #[error("{0}")]
    BadRequest(String),
    #[error("HTTP 415 Unsupported Media Type")]
    UnsupportedMediaType,
    #[error("HTTP 404 Not Found")]
    NotFound,
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,
    /// Persisting failed; details are logged, never sent to the client.
    #[error("Error in the backend data store")]
    Storage(#[source] Error),
}
