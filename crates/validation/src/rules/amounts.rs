//! The amounts: lines, totals and payments, each checked against what it declares and the sums
//! of the others.

use receipts_domain::{Line, Payment, Totals};
use rust_decimal::Decimal;

use super::{
    Checker, MAX_LINES, PAYMENT_METHODS, QUANTITY_DECIMALS, Sums, UNIT_PRICE_DECIMALS, at_scale,
    round, show,
};
use crate::draft::{Field, LineDraft, ListDraft, PaymentDraft, TotalsDraft};
use crate::reasons::code;
use crate::vat_rates;

impl Checker {
    /// Returns the lines when every one could be read, and their sums when every amount could.
    pub(super) fn lines(
        &mut self,
        list: &ListDraft<LineDraft>,
        minor: Option<u32>,
        seller_country: Option<&str>,
    ) -> (Option<Vec<Line>>, Option<Sums>) {
        if list.items.is_empty() {
            self.fail(&list.path, code::REQUIRED, "at least one line is required");
        }
        if list.items.len() > MAX_LINES {
            let message = format!(
                "at most {MAX_LINES} lines are allowed, found {}",
                list.items.len()
            );
            self.fail(&list.path, code::TOO_MANY_LINES, message);
        }
        let mut lines = Some(Vec::with_capacity(list.items.len()));
        // `None` as soon as one line's amounts are unknown (or too large to add up).
        let mut sums = Some([Decimal::ZERO; 3]);
        let mut overflow = false;
        for item in &list.items {
            let (line, amounts) = self.line(item, minor, seller_country);
            lines = lines.zip(line).map(|(mut lines, line)| {
                lines.push(line);
                lines
            });
            sums = match (sums, amounts) {
                (Some(sums), Some(amounts)) => {
                    let total = add(sums, amounts);
                    overflow |= total.is_none();
                    total
                }
                _ => None,
            };
        }
        if overflow {
            self.fail(
                &list.path,
                code::OUT_OF_RANGE,
                "the lines' amounts are too large to add up",
            );
        }
        (lines, sums)
    }

    /// One line: the line when every value could be read, and its (net, VAT, gross) amounts.
    fn line(
        &mut self,
        draft: &LineDraft,
        minor: Option<u32>,
        seller_country: Option<&str>,
    ) -> (Option<Line>, Option<Sums>) {
        let description = draft.description.as_ref().and_then(|f| self.text(f));
        let quantity = draft.quantity.as_ref().and_then(|f| {
            let value = self.decimal(f)?;
            if value <= Decimal::ZERO {
                self.fail(
                    &f.path,
                    code::OUT_OF_RANGE,
                    format!("the quantity must be greater than 0, found {}", f.value),
                );
            }
            self.max_decimals(f, value, QUANTITY_DECIMALS, "quantities");
            Some(value)
        });
        let unit_price = draft.unit_price.as_ref().and_then(|f| {
            let value = self.decimal(f)?;
            if value < Decimal::ZERO {
                self.fail(
                    &f.path,
                    code::OUT_OF_RANGE,
                    format!("the unit price must not be negative, found {}", f.value),
                );
            }
            self.max_decimals(f, value, UNIT_PRICE_DECIMALS, "unit prices");
            Some(value)
        });
        let vat_rate = draft.vat_rate.as_ref().and_then(|f| {
            let value = self.decimal(f)?;
            if !vat_rates::is_allowed(seller_country, value) {
                let allowed = vat_rates::describe_allowed(seller_country);
                self.fail(
                    &f.path,
                    code::VAT_RATE_NOT_ALLOWED,
                    format!("{} is not allowed: {allowed}", f.value),
                );
            }
            Some(value)
        });
        let net = draft
            .net_amount
            .as_ref()
            .and_then(|f| self.amount(f, minor));
        let vat = draft
            .vat_amount
            .as_ref()
            .and_then(|f| self.amount(f, minor));
        let gross = draft
            .gross_amount
            .as_ref()
            .and_then(|f| self.amount(f, minor));

        if let (Some(field), Some(q), Some(p), Some(net), Some(minor)) =
            (&draft.net_amount, quantity, unit_price, net, minor)
        {
            match q.checked_mul(p) {
                Some(product) => self.expect_equal(
                    field,
                    net,
                    round(product, minor),
                    code::NET_AMOUNT_MISMATCH,
                    "quantity × unit price, rounded",
                ),
                None => self.fail(
                    &field.path,
                    code::OUT_OF_RANGE,
                    "quantity × unit price is too large",
                ),
            }
        }
        if let (Some(field), Some(net), Some(rate), Some(vat), Some(minor)) =
            (&draft.vat_amount, net, vat_rate, vat, minor)
        {
            match net
                .checked_mul(rate)
                .and_then(|x| x.checked_div(Decimal::ONE_HUNDRED))
            {
                Some(tax) => self.expect_equal(
                    field,
                    vat,
                    round(tax, minor),
                    code::VAT_AMOUNT_MISMATCH,
                    "net amount × VAT rate, rounded",
                ),
                None => self.fail(
                    &field.path,
                    code::OUT_OF_RANGE,
                    "net amount × VAT rate is too large",
                ),
            }
        }
        self.check_gross(draft.gross_amount.as_ref(), net, vat, gross, minor);

        let amounts = net.zip(vat).zip(gross).map(|((n, v), g)| [n, v, g]);
        let line = (|| {
            let minor = minor?;
            let [net_amount, vat_amount, gross_amount] = amounts?;
            Some(Line {
                description: description?,
                quantity: quantity?.normalize(),
                unit_price: at_scale(unit_price?, minor),
                vat_rate: vat_rate?.normalize(),
                net_amount: at_scale(net_amount, minor),
                vat_amount: at_scale(vat_amount, minor),
                gross_amount: at_scale(gross_amount, minor),
            })
        })();
        (line, amounts)
    }

    /// gross == net + VAT, for a line or for the totals.
    fn check_gross(
        &mut self,
        field: Option<&Field>,
        net: Option<Decimal>,
        vat: Option<Decimal>,
        gross: Option<Decimal>,
        minor: Option<u32>,
    ) {
        let (Some(field), Some(net), Some(vat), Some(gross)) = (field, net, vat, gross) else {
            return;
        };
        match net.checked_add(vat) {
            Some(sum) => self.expect_equal(
                field,
                gross,
                show(sum, minor),
                code::GROSS_AMOUNT_MISMATCH,
                "net + VAT",
            ),
            None => self.fail(&field.path, code::OUT_OF_RANGE, "net + VAT is too large"),
        }
    }

    fn expect_equal(
        &mut self,
        field: &Field,
        found: Decimal,
        expected: Decimal,
        code: &str,
        rule: &str,
    ) {
        if found != expected {
            self.fail(
                &field.path,
                code,
                format!("expected {expected} ({rule}), found {}", field.value),
            );
        }
    }

    pub(super) fn totals(
        &mut self,
        draft: &TotalsDraft,
        minor: Option<u32>,
        sums: Option<Sums>,
    ) -> Option<Totals> {
        let net = draft
            .net_amount
            .as_ref()
            .and_then(|f| self.amount(f, minor));
        let vat = draft
            .vat_amount
            .as_ref()
            .and_then(|f| self.amount(f, minor));
        let gross = draft
            .gross_amount
            .as_ref()
            .and_then(|f| self.amount(f, minor));
        if let Some([net_sum, vat_sum, gross_sum]) = sums {
            for (field, value, sum, what) in [
                (&draft.net_amount, net, net_sum, "net"),
                (&draft.vat_amount, vat, vat_sum, "VAT"),
                (&draft.gross_amount, gross, gross_sum, "gross"),
            ] {
                if let (Some(field), Some(value)) = (field, value) {
                    let rule = format!("the sum of the lines' {what} amounts");
                    self.expect_equal(field, value, show(sum, minor), code::TOTAL_MISMATCH, &rule);
                }
            }
        }
        self.check_gross(draft.gross_amount.as_ref(), net, vat, gross, minor);
        Some(Totals {
            net_amount: net?,
            vat_amount: vat?,
            gross_amount: gross?,
        })
    }

    pub(super) fn payments(
        &mut self,
        list: &ListDraft<PaymentDraft>,
        minor: Option<u32>,
        gross_total: Option<Decimal>,
    ) -> Option<Vec<Payment>> {
        let mut payments = Some(Vec::with_capacity(list.items.len()));
        // The amounts add up even when a method is wrong; `None` once one amount is unknown.
        let mut amounts = Some(Vec::with_capacity(list.items.len()));
        for item in &list.items {
            let (payment, amount) = self.payment(item, minor);
            payments = payments.zip(payment).map(|(mut payments, payment)| {
                payments.push(payment);
                payments
            });
            amounts = amounts.zip(amount).map(|(mut amounts, amount)| {
                amounts.push(amount);
                amounts
            });
        }
        if let (Some(amounts), Some(gross_total)) = (amounts, gross_total)
            && !amounts.is_empty()
        {
            match amounts
                .iter()
                .try_fold(Decimal::ZERO, |sum, amount| sum.checked_add(*amount))
            {
                Some(sum) if sum == gross_total => {}
                Some(sum) => self.fail(
                    &list.path,
                    code::PAYMENT_TOTAL_MISMATCH,
                    format!(
                        "the payments add up to {}, the gross total is {}",
                        show(sum, minor),
                        show(gross_total, minor)
                    ),
                ),
                None => self.fail(
                    &list.path,
                    code::OUT_OF_RANGE,
                    "the payments are too large to add up",
                ),
            }
        }
        payments
    }

    /// One payment when it could be read, and its amount when that could.
    fn payment(
        &mut self,
        draft: &PaymentDraft,
        minor: Option<u32>,
    ) -> (Option<Payment>, Option<Decimal>) {
        let method = draft.method.as_ref().and_then(|f| {
            if PAYMENT_METHODS.contains(&f.value.as_str()) {
                Some(f.value.clone())
            } else {
                let message = format!(
                    "expected one of {}, found {:?}",
                    PAYMENT_METHODS.join(", "),
                    f.value
                );
                self.fail(&f.path, code::INVALID_FORMAT, message);
                None
            }
        });
        let amount = draft.amount.as_ref().and_then(|f| {
            let value = self.amount(f, minor)?;
            if value <= Decimal::ZERO {
                self.fail(
                    &f.path,
                    code::OUT_OF_RANGE,
                    format!("a payment must be greater than 0, found {}", f.value),
                );
            }
            Some(value)
        });
        let payment = method
            .zip(amount)
            .map(|(method, amount)| Payment { method, amount });
        (payment, amount)
    }
}

fn add(sums: Sums, amounts: Sums) -> Option<Sums> {
    Some([
        sums[0].checked_add(amounts[0])?,
        sums[1].checked_add(amounts[1])?,
        sums[2].checked_add(amounts[2])?,
    ])
}
