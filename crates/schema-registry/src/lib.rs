//! An embedded, persisted, Confluent-compatible Schema Registry.
//!
//! In production the services talk to a real Confluent Schema Registry. In the embedded default
//! (one process on a laptop) this crate serves the same REST subset, so the same client code
//! (`schema_registry_converter`) runs against both. Only AVRO schemas are supported.
//!
//! Endpoints (bodies and answers are `application/vnd.schemaregistry.v1+json`):
//!
//! | method | path | answer |
//! |---|---|---|
//! | `GET` | `/` | `{}` |
//! | `GET` | `/config` | `{"compatibilityLevel":"BACKWARD"}` |
//! | `GET` | `/schemas/types` | `["AVRO"]` |
//! | `GET` | `/schemas/ids/{id}` | `{"schema", "references"?}` |
//! | `GET` | `/schemas/ids/{id}/versions` | `[{"subject","version"}]` |
//! | `GET` | `/schemas/ids/{id}/subjects` | `["subject"]` |
//! | `GET` | `/subjects` | `["subject"]` |
//! | `POST` | `/subjects/{subject}` | lookup: `{"subject","id","version","schema"}` |
//! | `GET` | `/subjects/{subject}/versions` | `[1, 2]` |
//! | `POST` | `/subjects/{subject}/versions` | register: `{"id"}` |
//! | `GET` | `/subjects/{subject}/versions/{version\|latest}` | `{"subject","id","version","schema"}` |
//! | `GET` | `/subjects/{subject}/versions/{version\|latest}/schema` | the schema itself |
//!
//! Errors are Confluent's `{"error_code", "message"}` bodies (40401 subject not found, 40402
//! version not found, 40403 schema not found, 42201 invalid schema, 42202 invalid version, 409
//! incompatible schema, 50001 storage failure).
//!
//! State is one JSON file, rewritten atomically on every registration and loaded at start, so
//! ids and versions survive a restart.
#![forbid(unsafe_code)]

mod api;
mod error;
mod schema;
mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};

/// Configuration of the embedded registry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Address the REST API listens on (default `127.0.0.1:8081`, Confluent's port).
    pub listen: SocketAddr,
    /// Persistence file (default `data/schema-registry.json`); its directory is created at start.
    pub path: PathBuf,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8081)),
            path: PathBuf::from("data/schema-registry.json"),
        }
    }
}

/// The registry state: every schema and subject, backed by the persistence file.
///
/// Cheap to clone (an `Arc` inside); all clones share one state.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    store: Arc<store::Store>,
}

impl SchemaRegistry {
    /// Opens the registry persisted at `path`, creating its parent directory if needed. A missing
    /// file is an empty registry; an unreadable or corrupt file is an error.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let store = store::Store::open(path.into()).await?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// The REST API, ready to be served (or nested into a larger router).
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }
}

/// Serves the registry's REST API on `listener` until `shutdown` is cancelled, then stops
/// accepting connections and lets in-flight requests finish.
pub async fn serve(
    registry: SchemaRegistry,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let local_addr = listener.local_addr().map_err(Error::Serve)?;
    tracing::info!(%local_addr, path = %registry.store.path().display(), "schema registry listening");
    axum::serve(listener, registry.router())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(Error::Serve)?;
    tracing::info!(%local_addr, "schema registry stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_overrides() {
        let config = RegistryConfig::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(config.path, PathBuf::from("data/schema-registry.json"));

        let config: RegistryConfig =
            serde_json::from_str(r#"{"listen": "0.0.0.0:18081"}"#).expect("valid config");
        assert_eq!(config.listen.to_string(), "0.0.0.0:18081");
        assert_eq!(config.path, PathBuf::from("data/schema-registry.json"));

        assert!(serde_json::from_str::<RegistryConfig>(r#"{"lisen": "0.0.0.0:1"}"#).is_err());
    }
}
