//! JSON Schemas of the types whose serialized form is hand-written (ids, secrets), for the
//! gateway's OpenAPI document.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

const UUID: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// A UUID id: hyphenated, or `<prefix>` and 32 hex digits.
pub(crate) fn id_schema(prefix: &str) -> RefOr<Schema> {
    let (pattern, example) = if prefix.is_empty() {
        (
            UUID.to_owned(),
            "01936f0e-7c1a-7d52-9a6e-3c2b1f0e9d41".to_owned(),
        )
    } else {
        (
            format!("^{prefix}[0-9a-f]{{32}}$"),
            format!("{prefix}01936f0e7c1a7d529a6e3c2b1f0e9d41"),
        )
    };
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .examples([serde_json::Value::String(example)])
        .into()
}

/// A Standard Webhooks signing secret.
pub(crate) fn secret_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^whsec_[A-Za-z0-9+/]+={0,2}$"))
        .description(Some(
            "A Standard Webhooks signing secret: `whsec_` and the base64 of a 256-bit key.",
        ))
        .into()
}
