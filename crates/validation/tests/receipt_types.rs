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
