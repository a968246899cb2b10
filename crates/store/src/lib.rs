//! Storage: small ports, one per concern, and their backends. A port stores and loads; it
//! decides nothing (every rule is domain code, `receipts-domain`).
//!
//! | port | what | keyed by |
//! |---|---|---|
//! | [`ReceiptStore`] | receipt records (status, timeline, registrations) | receipt id |
//! | [`ReservationStore`] | idempotency reservations | (tenant, idempotency key); also by receipt id |
//! | [`DocumentStore`] | original documents, byte-exact | receipt id |
//! | [`ClientStore`] | API clients | client id; also by key hash |
//! | [`EndpointStore`] | webhook endpoints and tenants' callback secrets | endpoint id; tenant |
//! | [`DeliveryStore`] | webhook deliveries and their attempts | delivery id; (delivery, attempt number) |
//!
//! The contract every backend keeps (and [`conformance`] checks): each write is a keyed upsert,
//! an insert-if-absent, or a compare-and-set of one record on its explicit version ([`Cas`]);
//! nothing needs a transaction across keys, insertion order, auto-increment, cascades or
//! triggers. Lists are ordered by explicit keys (UUIDv7 ids, timestamps). Errors are one type,
//! [`Error`], which says whether trying again may help ([`Error::is_transient`]).
//!
//! The backend is chosen by URL ([`StoreConfig::url`]): `sqlite://<path>` ([`SqliteStore`], the
//! embedded default and the test backend) or `scylla://host1:9042,host2:9042/<keyspace>?dc=<dc>`
//! ([`ScyllaStore`], production; its schema is applied by [`Stores::migrate`]).
#![forbid(unsafe_code)]

mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
mod metered;
mod ports;
mod scylladb;
mod sqlite;

use std::sync::Arc;

pub use config::{
    ScyllaLocation, ScyllaOptions, SqliteOptions, StoreConfig, StoreLocation, Synchronous,
};
pub use error::{Error, Result};
pub use ports::{
    Cas, ClientStore, DeliveryStore, Document, DocumentStore, EndpointStore, Health, ReceiptStore,
    ReservationStore, Reserved,
};
pub use scylladb::ScyllaStore;
pub use sqlite::{SqliteStore, Stopped};

/// Every port, served by one backend. Cheap to clone.
#[derive(Clone)]
pub struct Stores {
    pub receipts: Arc<dyn ReceiptStore>,
    pub reservations: Arc<dyn ReservationStore>,
    pub documents: Arc<dyn DocumentStore>,
    pub clients: Arc<dyn ClientStore>,
    pub endpoints: Arc<dyn EndpointStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub health: Arc<dyn Health>,
}

impl Stores {
    /// Every port from one backend, each operation measured (see `docs/observability.md`).
    pub fn of<B>(backend: B) -> Self
    where
        B: ReceiptStore
            + ReservationStore
            + DocumentStore
            + ClientStore
            + EndpointStore
            + DeliveryStore
            + Health,
    {
        let backend = Arc::new(metered::Metered::new(backend));
        Self {
            receipts: backend.clone(),
            reservations: backend.clone(),
            documents: backend.clone(),
            clients: backend.clone(),
            endpoints: backend.clone(),
            deliveries: backend.clone(),
            health: backend,
        }
    }

    /// Opens the backend `config.url` names.
    pub async fn open(config: &StoreConfig) -> Result<Self> {
        match config.location()? {
            StoreLocation::Sqlite(path) => {
                Ok(Self::of(SqliteStore::open(&path, &config.sqlite).await?))
            }
            StoreLocation::Scylla(location) => Ok(Self::of(
                ScyllaStore::open(&location, &config.scylla).await?,
            )),
        }
    }
}

impl Stores {
    /// Brings the schema of the backend `config` names up to date (idempotent) and returns its
    /// version. SQLite migrates whenever it opens; ScyllaDB only here (`receipts store
    /// migrate`), and services refuse to start on an older schema.
    pub async fn migrate(config: &StoreConfig) -> Result<u32> {
        match config.location()? {
            StoreLocation::Sqlite(path) => {
                SqliteStore::open(&path, &config.sqlite)
                    .await?
                    .schema_version()
                    .await
            }
            StoreLocation::Scylla(location) => {
                ScyllaStore::migrate(&location, &config.scylla).await
            }
        }
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("backend", &self.health.backend())
            .finish_non_exhaustive()
    }
}
