//! The storage ports. Each documents what it guarantees: which writes are atomic, which are
//! idempotent, how lists are ordered. Ports take and return domain types and decide nothing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use receipts_domain::{
    ApiClient, CallbackSecrets, ClientId, Delivery, DeliveryAttempt, Endpoint, EndpointId,
    NewClient, ReceiptId, ReceiptRecord, ReceiptScan, ReceiptSummary, Reservation, TenantId,
};

use crate::Result;

/// The outcome of a compare-and-set: the record was written, or its stored version was not the
/// one expected (someone else wrote first: load it again and retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Cas {
    Written,
    Conflict,
}

/// Receipt records: one per receipt, written only by the status projector.
#[async_trait]
pub trait ReceiptStore: Send + Sync + 'static {
    /// The receipt's record, whichever tenant it belongs to (callers check).
    async fn receipt(&self, id: ReceiptId) -> Result<Option<ReceiptRecord>>;

    /// Compare-and-set of one record: writes `record` (whole, atomically) if the stored version
    /// of its receipt is `expected`, where 0 means "no record yet". Writing a record whose
    /// version is not above `expected` is a caller's bug.
    async fn save_receipt(&self, record: &ReceiptRecord, expected: u64) -> Result<Cas>;

    /// The ids of up to `limit` receipts `scan` selects (its tenant, id range and filters), in
    /// its order. Not a snapshot: a receipt saved meanwhile may or may not be among them, and a
    /// filter on status sees each record as last saved.
    async fn scan_receipt_ids(&self, scan: &ReceiptScan, limit: usize) -> Result<Vec<ReceiptId>>;

    /// The summaries of `tenant`'s receipts with ids from `first` to `last` (both included),
    /// ascending by id, each as its record was last saved.
    async fn receipt_summaries(
        &self,
        tenant: &TenantId,
        first: ReceiptId,
        last: ReceiptId,
    ) -> Result<Vec<ReceiptSummary>>;
}

/// The result of [`ReservationStore::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// The key was free and now holds the given reservation.
    New,
    /// The key was taken by this earlier reservation, which is unchanged.
    Existing(Box<Reservation>),
}

/// Idempotency reservations, written only by the gateway.
#[async_trait]
pub trait ReservationStore: Send + Sync + 'static {
    /// Insert-if-absent on (tenant, idempotency key), atomic: of concurrent reservations of
    /// one key exactly one is [`Reserved::New`] and every other gets it back.
    async fn reserve(&self, reservation: &Reservation) -> Result<Reserved>;

    /// The reservation that gave out receipt id `id`.
    async fn reservation_of(&self, id: ReceiptId) -> Result<Option<Reservation>>;
}

/// A document exactly as its partner sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub receipt_id: ReceiptId,
    pub tenant_id: TenantId,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Original documents, byte-exact (fiscal documents may be signed).
#[async_trait]
pub trait DocumentStore: Send + Sync + 'static {
    /// Insert-if-absent on the receipt id: the first document stored for a receipt stays;
    /// storing again (a retried submission) changes nothing.
    async fn put_document(&self, document: &Document) -> Result<()>;

    /// The receipt's document, whichever tenant it belongs to (callers check).
    async fn document(&self, id: ReceiptId) -> Result<Option<Document>>;
}

/// API clients (partners' credentials). Keys are stored only as hashes.
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// Insert-if-absent on the client id and on the key hash, atomic: fails with
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) when either is taken.
    async fn create_client(
        &self,
        client: &NewClient,
        created_at: DateTime<Utc>,
    ) -> Result<ApiClient>;

    /// The client whose key hashes to `key_hash`, revoked or not.
    async fn client_by_key_hash(&self, key_hash: &str) -> Result<Option<ApiClient>>;

    /// Every client, or those of `tenant`, in id order (ids are time-ordered: oldest first).
    async fn clients(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiClient>>;

    /// Sets `revoked_at` unless it is set (idempotent); false if there is no such unrevoked
    /// client.
    async fn revoke_client(&self, id: ClientId, at: DateTime<Utc>) -> Result<bool>;
}

/// Webhook endpoints (each with its signing secrets inside) and tenants' callback secrets.
#[async_trait]
pub trait EndpointStore: Send + Sync + 'static {
    /// Insert-if-absent on the endpoint id; [`Error::AlreadyExists`](crate::Error::AlreadyExists)
    /// when taken.
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<()>;

    /// The endpoint, whichever tenant it belongs to (callers check).
    async fn endpoint(&self, id: EndpointId) -> Result<Option<Endpoint>>;

    /// The endpoints of `tenant`, in id order (oldest first).
    async fn endpoints(&self, tenant: &TenantId) -> Result<Vec<Endpoint>>;

    /// Compare-and-set of one endpoint on its version (see [`ReceiptStore::save_receipt`]).
    async fn save_endpoint(&self, endpoint: &Endpoint, expected: u64) -> Result<Cas>;

    /// Deletes the endpoint (its deliveries stay in the log); false if there was none.
    async fn delete_endpoint(&self, id: EndpointId) -> Result<bool>;

    /// The tenant's secrets for `Callback-Url` deliveries, if it has any yet.
    async fn callback_secrets(&self, tenant: &TenantId) -> Result<Option<CallbackSecrets>>;

    /// Compare-and-set of a tenant's callback secrets on their version (0: create).
    async fn save_callback_secrets(&self, secrets: &CallbackSecrets, expected: u64) -> Result<Cas>;
}

/// The webhook delivery log.
#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    /// Insert-if-absent on the delivery id: true if it was new; recording the same id again
    /// leaves the first record as it is.
    async fn record_delivery(&self, delivery: &Delivery) -> Result<bool>;

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>>;

    /// Compare-and-set of one delivery on its version.
    async fn save_delivery(&self, delivery: &Delivery, expected: u64) -> Result<Cas>;

    /// Keyed upsert on (delivery id, attempt number): a repeated number replaces the earlier
    /// record of it. Independent of the delivery record (no reference is checked).
    async fn put_attempt(&self, delivery_id: &str, attempt: &DeliveryAttempt) -> Result<()>;

    /// A delivery's attempts in number order.
    async fn attempts(&self, delivery_id: &str) -> Result<Vec<DeliveryAttempt>>;

    /// A receipt's deliveries, in (creation time, id) order.
    async fn deliveries_of(&self, receipt: ReceiptId) -> Result<Vec<Delivery>>;
}

/// Whether the backend answers at all (readiness probes).
#[async_trait]
pub trait Health: Send + Sync + 'static {
    /// The backend's name, for logs (`sqlite`, ...).
    fn backend(&self) -> &'static str;

    async fn ping(&self) -> Result<()>;
}
