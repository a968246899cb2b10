//! Extraction of a [`Draft`] from a `retail-receipt-xml/v1` document, reporting every structural
//! problem (missing, unknown and duplicate elements, misplaced text) with its XPath.
//!
//! Elements are matched by local name within [`NAMESPACE`], in any order. Text values are
//! trimmed. Attributes in the XML Schema instance namespace (`xsi:schemaLocation`) are ignored;
//! any other attribute but `Payment/@method` is an unknown field.

use receipts_domain::document::{as_utf8, parse_xml};
use receipts_domain::{DocumentError, Reason};
use roxmltree::Node;

use crate::draft::{Draft, Field, LineDraft, ListDraft, PartyDraft, PaymentDraft, TotalsDraft};
use crate::reasons::code;

/// The namespace of every element of a `retail-receipt-xml/v1` document.
pub(crate) const NAMESPACE: &str = "urn:receipts:retail-receipt:v1";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

const RECEIPT_ELEMENTS: &[&str] = &[
    "Number", "IssuedAt", "Seller", "Buyer", "Currency", "Lines", "Totals", "Payments",
];
const PARTY_ELEMENTS: &[&str] = &["TaxId", "Name"];
const LINE_ELEMENTS: &[&str] = &[
    "Description",
    "Quantity",
    "UnitPrice",
    "VatRate",
    "NetAmount",
    "VatAmount",
    "GrossAmount",
];
const TOTALS_ELEMENTS: &[&str] = &["NetAmount", "VatAmount", "GrossAmount"];

/// Path of reasons about the whole document.
const DOCUMENT_PATH: &str = "/";

/// Extracts the draft of `document`; `None` when it is not a well-formed receipt document.
pub(crate) fn extract(document: &[u8]) -> (Option<Draft>, Vec<Reason>) {
    let mut extractor = Extractor::default();
    let draft = extractor.document(document);
    (draft, extractor.reasons)
}

/// The child elements of one element, sorted into the expected single ones (first occurrence)
/// and the items of its one repeated element.
struct Children<'a, 'input> {
    path: String,
    singles: Vec<(&'static str, Node<'a, 'input>)>,
    repeated: Vec<Node<'a, 'input>>,
}

impl<'a, 'input> Children<'a, 'input> {
    fn get(&self, name: &str) -> Option<Node<'a, 'input>> {
        self.singles
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, node)| *node)
    }

    fn child(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
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
                self.fail(DOCUMENT_PATH, code::INVALID_DOCUMENT, e.to_string());
                return None;
            }
        };
        if text.trim().is_empty() {
            self.fail(
                DOCUMENT_PATH,
                code::INVALID_DOCUMENT,
                DocumentError::Empty.to_string(),
            );
            return None;
        }
        let document = match parse_xml(text) {
            Ok(document) => document,
            Err(e) => {
                self.fail(DOCUMENT_PATH, code::INVALID_DOCUMENT, e.to_string());
                return None;
            }
        };
        let root = document.root_element();
        let name = root.tag_name();
        if name.name() != "Receipt" || name.namespace() != Some(NAMESPACE) {
            let found = match name.namespace() {
                Some(ns) => format!("{} in namespace {ns}", name.name()),
                None => format!("{} without a namespace", name.name()),
            };
            let message =
                format!("the root element must be Receipt in namespace {NAMESPACE}, found {found}");
            self.fail(DOCUMENT_PATH, code::INVALID_DOCUMENT, message);
            return None;
        }
        let receipt = self.children(root, "/Receipt", RECEIPT_ELEMENTS, None, &[]);
        Some(Draft {
            receipt_number: self.leaf_child(&receipt, "Number", true),
            issued_at: self.leaf_child(&receipt, "IssuedAt", true),
            seller: self
                .required(&receipt, "Seller")
                .map(|n| self.party(n, receipt.child("Seller"))),
            buyer: receipt
                .get("Buyer")
                .map(|n| self.party(n, receipt.child("Buyer"))),
            currency: self.leaf_child(&receipt, "Currency", true),
            lines: self
                .required(&receipt, "Lines")
                .map(|n| self.lines(n, receipt.child("Lines"))),
            totals: self
                .required(&receipt, "Totals")
                .map(|n| self.totals(n, receipt.child("Totals"))),
            payments: receipt
                .get("Payments")
                .map(|n| self.payments(n, receipt.child("Payments"))),
        })
    }

    /// Sorts the children of `node` and reports unknown, duplicate and misplaced content.
    fn children<'a, 'input>(
        &mut self,
        node: Node<'a, 'input>,
        path: &str,
        singles: &[&'static str],
        repeated: Option<&'static str>,
        attributes: &[&str],
    ) -> Children<'a, 'input> {
        self.attributes(node, path, attributes);
        let mut children = Children {
            path: path.to_owned(),
            singles: Vec::new(),
            repeated: Vec::new(),
        };
        let mut occurrences: Vec<(&str, usize)> = Vec::new();
        let mut text_reported = false;
        for child in node.children() {
            if child.is_text() {
                if !text_reported && child.text().is_some_and(|t| !t.trim().is_empty()) {
                    self.fail(
                        path,
                        code::INVALID_TYPE,
                        "expected child elements only, found text",
                    );
                    text_reported = true;
                }
                continue;
            }
            if !child.is_element() {
                continue; // comments and processing instructions
            }
            let name = child.tag_name();
            let local = name.name();
            if name.namespace() != Some(NAMESPACE) {
                let ns = name
                    .namespace()
                    .map_or_else(|| "no namespace".to_owned(), |ns| format!("namespace {ns}"));
                self.fail(
                    format!("{path}/{local}"),
                    code::UNKNOWN_FIELD,
                    format!("element {local} in {ns} is not part of the receipt; use {NAMESPACE}"),
                );
            } else if repeated == Some(local) {
                children.repeated.push(child);
            } else if let Some(known) = singles.iter().find(|s| **s == local) {
                match occurrences.iter_mut().find(|(n, _)| n == known) {
                    Some((_, count)) => {
                        *count += 1;
                        self.fail(
                            format!("{path}/{local}[{count}]"),
                            code::DUPLICATE,
                            format!("element {local} appears more than once"),
                        );
                    }
                    None => {
                        occurrences.push((known, 1));
                        children.singles.push((known, child));
                    }
                }
            } else {
                let mut expected: Vec<&str> = singles.to_vec();
                expected.extend(repeated);
                self.fail(
                    format!("{path}/{local}"),
                    code::UNKNOWN_FIELD,
                    format!(
                        "unknown element {local}; the elements here are {}",
                        expected.join(", ")
                    ),
                );
            }
        }
        children
    }

    fn attributes(&mut self, node: Node<'_, '_>, path: &str, allowed: &[&str]) {
        for attribute in node.attributes() {
            let known = match attribute.namespace() {
                Some(ns) => ns == XSI,
                None => allowed.contains(&attribute.name()),
            };
            if !known {
                let name = attribute.name();
                self.fail(
                    format!("{path}/@{name}"),
                    code::UNKNOWN_FIELD,
                    format!("unknown attribute {name}"),
                );
            }
        }
    }

    fn required<'a, 'input>(
        &mut self,
        children: &Children<'a, 'input>,
        name: &str,
    ) -> Option<Node<'a, 'input>> {
        let node = children.get(name);
        if node.is_none() {
            self.fail(
                children.child(name),
                code::REQUIRED,
                format!("element {name} is required"),
            );
        }
        node
    }

    /// The trimmed text of an element that must hold text only.
    fn leaf(&mut self, node: Node<'_, '_>, path: String, attributes: &[&str]) -> Option<Field> {
        self.attributes(node, &path, attributes);
        if node.children().any(|c| c.is_element()) {
            self.fail(
                path,
                code::INVALID_TYPE,
                "expected text only, found child elements",
            );
            return None;
        }
        let text: String = node
            .children()
            .filter(|c| c.is_text())
            .filter_map(|c| c.text())
            .collect();
        Some(Field::new(path, text.trim()))
    }

    fn leaf_child(
        &mut self,
        children: &Children<'_, '_>,
        name: &str,
        required: bool,
    ) -> Option<Field> {
        let node = if required {
            self.required(children, name)?
        } else {
            children.get(name)?
        };
        self.leaf(node, children.child(name), &[])
    }

    fn party(&mut self, node: Node<'_, '_>, path: String) -> PartyDraft {
        let party = self.children(node, &path, PARTY_ELEMENTS, None, &[]);
        PartyDraft {
            tax_id: self.leaf_child(&party, "TaxId", true),
            name: self.leaf_child(&party, "Name", false),
            path,
        }
    }

    fn lines(&mut self, node: Node<'_, '_>, path: String) -> ListDraft<LineDraft> {
        let lines = self.children(node, &path, &[], Some("Line"), &[]);
        let items = lines
            .repeated
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let path = format!("{path}/Line[{}]", i + 1);
                let line = self.children(*line, &path, LINE_ELEMENTS, None, &[]);
                LineDraft {
                    description: self.leaf_child(&line, "Description", true),
                    quantity: self.leaf_child(&line, "Quantity", true),
                    unit_price: self.leaf_child(&line, "UnitPrice", true),
                    vat_rate: self.leaf_child(&line, "VatRate", true),
                    net_amount: self.leaf_child(&line, "NetAmount", true),
                    vat_amount: self.leaf_child(&line, "VatAmount", true),
                    gross_amount: self.leaf_child(&line, "GrossAmount", true),
                    path,
                }
            })
            .collect();
        ListDraft { path, items }
    }

    fn totals(&mut self, node: Node<'_, '_>, path: String) -> TotalsDraft {
        let totals = self.children(node, &path, TOTALS_ELEMENTS, None, &[]);
        TotalsDraft {
            net_amount: self.leaf_child(&totals, "NetAmount", true),
            vat_amount: self.leaf_child(&totals, "VatAmount", true),
            gross_amount: self.leaf_child(&totals, "GrossAmount", true),
            path,
        }
    }

    fn payments(&mut self, node: Node<'_, '_>, path: String) -> ListDraft<PaymentDraft> {
        let payments = self.children(node, &path, &[], Some("Payment"), &[]);
        let items = payments
            .repeated
            .iter()
            .enumerate()
            .map(|(i, payment)| {
                let path = format!("{path}/Payment[{}]", i + 1);
                let method_path = format!("{path}/@method");
                let method = match payment.attribute("method") {
                    Some(method) => Some(Field::new(method_path, method.trim())),
                    None => {
                        self.fail(method_path, code::REQUIRED, "attribute method is required");
                        None
                    }
                };
                PaymentDraft {
                    method,
                    amount: self.leaf(*payment, path.clone(), &["method"]),
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

    const MINIMAL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<r:Receipt xmlns:r="urn:receipts:retail-receipt:v1"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="x y">
  <!-- prefixed elements are matched by namespace, not by prefix -->
  <r:IssuedAt> 2026-11-20T14:03:00+01:00 </r:IssuedAt>
  <r:Number>A-1</r:Number>
  <r:Seller><r:TaxId>DE136695976</r:TaxId><r:Name>B &amp; B</r:Name></r:Seller>
  <r:Currency><![CDATA[EUR]]></r:Currency>
  <r:Lines>
    <r:Line><r:Description>x</r:Description><r:Quantity>1</r:Quantity><r:UnitPrice>3.5</r:UnitPrice>
      <r:VatRate>7</r:VatRate><r:NetAmount>3.50</r:NetAmount><r:VatAmount>0.25</r:VatAmount>
      <r:GrossAmount>3.75</r:GrossAmount></r:Line>
  </r:Lines>
  <r:Totals><r:NetAmount>3.50</r:NetAmount><r:VatAmount>0.25</r:VatAmount><r:GrossAmount>3.75</r:GrossAmount></r:Totals>
  <r:Payments><r:Payment method=" card ">3.75</r:Payment></r:Payments>
</r:Receipt>"#;

    #[test]
    fn extracts_every_field_with_its_xpath() {
        let (draft, reasons) = extract(MINIMAL.as_bytes());
        assert!(reasons.is_empty(), "{reasons:?}");
        let draft = draft.expect("draft");
        assert_eq!(
            draft.receipt_number,
            Some(Field::new("/Receipt/Number", "A-1"))
        );
        assert_eq!(
            draft.issued_at,
            Some(Field::new("/Receipt/IssuedAt", "2026-11-20T14:03:00+01:00"))
        );
        assert_eq!(draft.currency, Some(Field::new("/Receipt/Currency", "EUR")));
        let seller = draft.seller.expect("seller");
        assert_eq!(
            seller.name,
            Some(Field::new("/Receipt/Seller/Name", "B & B"))
        );
        let lines = draft.lines.expect("lines");
        assert_eq!(
            lines.items[0].vat_amount,
            Some(Field::new("/Receipt/Lines/Line[1]/VatAmount", "0.25"))
        );
        let payments = draft.payments.expect("payments");
        assert_eq!(
            payments.items[0].method,
            Some(Field::new("/Receipt/Payments/Payment[1]/@method", "card"))
        );
        assert_eq!(
            payments.items[0].amount,
            Some(Field::new("/Receipt/Payments/Payment[1]", "3.75"))
        );
    }

    #[test]
    fn unreadable_documents() {
        for (doc, fragment) in [
            (&b"\xff<a/>"[..], "UTF-8"),
            (b"", "empty"),
            (b"<Receipt>", "malformed XML"),
            (
                b"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x \"y\">]><r>&x;</r>",
                "DTD",
            ),
            (b"<Receipt/>", "without a namespace"),
            (b"<Receipt xmlns=\"urn:other\"/>", "in namespace urn:other"),
            (
                b"<Invoice xmlns=\"urn:receipts:retail-receipt:v1\"/>",
                "found Invoice",
            ),
        ] {
            let (draft, reasons) = extract(doc);
            assert!(draft.is_none());
            assert_eq!(codes_at(&reasons), [("/", "invalid-document")]);
            assert!(
                reasons[0].message.contains(fragment),
                "{}",
                reasons[0].message
            );
        }
    }

    #[test]
    fn structural_errors_are_all_reported() {
        let doc = r#"<Receipt xmlns="urn:receipts:retail-receipt:v1" version="1">
  <Number>1</Number><Number>2</Number><Number>3</Number>
  stray text
  <Seller><TaxId><b>DE</b></TaxId></Seller>
  <Buyer><TaxId x="1">FR40303265045</TaxId><Vat/></Buyer>
  <Lines><Line><Description>x</Description></Line><Item/></Lines>
  <Totals/>
  <Payments><Payment>1.00</Payment></Payments>
  <Extra xmlns="urn:other"/>
</Receipt>"#;
        let (draft, reasons) = extract(doc.as_bytes());
        assert!(draft.is_some());
        let mut found = codes_at(&reasons);
        found.sort();
        let mut expected = vec![
            ("/Receipt", "invalid-type"),
            ("/Receipt/@version", "unknown-field"),
            ("/Receipt/Number[2]", "duplicate"),
            ("/Receipt/Number[3]", "duplicate"),
            ("/Receipt/Extra", "unknown-field"),
            ("/Receipt/IssuedAt", "required"),
            ("/Receipt/Currency", "required"),
            ("/Receipt/Seller/TaxId", "invalid-type"),
            ("/Receipt/Buyer/TaxId/@x", "unknown-field"),
            ("/Receipt/Buyer/Vat", "unknown-field"),
            ("/Receipt/Lines/Item", "unknown-field"),
            ("/Receipt/Lines/Line[1]/Quantity", "required"),
            ("/Receipt/Lines/Line[1]/UnitPrice", "required"),
            ("/Receipt/Lines/Line[1]/VatRate", "required"),
            ("/Receipt/Lines/Line[1]/NetAmount", "required"),
            ("/Receipt/Lines/Line[1]/VatAmount", "required"),
            ("/Receipt/Lines/Line[1]/GrossAmount", "required"),
            ("/Receipt/Totals/NetAmount", "required"),
            ("/Receipt/Totals/VatAmount", "required"),
            ("/Receipt/Totals/GrossAmount", "required"),
            ("/Receipt/Payments/Payment[1]/@method", "required"),
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn empty_receipt() {
        let (draft, reasons) = extract(br#"<Receipt xmlns="urn:receipts:retail-receipt:v1"/>"#);
        assert_eq!(draft, Some(Draft::default()));
        let paths: Vec<_> = reasons.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/Receipt/Number",
                "/Receipt/IssuedAt",
                "/Receipt/Seller",
                "/Receipt/Currency",
                "/Receipt/Lines",
                "/Receipt/Totals"
            ]
        );
    }
}
