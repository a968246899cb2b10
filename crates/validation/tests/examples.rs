//! The example documents in `examples/receipts/` validate as their manifest says.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::Utc;
use receipts_domain::{DocumentFormat, ReceiptType};
use receipts_validation::validate;
use serde_json::Value;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/receipts")
}

/// The codes each rejected example is there to show (it may have more).
const SHOWS: &[(&str, &[&str])] = &[
    (
        "retail-invalid-totals.json",
        &[
            "vat-amount-mismatch",
            "net-amount-mismatch",
            "total-mismatch",
            "gross-amount-mismatch",
            "payment-total-mismatch",
        ],
    ),
    (
        "retail-invalid-fields.json",
        &[
            "required",
            "invalid-tax-id",
            "unsupported-country",
            "unknown-currency",
        ],
    ),
    (
        "retail-xml-invalid.xml",
        &[
            "invalid-format",
            "invalid-tax-id",
            "duplicate",
            "vat-rate-not-allowed",
            "unknown-field",
        ],
    ),
];

struct Entry {
    file: String,
    content_type: String,
    receipt_type: String,
    expect: String,
}

fn manifest() -> Vec<Entry> {
    let path = examples_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: Value = serde_json::from_str(&text).expect("manifest is JSON");
    let field = |entry: &Value, name: &str| -> String {
        entry[name]
            .as_str()
            .unwrap_or_else(|| panic!("manifest entry without {name}: {entry}"))
            .to_owned()
    };
    value
        .as_array()
        .expect("manifest is an array")
        .iter()
        .map(|entry| Entry {
            file: field(entry, "file"),
            content_type: field(entry, "content_type"),
            receipt_type: field(entry, "receipt_type"),
            expect: field(entry, "expect"),
        })
        .collect()
}

#[test]
fn examples_validate_as_the_manifest_says() {
    let received_at = Utc::now();
    let mut failures = Vec::new();
    for entry in manifest() {
        let document = std::fs::read(examples_dir().join(&entry.file)).expect("example file");
        let receipt_type = ReceiptType::lookup(&entry.receipt_type).expect("known receipt type");
        let format = DocumentFormat::from_content_type(&entry.content_type).expect("content type");
        assert_eq!(
            format,
            receipt_type.format(),
            "{}: content type and receipt type disagree",
            entry.file
        );
        assert!(
            format.check_well_formed(&document).is_ok(),
            "{}: not well-formed",
            entry.file
        );

        match (
            entry.expect.as_str(),
            validate(&receipt_type, &document, received_at),
        ) {
            ("ACCEPTED", Ok(_)) => {}
            ("ACCEPTED", Err(reasons)) => {
                failures.push(format!("{} should validate: {reasons:#?}", entry.file))
            }
            ("REJECTED", Ok(_)) => failures.push(format!("{} should be rejected", entry.file)),
            ("REJECTED", Err(reasons)) => {
                let codes: BTreeSet<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
                let shows = SHOWS
                    .iter()
                    .find(|(file, _)| *file == entry.file)
                    .map_or(&[][..], |(_, codes)| *codes);
                for code in shows {
                    if !codes.contains(code) {
                        failures.push(format!(
                            "{} should show {code}, got {reasons:#?}",
                            entry.file
                        ));
                    }
                }
            }
            (other, _) => failures.push(format!("{}: unknown expectation {other:?}", entry.file)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_example_file_is_in_the_manifest() {
    let listed: BTreeSet<String> = manifest().into_iter().map(|e| e.file).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(examples_dir())
        .expect("examples directory")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "manifest.json")
        .collect();
    assert_eq!(listed, on_disk);
    for required in [
        "retail-valid.json",
        "retail-valid-multi-rate.json",
        "retail-invalid-totals.json",
        "retail-invalid-fields.json",
        "retail-xml-valid.xml",
        "retail-xml-invalid.xml",
    ] {
        assert!(listed.contains(required), "{required} missing");
    }
}
