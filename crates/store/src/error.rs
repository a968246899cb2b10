use receipts_domain::{ReceiptId, TenantId};

/// Everything that can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] Box<libsql::Error>),
    #[error("stored data is corrupt ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error(
        "event for receipt {receipt_id} names tenant {event_tenant}, but the receipt belongs to {stored_tenant}"
    )]
    TenantMismatch {
        receipt_id: ReceiptId,
        event_tenant: TenantId,
        stored_tenant: TenantId,
    },
    #[error("gave up after {attempts} concurrent-update conflicts on receipt {receipt_id}")]
    Contention {
        receipt_id: ReceiptId,
        attempts: u32,
    },
    #[error("cannot open the store at {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("{what} already exists: {detail}")]
    AlreadyExists { what: &'static str, detail: String },
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
}

impl From<libsql::Error> for Error {
    fn from(e: libsql::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
