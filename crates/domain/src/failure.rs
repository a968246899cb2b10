//! How an error is handled depends on one question, asked the same way everywhere: may trying
//! again later succeed? A consumer retries a transient failure in place and dead-letters a
//! permanent one, whichever layer it came from.

/// An error that knows whether it is transient.
pub trait Failure: std::error::Error + Send + Sync + 'static {
    /// Whether the same request may succeed later (an outage, a timeout, a lost race), as opposed
    /// to never (corrupt data, a rule violation, a malformed message).
    fn is_transient(&self) -> bool;
}

impl Failure for crate::ProjectionError {
    fn is_transient(&self) -> bool {
        false
    }
}
