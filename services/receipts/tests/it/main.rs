//! The whole platform: the example receipts end to end, the embedded default's durability, the
//! `receipts` command line, webhooks.

mod cli;
mod client_cli;
mod contract;
mod crash;
mod embedded;
mod examples;
mod folder_ingest;
mod helpers;
mod metrics;
mod receipt_types;
mod registrations;
mod traces;
mod tracing_context;
mod webhooks;
