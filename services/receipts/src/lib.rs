//! The whole platform in one process: the embedded default behind `receipts up`. Every service
//! runs as its own task and talks to Kafka through rdkafka exactly as in production; only the
//! broker (tansu) and the schema registry are embedded, and the store is a local SQLite file.
//! The partner-facing command line (`receipts submit`, `get`, `list`, …) is in [`client`].
#![forbid(unsafe_code)]

pub mod client;
pub mod clients;
mod config;
pub mod list;
mod platform;
pub mod setup;

pub use config::{EmbeddedConfig, PlatformConfig};
pub use platform::{Platform, PlatformError};
