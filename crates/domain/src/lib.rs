//! Domain types and rules of the receipts platform: identifiers, receipt documents, events, the
//! receipt state machine and projection, and the webhook rules (endpoint health, secret rotation,
//! delivery states). Pure: no I/O, no async, so every rule here is unit-testable on its own.
#![forbid(unsafe_code)]

pub mod client;
pub mod document;
pub mod event;
mod failure;
pub mod idempotency;
pub mod ids;
pub mod listing;
#[cfg(feature = "openapi")]
mod openapi;
pub mod projection;
pub mod receipt;
pub mod receipt_type;
pub mod registry;
mod secret;
pub mod state;
pub mod webhook;

pub use client::{ApiClient, ApiKey, NewClient, Scope};
pub use document::{DocumentError, DocumentFormat};
pub use event::{
    EventKind, EventMeta, ReceiptEvent, Registered, RegistrationFailed, Rejected, StatusChanged,
    Submitted, Topic, Validated, WebhookFailed, WebhookRequested,
};
pub use failure::Failure;
pub use idempotency::{IdempotencyDecision, RequestFingerprint, Reservation};
pub use ids::{
    CallbackUrl, ClientId, EndpointId, EventId, IdError, IdempotencyKey, ReceiptId, TenantId,
};
pub use listing::{ListError, ListQuery, ListRequest, Order, ReceiptScan, ReceiptSummary};
pub use projection::{Projection, ProjectionError, ReceiptRecord, TimelineEntry};
pub use receipt::{Line, NormalizedReceipt, Party, Payment, Reason, Totals};
pub use receipt_type::{ReceiptType, ReceiptTypeError};
pub use registry::{Registration, RegistrationFailure, RegistryName};
pub use secret::Secret;
pub use state::{Fact, ReceiptState, Status, StatusPolicy, Transition};
pub use webhook::{
    CallbackSecrets, Delivery, DeliveryAttempt, DeliveryError, DeliveryStatus, Destination,
    Endpoint, EndpointHealth, EndpointPatch, NewDelivery, NewEndpoint, SecretRing, StoredSecret,
    WebhookEventType, WebhookSecret, webhook_id,
};
