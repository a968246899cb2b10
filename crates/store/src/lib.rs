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
//! embedded default and the test backend).
#![forbid(unsafe_code)]

mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
mod ports;
mod sqlite;

use std::sync::Arc;

pub use config::{SqliteOptions, StoreConfig, StoreLocation, Synchronous};
pub use error::{Error, Result};
pub use ports::{
    Cas, ClientStore, DeliveryStore, Document, DocumentStore, EndpointStore, Health, ReceiptStore,
    ReservationStore, Reserved,
};
pub use sqlite::SqliteStore;

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
    /// Every port from one backend.
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
        let backend = Arc::new(backend);
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
