//! Validation of receipt documents of the built-in receipt types (`retail-receipt/v1` in JSON,
//! `retail-receipt-xml/v1` in XML). Pure logic: no I/O, no clock.
//!
//! A document goes through two stages:
//! 1. extraction (modules `json` and `xml`): the document is read into a format-independent
//!    draft (`draft`), every value next to its path, and every structural problem is reported;
//! 2. the rules (`rules`): receipt number, dates, tax ids (`tax_id`), currency (`currency`),
//!    VAT rates (`vat_rates`) and all the arithmetic.
//!
//! Every reason is collected, never only the first; the list is returned in the documented field
//! order (`reasons`), so validating the same document twice gives the same list. The reason
//! codes are listed in `reasons::code`.
//!
//! [`sample`] generates valid and invalid documents of both types for tests and load generation.
#![forbid(unsafe_code)]

mod currency;
mod draft;
mod json;
mod reasons;
mod rules;
pub mod sample;
mod tax_id;
pub mod types;
mod vat_rates;
mod xml;

use chrono::{DateTime, Utc};
use receipts_domain::receipt_type::{RETAIL_RECEIPT_V1, RETAIL_RECEIPT_XML_V1};
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
    if types.resolve(receipt_type.name(), receipt_type.format()).is_err() {
        let message = format!("receipt type {:?} has no validation rules", receipt_type.name());
        return Err(vec![Reason::new("", code::UNSUPPORTED_RECEIPT_TYPE, message)]);
    }
    types
        .validate(receipt_type.name(), receipt_type.format(), document, received_at)
        .map(|valid| valid.receipt)
}

#[cfg(test)]
mod tests;
