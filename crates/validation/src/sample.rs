//! Sample receipt documents for tests, demos and load generation: realistic, reproducible from a
//! seed, and either valid or carrying at least two distinct real errors.

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use receipts_domain::{DocumentFormat, ReceiptType};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::json;

use crate::tax_id;

/// The namespace of `retail-receipt-xml/v1` (its mapping, `receipt-types/retail-receipt/v1/xml.toml`).
const NAMESPACE: &str = "urn:receipts:retail-receipt:v1";

/// A company with a real-format VAT id (correct check digits) and the same id with a wrong one.
struct Company {
    tax_id: &'static str,
    invalid_tax_id: &'static str,
    name: &'static str,
    currency: &'static str,
    /// UTC offset in November, in hours.
    utc_offset: i32,
}

const COMPANIES: &[Company] = &[
    company(
        "DE136695976",
        "DE136695977",
        "Bäckerei Beispiel GmbH",
        "EUR",
        1,
    ),
    company(
        "ATU13585627",
        "ATU13585628",
        "Wiener Kaffeehaus KG",
        "EUR",
        1,
    ),
    company(
        "BE0417497106",
        "BE0417497107",
        "Brasserie du Parc SA",
        "EUR",
        1,
    ),
    company(
        "FR40303265045",
        "FR41303265045",
        "Épicerie du Marché SARL",
        "EUR",
        1,
    ),
    company(
        "IT00743110157",
        "IT00743110158",
        "Trattoria da Mario S.r.l.",
        "EUR",
        1,
    ),
    company(
        "PL5260250995",
        "PL5260250996",
        "Sklep Spożywczy Sp. z o.o.",
        "PLN",
        1,
    ),
    company("DK13585628", "DK13585629", "Bageriet ApS", "DKK", 1),
    company(
        "PT501964843",
        "PT501964844",
        "Pastelaria Lisboa Lda",
        "EUR",
        0,
    ),
    company(
        "NL004495445B01",
        "NL004495446B01",
        "Bakkerij Van Dijk B.V.",
        "EUR",
        1,
    ),
    company("FI20774740", "FI20774741", "Kahvila Helsinki Oy", "EUR", 2),
    company(
        "SE556043606401",
        "SE556043606501",
        "Konditori Stockholm AB",
        "SEK",
        1,
    ),
];

const fn company(
    tax_id: &'static str,
    invalid_tax_id: &'static str,
    name: &'static str,
    currency: &'static str,
    utc_offset: i32,
) -> Company {
    Company {
        tax_id,
        invalid_tax_id,
        name,
        currency,
        utc_offset,
    }
}

/// Something sold: name, price range in cents, whether it has a reduced VAT rate (food,
/// books, ...) and whether it is sold by weight.
struct Product {
    name: &'static str,
    price_cents: (i64, i64),
    reduced: bool,
    by_weight: bool,
}

const fn product(
    name: &'static str,
    price_cents: (i64, i64),
    reduced: bool,
    by_weight: bool,
) -> Product {
    Product {
        name,
        price_cents,
        reduced,
        by_weight,
    }
}

const PRODUCTS: &[Product] = &[
    product("Roggenbrot", (250, 550), true, false),
    product("Croissant", (90, 250), true, false),
    product("Espresso", (150, 350), false, false),
    product("Cappuccino", (250, 550), false, false),
    product("Mineral water 0.5 l", (60, 250), true, false),
    product("Apple juice 1 l", (120, 400), true, false),
    product("Cheese sandwich", (300, 750), true, false),
    product("Chocolate bar", (80, 350), true, false),
    product("Newspaper", (150, 450), true, false),
    product("Umbrella", (800, 2999), false, false),
    product("Phone charger", (999, 3999), false, false),
    product("Olive oil 0.75 l", (599, 1499), true, false),
    product("Bananas", (129, 299), true, true),
    product("Tomatoes", (199, 599), true, true),
    product("Cheese, sliced", (999, 2999), true, true),
    product("Coffee beans 250 g", (399, 1299), true, false),
    product("Notebook A5", (199, 899), false, false),
    product("Ballpoint pen", (99, 499), false, false),
    product("Toothpaste", (149, 499), false, false),
    product("Batteries AA, pack of 4", (299, 999), false, false),
];

/// Every sample is issued this long (or less) before 2026-11-20T10:00:00Z.
const SPREAD_SECONDS: u64 = 86_400;

/// A real error that can be put into an otherwise valid sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defect {
    /// The first line's VAT amount is 0.01 too high.
    WrongVatAmount,
    /// The seller's VAT id has a wrong check digit.
    InvalidTaxId,
    /// `XEU`, the withdrawn ECU code.
    UnknownCurrency,
    /// The net total is 1.00 too high.
    WrongNetTotal,
    /// The first line uses 33 %, a rate no country has.
    RateNotAllowed,
    /// Issued in 2099.
    IssuedInFuture,
    /// No receipt number.
    MissingNumber,
}

const DEFECTS: &[Defect] = &[
    Defect::WrongVatAmount,
    Defect::InvalidTaxId,
    Defect::UnknownCurrency,
    Defect::WrongNetTotal,
    Defect::RateNotAllowed,
    Defect::IssuedInFuture,
    Defect::MissingNumber,
];

struct SampleLine {
    description: &'static str,
    quantity: Decimal,
    unit_price: Decimal,
    vat_rate: Decimal,
    net: Decimal,
    vat: Decimal,
    gross: Decimal,
}

struct Sample {
    receipt_number: Option<String>,
    issued_at: String,
    seller_tax_id: &'static str,
    seller_name: &'static str,
    buyer_tax_id: Option<&'static str>,
    currency: &'static str,
    lines: Vec<SampleLine>,
    totals: [Decimal; 3],
    payments: Vec<(&'static str, Decimal)>,
}

/// Returns one document of `receipt_type`, unique per `seed` (its receipt number contains the
/// seed) and always the same for one seed. Valid unless `valid` is false, in which case it has
/// at least two distinct real errors (e.g. a wrong VAT amount and an invalid tax id).
///
/// Documents are issued up to a day before 2026-11-20T10:00:00Z, so they validate with any
/// `received_at` from then on.
pub fn generate(receipt_type: &ReceiptType, valid: bool, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sample = Sample::random(&mut rng, seed);
    if !valid {
        for defect in DEFECTS.choose_multiple(&mut rng, 2) {
            sample.apply(*defect);
        }
    }
    match receipt_type.format() {
        DocumentFormat::Json => sample.to_json(),
        DocumentFormat::Xml => sample.to_xml(),
    }
}

fn round2(value: Decimal) -> Decimal {
    let mut value = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    value.rescale(2);
    value
}

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl Sample {
    fn random(rng: &mut StdRng, seed: u64) -> Self {
        let seller = &COMPANIES[rng.random_range(0..COMPANIES.len())];
        let buyer = if rng.random_bool(0.3) {
            let others: Vec<&Company> = COMPANIES
                .iter()
                .filter(|c| c.tax_id != seller.tax_id)
                .collect();
            others.choose(rng).map(|c| c.tax_id)
        } else {
            None
        };

        let offset = FixedOffset::east_opt(seller.utc_offset * 3600).unwrap_or_else(|| Utc.fix());
        let seconds_before = i64::try_from(seed % SPREAD_SECONDS).unwrap_or(0);
        let issued = (base_time() - TimeDelta::seconds(seconds_before)).with_timezone(&offset);
        let issued_at = issued.to_rfc3339();

        // The rates of the VAT table the built-in retail type validates with, on the issue day.
        let rates = tax_id::country_of(seller.tax_id)
            .map(|country| crate::types::TypeSet::builtin().vat_rates(country, issued.date_naive()))
            .filter(|rates| !rates.is_empty())
            .unwrap_or_else(|| vec![Decimal::from(20)]);
        let standard = rates.first().copied().unwrap_or_default();
        let reduced: Vec<Decimal> = rates
            .iter()
            .copied()
            .filter(|r| *r != standard && !r.is_zero())
            .collect();
        let line_count = rng.random_range(1..=5);
        let lines: Vec<SampleLine> = (0..line_count)
            .map(|_| {
                let product = &PRODUCTS[rng.random_range(0..PRODUCTS.len())];
                let quantity = if product.by_weight {
                    Decimal::new(rng.random_range(100..=2500), 3)
                } else {
                    Decimal::from(rng.random_range(1..=4))
                };
                let (low, high) = product.price_cents;
                let unit_price = if rng.random_bool(0.9) {
                    Decimal::new(rng.random_range(low..=high), 2)
                } else {
                    // Some tills price to a tenth of a cent (fuel, bulk goods).
                    Decimal::new(rng.random_range(low * 100..=high * 100), 4)
                };
                let vat_rate = match (product.reduced, reduced.choose(rng)) {
                    (true, Some(rate)) => *rate,
                    _ => standard,
                };
                let net = round2(quantity * unit_price);
                let vat = round2(net * vat_rate / Decimal::ONE_HUNDRED);
                SampleLine {
                    description: product.name,
                    quantity,
                    unit_price,
                    vat_rate,
                    net,
                    vat,
                    gross: net + vat,
                }
            })
            .collect();
        let totals = lines.iter().fold([Decimal::ZERO; 3], |[n, v, g], line| {
            [n + line.net, v + line.vat, g + line.gross]
        });

        let gross = totals[2];
        let cent = Decimal::new(1, 2);
        let payments = match rng.random_range(0..10) {
            0..=1 => Vec::new(),
            2..=6 => vec![(["cash", "card"][rng.random_range(0..2)], gross)],
            _ if gross > cent => {
                // Part paid with a voucher, the rest by card.
                let cents = i64::try_from((gross * Decimal::ONE_HUNDRED).trunc())
                    .unwrap_or(2)
                    .max(2);
                let first = Decimal::new(rng.random_range(1..cents), 2);
                vec![("voucher", first), ("card", gross - first)]
            }
            _ => vec![("other", gross)],
        };

        Sample {
            receipt_number: Some(format!("K{}-{seed:08}", rng.random_range(1..=9))),
            issued_at,
            seller_tax_id: seller.tax_id,
            seller_name: seller.name,
            buyer_tax_id: buyer,
            currency: seller.currency,
            lines,
            totals,
            payments,
        }
    }

    fn apply(&mut self, defect: Defect) {
        match defect {
            Defect::WrongVatAmount => {
                if let Some(line) = self.lines.first_mut() {
                    line.vat += Decimal::new(1, 2);
                }
            }
            Defect::InvalidTaxId => {
                if let Some(company) = COMPANIES.iter().find(|c| c.tax_id == self.seller_tax_id) {
                    self.seller_tax_id = company.invalid_tax_id;
                }
            }
            Defect::UnknownCurrency => self.currency = "XEU",
            Defect::WrongNetTotal => self.totals[0] += Decimal::ONE,
            Defect::RateNotAllowed => {
                if let Some(line) = self.lines.first_mut() {
                    line.vat_rate = Decimal::from(33);
                }
            }
            Defect::IssuedInFuture => self.issued_at = "2099-01-01T00:00:00+00:00".to_owned(),
            Defect::MissingNumber => self.receipt_number = None,
        }
    }

    fn to_json(&self) -> Vec<u8> {
        let lines: Vec<serde_json::Value> = self
            .lines
            .iter()
            .map(|l| {
                json!({
                    "description": l.description,
                    "quantity": l.quantity.to_string(),
                    "unit_price": l.unit_price.to_string(),
                    "vat_rate": l.vat_rate.to_string(),
                    "net_amount": l.net.to_string(),
                    "vat_amount": l.vat.to_string(),
                    "gross_amount": l.gross.to_string(),
                })
            })
            .collect();
        let mut document = json!({
            "issued_at": self.issued_at,
            "seller": {"tax_id": self.seller_tax_id, "name": self.seller_name},
            "currency": self.currency,
            "lines": lines,
            "totals": {
                "net_amount": self.totals[0].to_string(),
                "vat_amount": self.totals[1].to_string(),
                "gross_amount": self.totals[2].to_string(),
            },
        });
        if let Some(receipt) = document.as_object_mut() {
            if let Some(number) = &self.receipt_number {
                receipt.insert("receipt_number".into(), json!(number));
            }
            if let Some(buyer) = self.buyer_tax_id {
                receipt.insert("buyer".into(), json!({ "tax_id": buyer }));
            }
            if !self.payments.is_empty() {
                let payments: Vec<_> = self
                    .payments
                    .iter()
                    .map(|(method, amount)| json!({"method": method, "amount": amount.to_string()}))
                    .collect();
                receipt.insert("payments".into(), json!(payments));
            }
        }
        format!("{document:#}").into_bytes()
    }

    fn to_xml(&self) -> Vec<u8> {
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Receipt xmlns=\"{NAMESPACE}\">\n"
        );
        if let Some(number) = &self.receipt_number {
            xml += &format!("  <Number>{}</Number>\n", escape(number));
        }
        xml += &format!("  <IssuedAt>{}</IssuedAt>\n", escape(&self.issued_at));
        xml += &format!(
            "  <Seller><TaxId>{}</TaxId><Name>{}</Name></Seller>\n",
            escape(self.seller_tax_id),
            escape(self.seller_name)
        );
        if let Some(buyer) = self.buyer_tax_id {
            xml += &format!("  <Buyer><TaxId>{}</TaxId></Buyer>\n", escape(buyer));
        }
        xml += &format!(
            "  <Currency>{}</Currency>\n  <Lines>\n",
            escape(self.currency)
        );
        for l in &self.lines {
            xml += &format!(
                "    <Line><Description>{}</Description><Quantity>{}</Quantity><UnitPrice>{}</UnitPrice>\
                 <VatRate>{}</VatRate><NetAmount>{}</NetAmount><VatAmount>{}</VatAmount>\
                 <GrossAmount>{}</GrossAmount></Line>\n",
                escape(l.description),
                l.quantity,
                l.unit_price,
                l.vat_rate,
                l.net,
                l.vat,
                l.gross
            );
        }
        xml += &format!(
            "  </Lines>\n  <Totals><NetAmount>{}</NetAmount><VatAmount>{}</VatAmount>\
             <GrossAmount>{}</GrossAmount></Totals>\n",
            self.totals[0], self.totals[1], self.totals[2]
        );
        if !self.payments.is_empty() {
            xml += "  <Payments>";
            for (method, amount) in &self.payments {
                xml += &format!("<Payment method=\"{}\">{amount}</Payment>", escape(method));
            }
            xml += "</Payments>\n";
        }
        xml += "</Receipt>\n";
        xml.into_bytes()
    }
}

/// Escapes text for XML content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::validate;

    fn received_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0)
            .single()
            .expect("valid date")
    }

    #[test]
    fn companies_have_valid_ids_and_broken_twins() {
        for c in COMPANIES {
            assert!(tax_id::parse(c.tax_id).is_ok(), "{}", c.tax_id);
            assert!(
                tax_id::parse(c.invalid_tax_id).is_err(),
                "{}",
                c.invalid_tax_id
            );
            assert!(
                crate::currency::minor_units(c.currency) == Some(2),
                "{}",
                c.currency
            );
        }
        assert!(crate::currency::minor_units("XEU").is_none());
    }

    #[test]
    fn valid_samples_validate_and_both_formats_agree() {
        let mut numbers = HashSet::new();
        for seed in 0..200 {
            let mut receipts = Vec::new();
            for receipt_type in ReceiptType::builtin() {
                let document = generate(&receipt_type, true, seed);
                let receipt =
                    validate(&receipt_type, &document, received_at()).unwrap_or_else(|reasons| {
                        panic!(
                            "seed {seed}, {receipt_type}: {reasons:#?}\n{}",
                            String::from_utf8_lossy(&document)
                        )
                    });
                receipts.push(receipt);
            }
            assert_eq!(
                receipts[0], receipts[1],
                "seed {seed}: JSON and XML samples describe the same receipt"
            );
            assert!(
                numbers.insert(receipts[0].receipt_number.clone()),
                "seed {seed}: duplicate number"
            );
        }
    }

    #[test]
    fn invalid_samples_have_at_least_two_distinct_errors() {
        for seed in 0..200 {
            for receipt_type in ReceiptType::builtin() {
                let document = generate(&receipt_type, false, seed);
                let reasons =
                    validate(&receipt_type, &document, received_at()).expect_err("invalid sample");
                let codes: HashSet<_> = reasons.iter().map(|r| r.code.as_str()).collect();
                assert!(
                    codes.len() >= 2,
                    "seed {seed}, {receipt_type}: {reasons:#?}"
                );
            }
        }
    }

    #[test]
    fn generation_is_deterministic_and_varied() {
        let json = &ReceiptType::builtin()[0];
        assert_eq!(generate(json, true, 7), generate(json, true, 7));
        assert_ne!(generate(json, true, 7), generate(json, true, 8));
        assert_ne!(generate(json, true, 7), generate(json, false, 7));
        let distinct: HashSet<Vec<u8>> = (0..50).map(|seed| generate(json, true, seed)).collect();
        assert_eq!(distinct.len(), 50);
    }

    #[test]
    fn every_defect_is_an_error() {
        let json = &ReceiptType::builtin()[0];
        for defect in DEFECTS {
            for seed in 0..20 {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut sample = Sample::random(&mut rng, seed);
                sample.apply(*defect);
                let result = validate(json, &sample.to_json(), received_at());
                assert!(result.is_err(), "{defect:?} seed {seed} went unnoticed");
            }
        }
    }
}
