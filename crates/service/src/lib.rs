//! The frame every service runs in, so that a service is its handler and nothing else:
//!
//! - [`main`] is a service binary's whole `main`: command line, configuration (defaults, then
//!   the file, then `RECEIPTS_*` variables), telemetry, SIGINT/SIGTERM, exit code;
//! - [`Service`] connects a consumer service to its broker and schema registry (topics
//!   created, schemas registered, a producer ready) and runs its handlers through the shared
//!   consumer loop until shutdown, draining in-flight work.
//!
//! A consumer service's library then reads:
//!
//! ```text
//! pub async fn run(config: Config, stores: Stores, shutdown: CancellationToken) -> Result<(), Error> {
//!     let service = Service::new(SERVICE, &config.kafka, &config.schema_registry)
//!         .consumes([Topic::Submitted])
//!         .produces([Topic::Validated, Topic::Rejected])
//!         .connect()
//!         .await?;
//!     let handler = Validator { producer: service.producer().clone() };
//!     service.run(Consumer::new(SERVICE, [Topic::Submitted]), handler, shutdown).await
//! }
//! ```
#![forbid(unsafe_code)]

mod consumer;

use std::fmt::Display;
use std::process::ExitCode;

use clap::Parser;
use receipts_runtime::{
    ServiceArgs, TelemetryConfig, load_config_over, shutdown_on_signal, telemetry,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub use consumer::{Connected, Consumer, Service};

/// Why a service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kafka(#[from] receipts_kafka::Error),
    #[error(transparent)]
    Codec(#[from] receipts_avro::Error),
    #[error(transparent)]
    Store(#[from] receipts_store::Error),
    #[error(transparent)]
    Config(#[from] receipts_runtime::ConfigError),
    #[error(transparent)]
    Telemetry(#[from] receipts_runtime::TelemetryError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A part of the service could not be set up.
    #[error("cannot set up {what}: {source}")]
    Setup {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub fn setup(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Setup {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// What the frame needs from a service's configuration.
pub trait ServiceConfig: Serialize + DeserializeOwned + Default {
    /// The service's name: logs, traces, consumer group, retry and dead-letter topics.
    fn service(&self) -> String;

    fn telemetry(&self) -> &TelemetryConfig;
}

/// A service binary's `main`: parses the command line, loads the configuration, starts
/// telemetry, runs `run` until SIGINT or SIGTERM (it drains, then returns), flushes telemetry,
/// and prints an error once, readably, with a failure exit code.
pub fn main<C, F, Fut, E>(run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display + From<Error>,
{
    main_with(C::default(), run)
}

/// As [`main`], with `defaults` under the file and the environment instead of `C::default()`.
pub fn main_with<C, F, Fut, E>(defaults: C, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display + From<Error>,
{
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .map_err(E::from)
        .and_then(|runtime| runtime.block_on(serve(defaults, run)));
    receipts_runtime::exit_code(outcome)
}

async fn serve<C, F, Fut, E>(defaults: C, run: F) -> Result<(), E>
where
    C: ServiceConfig,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: From<Error>,
{
    let args = ServiceArgs::parse();
    let config: C = load_config_over(defaults, args.config.as_deref()).map_err(Error::from)?;
    let telemetry = telemetry::init(&config.service(), config.telemetry()).map_err(Error::from)?;
    let result = run(config, shutdown_on_signal()).await;
    telemetry.shutdown();
    result
}
