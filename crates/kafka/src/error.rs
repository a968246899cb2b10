use rdkafka::error::KafkaError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("encoding: {0}")]
    Codec(#[from] receipts_avro::Error),
    #[error("the broker did not acknowledge within {0:?}")]
    Timeout(std::time::Duration),
    #[error("creating topic {topic}: {detail}")]
    CreateTopic { topic: String, detail: String },
    #[error("consumer thread: {0}")]
    Thread(String),
}

impl Error {
    /// Whether trying again later may succeed (broker unreachable, timeouts, registry outages).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Kafka(e) => !matches!(e.rdkafka_error_code(), Some(code) if is_fatal(code)),
            Self::Codec(receipts_avro::Error::Registry(_)) | Self::Timeout(_) => true,
            Self::Codec(_) | Self::CreateTopic { .. } | Self::Thread(_) => false,
        }
    }
}

fn is_fatal(code: rdkafka::types::RDKafkaErrorCode) -> bool {
    use rdkafka::types::RDKafkaErrorCode::*;
    matches!(
        code,
        MessageSizeTooLarge | InvalidMessage | TopicAuthorizationFailed | Fatal | InvalidRecord
    )
}

impl receipts_domain::Failure for Error {
    fn is_transient(&self) -> bool {
        Error::is_transient(self)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
