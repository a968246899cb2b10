//! Realistic stand-ins for the two external registries the platform registers receipts with: a
//! tax authority (`POST /api/v1/fiscal-receipts`, fiscal numbers) and a logistics provider
//! (`PUT /v2/registrations/{request_id}`, registration ids). Both are idempotent on a key, count
//! registrations per receipt (`GET /admin/stats`, the proof of exactly-once effects), and inject
//! faults configured at start or at run time (`PUT /admin/faults`): latency, outages and outage
//! windows, 500/503/429, connection resets, timeouts, permanent rejections and an async mode with
//! signed callbacks. The APIs are documented in this crate's `README.md`.
//!
//! ```no_run
//! # async fn example() -> mock_registries::Result<()> {
//! use mock_registries::{MockConfig, RegistryKind};
//! let tax = mock_registries::start(MockConfig::ephemeral(RegistryKind::Tax)).await?;
//! println!("tax registry at {}", tax.base_url());
//! tax.stop().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod api;
mod callback;
pub mod config;
mod faults;
mod http;
mod journal;
mod logistics;
mod registry;
mod server;
mod tax;

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{
    AsyncMode, CallbackTarget, Distribution, ErrorRates, FailFirst, FaultKind, Faults, Latency,
    MockConfig, MocksConfig, OutageWindow, RegistryKind, RejectRule,
};

/// Name used for telemetry.
pub const SERVICE: &str = "mock-registries";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid fault configuration: {0}")]
    InvalidFaults(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {}: {source}", path.display())]
    StateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {}, line {line}: {message}", path.display())]
    CorruptStateFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot build the callback HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A running mock; stops when dropped or on [`RunningMock::stop`].
#[derive(Debug)]
pub struct RunningMock {
    kind: RegistryKind,
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl RunningMock {
    pub fn kind(&self) -> RegistryKind {
        self.kind
    }

    /// The bound address (the actual port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets open requests finish (a few seconds at most) and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!(registry = %self.kind, %error, "mock registry task failed");
        }
    }
}

impl Drop for RunningMock {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts a mock on `config.listen` (port 0 allowed) in a background task.
pub async fn start(config: MockConfig) -> Result<RunningMock> {
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let kind = config.kind;
    let shutdown = CancellationToken::new();
    let app = registry::App::open(config, shutdown.clone()).await?;
    let task = tokio::spawn(run(app, listener, shutdown.clone()));
    Ok(RunningMock {
        kind,
        addr,
        shutdown,
        task: Some(task),
    })
}

/// Serves a mock on `listener` until `shutdown` is cancelled (`config.listen` is ignored).
pub async fn serve(
    config: MockConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let app = registry::App::open(config, shutdown.clone()).await?;
    run(app, listener, shutdown).await;
    Ok(())
}

/// Binds `addr`, with an error naming it.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

async fn run(
    app: std::sync::Arc<registry::App>,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    let kind = app.kind;
    match listener.local_addr() {
        Ok(addr) => tracing::info!(registry = %kind, %addr, "mock registry listening"),
        Err(error) => tracing::warn!(registry = %kind, %error, "mock registry listening"),
    }
    server::serve_connections(kind, listener, http::router(app), shutdown.clone()).await;
    tracing::info!(registry = %kind, "mock registry stopped");
}
