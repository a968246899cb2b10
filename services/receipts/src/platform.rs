//! Starting and stopping everything `receipts up` runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use receipts_domain::EventKind;
use receipts_embedded_broker::{BrokerConfig, EmbeddedBroker};
use receipts_kafka::{TopicNames, TopicSpec, ensure_topics};
use receipts_schema_registry::SchemaRegistry;
use receipts_store::SqliteStore;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::PlatformConfig;
use crate::clients::{DevKey, ensure_dev_key};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(
        "kafka.bootstrap_servers must be one host:port the embedded broker can listen on, got {0:?}"
    )]
    BrokerAddress(String),
    #[error("schema_registry.url must be http://host:port for the embedded registry, got {0}")]
    RegistryAddress(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Broker(#[from] receipts_embedded_broker::Error),
    #[error(transparent)]
    Registry(#[from] receipts_schema_registry::Error),
    #[error(transparent)]
    Store(#[from] receipts_store::Error),
    #[error(transparent)]
    Kafka(#[from] receipts_kafka::Error),
    #[error("development key: {0}")]
    DevKey(#[from] anyhow::Error),
    #[error("{service} failed: {detail}")]
    Service {
        service: &'static str,
        detail: String,
    },
}

/// A running platform.
pub struct Platform {
    /// Where the HTTP API listens (the actual port when configured with port 0).
    pub gateway_addr: SocketAddr,
    /// The development key, if this start created it.
    pub new_dev_key: Option<String>,
    pub store: Arc<SqliteStore>,
    shutdown: CancellationToken,
    services: JoinSet<(&'static str, Result<(), String>)>,
    registry: Option<tokio::task::JoinHandle<()>>,
    registry_shutdown: CancellationToken,
    broker: Option<EmbeddedBroker>,
}

impl Platform {
    /// Starts the embedded infrastructure, then every service.
    pub async fn start(config: PlatformConfig) -> Result<Self, PlatformError> {
        let broker = if config.embedded.broker {
            let listen: SocketAddr = config.kafka.bootstrap_servers.parse().map_err(|_| {
                PlatformError::BrokerAddress(config.kafka.bootstrap_servers.clone())
            })?;
            let broker_config = BrokerConfig {
                listen,
                storage: config.embedded.broker_storage.clone(),
                ..BrokerConfig::default()
            };
            Some(EmbeddedBroker::start(&broker_config).await?)
        } else {
            None
        };

        let shutdown = CancellationToken::new();
        let registry_shutdown = CancellationToken::new();
        let registry = if config.embedded.schema_registry {
            let url = &config.schema_registry.url;
            let addr = url
                .socket_addrs(|| None)
                .ok()
                .and_then(|addrs| addrs.into_iter().next())
                .filter(|_| url.scheme() == "http")
                .ok_or_else(|| PlatformError::RegistryAddress(url.to_string()))?;
            let registry = SchemaRegistry::open(&config.embedded.schema_registry_storage).await?;
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| PlatformError::Bind { addr, source })?;
            tracing::info!(%addr, "embedded schema registry listening");
            // Its own token: the registry must outlive the services that drain through it.
            let stop = registry_shutdown.clone();
            Some(tokio::spawn(async move {
                if let Err(error) = receipts_schema_registry::serve(registry, listener, stop).await
                {
                    tracing::error!(%error, "schema registry stopped");
                }
            }))
        } else {
            None
        };

        let store = Arc::new(SqliteStore::open(&config.store).await?);
        let new_dev_key =
            match ensure_dev_key(store.as_ref(), &config.embedded.dev_api_key_file).await? {
                DevKey::Created(key) => Some(key),
                DevKey::Existing => None,
            };

        let addr = config.gateway.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| PlatformError::Bind { addr, source })?;
        let gateway_addr = listener
            .local_addr()
            .map_err(|source| PlatformError::Bind { addr, source })?;

        // Created once up front, so the services starting side by side do not race to create them.
        let names = TopicNames::new(&config.kafka);
        let topics: Vec<TopicSpec> = EventKind::ALL
            .iter()
            .map(|&k| TopicSpec::new(&config.kafka, names.event(k)))
            .collect();
        ensure_topics(&config.kafka, &topics).await?;

        let mut services = JoinSet::new();
        let (validator, projector, gateway) =
            (config.validator(), config.projector(), config.gateway());
        let token = shutdown.clone();
        services.spawn(async move {
            (
                "validator",
                validator::run(validator, token)
                    .await
                    .map_err(|e| e.to_string()),
            )
        });
        let (token, projector_store) = (shutdown.clone(), store.clone());
        services.spawn(async move {
            (
                "status-projector",
                status_projector::run(projector, projector_store, token)
                    .await
                    .map_err(|e| e.to_string()),
            )
        });
        let (token, gateway_store) = (shutdown.clone(), store.clone());
        services.spawn(async move {
            let result = ingest_gateway::run(
                gateway,
                gateway_store.clone(),
                gateway_store,
                listener,
                token,
            )
            .await;
            ("ingest-gateway", result.map_err(|e| e.to_string()))
        });

        Ok(Self {
            gateway_addr,
            new_dev_key,
            store,
            shutdown,
            services,
            registry,
            registry_shutdown,
            broker,
        })
    }

    /// A token that stops the platform when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until `stop` is cancelled or a service fails, then shuts everything down in order:
    /// services drain first, then the registry, then the broker.
    pub async fn run_until(mut self, stop: CancellationToken) -> Result<(), PlatformError> {
        let mut failure = None;
        tokio::select! {
            () = stop.cancelled() => {}
            Some(joined) = self.services.join_next() => {
                let (service, error) = outcome(joined);
                let detail = error.unwrap_or_else(|| "stopped unexpectedly".into());
                tracing::error!(service, detail, "service failed; stopping the platform");
                failure = Some(PlatformError::Service { service, detail });
            }
        }
        self.shutdown.cancel();
        let drain = async {
            while let Some(joined) = self.services.join_next().await {
                if let (service, Some(detail)) = outcome(joined) {
                    tracing::error!(service, detail, "service stopped with an error");
                    failure.get_or_insert(PlatformError::Service { service, detail });
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), drain)
            .await
            .is_err()
        {
            tracing::warn!("services did not stop within 60 s; aborting them");
            self.services.abort_all();
        }
        self.registry_shutdown.cancel();
        if let Some(registry) = self.registry.take() {
            let _ = registry.await;
        }
        if let Some(broker) = self.broker.take() {
            broker.stop().await;
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Which service a finished task was, and its error if it had one.
fn outcome(
    joined: Result<(&'static str, Result<(), String>), tokio::task::JoinError>,
) -> (&'static str, Option<String>) {
    match joined {
        Ok((service, result)) => (service, result.err()),
        Err(e) => ("a service", Some(e.to_string())),
    }
}
