//! The reason codes this crate emits, and how a list of reasons is put in its final order.
//!
//! Codes are a stable, machine-readable contract with partners: never rename one, only add.

use receipts_domain::Reason;

/// Every code a reason can carry.
pub(crate) mod code {
    /// The document cannot be read at all: not UTF-8, malformed, wrong root or namespace.
    pub const INVALID_DOCUMENT: &str = "invalid-document";
    /// The receipt type is not one this crate knows how to validate.
    pub const UNSUPPORTED_RECEIPT_TYPE: &str = "unsupported-receipt-type";
    pub const REQUIRED: &str = "required";
    pub const INVALID_TYPE: &str = "invalid-type";
    pub const INVALID_FORMAT: &str = "invalid-format";
    pub const UNKNOWN_FIELD: &str = "unknown-field";
    pub const DUPLICATE: &str = "duplicate";
    /// A number outside its allowed range (quantity <= 0, negative price, payment <= 0, overflow).
    pub const OUT_OF_RANGE: &str = "out-of-range";
    /// More decimals than allowed (currency minor units, 3 for quantities, 4 for unit prices).
    pub const INVALID_SCALE: &str = "invalid-scale";
    pub const ISSUED_IN_FUTURE: &str = "issued-in-future";
    pub const ISSUED_TOO_EARLY: &str = "issued-too-early";
    pub const INVALID_TAX_ID: &str = "invalid-tax-id";
    pub const UNSUPPORTED_COUNTRY: &str = "unsupported-country";
    pub const UNKNOWN_CURRENCY: &str = "unknown-currency";
    pub const TOO_MANY_LINES: &str = "too-many-lines";
    pub const VAT_RATE_NOT_ALLOWED: &str = "vat-rate-not-allowed";
    pub const NET_AMOUNT_MISMATCH: &str = "net-amount-mismatch";
    pub const VAT_AMOUNT_MISMATCH: &str = "vat-amount-mismatch";
    pub const GROSS_AMOUNT_MISMATCH: &str = "gross-amount-mismatch";
    pub const TOTAL_MISMATCH: &str = "total-mismatch";
    pub const PAYMENT_TOTAL_MISMATCH: &str = "payment-total-mismatch";
    /// The last reason of a list that was cut at [`super::MAX_REASONS`].
    pub const TOO_MANY_REASONS: &str = "too-many-reasons";

    /// Every code above.
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
        INVALID_SCALE,
        ISSUED_IN_FUTURE,
        ISSUED_TOO_EARLY,
        INVALID_TAX_ID,
        UNSUPPORTED_COUNTRY,
        UNKNOWN_CURRENCY,
        TOO_MANY_LINES,
        VAT_RATE_NOT_ALLOWED,
        NET_AMOUNT_MISMATCH,
        VAT_AMOUNT_MISMATCH,
        GROSS_AMOUNT_MISMATCH,
        TOTAL_MISMATCH,
        PAYMENT_TOTAL_MISMATCH,
        TOO_MANY_REASONS,
    ];
}

/// (path, code) of each reason, for assertions.
#[cfg(test)]
pub(crate) fn codes_at(reasons: &[Reason]) -> Vec<(&str, &str)> {
    reasons
        .iter()
        .map(|r| (r.path.as_str(), r.code.as_str()))
        .collect()
}

/// At most this many reasons are returned (the last one saying how many were left out), so a
/// hostile document cannot turn into a multi-megabyte rejection event.
pub(crate) const MAX_REASONS: usize = 500;

/// The documented field order of both formats. Reasons are sorted by path, each segment ranked by
/// its position here, so the order is the documented shape's order whatever order the document
/// used; unknown names sort after known ones, alphabetically; array items sort by index.
const FIELD_ORDER: &[&[&str]] = &[
    &["Receipt"],
    &["receipt_number", "Number"],
    &["issued_at", "IssuedAt"],
    &["seller", "Seller"],
    &["buyer", "Buyer"],
    &["currency", "Currency"],
    &["lines", "Lines"],
    &["totals", "Totals"],
    &["payments", "Payments"],
    &["tax_id", "TaxId"],
    &["name", "Name"],
    &["Line", "Payment"],
    &["description", "Description"],
    &["quantity", "Quantity"],
    &["unit_price", "UnitPrice"],
    &["vat_rate", "VatRate"],
    &["net_amount", "NetAmount"],
    &["vat_amount", "VatAmount"],
    &["gross_amount", "GrossAmount"],
    &["method", "@method"],
    &["amount"],
];

/// Sort key of one path segment: (rank, name for unknown names, index).
type SegmentKey = (usize, String, u64);

fn segment_key(segment: &str) -> SegmentKey {
    // A bare number is a JSON array index.
    if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
        return (0, String::new(), segment.parse().unwrap_or(u64::MAX));
    }
    // `Line[3]` is an XPath step with a 1-based position; without one the position is 1.
    let (name, index) = match segment.strip_suffix(']').and_then(|s| s.rsplit_once('[')) {
        Some((name, index)) => (name, index.parse().unwrap_or(u64::MAX)),
        None => (segment, 1),
    };
    match FIELD_ORDER.iter().position(|names| names.contains(&name)) {
        Some(rank) => (rank, String::new(), index),
        None => (usize::MAX, name.to_owned(), index),
    }
}

fn path_key(path: &str) -> Vec<SegmentKey> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(segment_key)
        .collect()
}

/// Puts `reasons` in their final, deterministic order (stable: reasons on one path keep the
/// order they were found in) and caps their number.
pub(crate) fn finish(mut reasons: Vec<Reason>) -> Vec<Reason> {
    reasons.sort_by_cached_key(|r| path_key(&r.path));
    if reasons.len() > MAX_REASONS {
        let omitted = reasons.len() - (MAX_REASONS - 1);
        reasons.truncate(MAX_REASONS - 1);
        let root = reasons
            .first()
            .map(|r| root_of(&r.path))
            .unwrap_or_default();
        reasons.push(Reason::new(
            root,
            code::TOO_MANY_REASONS,
            format!("{omitted} further reasons were left out; fix the ones above first"),
        ));
    }
    reasons
}

/// The document-level path of the format `path` belongs to: `/` for XPath, `` for JSON Pointer.
fn root_of(path: &str) -> &'static str {
    if path.starts_with("/Receipt") || path == "/" {
        "/"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(reasons: &[Reason]) -> Vec<&str> {
        reasons.iter().map(|r| r.path.as_str()).collect()
    }

    #[test]
    fn json_paths_sort_in_documented_order() {
        let input = [
            "/payments/0/amount",
            "/totals/net_amount",
            "/lines/10/description",
            "/lines/2/gross_amount",
            "/lines/2/vat_amount",
            "/zzz",
            "/lines/2/quantity",
            "/seller/tax_id",
            "",
            "/receipt_number",
            "/aaa",
        ];
        let reasons = input.iter().map(|p| Reason::new(*p, "x", "y")).collect();
        assert_eq!(
            paths(&finish(reasons)),
            [
                "",
                "/receipt_number",
                "/seller/tax_id",
                "/lines/2/quantity",
                "/lines/2/vat_amount",
                "/lines/2/gross_amount",
                "/lines/10/description",
                "/totals/net_amount",
                "/payments/0/amount",
                "/aaa",
                "/zzz",
            ]
        );
    }

    #[test]
    fn xml_paths_sort_in_documented_order() {
        let input = [
            "/Receipt/Payments/Payment[1]/@method",
            "/Receipt/Lines/Line[10]/VatRate",
            "/Receipt/Lines/Line[2]/VatRate",
            "/Receipt/Number[2]",
            "/Receipt/Payments/Payment[1]",
            "/Receipt/Number",
            "/",
        ];
        let reasons = input.iter().map(|p| Reason::new(*p, "x", "y")).collect();
        assert_eq!(
            paths(&finish(reasons)),
            [
                "/",
                "/Receipt/Number",
                "/Receipt/Number[2]",
                "/Receipt/Lines/Line[2]/VatRate",
                "/Receipt/Lines/Line[10]/VatRate",
                "/Receipt/Payments/Payment[1]",
                "/Receipt/Payments/Payment[1]/@method",
            ]
        );
    }

    #[test]
    fn sorting_is_stable_for_one_path() {
        let reasons = vec![
            Reason::new("/a", "first", ""),
            Reason::new("", "root", ""),
            Reason::new("/a", "second", ""),
        ];
        let codes: Vec<_> = finish(reasons).into_iter().map(|r| r.code).collect();
        assert_eq!(codes, ["root", "first", "second"]);
    }

    #[test]
    fn long_lists_are_capped_with_a_final_reason() {
        let reasons = (0..MAX_REASONS + 10)
            .map(|i| Reason::new(format!("/lines/{i}/quantity"), code::REQUIRED, ""))
            .collect();
        let finished = finish(reasons);
        assert_eq!(finished.len(), MAX_REASONS);
        let last = finished.last().expect("not empty");
        assert_eq!(last.code, code::TOO_MANY_REASONS);
        assert_eq!(last.path, "");
        assert!(
            last.message.starts_with("11 further reasons"),
            "{}",
            last.message
        );
    }
}
