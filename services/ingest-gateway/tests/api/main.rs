//! The HTTP API against a real broker (tansu), the embedded Schema Registry and a real SQLite file.

mod batch;
mod helpers;
mod idempotency;
mod input;
mod list;
mod openapi;
mod receipts;
mod security;
mod webhooks;
mod wire;
