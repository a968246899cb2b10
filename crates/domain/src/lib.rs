//! Domain types of the receipts platform: identifiers, receipt documents, events and the receipt
//! state machine. Pure: no I/O, no async, so every rule here is unit-testable on its own.
#![forbid(unsafe_code)]

pub mod document;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod receipt;
pub mod receipt_type;
pub mod registry;
pub mod state;
pub mod webhook;

pub use document::{DocumentError, DocumentFormat};
pub use event::{
    EventKind, EventMeta, ReceiptEvent, Registered, RegistrationFailed, Rejected, StatusChanged,
    Submitted, Topic, Validated, WebhookFailed, WebhookRequested,
};
pub use idempotency::{IdempotencyDecision, RequestFingerprint};
pub use ids::{CallbackUrl, EventId, IdError, IdempotencyKey, ReceiptId, TenantId};
pub use receipt::{Line, NormalizedReceipt, Party, Payment, Reason, Totals};
pub use receipt_type::{ReceiptType, ReceiptTypeError};
pub use registry::{Registration, RegistrationFailure, RegistryName};
pub use state::{Fact, ReceiptState, Status, StatusPolicy, Transition};
pub use webhook::{Destination, EndpointId, WebhookEventType, WebhookSecret, webhook_id};
