//! Sample documents of every type, for load tests and `receipts sample`: the built-in retail
//! type's generator, and for configured types their examples (valid or invalid, chosen by the
//! seed) with a receipt number unique to the seed, and every date moved by the days between
//! the examples' submission time and today (so time windows hold as they did for the example).

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use receipts_domain::{DocumentFormat, ReceiptType};
use serde_json::Value;

use super::{TypeDefinition, TypeSet};

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
        let definition = &resolved.definition;
        // The retail type has a generator of random receipts (richer than its examples).
        if definition.id() == receipts_domain::receipt_type::RETAIL_RECEIPT_V1 {
            let builtin = match format {
                DocumentFormat::Json => receipts_domain::receipt_type::RETAIL_RECEIPT_V1,
                DocumentFormat::Xml => receipts_domain::receipt_type::RETAIL_RECEIPT_XML_V1,
            };
            let receipt_type = ReceiptType::lookup(builtin).ok()?;
            return Some(crate::sample::generate(&receipt_type, valid, seed));
        }
        let (text, submitted_at) = example(definition, format, valid, seed)?;
        // One day less than the calendar distance: a moved time is never in the future.
        let days = submitted_at
            .map(|at| (Utc::now().date_naive() - at.date_naive()).num_days() - 1)
            .unwrap_or(0);
        let text = shift_dates(&text, days);
        let number = format!("S-{seed:016x}");
        match format {
            DocumentFormat::Json => {
                let mut document: Value = serde_json::from_str(&text).ok()?;
                let object = document.as_object_mut()?;
                object.insert("receipt_number".into(), number.into());
                serde_json::to_vec_pretty(&document).ok()
            }
            DocumentFormat::Xml => {
                let mapping = definition.engine.mapping.as_ref()?;
                let range = mapping.text_range(&text, "/receipt_number")?;
                Some(format!("{}{number}{}", &text[..range.start], &text[range.end..]).into_bytes())
            }
        }
    }
}

/// An example's text and the submission time it was written for.
fn example(
    definition: &TypeDefinition,
    format: DocumentFormat,
    valid: bool,
    seed: u64,
) -> Option<(String, Option<DateTime<Utc>>)> {
    let candidates: Vec<_> = definition
        .examples()
        .iter()
        .filter(|e| e.format == format && e.valid == valid)
        .collect();
    let chosen = candidates.choose(&mut StdRng::seed_from_u64(seed))?;
    let text = std::fs::read_to_string(&chosen.path).ok()?;
    Some((text, chosen.submitted_at))
}

/// `text` with every `YYYY-MM-DD` date moved by `days`.
fn shift_dates(text: &str, days: i64) -> String {
    if days == 0 {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let is_date_at = |i: usize| {
        bytes.get(i..i + 10).is_some_and(|b| {
            b.iter().enumerate().all(|(n, c)| match n {
                4 | 7 => *c == b'-',
                _ => c.is_ascii_digit(),
            })
        })
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let boundary = i == 0 || !bytes[i - 1].is_ascii_digit();
        if boundary && is_date_at(i) {
            let moved = NaiveDate::parse_from_str(&text[i..i + 10], "%Y-%m-%d")
                .ok()
                .and_then(|d| d.checked_add_signed(TimeDelta::days(days)));
            if let Some(moved) = moved {
                out.push_str(&moved.format("%Y-%m-%d").to_string());
                i += 10;
                continue;
            }
        }
        let next = text[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&text[i..i + next]);
        i += next;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::Utc;

    use super::*;

    #[test]
    fn dates_move_by_whole_days() {
        assert_eq!(
            shift_dates(
                "issued 2026-11-20T10:00:00+01:00, due 2026-12-31; id 12026-11-20x",
                12
            ),
            "issued 2026-12-02T10:00:00+01:00, due 2027-01-12; id 12026-11-20x"
        );
        assert_eq!(shift_dates("Straße 2026-02-30", 1), "Straße 2026-02-30");
    }

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
            let text = String::from_utf8_lossy(&one);
            // The built-in retail generator writes its own dates; examples are from 2026-11.
            assert!(
                receipt_type.starts_with("retail-receipt") || !text.contains("2026-11-"),
                "{receipt_type} {format}: dates moved to today: {text}"
            );
            let two = set.sample(&receipt_type, format, true, 2).expect("sample");
            assert_ne!(one, two, "{receipt_type} {format}: samples differ by seed");
        }
    }
}
