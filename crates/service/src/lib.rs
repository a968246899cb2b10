//! The frame every service runs in, so that a service is its handler and nothing else:
//!
//! - [`main`] is a service binary's whole `main`: command line, configuration (defaults, then
//!   the file, then `RECEIPTS_*` variables), telemetry, SIGINT/SIGTERM, exit code;
//! - consumer services get an admin listener (`/livez`, `/readyz`, `/metrics`: [`admin`]);
//!   [`main_with_stores`] also opens the store and adds it to the readiness checks;
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

pub mod admin;
mod consumer;
pub mod receipt_types;

use std::fmt::Display;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use receipts_runtime::{
    ServiceArgs, TelemetryConfig, load_config_over, shutdown_on_signal, telemetry,
};
use receipts_store::{StoreConfig, Stores};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub use admin::{AdminConfig, Readiness};
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

    /// The admin listener and what its readiness checks (see [`Admin::consumer`]). `None`, the
    /// default: the service serves `/livez`, `/readyz` and `/metrics` itself (the gateway).
    fn admin(&self) -> Result<Option<Admin>, Error> {
        Ok(None)
    }
}

/// A service that keeps state in the store, for [`main_with_stores`].
pub trait StoreService {
    fn store(&self) -> &StoreConfig;
}

/// Where a service's admin listener listens, and its readiness checks.
pub struct Admin {
    pub listen: SocketAddr,
    pub readiness: Readiness,
}

impl Admin {
    /// A consumer service's admin listener: ready when the broker and the schema registry answer.
    pub fn consumer(
        service: &str,
        config: &AdminConfig,
        kafka: &receipts_kafka::KafkaConfig,
        schema_registry: &receipts_avro::SchemaRegistryConfig,
    ) -> Result<Self, Error> {
        Ok(Self {
            listen: config.listen,
            readiness: Readiness::default()
                .broker(kafka, service)?
                .schema_registry(schema_registry)?,
        })
    }

    /// Also checks the registry at `base_url`.
    pub fn with_registry(mut self, base_url: &url::Url) -> Result<Self, Error> {
        self.readiness = self.readiness.registry(base_url)?;
        Ok(self)
    }
}

/// A service binary's `main`: parses the command line, loads the configuration, starts
/// telemetry and metrics (and the admin listener, when the service has one), runs `run` until
/// SIGINT or SIGTERM (it drains, then returns), flushes telemetry, and prints an error once,
/// readably, with a failure exit code.
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
    block_on(serve(
        defaults,
        async |config: C, admin, shutdown: CancellationToken| {
            with_admin(admin, shutdown.clone(), run(config, shutdown)).await
        },
    ))
}

/// As [`main`] for a service that keeps state: opens the store its configuration names, adds it
/// to the readiness checks, and hands it to `run`.
pub fn main_with_stores<C, F, Fut, E>(run: F) -> ExitCode
where
    C: ServiceConfig + StoreService,
    F: FnOnce(C, Stores, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display + From<Error>,
{
    block_on(serve(
        C::default(),
        async |config: C, admin: Option<Admin>, shutdown: CancellationToken| {
            let stores = Stores::open(config.store()).await.map_err(Error::from)?;
            let admin = admin.map(|admin| Admin {
                readiness: admin.readiness.store(stores.health.clone()),
                ..admin
            });
            with_admin(admin, shutdown.clone(), run(config, stores, shutdown)).await
        },
    ))
}

fn block_on<E>(service: impl Future<Output = Result<(), E>>) -> ExitCode
where
    E: Display + From<Error>,
{
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .map_err(E::from)
        .and_then(|runtime| runtime.block_on(service));
    receipts_runtime::exit_code(outcome)
}

async fn serve<C, F, Fut, E>(defaults: C, run: F) -> Result<(), E>
where
    C: ServiceConfig,
    F: FnOnce(C, Option<Admin>, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: From<Error>,
{
    let args = ServiceArgs::parse();
    let config: C = load_config_over(defaults, args.config.as_deref()).map_err(Error::from)?;
    let telemetry = telemetry::init(&config.service(), config.telemetry()).map_err(Error::from)?;
    receipts_telemetry::metrics::install();
    let admin = config.admin()?;
    let result = run(config, admin, shutdown_on_signal()).await;
    telemetry.shutdown();
    result
}

/// Runs `service` with its admin listener (if any) beside it; the listener stops with it. A
/// listener that cannot start (its port is taken) stops the service.
async fn with_admin<E: From<Error>>(
    admin: Option<Admin>,
    shutdown: CancellationToken,
    service: impl Future<Output = Result<(), E>>,
) -> Result<(), E> {
    let Some(Admin { listen, readiness }) = admin else {
        return service.await;
    };
    let stop_admin = shutdown.child_token();
    let server = admin::serve(listen, readiness, stop_admin.clone());
    tokio::pin!(server, service);
    tokio::select! {
        result = &mut service => {
            stop_admin.cancel();
            if let Err(error) = server.await {
                tracing::warn!(%error, "the admin listener stopped with an error");
            }
            result
        }
        served = &mut server => match served {
            Err(error) => Err(error.into()),
            // Only a cancelled shutdown ends the listener: let the service drain.
            Ok(()) => service.await,
        },
    }
}
