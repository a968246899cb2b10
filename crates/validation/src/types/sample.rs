//! Sample documents of every type, for load tests and `receipts sample`: the built-in retail
//! type's generator, and for configured types their examples (valid or invalid, chosen by the
//! seed) with a receipt number unique to the seed and, in JSON, the current issue time.

use chrono::{SecondsFormat, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use receipts_domain::{DocumentFormat, ReceiptType};
use serde_json::Value;

use super::{Engine, TypeDefinition, TypeSet};

impl TypeSet {
    /// Every `(Receipt-Type, format)` a document may be submitted as.
    pub fn submission_kinds(&self) -> Vec<(String, DocumentFormat)> {
        let mut kinds = Vec::new();
        for definition in self.iter() {
            for format in &definition.formats {
                kinds.push((definition.id(), *format));
            }
            for alias in &definition.aliases {
                kinds.push((alias.name.clone(), alias.format));
            }
        }
        kinds
    }

    /// A document of the type `receipt_type` in `format`: valid or not, reproducible from
    /// `seed`. `None` when the type has no such format or no example of the kind asked for.
    pub fn sample(
        &self,
        receipt_type: &str,
        format: DocumentFormat,
        valid: bool,
        seed: u64,
    ) -> Option<Vec<u8>> {
        let resolved = self.resolve(receipt_type, format).ok()?;
        match &resolved.definition.engine {
            Engine::BuiltinRetail => {
                let builtin = match format {
                    DocumentFormat::Json => receipts_domain::receipt_type::RETAIL_RECEIPT_V1,
                    DocumentFormat::Xml => receipts_domain::receipt_type::RETAIL_RECEIPT_XML_V1,
                };
                let receipt_type = ReceiptType::lookup(builtin).ok()?;
                Some(crate::sample::generate(&receipt_type, valid, seed))
            }
            Engine::Configured { mapping, .. } => {
                let bytes = example(&resolved.definition, format, valid, seed)?;
                let number = format!("S-{seed:016x}");
                match format {
                    DocumentFormat::Json => {
                        let mut document: Value = serde_json::from_slice(&bytes).ok()?;
                        let object = document.as_object_mut()?;
                        object.insert("receipt_number".into(), number.into());
                        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
                        object.insert("issued_at".into(), now.into());
                        serde_json::to_vec_pretty(&document).ok()
                    }
                    DocumentFormat::Xml => {
                        let text = std::str::from_utf8(&bytes).ok()?;
                        let range = mapping.as_ref()?.text_range(text, "/receipt_number")?;
                        Some(
                            format!("{}{number}{}", &text[..range.start], &text[range.end..])
                                .into_bytes(),
                        )
                    }
                }
            }
        }
    }
}

fn example(
    definition: &TypeDefinition,
    format: DocumentFormat,
    valid: bool,
    seed: u64,
) -> Option<Vec<u8>> {
    let candidates: Vec<_> = definition
        .examples()
        .into_iter()
        .filter(|e| e.format == format && e.valid == valid)
        .collect();
    let chosen = candidates.choose(&mut StdRng::seed_from_u64(seed))?;
    std::fs::read(&chosen.path).ok()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::Utc;

    use super::*;

    #[test]
    fn every_kind_of_every_shipped_type_has_valid_and_invalid_samples() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../receipt-types");
        let (set, errors) = TypeSet::load(&dir, None);
        assert!(errors.is_empty(), "{errors:?}");
        let kinds = set.submission_kinds();
        assert!(kinds.len() >= 5, "{kinds:?}");
        for (receipt_type, format) in kinds {
            for seed in [1, 2] {
                let valid = set
                    .sample(&receipt_type, format, true, seed)
                    .unwrap_or_else(|| panic!("{receipt_type} {format}: no valid sample"));
                let outcome = set.validate(&receipt_type, format, &valid, Utc::now());
                assert!(outcome.is_ok(), "{receipt_type} {format}: {outcome:?}");
                let invalid = set
                    .sample(&receipt_type, format, false, seed)
                    .unwrap_or_else(|| panic!("{receipt_type} {format}: no invalid sample"));
                let outcome = set.validate(&receipt_type, format, &invalid, Utc::now());
                assert!(
                    outcome.is_err(),
                    "{receipt_type} {format} invalid sample validated"
                );
            }
            let one = set.sample(&receipt_type, format, true, 1).expect("sample");
            let two = set.sample(&receipt_type, format, true, 2).expect("sample");
            assert_ne!(one, two, "{receipt_type} {format}: samples differ by seed");
        }
    }
}
