//! Validation of receipt documents. Receipt types are configuration ([`types`]): a directory
//! per type with a JSON Schema, CEL rules, an XML mapping and examples, compiled once into a
//! [`types::TypeSet`]. The retail type ships in `receipt-types/` and is compiled into this crate
//! as the built-in set ([`validate`]). Pure logic apart from reading type directories: no clock
//! (the submission time is an input), so validating the same event twice gives the same result.
//!
//! Every reason is collected, never only the first, in a stable order (`types` says which).
//! Tax ids (`tax_id`) and currencies (`currency`) are the Rust behind the rules' functions;
//! [`sample`] generates valid and invalid retail receipts for tests and load generation.
#![forbid(unsafe_code)]

mod currency;
mod json;
mod reasons;
pub mod sample;
mod tax_id;
pub mod types;

use chrono::{DateTime, Utc};
use receipts_domain::{NormalizedReceipt, Reason, ReceiptType};

use crate::reasons::code;

/// Validates `document` as a receipt of `receipt_type`, one of the built-in types (the retail
/// type as shipped in `receipt-types/`, compiled in). `received_at` is the submission time from
/// the event (NOT the wall clock), so validating the same event twice always gives the same
/// result.
pub fn validate(
    receipt_type: &ReceiptType,
    document: &[u8],
    received_at: DateTime<Utc>,
) -> Result<NormalizedReceipt, Vec<Reason>> {
    let types = types::TypeSet::builtin();
    if types
        .resolve(receipt_type.name(), receipt_type.format())
        .is_err()
    {
        let message = format!(
            "receipt type {:?} has no validation rules",
            receipt_type.name()
        );
        return Err(vec![Reason::new(
            "",
            code::UNSUPPORTED_RECEIPT_TYPE,
            message,
        )]);
    }
    types
        .validate(
            receipt_type.name(),
            receipt_type.format(),
            document,
            received_at,
        )
        .map(|valid| valid.receipt)
}

#[cfg(test)]
mod tests;
