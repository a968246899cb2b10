//! A type's JSON Schema (draft 2020-12): compiled once, and its errors turned into reasons with
//! the pointer of the offending field.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Validator};
use receipts_domain::Reason;
use serde_json::Value;

use super::pointer;
use crate::reasons::code;

pub(crate) const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Compiles `schema`: it must declare the 2020-12 dialect and be valid against its meta-schema.
pub(crate) fn compile(schema: &Value) -> Result<Validator, String> {
    if schema.get("$schema").and_then(Value::as_str) != Some(DIALECT) {
        return Err(format!("\"$schema\" must be \"{DIALECT}\""));
    }
    jsonschema::meta::validate(schema).map_err(|e| format!("not a valid JSON Schema: {e}"))?;
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| format!("not a valid JSON Schema: {e}"))
}

/// Every schema error of `document`, as reasons at canonical pointers.
pub(crate) fn check(validator: &Validator, document: &Value) -> Vec<Reason> {
    if validator.is_valid(document) {
        return Vec::new();
    }
    let mut reasons = Vec::new();
    for error in validator.iter_errors(document) {
        let at = error.instance_path().as_str().to_owned();
        let message = error.to_string();
        match error.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                reasons.push(Reason::new(
                    pointer::child(&at, name),
                    code::REQUIRED,
                    format!("{name} is required"),
                ));
            }
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                for name in unexpected {
                    reasons.push(Reason::new(
                        pointer::child(&at, name),
                        code::UNKNOWN_FIELD,
                        format!("{name} is not a field of this receipt type"),
                    ));
                }
            }
            kind => reasons.push(Reason::new(at, code(kind), message)),
        }
    }
    reasons
}

/// The reason code of a schema keyword (the same vocabulary as the rules of built-in types).
fn code(kind: &ValidationErrorKind) -> &'static str {
    use ValidationErrorKind as K;
    match kind {
        K::Type { .. } => code::INVALID_TYPE,
        K::Minimum { .. }
        | K::Maximum { .. }
        | K::ExclusiveMinimum { .. }
        | K::ExclusiveMaximum { .. }
        | K::MultipleOf { .. } => code::OUT_OF_RANGE,
        K::MinItems { .. } | K::MaxItems { .. } | K::UniqueItems => code::INVALID_COUNT,
        _ => code::INVALID_FORMAT,
    }
}
