//! Starting and stopping everything `receipts up` runs.

use std::net::SocketAddr;
use std::time::Duration;

use mock_registries::{CallbackTarget, MockConfig, RegistryKind, RunningMock};
use receipts_domain::Secret;
use receipts_embedded_broker::{BrokerConfig, EmbeddedBroker};
use receipts_kafka::{TopicNames, TopicSpec, ensure_topics};
use receipts_registries::{AdapterKind, RegistryConfig};
use receipts_schema_registry::SchemaRegistry;
use receipts_store::Stores;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::PlatformConfig;
use crate::clients::{DevKey, ensure_dev_key};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("invalid configuration: {0}")]
    Config(String),
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
    #[error("mock registry: {0}")]
    Mock(#[from] mock_registries::Error),
    #[error(transparent)]
    Store(#[from] receipts_store::Error),
    #[error(transparent)]
    Kafka(#[from] receipts_kafka::Error),
    #[error("development key: {0}")]
    DevKey(#[from] anyhow::Error),
    #[error("{service} failed: {detail}")]
    Service { service: String, detail: String },
}

type ServiceResult = (String, Result<(), String>);

/// A running platform.
pub struct Platform {
    /// Where the HTTP API listens (the actual port when configured with port 0).
    pub gateway_addr: SocketAddr,
    /// The development key, if this start created it.
    pub new_dev_key: Option<String>,
    pub stores: Stores,
    /// The embedded mock registries: (registry name, base URL).
    pub mocks: Vec<(String, String)>,
    shutdown: CancellationToken,
    services: JoinSet<ServiceResult>,
    /// The schema registry and the mocks outlive the services that drain through them.
    infra_shutdown: CancellationToken,
    schema_registry: Option<tokio::task::JoinHandle<()>>,
    running_mocks: Vec<RunningMock>,
    broker: Option<EmbeddedBroker>,
}

impl Platform {
    /// Starts the embedded infrastructure, then every service.
    pub async fn start(mut config: PlatformConfig) -> Result<Self, PlatformError> {
        for required in config.status.required() {
            if !config.registries.iter().any(|r| &r.name == required) {
                return Err(PlatformError::Config(format!(
                    "status.required_registries names {required}, but no registry of that name is configured \
                     under [[registries]]: no receipt could ever be ACCEPTED"
                )));
            }
        }

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
        let infra_shutdown = CancellationToken::new();
        let schema_registry = if config.embedded.schema_registry {
            Some(start_schema_registry(&config, infra_shutdown.clone()).await?)
        } else {
            None
        };

        let stores = Stores::open(&config.store).await?;
        let new_dev_key =
            match ensure_dev_key(stores.clients.as_ref(), &config.embedded.dev_api_key_file).await?
            {
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
        let public_url = match &config.gateway.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{gateway_addr}"))
                .map_err(|e| PlatformError::Config(e.to_string()))?,
        };

        let mut running_mocks = Vec::new();
        if config.embedded.mock_registries {
            for registry in &mut config.registries {
                let Some(mock) = mock_for(&config.mocks, registry) else {
                    continue;
                };
                running_mocks.push(start_mock(mock, registry, &public_url).await?);
            }
        }
        let mocks = running_mocks
            .iter()
            .map(|m| (m.kind().as_str().to_owned(), m.base_url()))
            .collect();

        // Created once up front, so the services starting side by side do not race to create them.
        let names = TopicNames::new(&config.kafka);
        let topics: Vec<TopicSpec> = crate::setup::event_topics(&config)
            .iter()
            .map(|t| TopicSpec::new(&config.kafka, names.of(t)))
            .collect();
        ensure_topics(&config.kafka, &topics).await?;

        let mut services = JoinSet::new();
        let (validator, token) = (config.validator(), shutdown.clone());
        services.spawn(async move {
            (
                "validator".to_owned(),
                validator::run(validator, token)
                    .await
                    .map_err(|e| e.to_string()),
            )
        });
        let (projector, token, projector_stores) =
            (config.projector(), shutdown.clone(), stores.clone());
        services.spawn(async move {
            let result = status_projector::run(projector, projector_stores, token).await;
            (
                "status-projector".to_owned(),
                result.map_err(|e| e.to_string()),
            )
        });
        let (gateway, token, gateway_stores) = (config.gateway(), shutdown.clone(), stores.clone());
        services.spawn(async move {
            let result = ingest_gateway::run(gateway, gateway_stores, listener, token).await;
            (
                "ingest-gateway".to_owned(),
                result.map_err(|e| e.to_string()),
            )
        });
        let mut dispatcher = config.dispatcher();
        dispatcher
            .webhooks
            .public_url
            .get_or_insert_with(|| public_url.clone());
        let (token, dispatcher_stores) = (shutdown.clone(), stores.clone());
        services.spawn(async move {
            let result = webhook_dispatcher::run(dispatcher, dispatcher_stores, token).await;
            (
                webhook_dispatcher::SERVICE.to_owned(),
                result.map_err(|e| e.to_string()),
            )
        });
        for registry in &config.registries {
            let (registrar, token) = (config.registrar(registry), shutdown.clone());
            services.spawn(async move {
                let name = registrar::service_name(&registrar.registry.name);
                (
                    name,
                    registrar::run(registrar, token)
                        .await
                        .map_err(|e| e.to_string()),
                )
            });
        }

        Ok(Self {
            gateway_addr,
            new_dev_key,
            stores,
            mocks,
            shutdown,
            services,
            infra_shutdown,
            schema_registry,
            running_mocks,
            broker,
        })
    }

    /// A token that stops the platform when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until `stop` is cancelled or a service fails, then shuts everything down in order:
    /// services drain first, then the mocks and the schema registry, then the broker.
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
        self.infra_shutdown.cancel();
        for mock in self.running_mocks.drain(..) {
            mock.stop().await;
        }
        if let Some(registry) = self.schema_registry.take() {
            let _ = registry.await;
        }
        if let Some(broker) = self.broker.take() {
            broker.stop().await;
        }
        failure.map_or(Ok(()), Err)
    }
}

async fn start_schema_registry(
    config: &PlatformConfig,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, PlatformError> {
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
    Ok(tokio::spawn(async move {
        if let Err(error) = receipts_schema_registry::serve(registry, listener, stop).await {
            tracing::error!(%error, "schema registry stopped");
        }
    }))
}

/// The mock that plays `registry`: the registries named `tax` and `logistics` (with the
/// matching API) are served by the mock of that kind.
fn mock_for(mocks: &mock_registries::MocksConfig, registry: &RegistryConfig) -> Option<MockConfig> {
    match (registry.name.as_str(), registry.kind) {
        ("tax", AdapterKind::TaxAuthorityV1) => Some(mocks.tax.clone()),
        ("logistics", AdapterKind::LogisticsV2) => Some(mocks.logistics.clone()),
        _ => None,
    }
}

/// Starts a mock for `registry` and points the registry at it. Its asynchronous results are
/// called back to the gateway, signed with the registry's callback secret (a random one for this
/// run when none is configured).
async fn start_mock(
    mut mock: MockConfig,
    registry: &mut RegistryConfig,
    gateway: &Url,
) -> Result<RunningMock, PlatformError> {
    if registry.callback_secrets.is_empty() {
        registry.callback_secrets.push(Secret::random());
    }
    let secret = registry
        .callback_secrets
        .last()
        .cloned()
        .unwrap_or_else(|| Secret::new(""));
    let url = gateway
        .join(&format!("v1/registries/{}/callbacks", registry.name))
        .map_err(|e| PlatformError::Config(e.to_string()))?;
    if mock.callback.is_none() {
        mock.callback = Some(CallbackTarget { url, secret });
    }
    if let Some(parent) = mock
        .state_file
        .as_ref()
        .and_then(|p| p.parent())
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| PlatformError::Config(format!("{}: {e}", parent.display())))?;
    }
    let kind: RegistryKind = mock.kind;
    let running = mock_registries::start(mock).await?;
    registry.base_url =
        Url::parse(&running.base_url()).map_err(|e| PlatformError::Config(e.to_string()))?;
    tracing::info!(registry = %registry.name, kind = %kind, url = %registry.base_url, "mock registry listening");
    Ok(running)
}

/// Which service a finished task was, and its error if it had one.
fn outcome(joined: Result<ServiceResult, tokio::task::JoinError>) -> (String, Option<String>) {
    match joined {
        Ok((service, result)) => (service, result.err()),
        Err(e) => ("a service".to_owned(), Some(e.to_string())),
    }
}
