//! Webhook policy shared by the gateway and the webhook dispatcher: the `[webhooks]`
//! configuration, the SSRF guard (which addresses webhooks may reach) and the signed HTTP
//! sender (the dispatcher's deliveries and the gateway's test messages).
#![forbid(unsafe_code)]

mod config;
pub mod guard;
pub mod sender;

pub use config::{DestinationLimits, WebhookConfig};
pub use guard::{AddressPolicy, GuardedResolver, Refused, refusal};
pub use sender::{Attempt, EXCERPT_BYTES, Outcome, Sender, SenderError};
