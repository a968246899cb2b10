//! What every service binary does the same way: load its typed configuration, start telemetry,
//! and turn SIGINT/SIGTERM into a cancellation token.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod http;
pub mod shutdown;
pub mod telemetry;

pub use cli::{ServiceArgs, exit_code};
pub use config::{ConfigError, load_config, load_config_over};
pub use shutdown::shutdown_on_signal;
pub use telemetry::{LogFormat, Telemetry, TelemetryConfig, TelemetryError};
