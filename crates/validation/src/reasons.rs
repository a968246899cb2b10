//! The reason codes of the built-in retail type (its rules' codes) and of the readers.
//!
//! Codes are a stable, machine-readable contract with partners: never rename one, only add.

/// Every code a reason can carry: the readers' and the schema's (used here), and the built-in
/// retail type's rule codes (in its `rules.toml`; listed for the tests and the documentation).
pub(crate) mod code {
    /// The document cannot be read at all: not UTF-8, malformed, wrong root or namespace.
    pub const INVALID_DOCUMENT: &str = "invalid-document";
    /// The receipt type is not one this crate knows how to validate.
    pub const UNSUPPORTED_RECEIPT_TYPE: &str = "unsupported-receipt-type";
    /// The `Receipt-Type` of a submission is not (or no longer) loaded when it is validated.
    pub const UNKNOWN_RECEIPT_TYPE: &str = "unknown-receipt-type";
    pub const REQUIRED: &str = "required";
    pub const INVALID_TYPE: &str = "invalid-type";
    pub const INVALID_FORMAT: &str = "invalid-format";
    pub const UNKNOWN_FIELD: &str = "unknown-field";
    pub const DUPLICATE: &str = "duplicate";
    /// A number outside its allowed range (quantity <= 0, negative price, payment <= 0, overflow).
    pub const OUT_OF_RANGE: &str = "out-of-range";
    /// An array with fewer or more items than its schema allows (configured types only).
    pub const INVALID_COUNT: &str = "invalid-count";
    pub const INVALID_TAX_ID: &str = "invalid-tax-id";
    pub const UNSUPPORTED_COUNTRY: &str = "unsupported-country";
    /// The last reason of a list that was cut at [`super::MAX_REASONS`].
    pub const TOO_MANY_REASONS: &str = "too-many-reasons";

    /// Every code the retail type gives: the above and its rules' own.
    #[cfg(test)]
    pub const ALL: &[&str] = &[
        INVALID_DOCUMENT,
        UNSUPPORTED_RECEIPT_TYPE,
        REQUIRED,
        INVALID_TYPE,
        INVALID_FORMAT,
        UNKNOWN_FIELD,
        DUPLICATE,
        OUT_OF_RANGE,
        "invalid-scale",
        "issued-in-future",
        "issued-too-early",
        INVALID_TAX_ID,
        UNSUPPORTED_COUNTRY,
        "unknown-currency",
        "too-many-lines",
        "vat-rate-not-allowed",
        "net-amount-mismatch",
        "vat-amount-mismatch",
        "gross-amount-mismatch",
        "total-mismatch",
        "payment-total-mismatch",
        TOO_MANY_REASONS,
    ];
}

/// At most this many reasons are returned (the last one saying how many were left out), so a
/// hostile document cannot turn into a multi-megabyte rejection event.
pub(crate) const MAX_REASONS: usize = 500;
