use std::sync::Arc;

/// Everything that can go wrong in a store. Backend errors are wrapped in [`Error::Backend`],
/// never exposed as types of their own.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The backend failed to do what was asked: unreachable, busy, out of space, ...
    #[error("{backend}: {source}")]
    Backend {
        backend: &'static str,
        /// Whether the same request may succeed later.
        transient: bool,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// Stored data cannot be read back: it was changed outside the store, or by a bug.
    #[error("stored data is corrupt ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// An insert that must not overwrite found its key taken.
    #[error("{what} already exists: {detail}")]
    AlreadyExists { what: &'static str, detail: String },
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    /// `store.url` names no backend this build has, or is malformed.
    #[error("invalid store configuration: {0}")]
    Config(String),
    #[error("cannot open the store at {location}: {detail}")]
    Open { location: String, detail: String },
    /// The store's worker threads are gone (the store is shutting down).
    #[error("the store has stopped")]
    Stopped,
}

impl Error {
    /// Whether trying the same request again later may succeed. Corrupt or unencodable data,
    /// a taken key and a bad configuration stay what they are.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Backend { transient, .. } => *transient,
            Self::Stopped => true,
            Self::Corrupt { .. }
            | Self::AlreadyExists { .. }
            | Self::Encode { .. }
            | Self::Config(_)
            | Self::Open { .. } => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl receipts_domain::Failure for Error {
    fn is_transient(&self) -> bool {
        Error::is_transient(self)
    }
}
