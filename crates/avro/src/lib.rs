//! Avro encoding of the platform's events in the Confluent wire format (magic byte, 4-byte schema
//! id, Avro binary), with schemas registered in and fetched from a Confluent-compatible Schema
//! Registry. The schemas themselves live in `proto-schemas/` at the repository root.
#![forbid(unsafe_code)]

mod codec;
mod error;
mod mapping;
pub mod schemas;

pub use codec::{EventCodec, SchemaRegistryConfig};
pub use error::{DecodeError, Error, Result};
pub use mapping::{event_from_value, event_to_value};
