//! The receipt as extracted from a document, before any semantic check: every value is the text
//! the partner wrote, next to the path (JSON Pointer or XPath) where it was found. The JSON and
//! XML extractors both produce this shape, so the rules never know which format they check.
//!
//! A field is `None` when it is absent or structurally unusable; the extractor has then already
//! reported why (or the field is optional), so the rules only check what is present.

/// One value as written in the document (XML text trimmed, JSON numbers in decimal notation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub path: String,
    pub value: String,
}

impl Field {
    pub fn new(path: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            value: value.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Draft {
    pub receipt_number: Option<Field>,
    pub issued_at: Option<Field>,
    pub seller: Option<PartyDraft>,
    pub buyer: Option<PartyDraft>,
    pub currency: Option<Field>,
    pub lines: Option<ListDraft<LineDraft>>,
    pub totals: Option<TotalsDraft>,
    pub payments: Option<ListDraft<PaymentDraft>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PartyDraft {
    pub path: String,
    pub tax_id: Option<Field>,
    pub name: Option<Field>,
}

/// A repeated element: the container's path and its items (every item, even past a limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListDraft<T> {
    pub path: String,
    pub items: Vec<T>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LineDraft {
    pub path: String,
    pub description: Option<Field>,
    pub quantity: Option<Field>,
    pub unit_price: Option<Field>,
    pub vat_rate: Option<Field>,
    pub net_amount: Option<Field>,
    pub vat_amount: Option<Field>,
    pub gross_amount: Option<Field>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TotalsDraft {
    pub path: String,
    pub net_amount: Option<Field>,
    pub vat_amount: Option<Field>,
    pub gross_amount: Option<Field>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PaymentDraft {
    pub path: String,
    pub method: Option<Field>,
    pub amount: Option<Field>,
}
