//! The status store: receipt projections, their timelines, idempotency records, API clients, and
//! webhook endpoints, secrets and deliveries.
//!
//! A few traits ([`StatusStore`], [`ClientStore`], [`WebhookStore`]) with one implementation per
//! backend; every implementation passes the same conformance suite ([`conformance`]). The SQLite
//! backend ([`SqliteStore`]) is the embedded default and the test backend.
#![forbid(unsafe_code)]

pub mod api_key;
mod clients;
#[cfg(any(test, doc, feature = "conformance"))]
pub mod conformance;
mod error;
mod model;
mod sqlite;
mod webhooks;

use async_trait::async_trait;
use receipts_domain::{ReceiptEvent, ReceiptId, TenantId};

pub use api_key::ApiKey;
pub use clients::{ApiClient, ClientId, NewClient, Scope};
pub use error::{Error, Result};
pub use model::{Applied, ReceiptRecord, Reservation, Reserved, StoredDocument, TimelineEntry};
pub use sqlite::{SqliteConfig, SqliteStore, Synchronous};
pub use webhooks::{
    DISABLED_BY_OWNER, Delivery, DeliveryAttempt, DeliveryStatus, Endpoint, EndpointHealth,
    EndpointPatch, NewDelivery, NewEndpoint, StoredSecret, WebhookStore, auto_disabled_reason,
};

/// Receipt projections and idempotency records.
#[async_trait]
pub trait StatusStore: Send + Sync + 'static {
    /// Records `reservation` under its (tenant, idempotency key) unless that key is already
    /// taken, in which case the earlier reservation is returned unchanged.
    async fn reserve(&self, reservation: &Reservation) -> Result<Reserved>;

    /// Applies one event to its receipt: idempotent (an event id already in the timeline
    /// changes nothing, and the answer carries the transition recorded the first time),
    /// version-guarded (a concurrent writer can never be overwritten) and atomic (timeline entry
    /// and projection are written together or not at all). Events that state no fact about the
    /// receipt (`status_changed`) are [`Applied::Ignored`]. The status is derived with the
    /// [`StatusPolicy`](receipts_domain::StatusPolicy) the store was opened with.
    async fn apply(&self, event: &ReceiptEvent) -> Result<Applied>;

    /// The receipt with its timeline, if it exists and belongs to `tenant`.
    async fn receipt(&self, tenant: &TenantId, id: ReceiptId) -> Result<Option<ReceiptRecord>>;

    /// The tenant a receipt belongs to, if the receipt exists. For callers that know only the
    /// receipt id (a registry's callback); never shown to partners.
    async fn tenant_of(&self, id: ReceiptId) -> Result<Option<TenantId>>;

    /// The original document bytes, if the receipt exists, belongs to `tenant` and its
    /// submission has been recorded.
    async fn document(&self, tenant: &TenantId, id: ReceiptId) -> Result<Option<StoredDocument>>;

    /// Whether the store answers at all (readiness probes).
    async fn ping(&self) -> Result<()>;
}

/// API clients (partners' credentials). Keys are stored only as hashes.
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    async fn create_client(&self, client: &NewClient) -> Result<ApiClient>;

    /// The client whose key hashes to `key_hash`, revoked or not.
    async fn client_by_key_hash(&self, key_hash: &str) -> Result<Option<ApiClient>>;

    /// Every client, or only those of `tenant`, oldest first.
    async fn list_clients(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiClient>>;

    /// Revokes a client; returns false if no such (unrevoked) client exists.
    async fn revoke_client(&self, id: ClientId) -> Result<bool>;
}
