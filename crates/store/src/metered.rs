//! Every port of a backend, timed: each operation's latency and failures go to the process's
//! metrics (`receipts_store_operation_duration_seconds`, `receipts_store_errors_total`), labelled
//! by backend and operation. [`crate::Stores::of`] wraps every backend in it.

use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use receipts_domain::{
    ApiClient, CallbackSecrets, ClientId, Delivery, DeliveryAttempt, Endpoint, EndpointId,
    NewClient, ReceiptId, ReceiptRecord, ReceiptScan, ReceiptSummary, Reservation, TenantId,
};
use receipts_telemetry::metrics::{STORE_ERRORS, STORE_OPERATION_DURATION};

use crate::{
    Cas, ClientStore, DeliveryStore, Document, DocumentStore, EndpointStore, Health, ReceiptStore,
    ReservationStore, Reserved, Result,
};

/// A backend whose every operation is measured.
pub(crate) struct Metered<B> {
    backend: B,
    name: &'static str,
}

impl<B: Health> Metered<B> {
    pub(crate) fn new(backend: B) -> Self {
        let name = backend.backend();
        Self { backend, name }
    }
}

impl<B> Metered<B> {
    async fn timed<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = work.await;
        metrics::histogram!(STORE_OPERATION_DURATION, "backend" => self.name, "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        if let Err(error) = &result {
            let transient = if error.is_transient() {
                "true"
            } else {
                "false"
            };
            metrics::counter!(STORE_ERRORS, "backend" => self.name, "operation" => operation, "transient" => transient)
                .increment(1);
        }
        result
    }
}

#[async_trait]
impl<B: ReceiptStore> ReceiptStore for Metered<B> {
    async fn receipt(&self, id: ReceiptId) -> Result<Option<ReceiptRecord>> {
        self.timed("receipt", self.backend.receipt(id)).await
    }

    async fn save_receipt(&self, record: &ReceiptRecord, expected: u64) -> Result<Cas> {
        self.timed("save_receipt", self.backend.save_receipt(record, expected))
            .await
    }

    async fn scan_receipt_ids(&self, scan: &ReceiptScan, limit: usize) -> Result<Vec<ReceiptId>> {
        self.timed(
            "scan_receipt_ids",
            self.backend.scan_receipt_ids(scan, limit),
        )
        .await
    }

    async fn receipt_summaries(
        &self,
        tenant: &TenantId,
        first: ReceiptId,
        last: ReceiptId,
    ) -> Result<Vec<ReceiptSummary>> {
        self.timed(
            "receipt_summaries",
            self.backend.receipt_summaries(tenant, first, last),
        )
        .await
    }
}

#[async_trait]
impl<B: ReservationStore> ReservationStore for Metered<B> {
    async fn reserve(&self, reservation: &Reservation) -> Result<Reserved> {
        self.timed("reserve", self.backend.reserve(reservation))
            .await
    }

    async fn reservation_of(&self, id: ReceiptId) -> Result<Option<Reservation>> {
        self.timed("reservation_of", self.backend.reservation_of(id))
            .await
    }
}

#[async_trait]
impl<B: DocumentStore> DocumentStore for Metered<B> {
    async fn put_document(&self, document: &Document) -> Result<()> {
        self.timed("put_document", self.backend.put_document(document))
            .await
    }

    async fn document(&self, id: ReceiptId) -> Result<Option<Document>> {
        self.timed("document", self.backend.document(id)).await
    }
}

#[async_trait]
impl<B: ClientStore> ClientStore for Metered<B> {
    async fn create_client(
        &self,
        client: &NewClient,
        created_at: DateTime<Utc>,
    ) -> Result<ApiClient> {
        self.timed(
            "create_client",
            self.backend.create_client(client, created_at),
        )
        .await
    }

    async fn client_by_key_hash(&self, key_hash: &str) -> Result<Option<ApiClient>> {
        self.timed(
            "client_by_key_hash",
            self.backend.client_by_key_hash(key_hash),
        )
        .await
    }

    async fn clients(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiClient>> {
        self.timed("clients", self.backend.clients(tenant)).await
    }

    async fn revoke_client(&self, id: ClientId, at: DateTime<Utc>) -> Result<bool> {
        self.timed("revoke_client", self.backend.revoke_client(id, at))
            .await
    }
}

#[async_trait]
impl<B: EndpointStore> EndpointStore for Metered<B> {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        self.timed("create_endpoint", self.backend.create_endpoint(endpoint))
            .await
    }

    async fn endpoint(&self, id: EndpointId) -> Result<Option<Endpoint>> {
        self.timed("endpoint", self.backend.endpoint(id)).await
    }

    async fn endpoints(&self, tenant: &TenantId) -> Result<Vec<Endpoint>> {
        self.timed("endpoints", self.backend.endpoints(tenant))
            .await
    }

    async fn save_endpoint(&self, endpoint: &Endpoint, expected: u64) -> Result<Cas> {
        self.timed(
            "save_endpoint",
            self.backend.save_endpoint(endpoint, expected),
        )
        .await
    }

    async fn delete_endpoint(&self, id: EndpointId) -> Result<bool> {
        self.timed("delete_endpoint", self.backend.delete_endpoint(id))
            .await
    }

    async fn callback_secrets(&self, tenant: &TenantId) -> Result<Option<CallbackSecrets>> {
        self.timed("callback_secrets", self.backend.callback_secrets(tenant))
            .await
    }

    async fn save_callback_secrets(&self, secrets: &CallbackSecrets, expected: u64) -> Result<Cas> {
        self.timed(
            "save_callback_secrets",
            self.backend.save_callback_secrets(secrets, expected),
        )
        .await
    }
}

#[async_trait]
impl<B: DeliveryStore> DeliveryStore for Metered<B> {
    async fn record_delivery(&self, delivery: &Delivery) -> Result<bool> {
        self.timed("record_delivery", self.backend.record_delivery(delivery))
            .await
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        self.timed("delivery", self.backend.delivery(id)).await
    }

    async fn save_delivery(&self, delivery: &Delivery, expected: u64) -> Result<Cas> {
        self.timed(
            "save_delivery",
            self.backend.save_delivery(delivery, expected),
        )
        .await
    }

    async fn put_attempt(&self, delivery_id: &str, attempt: &DeliveryAttempt) -> Result<()> {
        self.timed(
            "put_attempt",
            self.backend.put_attempt(delivery_id, attempt),
        )
        .await
    }

    async fn attempts(&self, delivery_id: &str) -> Result<Vec<DeliveryAttempt>> {
        self.timed("attempts", self.backend.attempts(delivery_id))
            .await
    }

    async fn deliveries_of(&self, receipt: ReceiptId) -> Result<Vec<Delivery>> {
        self.timed("deliveries_of", self.backend.deliveries_of(receipt))
            .await
    }
}

#[async_trait]
impl<B: Health> Health for Metered<B> {
    fn backend(&self) -> &'static str {
        self.name
    }

    async fn ping(&self) -> Result<()> {
        self.timed("ping", self.backend.ping()).await
    }
}
