//! The Kafka backbone every service shares: configuration, topic names and creation, an
//! idempotent producer that waits for the broker's acknowledgement, and one generic consumer loop
//! that stores an offset only after the handler's side effects are acknowledged.
#![forbid(unsafe_code)]

mod config;
pub mod consumer;
pub mod dead_letters;
mod delivery;
mod error;
pub mod headers;
mod probe;
mod producer;
pub mod retry;
pub mod topics;
mod window;

pub use config::{KafkaConfig, KafkaTls, SaslConfig, SecurityProtocol};
pub use consumer::{
    ConsumerSpec, EventHandler, HandlerError, HorizonExceeded, MessageContext, RetryableFailure,
    own_topics, run_consumer,
};
pub use error::{Error, Result};
pub use probe::BrokerProbe;
pub use producer::{Delivered, EventProducer};
pub use retry::{NextAttempt, RetryPolicy};
pub use topics::{TopicNames, TopicSpec, ensure_topics};
