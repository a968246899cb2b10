//! The semantic rules: every present field of a [`Draft`] is checked, every failure reported,
//! and the [`NormalizedReceipt`] is built when all required fields could be read.
//!
//! Arithmetic is exact ([`Decimal`]) and overflow-checked; every check uses the amounts as
//! declared (a wrong net amount does not make the line's VAT check fail too).

use chrono::{DateTime, FixedOffset, TimeDelta, TimeZone, Utc};
use receipts_domain::{NormalizedReceipt, Party, Payment, Reason, Totals};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::draft::{Draft, Field, PartyDraft};
use crate::reasons::code;
use crate::{currency, tax_id};

mod amounts;

pub(crate) const MAX_LINES: usize = 1000;
const MAX_RECEIPT_NUMBER_CHARS: usize = 64;
const MAX_TEXT_CHARS: usize = 200;
const QUANTITY_DECIMALS: u32 = 3;
const UNIT_PRICE_DECIMALS: u32 = 4;
pub(crate) const PAYMENT_METHODS: &[&str] = &["cash", "card", "transfer", "voucher", "other"];

/// How far in the future (relative to the submission) an issue time may be: issuers' clocks drift.
fn future_tolerance() -> TimeDelta {
    TimeDelta::minutes(5)
}

/// Receipts issued before this are refused as implausible.
fn earliest_issue() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Checks `draft`; the receipt is `Some` when every required value could be read, and is only
/// meaningful when no reason was found (by this or by the extraction).
pub(crate) fn check(
    draft: &Draft,
    received_at: DateTime<Utc>,
) -> (Option<NormalizedReceipt>, Vec<Reason>) {
    let mut checker = Checker::default();
    let receipt = checker.receipt(draft, received_at);
    (receipt, checker.reasons)
}

/// `value` rounded half away from zero to `decimals`, then shown with exactly that many.
fn round(value: Decimal, decimals: u32) -> Decimal {
    at_scale(
        value.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero),
        decimals,
    )
}

/// `value` with exactly `decimals` decimals; callers make sure no digit is lost.
fn at_scale(value: Decimal, decimals: u32) -> Decimal {
    let mut value = value.normalize();
    if value.scale() <= decimals {
        value.rescale(decimals);
    }
    value
}

/// `value` for a message: at the currency's scale when known and lossless.
fn show(value: Decimal, minor: Option<u32>) -> Decimal {
    match minor {
        Some(minor) => at_scale(value, minor),
        None => value.normalize(),
    }
}

/// The number of decimals that matter (`3.50` has 1).
fn decimals(value: Decimal) -> u32 {
    value.normalize().scale()
}

/// Parses a plain decimal: optional `-`, digits, optionally `.` and digits. No exponent, no `+`,
/// no separators (rust_decimal alone would accept `1_000`).
fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !frac.is_none_or(all_digits) {
        return Err(format!(
            "expected a decimal number such as \"3.50\", found {text:?}"
        ));
    }
    Decimal::from_str_exact(text).map_err(|_| format!("{text:?} has too many digits"))
}

/// The lines' declared amounts added up: net, VAT, gross.
type Sums = [Decimal; 3];

#[derive(Default)]
struct Checker {
    reasons: Vec<Reason>,
}

impl Checker {
    fn fail(&mut self, path: &str, code: &str, message: impl Into<String>) {
        self.reasons.push(Reason::new(path, code, message));
    }

    fn receipt(&mut self, draft: &Draft, received_at: DateTime<Utc>) -> Option<NormalizedReceipt> {
        let receipt_number = draft
            .receipt_number
            .as_ref()
            .and_then(|f| self.receipt_number(f));
        let issued_at = draft
            .issued_at
            .as_ref()
            .and_then(|f| self.issued_at(f, received_at));
        let seller = draft.seller.as_ref().and_then(|p| self.party(p));
        // The VAT table follows the seller's prefix even when the rest of the id is wrong.
        let seller_country = draft
            .seller
            .as_ref()
            .and_then(|p| p.tax_id.as_ref())
            .and_then(|f| tax_id::country_of(&f.value));
        let buyer = draft.buyer.as_ref().map(|p| self.party(p));
        let currency = draft.currency.as_ref().and_then(|f| self.currency(f));
        let minor = currency.as_ref().map(|(_, minor)| *minor);
        let (lines, sums) = match &draft.lines {
            Some(list) => self.lines(list, minor, seller_country),
            None => (None, None),
        };
        let totals = draft
            .totals
            .as_ref()
            .and_then(|t| self.totals(t, minor, sums));
        let payments = match &draft.payments {
            Some(list) => self.payments(list, minor, totals.as_ref().map(|t| t.gross_amount)),
            None => Some(Vec::new()),
        };
        let minor = minor?;
        let buyer = match buyer {
            Some(buyer) => Some(buyer?),
            None => None,
        };
        Some(NormalizedReceipt {
            receipt_number: receipt_number?,
            issued_at: issued_at?,
            seller: seller?,
            buyer,
            currency: currency?.0,
            lines: lines?,
            totals: totals.map(|t| Totals {
                net_amount: at_scale(t.net_amount, minor),
                vat_amount: at_scale(t.vat_amount, minor),
                gross_amount: at_scale(t.gross_amount, minor),
            })?,
            payments: payments?
                .into_iter()
                .map(|p| Payment {
                    method: p.method,
                    amount: at_scale(p.amount, minor),
                })
                .collect(),
        })
    }

    fn receipt_number(&mut self, field: &Field) -> Option<String> {
        let value = &field.value;
        let length = value.chars().count();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-');
        if !(1..=MAX_RECEIPT_NUMBER_CHARS).contains(&length) || !value.chars().all(allowed) {
            self.fail(
                &field.path,
                code::INVALID_FORMAT,
                format!(
                    "expected 1 to {MAX_RECEIPT_NUMBER_CHARS} characters among A-Z, a-z, 0-9, '/', '_', '.', '-', \
                     found {value:?}"
                ),
            );
        }
        Some(value.clone())
    }

    fn issued_at(
        &mut self,
        field: &Field,
        received_at: DateTime<Utc>,
    ) -> Option<DateTime<FixedOffset>> {
        let Ok(issued_at) = DateTime::parse_from_rfc3339(&field.value) else {
            self.fail(
                &field.path,
                code::INVALID_FORMAT,
                format!(
                    "expected an RFC 3339 date-time with a UTC offset such as \"2026-11-20T14:03:00+01:00\", \
                     found {:?}",
                    field.value
                ),
            );
            return None;
        };
        let latest = received_at
            .checked_add_signed(future_tolerance())
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if issued_at.with_timezone(&Utc) > latest {
            self.fail(
                &field.path,
                code::ISSUED_IN_FUTURE,
                format!(
                    "issued at {}, later than the submission time {} (plus 5 minutes)",
                    issued_at.to_rfc3339(),
                    received_at.to_rfc3339()
                ),
            );
        }
        if issued_at.with_timezone(&Utc) < earliest_issue() {
            self.fail(
                &field.path,
                code::ISSUED_TOO_EARLY,
                format!("issued at {}, before 2000-01-01", issued_at.to_rfc3339()),
            );
        }
        Some(issued_at)
    }

    /// Length of a free text: 1 to 200 characters, not blank.
    fn text(&mut self, field: &Field) -> Option<String> {
        let length = field.value.chars().count();
        if field.value.trim().is_empty() || length > MAX_TEXT_CHARS {
            self.fail(
                &field.path,
                code::INVALID_FORMAT,
                format!("expected 1 to {MAX_TEXT_CHARS} characters, not blank, found {length}"),
            );
            return None;
        }
        Some(field.value.clone())
    }

    fn party(&mut self, draft: &PartyDraft) -> Option<Party> {
        let tax_id = draft
            .tax_id
            .as_ref()
            .and_then(|f| match tax_id::parse(&f.value) {
                Ok(id) => Some(id),
                Err(e) => {
                    self.fail(&f.path, e.code(), e.to_string());
                    None
                }
            });
        let name = match &draft.name {
            Some(f) => Some(self.text(f)?),
            None => None,
        };
        let tax_id = tax_id?;
        Some(Party {
            tax_id: tax_id.as_str().to_owned(),
            country: tax_id.country().to_owned(),
            name,
        })
    }

    fn currency(&mut self, field: &Field) -> Option<(String, u32)> {
        match currency::minor_units(&field.value) {
            Some(minor) => Some((field.value.clone(), minor)),
            None => {
                let message = format!(
                    "{:?} is not an active ISO 4217 currency code (such as \"EUR\")",
                    field.value
                );
                self.fail(&field.path, code::UNKNOWN_CURRENCY, message);
                None
            }
        }
    }

    fn decimal(&mut self, field: &Field) -> Option<Decimal> {
        match parse_decimal(&field.value) {
            Ok(value) => Some(value),
            Err(message) => {
                self.fail(&field.path, code::INVALID_FORMAT, message);
                None
            }
        }
    }

    fn max_decimals(&mut self, field: &Field, value: Decimal, max: u32, what: &str) {
        if decimals(value) > max {
            let message = format!("{what} allow at most {max} decimals, found {}", field.value);
            self.fail(&field.path, code::INVALID_SCALE, message);
        }
    }

    /// A money amount: parsed, and with at most the currency's decimals when it is known. The
    /// value is returned even when its scale is wrong, so the arithmetic is still checked.
    fn amount(&mut self, field: &Field, minor: Option<u32>) -> Option<Decimal> {
        let value = self.decimal(field)?;
        if let Some(minor) = minor {
            self.max_decimals(field, value, minor, "amounts in this currency");
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round(dec("0.245"), 2).to_string(), "0.25");
        assert_eq!(round(dec("0.244999"), 2).to_string(), "0.24");
        assert_eq!(
            round(dec("0.255"), 2).to_string(),
            "0.26",
            "not banker's rounding"
        );
        assert_eq!(round(dec("-0.245"), 2).to_string(), "-0.25");
        assert_eq!(round(dec("3.5"), 2).to_string(), "3.50");
        assert_eq!(round(dec("2.5"), 0).to_string(), "3");
        assert_eq!(round(dec("0.0005"), 3).to_string(), "0.001");
    }

    #[test]
    fn decimals_are_parsed_strictly() {
        for ok in ["0", "3.50", "-1.25", "007", "1234567890.123456"] {
            assert!(parse_decimal(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-", ".5", "5.", "+1", "1e3", "1_000", "1,5", " 1", "1.2.3", "NaN", "0x10", "٣",
        ] {
            assert!(parse_decimal(bad).is_err(), "{bad}");
        }
        assert!(
            parse_decimal("99999999999999999999999999999999")
                .expect_err("too long")
                .contains("too many digits")
        );
    }

    #[test]
    fn scale_helpers() {
        assert_eq!(decimals(dec("3.500")), 1);
        assert_eq!(at_scale(dec("3.5"), 2).to_string(), "3.50");
        assert_eq!(at_scale(dec("3.500"), 2).to_string(), "3.50");
        assert_eq!(
            at_scale(dec("3.505"), 2).to_string(),
            "3.505",
            "never loses digits"
        );
        assert_eq!(show(dec("4.7"), None).to_string(), "4.7");
    }
}
