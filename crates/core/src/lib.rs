//! The application core: each use case loads records through the store ports, applies a domain
//! rule to them and writes them back with compare-and-set, starting again when another writer
//! came first. Services call these; the rules themselves live in `receipts-domain`, storage in
//! `receipts-store`, and neither knows of the other.
//!
//! - [`Projector`]: applies receipt events to receipt records (the status projector's work).
//! - [`Receipts`]: what partners read about their receipts, before and after the projection,
//!   and their lists, page by page ([`CursorKey`] seals the cursors).
//! - [`Webhooks`]: endpoints, secrets and the delivery log.
#![forbid(unsafe_code)]

mod cas;
mod error;
mod listing;
mod projector;
mod receipts;
mod webhooks;

pub use error::{Error, Result};
pub use listing::{CursorError, CursorKey, Page};
pub use projector::{Projected, Projector};
pub use receipts::Receipts;
pub use webhooks::{DeliveryLog, Webhooks};
