//! The typed core every receipt type maps to (seller, issue time, currency, lines, totals,
//! payments), read from the canonical JSON once it passed the schema and the rules, and the
//! type-specific rest: the extension.

use chrono::DateTime;
use receipts_domain::{Line, NormalizedReceipt, Party, Payment, Totals};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::decimal::{at_scale, parse_plain};
use crate::{currency, tax_id};

/// Top-level fields of the core.
pub(crate) const CORE_FIELDS: &[&str] = &[
    "receipt_number",
    "issued_at",
    "seller",
    "buyer",
    "currency",
    "lines",
    "totals",
    "payments",
];
/// Fields of a core line.
pub(crate) const LINE_FIELDS: &[&str] = &[
    "description",
    "quantity",
    "unit_price",
    "vat_rate",
    "net_amount",
    "vat_amount",
    "gross_amount",
];

/// The core of `document`, or what is missing (a type whose schema lets a document through
/// without its core is a broken type: `types check` runs this over the valid examples).
pub(crate) fn core(document: &Value) -> Result<NormalizedReceipt, String> {
    // `at` names the object for messages; the members are read directly (no pointer parsing).
    let text = |object: &Value, at: &str, name: &str| -> Result<String, String> {
        object
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the core field {at}/{name} is missing or not a string"))
    };
    let currency = text(document, "", "currency")?;
    let minor = currency::minor_units(&currency)
        .ok_or_else(|| format!("{currency:?} is not an ISO 4217 currency"))?;
    let amount = |value: Decimal| at_scale(value, minor);
    let decimal = |object: &Value, at: &str, name: &str| -> Result<Decimal, String> {
        parse_plain(&text(object, at, name)?).map_err(|e| format!("{at}/{name}: {e}"))
    };
    let party = |at: &str| -> Result<Option<Party>, String> {
        let Some(object) = document.get(&at[1..]) else {
            return Ok(None);
        };
        let tax_id =
            tax_id::parse(&text(object, at, "tax_id")?).map_err(|e| format!("{at}/tax_id: {e}"))?;
        Ok(Some(Party {
            tax_id: tax_id.as_str().to_owned(),
            country: tax_id.country().to_owned(),
            name: text(object, at, "name").ok(),
        }))
    };
    let issued_at = DateTime::parse_from_rfc3339(&text(document, "", "issued_at")?)
        .map_err(|e| format!("/issued_at: {e}"))?;
    let items = |name: &str| document.get(name).and_then(Value::as_array);
    let lines = items("lines")
        .ok_or("the core field /lines is missing")?
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let at = format!("/lines/{i}");
            Ok(Line {
                description: text(line, &at, "description")?,
                quantity: decimal(line, &at, "quantity")?.normalize(),
                unit_price: amount(decimal(line, &at, "unit_price")?),
                vat_rate: decimal(line, &at, "vat_rate")?.normalize(),
                net_amount: amount(decimal(line, &at, "net_amount")?),
                vat_amount: amount(decimal(line, &at, "vat_amount")?),
                gross_amount: amount(decimal(line, &at, "gross_amount")?),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let payments = items("payments")
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, payment)| {
            let at = format!("/payments/{i}");
            Ok(Payment {
                method: text(payment, &at, "method")?,
                amount: amount(decimal(payment, &at, "amount")?),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let totals = document
        .get("totals")
        .ok_or("the core field /totals is missing")?;
    Ok(NormalizedReceipt {
        receipt_number: text(document, "", "receipt_number")?,
        issued_at,
        seller: party("/seller")?.ok_or("the core field /seller is missing")?,
        buyer: party("/buyer")?,
        currency,
        lines,
        totals: Totals {
            net_amount: amount(decimal(totals, "/totals", "net_amount")?),
            vat_amount: amount(decimal(totals, "/totals", "vat_amount")?),
            gross_amount: amount(decimal(totals, "/totals", "gross_amount")?),
        },
        payments,
    })
}

/// The core's shape: for each core field, the fields of its objects (or of its array's items).
const PARTY: &[&str] = &["tax_id", "name"];
const TOTALS: &[&str] = &["net_amount", "vat_amount", "gross_amount"];
const PAYMENT: &[&str] = &["method", "amount"];

fn core_shape(field: &str) -> Option<&'static [&'static str]> {
    match field {
        "seller" | "buyer" => Some(PARTY),
        "totals" => Some(TOTALS),
        "lines" => Some(LINE_FIELDS),
        "payments" => Some(PAYMENT),
        _ => None,
    }
}

/// Everything of `document` outside the core, in the document's shape: top-level fields, and
/// under a core field the type's own fields of that object (or of each item of that array,
/// one object per item, only when some item has any). `None` when there is nothing.
pub(crate) fn extension(document: &Value) -> Option<Value> {
    let object = document.as_object()?;
    let extra = |value: &Value, known: &[&str]| -> Map<String, Value> {
        value
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(name, _)| !known.contains(&name.as_str()))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut extension = Map::new();
    for (name, value) in object {
        if !CORE_FIELDS.contains(&name.as_str()) {
            extension.insert(name.clone(), value.clone());
            continue;
        }
        let Some(known) = core_shape(name) else {
            continue;
        };
        match value {
            Value::Array(items) => {
                let extras: Vec<Value> = items
                    .iter()
                    .map(|item| Value::Object(extra(item, known)))
                    .collect();
                if extras
                    .iter()
                    .any(|e| e.as_object().is_some_and(|o| !o.is_empty()))
                {
                    extension.insert(name.clone(), Value::Array(extras));
                }
            }
            other => {
                let extras = extra(other, known);
                if !extras.is_empty() {
                    extension.insert(name.clone(), Value::Object(extras));
                }
            }
        }
    }
    (!extension.is_empty()).then_some(Value::Object(extension))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_extension() {
        let document = serde_json::json!({
            "receipt_number": "A-1", "issued_at": "2026-11-14T08:12:31+01:00",
            "seller": {"tax_id": "DE136695976", "address": "Hauptstr. 1"}, "currency": "EUR",
            "table": "12", "tip": "2.00",
            "lines": [{"description": "Soup", "quantity": "1", "unit_price": "5.5", "vat_rate": "7",
                       "net_amount": "5.5", "vat_amount": "0.39", "gross_amount": "5.89", "course": "starter"}],
            "totals": {"net_amount": "5.5", "vat_amount": "0.39", "gross_amount": "5.89"}
        });
        let core = core(&document).expect("core");
        assert_eq!(core.seller.country, "DE");
        assert_eq!(core.totals.net_amount.to_string(), "5.50");
        assert_eq!(core.lines[0].unit_price.to_string(), "5.50");
        assert!(core.payments.is_empty() && core.buyer.is_none());
        assert_eq!(
            extension(&document),
            Some(
                serde_json::json!({"table": "12", "tip": "2.00", "seller": {"address": "Hauptstr. 1"}, "lines": [{"course": "starter"}]})
            )
        );
        let missing = serde_json::json!({"currency": "EUR"});
        assert!(super::core(&missing).is_err());
    }
}
