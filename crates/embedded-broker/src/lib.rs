//! The development broker: tansu (a Kafka-API broker in Rust) started in-process with its durable
//! SQLite storage engine, so `receipts up` and the tests need nothing installed.
//!
//! Only the embedded default uses this; production points the services at a real Kafka cluster.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::{BrokerRegistrationRequest, Storage, StorageContainer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

mod cache;
mod long_poll;

use cache::CachedStorage;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("broker storage path {0:?} cannot be expressed as a tansu sqlite URL")]
    StoragePath(PathBuf),
    #[error("cannot prepare broker storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("tansu: {0}")]
    Tansu(String),
    #[error("broker did not start listening on {addr} within {timeout:?}")]
    NotReady { addr: SocketAddr, timeout: Duration },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Where the broker listens; also the address it advertises to clients.
    pub listen: SocketAddr,
    /// The SQLite file holding every topic, offset and consumer group.
    pub storage: PathBuf,
    pub cluster_id: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            storage: PathBuf::from("data/broker.db"),
            cluster_id: "receipts".into(),
        }
    }
}

/// A running broker. Dropping it stops it.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    task: JoinHandle<()>,
    /// Stops the storage engine's own tasks.
    cancellation: CancellationToken,
}

impl EmbeddedBroker {
    /// Starts the broker and waits until it accepts connections.
    pub async fn start(config: &BrokerConfig) -> Result<Self> {
        if let Some(parent) = config
            .storage
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)?;
        }
        let storage = storage_url(&config.storage, &std::env::current_dir()?)?;
        let advertised = Url::parse(&format!("tcp://{}", config.listen))
            .map_err(|e| Error::Tansu(e.to_string()))?;
        let cancellation = CancellationToken::new();
        let storage = build_with_retry(config, storage, advertised, &cancellation).await?;
        prepare_storage(&config.storage).await?;
        let storage = CachedStorage::new(storage);
        storage
            .register_broker(BrokerRegistrationRequest {
                broker_id: NODE_ID,
                cluster_id: config.cluster_id.clone(),
                incarnation_id: uuid::Uuid::now_v7(),
                rack: None,
            })
            .await
            .map_err(tansu)?;
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(serve(listener, config.cluster_id.clone(), storage));
        let embedded = Self {
            addr,
            task,
            cancellation,
        };
        embedded.wait_ready(Duration::from_secs(30)).await?;
        tracing::info!(%addr, "embedded Kafka-API broker (tansu) listening");
        Ok(embedded)
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.task.is_finished() {
                return Err(Error::Tansu(format!(
                    "broker exited during startup (is {} in use?)",
                    self.addr
                )));
            }
            if TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::NotReady {
                    addr: self.addr,
                    timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the broker. Its storage is transactional SQLite, so stopping at any point is safe.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.cancellation.cancel();
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.task.abort();
        self.cancellation.cancel();
    }
}

const NODE_ID: i32 = 1;

/// How often the storage applies retention, as tansu's own broker does.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(600);

fn tansu(error: impl std::fmt::Display) -> Error {
    Error::Tansu(error.to_string())
}

/// tansu's accept loop, with the cached storage in front of the engine (tansu's `Broker` takes
/// another storage only through a constructor that draws progress spinners on the terminal).
/// Each connection is served by its own task; aborting this task ends them all.
async fn serve(
    listener: TcpListener,
    cluster_id: String,
    storage: CachedStorage<StorageContainer>,
) {
    use rama::{Context, Service};

    let groups = match Controller::with_storage(storage.clone()) {
        Ok(groups) => groups,
        Err(error) => {
            tracing::error!(%error, "embedded broker cannot start its group coordinator");
            return;
        }
    };
    let mut connections = tokio::task::JoinSet::new();
    let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "embedded broker: accept failed");
                        continue;
                    }
                };
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, %peer, "embedded broker: cannot set TCP_NODELAY");
                }
                let service = match frame_services(&cluster_id, groups.clone(), storage.clone()) {
                    Ok(service) => service,
                    Err(error) => {
                        tracing::error!(%error, "embedded broker cannot build its services");
                        return;
                    }
                };
                connections.spawn(async move {
                    if let Err(error) = service.serve(Context::default(), stream).await {
                        tracing::debug!(%error, %peer, "embedded broker connection ended");
                    }
                });
            }
            _ = maintenance.tick() => {
                let storage = storage.clone();
                connections.spawn(async move {
                    if let Err(error) = storage.maintain(std::time::SystemTime::now()).await {
                        tracing::debug!(%error, "embedded broker maintenance failed");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// tansu's services for one connection (as `tansu_broker::service::services` builds them),
/// with the long poll in front of fetches.
fn frame_services(
    cluster_id: &str,
    groups: Controller<CachedStorage<StorageContainer>>,
    storage: CachedStorage<StorageContainer>,
) -> Result<impl rama::Service<(), TcpStream, Error = tansu_broker::Error>, tansu_broker::Error> {
    use rama::Layer;
    use tansu_broker::service::{auth, coordinator, storage as storage_services};
    use tansu_service::{
        BytesFrameLayer, FrameRouteService, TcpBytesLayer, TcpContext, TcpContextLayer,
    };

    let builder = storage_services::services(
        FrameRouteService::<(), tansu_broker::Error>::builder(),
        storage.clone(),
    )?;
    let builder = coordinator::services(builder, groups)?;
    let route = auth::services(builder)?.build()?;
    Ok((
        TcpContextLayer::new(TcpContext::default().cluster_id(Some(cluster_id.into()))),
        TcpBytesLayer::default(),
        BytesFrameLayer::default(),
        long_poll::LongPollLayer::new(storage),
    )
        .into_layer(route))
}

/// Indexes tansu 0.6's SQLite schema lacks. Its `header` table has no index at all, and every
/// fetched record looks its headers up by `(topition, offset_id)`: without this index each lookup
/// scans every header ever written, so fetches slow down as the log grows (measured: pipeline
/// throughput fell from ~75 to ~22 receipts/s over a few thousand receipts).
const MISSING_INDEXES: &[&str] =
    &["CREATE INDEX IF NOT EXISTS receipts_header_by_record ON header (topition, offset_id)"];

/// Consumer group membership left by the previous run. tansu 0.6 persists each group's members,
/// leader and assignments; after a crash (SIGKILL) the dead members are still there, and the
/// restarted consumers' SyncGroup completes the rebalance as followers, with an empty assignment,
/// as soon as the dead leader's session expires: every group then stays formed around a member
/// that owns no partition, and nothing is consumed again. No client can be a member of a broker
/// that has not started yet, so the groups start empty; committed offsets (`consumer_offset`)
/// are kept.
const FORGET_GROUP_MEMBERS: &str = "DELETE FROM consumer_group_detail";

/// Adds the missing indexes and forgets the previous run's group members, before the broker
/// serves.
async fn prepare_storage(storage: &Path) -> Result<()> {
    let failed = |e: libsql::Error| Error::Tansu(format!("preparing broker storage: {e}"));
    let db = libsql::Builder::new_local(storage)
        .build()
        .await
        .map_err(failed)?;
    let conn = db.connect().map_err(failed)?;
    // The broker's own connections may be writing: wait for the lock rather than fail.
    conn.query("PRAGMA busy_timeout = 5000", ())
        .await
        .map_err(failed)?;
    for ddl in MISSING_INDEXES {
        conn.execute(ddl, ()).await.map_err(failed)?;
    }
    conn.execute(FORGET_GROUP_MEMBERS, ())
        .await
        .map_err(failed)?;
    Ok(())
}

/// Builds the storage engine, waiting for a previous broker on the same file (stopped in this
/// process a moment ago: its storage tasks wind down asynchronously) to release the database.
async fn build_with_retry(
    config: &BrokerConfig,
    storage: Url,
    advertised: Url,
    cancellation: &CancellationToken,
) -> Result<StorageContainer> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let built = StorageContainer::builder()
            .cluster_id(config.cluster_id.clone())
            .node_id(NODE_ID)
            .advertised_listener(advertised.clone())
            .storage(storage.clone())
            .cancellation(cancellation.clone())
            .silent(true)
            .build()
            .await;
        match built {
            Ok(storage) => return Ok(storage),
            Err(error) => {
                let message = error.to_string();
                if !message.contains("database is locked")
                    || tokio::time::Instant::now() >= deadline
                {
                    return Err(Error::Tansu(message));
                }
                tracing::debug!(%message, "broker storage busy; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// tansu 0.6 resolves a `sqlite://` URL by joining its host and path onto the *current
/// directory*, so an absolute path must be written as a path relative to `cwd` (an opaque
/// `sqlite:<relative>` URL, whose path tansu joins unchanged).
fn storage_url(storage: &Path, cwd: &Path) -> Result<Url> {
    let absolute = if storage.is_absolute() {
        storage.to_path_buf()
    } else {
        cwd.join(storage)
    };
    let mut relative = String::new();
    for component in cwd.components() {
        if matches!(component, Component::Normal(_)) {
            relative.push_str("../");
        }
    }
    for component in absolute.components() {
        match component {
            Component::Normal(part) => {
                let part = part
                    .to_str()
                    .ok_or_else(|| Error::StoragePath(storage.to_path_buf()))?;
                relative.push_str(part);
                relative.push('/');
            }
            Component::RootDir => {}
            _ => return Err(Error::StoragePath(storage.to_path_buf())),
        }
    }
    relative.pop();
    let url = Url::parse(&format!("sqlite:{relative}"))
        .map_err(|_| Error::StoragePath(storage.to_path_buf()))?;
    // Characters the URL would percent-encode would name a different file.
    if url.path() != relative {
        return Err(Error::StoragePath(storage.to_path_buf()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_resolve_to_the_file_from_cwd() {
        let cwd = Path::new("/work/main");
        for (storage, expected) in [
            ("data/broker.db", "../../work/main/data/broker.db"),
            ("/tmp/x/broker.db", "../../tmp/x/broker.db"),
        ] {
            let url = storage_url(Path::new(storage), cwd).expect("url");
            assert_eq!(url.scheme(), "sqlite");
            assert_eq!(url.domain(), None);
            assert_eq!(url.path(), expected);
            // What tansu does with it:
            let resolved = cwd.join(url.path());
            let canonical: PathBuf = resolved.components().fold(PathBuf::new(), |mut p, c| {
                match c {
                    Component::ParentDir => {
                        p.pop();
                    }
                    other => p.push(other),
                }
                p
            });
            let want = if Path::new(storage).is_absolute() {
                PathBuf::from(storage)
            } else {
                cwd.join(storage)
            };
            assert_eq!(canonical, want);
        }
        assert!(storage_url(Path::new("/tmp/with space/b.db"), cwd).is_ok());
        assert!(storage_url(Path::new("/tmp/x#y/b.db"), cwd).is_err());
        assert!(storage_url(Path::new("../escape.db"), cwd).is_err());
    }
}
