//! What partners read about their receipts. A receipt is readable as soon as its submission is
//! answered: until the projection has it, its reservation stands in for it.

use std::sync::Arc;

use receipts_domain::{ReceiptId, ReceiptRecord, TenantId};
use receipts_store::{Document, DocumentStore, ReceiptStore, ReservationStore};

use crate::Result;

/// Reads of receipts, tenant by tenant: another tenant's receipt does not exist.
#[derive(Clone)]
pub struct Receipts {
    pub(crate) receipts: Arc<dyn ReceiptStore>,
    reservations: Arc<dyn ReservationStore>,
    documents: Arc<dyn DocumentStore>,
}

impl Receipts {
    pub fn new(
        receipts: Arc<dyn ReceiptStore>,
        reservations: Arc<dyn ReservationStore>,
        documents: Arc<dyn DocumentStore>,
    ) -> Self {
        Self {
            receipts,
            reservations,
            documents,
        }
    }

    /// The receipt as partners see it: its record, or (before the projection has the
    /// submission) what its reservation says: RECEIVED. A record whose other events overtook
    /// its submission shows the submission's facts from the reservation.
    pub async fn receipt(&self, tenant: &TenantId, id: ReceiptId) -> Result<Option<ReceiptRecord>> {
        let record = match self.receipts.receipt(id).await? {
            Some(record) if record.has_submission() => Some(record),
            Some(record) => Some(match self.reservations.reservation_of(id).await? {
                Some(reservation) => record.with_submission(&reservation),
                None => record,
            }),
            None => self
                .reservations
                .reservation_of(id)
                .await?
                .map(|reservation| ReceiptRecord::received(&reservation)),
        };
        Ok(record.filter(|r| r.tenant_id == *tenant))
    }

    /// The tenant a receipt belongs to, if it exists. For callers that know only the receipt
    /// id (a registry's callback); never shown to partners.
    pub async fn tenant_of(&self, id: ReceiptId) -> Result<Option<TenantId>> {
        if let Some(record) = self.receipts.receipt(id).await? {
            return Ok(Some(record.tenant_id));
        }
        Ok(self
            .reservations
            .reservation_of(id)
            .await?
            .map(|r| r.tenant_id))
    }

    /// The original document, if the receipt exists and belongs to `tenant`.
    pub async fn document(&self, tenant: &TenantId, id: ReceiptId) -> Result<Option<Document>> {
        Ok(self
            .documents
            .document(id)
            .await?
            .filter(|d| d.tenant_id == *tenant))
    }
}
