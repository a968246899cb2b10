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
    /// A write about something that does not exist (an attempt of an unrecorded delivery).
    #[error("no {what} {id}")]
    NotFound { what: &'static str, id: String },
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    /// The task that performs the store's writes is gone: the tokio runtime the store was
    /// opened on has shut down (or the task failed). Nothing more can be written through this
    /// store; open a new one.
    #[error("the store's writer has stopped")]
    WriterStopped,
}

/// `SQLITE_ERROR`, the generic result code, for database errors copied without their own.
const SQLITE_ERROR: std::ffi::c_int = 1;

impl Error {
    /// A copy of this error, for every request of a write batch it ended (errors are not
    /// `Clone`). A database error keeps its SQLite code and message; others are copied as they
    /// are.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Database(e) => Self::Database(Box::new(match e.as_ref() {
                libsql::Error::SqliteFailure(code, message) => {
                    libsql::Error::SqliteFailure(*code, message.clone())
                }
                other => libsql::Error::SqliteFailure(SQLITE_ERROR, other.to_string()),
            })),
            Self::Corrupt { what, detail } => Self::Corrupt {
                what,
                detail: detail.clone(),
            },
            Self::TenantMismatch {
                receipt_id,
                event_tenant,
                stored_tenant,
            } => Self::TenantMismatch {
                receipt_id: *receipt_id,
                event_tenant: event_tenant.clone(),
                stored_tenant: stored_tenant.clone(),
            },
            Self::Contention {
                receipt_id,
                attempts,
            } => Self::Contention {
                receipt_id: *receipt_id,
                attempts: *attempts,
            },
            Self::Open { path, detail } => Self::Open {
                path: path.clone(),
                detail: detail.clone(),
            },
            Self::AlreadyExists { what, detail } => Self::AlreadyExists {
                what,
                detail: detail.clone(),
            },
            Self::NotFound { what, id } => Self::NotFound {
                what,
                id: id.clone(),
            },
            Self::Encode { what, detail } => Self::Encode {
                what,
                detail: detail.clone(),
            },
            Self::WriterStopped => Self::WriterStopped,
        }
    }
}

impl From<libsql::Error> for Error {
    fn from(e: libsql::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
