//! Extraction of a [`Draft`] from a `retail-receipt/v1` JSON document, reporting every structural
//! problem (missing, mistyped, unknown and duplicate fields) with its JSON Pointer.

use std::fmt;

use receipts_domain::document::as_utf8;
use receipts_domain::{DocumentError, Reason};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::draft::{Draft, Field, LineDraft, ListDraft, PartyDraft, PaymentDraft, TotalsDraft};
use crate::reasons::code;

const RECEIPT_FIELDS: &[&str] = &[
    "receipt_number",
    "issued_at",
    "seller",
    "buyer",
    "currency",
    "lines",
    "totals",
    "payments",
];
const PARTY_FIELDS: &[&str] = &["tax_id", "name"];
const LINE_FIELDS: &[&str] = &[
    "description",
    "quantity",
    "unit_price",
    "vat_rate",
    "net_amount",
    "vat_amount",
    "gross_amount",
];
const TOTALS_FIELDS: &[&str] = &["net_amount", "vat_amount", "gross_amount"];
const PAYMENT_FIELDS: &[&str] = &["method", "amount"];

/// Extracts the draft of `document`; `None` when the document cannot be read as a JSON object.
pub(crate) fn extract(document: &[u8]) -> (Option<Draft>, Vec<Reason>) {
    let mut extractor = Extractor::default();
    let draft = extractor.document(document);
    (draft, extractor.reasons)
}

/// A JSON value that, unlike `serde_json::Value`, keeps object members in document order and
/// keeps duplicate keys, so duplicates can be reported instead of silently taking the last one.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// The number in plain decimal notation (no exponent).
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

/// The key serde_json uses for numbers when its `arbitrary_precision` feature is on (another
/// crate of the build may turn it on); such numbers arrive as a one-member map.
const ARBITRARY_PRECISION_KEY: &str = "$serde_json::private::Number";

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        // Rust prints the shortest decimal that reads back as the same f64, never with an
        // exponent, so "3.5" stays "3.5" and 1e-7 becomes "0.0000001".
        Ok(Json::Number(format!("{v}")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            members.push((key, value));
        }
        if let [(key, Json::String(number))] = members.as_slice()
            && key == ARBITRARY_PRECISION_KEY
        {
            return Ok(Json::Number(number.clone()));
        }
        Ok(Json::Object(members))
    }
}

/// How a configured type reads JSON (`[json]` of its manifest).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reading {
    /// Members (by name, wherever they are) whose JSON number is read as its decimal text
    /// (`3.5` as `"3.5"`), so amounts may be sent as numbers or strings alike.
    #[serde(default)]
    pub numbers_as_text: Vec<String>,
    /// A member whose value is `null` is read as absent.
    #[serde(default)]
    pub null_is_absent: bool,
}

/// Parses a JSON document strictly for the configured receipt types: a repeated member is a
/// `duplicate` reason at its pointer (the first occurrence is kept, as the built-in rules do).
pub(crate) fn parse_strict(
    text: &str,
    reading: &Reading,
) -> Result<(serde_json::Value, Vec<Reason>), serde_json::Error> {
    let json: Json = serde_json::from_str(text)?;
    let mut duplicates = Vec::new();
    let value = to_value(json, "", false, reading, &mut duplicates);
    Ok((value, duplicates))
}

/// `as_text`: whether this value is a member whose numbers are read as text.
fn to_value(
    json: Json,
    path: &str,
    as_text: bool,
    reading: &Reading,
    duplicates: &mut Vec<Reason>,
) -> serde_json::Value {
    use serde_json::Value;
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(text) if as_text => Value::String(text),
        Json::Number(text) => text
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .unwrap_or(Value::String(text)),
        Json::String(text) => Value::String(text),
        Json::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| to_value(item, &format!("{path}/{i}"), false, reading, duplicates))
                .collect(),
        ),
        Json::Object(members) => {
            let mut object = serde_json::Map::new();
            let mut seen = std::collections::HashSet::new();
            for (key, value) in members {
                let member = format!("{path}/{}", escape(&key));
                if !seen.insert(key.clone()) {
                    duplicates.push(Reason::new(
                        member,
                        code::DUPLICATE,
                        format!("the member {key:?} appears more than once"),
                    ));
                    continue;
                }
                if reading.null_is_absent && value == Json::Null {
                    continue;
                }
                let as_text = reading.numbers_as_text.contains(&key);
                let value = to_value(value, &member, as_text, reading, duplicates);
                object.insert(key, value);
            }
            Value::Object(object)
        }
    }
}

/// For every object of the JSON `text` that has a `properties` object (a schema), the property
/// names in the order written, by the JSON Pointer of that schema object.
pub(crate) fn declared_properties(
    text: &str,
) -> Result<std::collections::HashMap<String, Vec<String>>, serde_json::Error> {
    let json: Json = serde_json::from_str(text)?;
    let mut found = std::collections::HashMap::new();
    collect_properties(&json, "", &mut found);
    Ok(found)
}

fn collect_properties(
    json: &Json,
    at: &str,
    found: &mut std::collections::HashMap<String, Vec<String>>,
) {
    match json {
        Json::Object(members) => {
            if let Some((_, Json::Object(properties))) =
                members.iter().find(|(k, _)| k == "properties")
            {
                found.insert(
                    at.to_owned(),
                    properties.iter().map(|(k, _)| k.clone()).collect(),
                );
            }
            for (key, value) in members {
                collect_properties(value, &format!("{at}/{}", escape(key)), found);
            }
        }
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_properties(item, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// RFC 6901 escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The known members of one object, first occurrence of each.
struct Object<'a> {
    path: String,
    members: Vec<(&'a str, &'a Json)>,
}

impl<'a> Object<'a> {
    /// The member `name`, `null` counting as absent.
    fn get(&self, name: &str) -> Option<&'a Json> {
        self.members
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .filter(|v| **v != Json::Null)
    }

    fn child(&self, name: &str) -> String {
        format!("{}/{}", self.path, escape(name))
    }
}

#[derive(Default)]
struct Extractor {
    reasons: Vec<Reason>,
}

impl Extractor {
    fn fail(&mut self, path: impl Into<String>, code: &str, message: impl Into<String>) {
        self.reasons.push(Reason::new(path, code, message));
    }

    fn document(&mut self, bytes: &[u8]) -> Option<Draft> {
        let text = match as_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                self.fail("", code::INVALID_DOCUMENT, e.to_string());
                return None;
            }
        };
        if text.trim().is_empty() {
            self.fail("", code::INVALID_DOCUMENT, DocumentError::Empty.to_string());
            return None;
        }
        let root: Json = match serde_json::from_str(text) {
            Ok(root) => root,
            Err(e) => {
                let error = DocumentError::MalformedJson {
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                };
                self.fail("", code::INVALID_DOCUMENT, error.to_string());
                return None;
            }
        };
        if !matches!(root, Json::Object(_)) {
            self.fail(
                "",
                code::INVALID_DOCUMENT,
                DocumentError::JsonNotObject.to_string(),
            );
            return None;
        }
        let receipt = self.object(&root, "", RECEIPT_FIELDS)?;
        Some(Draft {
            receipt_number: self.string(&receipt, "receipt_number", true),
            issued_at: self.string(&receipt, "issued_at", true),
            seller: self
                .required(&receipt, "seller")
                .and_then(|v| self.party(v, receipt.child("seller"))),
            buyer: receipt
                .get("buyer")
                .and_then(|v| self.party(v, receipt.child("buyer"))),
            currency: self.string(&receipt, "currency", true),
            lines: self
                .list(&receipt, "lines", true)
                .map(|(path, items)| self.lines(path, items)),
            totals: self
                .required(&receipt, "totals")
                .and_then(|v| self.totals(v, receipt.child("totals"))),
            payments: self
                .list(&receipt, "payments", false)
                .map(|(path, items)| self.payments(path, items)),
        })
    }

    /// `value` as an object with members `known`; reports a wrong type, unknown and duplicate
    /// members.
    fn object<'a>(&mut self, value: &'a Json, path: &str, known: &[&str]) -> Option<Object<'a>> {
        let Json::Object(entries) = value else {
            self.fail(
                path,
                code::INVALID_TYPE,
                format!("expected an object, found {}", value.kind()),
            );
            return None;
        };
        let mut object = Object {
            path: path.to_owned(),
            members: Vec::new(),
        };
        for (key, value) in entries {
            let child = object.child(key);
            if !known.contains(&key.as_str()) {
                let expected = known.join(", ");
                self.fail(
                    child,
                    code::UNKNOWN_FIELD,
                    format!("unknown field {key:?}; the fields are {expected}"),
                );
            } else if object.members.iter().any(|(k, _)| k == key) {
                self.fail(
                    child,
                    code::DUPLICATE,
                    format!("field {key:?} appears more than once"),
                );
            } else {
                object.members.push((key.as_str(), value));
            }
        }
        Some(object)
    }

    fn required<'a>(&mut self, object: &Object<'a>, name: &str) -> Option<&'a Json> {
        let value = object.get(name);
        if value.is_none() {
            self.fail(
                object.child(name),
                code::REQUIRED,
                format!("{name} is required"),
            );
        }
        value
    }

    fn member<'a>(&mut self, object: &Object<'a>, name: &str, required: bool) -> Option<&'a Json> {
        if required {
            self.required(object, name)
        } else {
            object.get(name)
        }
    }

    fn string(&mut self, object: &Object<'_>, name: &str, required: bool) -> Option<Field> {
        match self.member(object, name, required)? {
            Json::String(s) => Some(Field::new(object.child(name), s.as_str())),
            other => {
                let message = format!("expected a string, found {}", other.kind());
                self.fail(object.child(name), code::INVALID_TYPE, message);
                None
            }
        }
    }

    /// A required decimal: a JSON string (recommended, exact) or a JSON number.
    fn decimal(&mut self, object: &Object<'_>, name: &str) -> Option<Field> {
        match self.required(object, name)? {
            Json::String(s) | Json::Number(s) => Some(Field::new(object.child(name), s.as_str())),
            other => {
                let message = format!(
                    "expected a decimal number such as \"3.50\", found {}",
                    other.kind()
                );
                self.fail(object.child(name), code::INVALID_TYPE, message);
                None
            }
        }
    }

    fn list<'a>(
        &mut self,
        object: &Object<'a>,
        name: &str,
        required: bool,
    ) -> Option<(String, &'a [Json])> {
        match self.member(object, name, required)? {
            Json::Array(items) => Some((object.child(name), items.as_slice())),
            other => {
                let message = format!("expected an array, found {}", other.kind());
                self.fail(object.child(name), code::INVALID_TYPE, message);
                None
            }
        }
    }

    fn party(&mut self, value: &Json, path: String) -> Option<PartyDraft> {
        let party = self.object(value, &path, PARTY_FIELDS)?;
        Some(PartyDraft {
            tax_id: self.string(&party, "tax_id", true),
            name: self.string(&party, "name", false),
            path,
        })
    }

    fn lines(&mut self, path: String, items: &[Json]) -> ListDraft<LineDraft> {
        let items = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{path}/{i}");
                // A line that is not an object stays in the list, empty, so that sums over the
                // lines are known to be incomplete.
                let Some(line) = self.object(item, &path, LINE_FIELDS) else {
                    return LineDraft {
                        path,
                        ..LineDraft::default()
                    };
                };
                LineDraft {
                    description: self.string(&line, "description", true),
                    quantity: self.decimal(&line, "quantity"),
                    unit_price: self.decimal(&line, "unit_price"),
                    vat_rate: self.decimal(&line, "vat_rate"),
                    net_amount: self.decimal(&line, "net_amount"),
                    vat_amount: self.decimal(&line, "vat_amount"),
                    gross_amount: self.decimal(&line, "gross_amount"),
                    path,
                }
            })
            .collect();
        ListDraft { path, items }
    }

    fn totals(&mut self, value: &Json, path: String) -> Option<TotalsDraft> {
        let totals = self.object(value, &path, TOTALS_FIELDS)?;
        Some(TotalsDraft {
            net_amount: self.decimal(&totals, "net_amount"),
            vat_amount: self.decimal(&totals, "vat_amount"),
            gross_amount: self.decimal(&totals, "gross_amount"),
            path,
        })
    }

    fn payments(&mut self, path: String, items: &[Json]) -> ListDraft<PaymentDraft> {
        let items = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{path}/{i}");
                let Some(payment) = self.object(item, &path, PAYMENT_FIELDS) else {
                    return PaymentDraft {
                        path,
                        ..PaymentDraft::default()
                    };
                };
                PaymentDraft {
                    method: self.string(&payment, "method", true),
                    amount: self.decimal(&payment, "amount"),
                    path,
                }
            })
            .collect();
        ListDraft { path, items }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reasons::codes_at;

    const MINIMAL: &str = r#"{
        "receipt_number": "1", "issued_at": "2026-11-20T14:03:00+01:00",
        "seller": {"tax_id": "DE136695976"}, "currency": "EUR",
        "lines": [{"description": "x", "quantity": 1, "unit_price": 3.5, "vat_rate": "7",
                   "net_amount": "3.50", "vat_amount": "0.25", "gross_amount": "3.75"}],
        "totals": {"net_amount": "3.50", "vat_amount": "0.25", "gross_amount": "3.75"}
    }"#;

    #[test]
    fn extracts_every_field_with_its_pointer() {
        let (draft, reasons) = extract(MINIMAL.as_bytes());
        assert!(reasons.is_empty(), "{reasons:?}");
        let draft = draft.expect("draft");
        assert_eq!(
            draft.receipt_number,
            Some(Field::new("/receipt_number", "1"))
        );
        let seller = draft.seller.expect("seller");
        assert_eq!(
            seller.tax_id,
            Some(Field::new("/seller/tax_id", "DE136695976"))
        );
        assert_eq!(seller.name, None);
        assert_eq!(draft.buyer, None);
        assert_eq!(draft.payments, None);
        let lines = draft.lines.expect("lines");
        assert_eq!(lines.path, "/lines");
        assert_eq!(
            lines.items[0].quantity,
            Some(Field::new("/lines/0/quantity", "1"))
        );
        assert_eq!(
            lines.items[0].unit_price,
            Some(Field::new("/lines/0/unit_price", "3.5"))
        );
        assert_eq!(
            lines.items[0].vat_rate,
            Some(Field::new("/lines/0/vat_rate", "7"))
        );
    }

    #[test]
    fn numbers_keep_plain_decimal_notation() {
        for (number, text) in [
            ("1e-7", "0.0000001"),
            ("2.50", "2.5"),
            ("-0", "-0"),
            ("12", "12"),
            ("1E3", "1000"),
        ] {
            let json: Json = serde_json::from_str(number).expect("number");
            assert_eq!(json, Json::Number(text.into()), "{number}");
        }
    }

    #[test]
    fn unreadable_documents() {
        for (doc, fragment) in [
            (&b"\xff{}"[..], "UTF-8"),
            (b"  ", "empty"),
            (b"{\"a\": }", "malformed JSON"),
            (b"[1]", "object"),
            (b"\"x\"", "object"),
        ] {
            let (draft, reasons) = extract(doc);
            assert!(draft.is_none());
            assert_eq!(codes_at(&reasons), [("", "invalid-document")]);
            assert!(
                reasons[0].message.contains(fragment),
                "{}",
                reasons[0].message
            );
        }
    }

    #[test]
    fn structural_errors_are_all_reported() {
        let doc = r#"{
            "receipt_number": 12, "issued_at": null, "seller": "DE136695976",
            "buyer": {"tax_id": "FR40303265045", "vat": 1},
            "currency": "EUR", "currency": "USD", "extra/field~": true,
            "lines": [7, {"description": "x", "quantity": "1", "unit_price": [], "vat_rate": "7",
                          "net_amount": "1", "vat_amount": "0", "gross_amount": {}}],
            "totals": {"net_amount": "1", "vat_amount": "0"},
            "payments": {"method": "cash"}
        }"#;
        let (draft, reasons) = extract(doc.as_bytes());
        assert!(draft.is_some());
        let mut found = codes_at(&reasons);
        found.sort();
        let mut expected = vec![
            ("/receipt_number", "invalid-type"),
            ("/issued_at", "required"),
            ("/seller", "invalid-type"),
            ("/buyer/vat", "unknown-field"),
            ("/currency", "duplicate"),
            ("/extra~1field~0", "unknown-field"),
            ("/lines/0", "invalid-type"),
            ("/lines/1/unit_price", "invalid-type"),
            ("/lines/1/gross_amount", "invalid-type"),
            ("/totals/gross_amount", "required"),
            ("/payments", "invalid-type"),
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn missing_everything() {
        let (draft, reasons) = extract(b"{}");
        let draft = draft.expect("draft");
        assert_eq!(draft, Draft::default());
        let paths: Vec<_> = reasons.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/receipt_number",
                "/issued_at",
                "/seller",
                "/currency",
                "/lines",
                "/totals"
            ]
        );
        assert!(reasons.iter().all(|r| r.code == "required"));
    }

    #[test]
    fn non_object_lines_keep_their_place() {
        let (draft, _) = extract(br#"{"lines": [1, {}], "payments": [null]}"#);
        let draft = draft.expect("draft");
        let lines = draft.lines.expect("lines");
        assert_eq!(lines.items.len(), 2);
        assert_eq!(
            lines.items[0],
            LineDraft {
                path: "/lines/0".into(),
                ..LineDraft::default()
            }
        );
        assert_eq!(draft.payments.expect("payments").items.len(), 1);
    }
}
