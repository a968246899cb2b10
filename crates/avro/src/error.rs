/// Errors of encoding and registering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("schema registry: {0}")]
    Registry(String),
    #[error("avro: {0}")]
    Avro(#[from] Box<apache_avro::Error>),
    #[error("invalid schema registry settings: {0}")]
    Settings(String),
}

impl From<apache_avro::Error> for Error {
    fn from(e: apache_avro::Error) -> Self {
        Self::Avro(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a payload could not be decoded. The distinction matters to consumers: a payload that
/// can never be decoded is poison (dead-letter it), a registry outage is not (retry).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
    #[error("undecodable payload: {0}")]
    Malformed(String),
}
