//! What every service binary does the same way: load its typed configuration, start telemetry,
//! and turn SIGINT/SIGTERM into a cancellation token.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod http;
mod secret;
pub mod shutdown;
pub mod telemetry;

pub use cli::{ServiceArgs, exit_code};
pub use config::{ConfigError, load_config};
pub use secret::Secret;
pub use shutdown::shutdown_on_signal;
pub use telemetry::{LogFormat, Telemetry, TelemetryConfig, TelemetryError};
