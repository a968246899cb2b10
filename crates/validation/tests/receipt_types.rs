//! The receipt types shipped in `receipt-types/` pass `receipts types check`: schemas valid,
//! rules compile and name schema fields, mappings complete, every example gives exactly its
//! expected reasons.

use std::path::Path;

use receipts_validation::types::check_dir;

#[test]
fn shipped_receipt_types_pass_the_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../receipt-types");
    let errors = check_dir(&dir);
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(listed.is_empty(), "\n{}", listed.join("\n"));
}

/// JSON documents of configured types are read strictly: a member given twice is a
/// `duplicate` reason at its pointer (never silently the last value), and `null` is a type error
/// where the schema wants a value.
#[test]
fn repeated_json_members_are_reported() {
    use receipts_domain::DocumentFormat;
    use receipts_validation::types::TypeSet;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../receipt-types");
    let (types, errors) = TypeSet::load(&dir, None);
    assert!(errors.is_empty(), "{errors:?}");
    let valid = types
        .sample("restaurant-bill/v1", DocumentFormat::Json, true, 1)
        .expect("sample");
    let at = chrono::Utc::now();
    assert!(
        types
            .validate("restaurant-bill/v1", DocumentFormat::Json, &valid, at)
            .is_ok()
    );
    let text = String::from_utf8(valid).expect("utf-8");
    let repeated = text.replacen('{', r#"{"currency": "USD","#, 1);
    let reasons = types
        .validate(
            "restaurant-bill/v1",
            DocumentFormat::Json,
            repeated.as_bytes(),
            at,
        )
        .expect_err("a repeated member");
    let found: Vec<(&str, &str)> = reasons
        .iter()
        .map(|r| (r.path.as_str(), r.code.as_str()))
        .collect();
    assert!(found.contains(&("/currency", "duplicate")), "{found:?}");
}
