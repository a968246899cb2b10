use receipts_domain::{DeliveryError, ProjectionError};

/// Why a use case failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] receipts_store::Error),
    /// The event can never be applied to its receipt.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The delivery's state does not allow the change.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// Other writers kept changing the record between our read and our write.
    #[error("gave up after {attempts} concurrent changes of {what} {id}")]
    Contention {
        what: &'static str,
        id: String,
        attempts: u32,
    },
}

impl Error {
    /// Whether trying again later may succeed. A rule violation, corrupt data or a refused
    /// change never will.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_transient(),
            Self::Contention { .. } => true,
            Self::Projection(_) | Self::Delivery(_) => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl receipts_domain::Failure for Error {
    fn is_transient(&self) -> bool {
        Error::is_transient(self)
    }
}
