//! The normalized receipt the validator produces from any accepted document, and the reasons it
//! gives when it refuses one. Downstream services (registrars, projections) only ever see this
//! shape, whatever format the partner sent.

use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A receipt after validation: every amount checked and in its currency's scale.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedReceipt {
    /// The issuer's own receipt number.
    pub receipt_number: String,
    /// When the receipt was issued, with the issuer's UTC offset.
    pub issued_at: DateTime<FixedOffset>,
    pub seller: Party,
    pub buyer: Option<Party>,
    /// ISO 4217 code.
    pub currency: String,
    pub lines: Vec<Line>,
    pub totals: Totals,
    pub payments: Vec<Payment>,
}

/// Seller or buyer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// VAT identification number, country prefix included (e.g. `DE136695976`).
    pub tax_id: String,
    /// ISO 3166-1 alpha-2 country of the tax id.
    pub country: String,
    pub name: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    /// Percent, e.g. `19` or `5.5`.
    pub vat_rate: Decimal,
    pub net_amount: Decimal,
    pub vat_amount: Decimal,
    pub gross_amount: Decimal,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub net_amount: Decimal,
    pub vat_amount: Decimal,
    pub gross_amount: Decimal,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub method: String,
    pub amount: Decimal,
}

/// One reason a receipt was refused: where (a JSON Pointer for JSON documents, an XPath for XML
/// ones), a stable machine-readable code, and a sentence for people.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reason {
    pub path: String,
    pub code: String,
    pub message: String,
}

impl Reason {
    pub fn new(
        path: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}
