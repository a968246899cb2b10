//! Webhook policy shared by the gateway and the webhook dispatcher: the `[webhooks]`
//! configuration and the SSRF guard (which addresses webhooks may reach).
#![forbid(unsafe_code)]

mod config;
pub mod guard;

pub use config::{DestinationLimits, WebhookConfig};
pub use guard::{AddressPolicy, GuardedResolver, Refused, refusal};
