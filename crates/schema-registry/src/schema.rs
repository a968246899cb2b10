//! Avro schema handling: parsing (with references), identity, BACKWARD compatibility.

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

/// A parsed Avro schema plus the (transitively) referenced named schemas it was parsed with.
#[derive(Debug)]
pub(crate) struct ParsedSchema {
    schema: Schema,
    referenced: Vec<Schema>,
}

impl ParsedSchema {
    /// Parses `text`, resolving names against `referenced` (the texts of the schemas its
    /// `references` point to, transitively).
    pub(crate) fn parse(text: &str, referenced: &[String]) -> Result<Self, apache_avro::Error> {
        if referenced.is_empty() {
            Ok(Self {
                schema: Schema::parse_str(text)?,
                referenced: Vec::new(),
            })
        } else {
            let (schema, referenced) = Schema::parse_str_with_list(text, referenced)?;
            Ok(Self { schema, referenced })
        }
    }

    /// The schema's identity: two registrations get the same id iff their normalized forms
    /// (and their references) are equal.
    ///
    /// This is the parsed schema written back as JSON: attribute order, whitespace and
    /// namespace spelling are normalized, but `default`, `doc`, `logicalType`, `aliases` and
    /// custom attributes are kept. That is what Confluent compares (`AvroSchema.canonicalString`,
    /// Avro's `Schema.toString()`). Avro's *Parsing Canonical Form* would be too coarse: it strips
    /// `logicalType` and `default`, so `{"type":"long","logicalType":"timestamp-millis"}` and
    /// `"long"` would share an id and a consumer fetching the writer schema by id would decode a
    /// timestamp as a plain long, and adding a default to a field would silently be a no-op.
    pub(crate) fn normalized(&self) -> String {
        // Serializing a parsed `Schema` to a string cannot fail (string keys, finite values
        // that came from JSON); fall back to the canonical form rather than panic.
        serde_json::to_string(&self.schema).unwrap_or_else(|_| self.schema.canonical_form())
    }

    /// The schema with every external reference inlined, for compatibility checks.
    fn self_contained(&self) -> Result<Schema, apache_avro::Error> {
        let mut schema = self.schema.clone();
        if !self.referenced.is_empty() {
            schema.denormalize(&self.referenced)?;
        }
        Ok(schema)
    }
}

/// BACKWARD compatibility: data written with `previous` (the subject's latest version) must be
/// readable with `candidate`. Returns a human-readable reason when it is not.
///
/// apache-avro's "partial" compatibility (the reader lacks some writer enum symbols without a
/// default, or does not cover every writer union branch) is treated as incompatible, as the
/// Java checker Confluent uses does.
pub(crate) fn check_backward(
    previous: &ParsedSchema,
    candidate: &ParsedSchema,
) -> Result<(), String> {
    let writer = previous
        .self_contained()
        .map_err(|e| format!("cannot resolve the references of the latest version: {e}"))?;
    let reader = candidate
        .self_contained()
        .map_err(|e| format!("cannot resolve the references of the new schema: {e}"))?;
    match SchemaCompatibility::can_read(&writer, &reader) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => Err(
            "the new schema can read only part of the data written with the latest version \
             (missing enum symbols without a default, or union branches not covered)"
                .to_owned(),
        ),
        Err(e) => Err(describe(&e)),
    }
}

/// The error and its causes on one line, each shortened: apache-avro puts whole pretty-printed
/// schemas into some messages.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    const MAX: usize = 240;
    let mut parts = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        parts.push(match text.char_indices().nth(MAX) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text,
        });
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ParsedSchema {
        ParsedSchema::parse(text, &[]).expect("valid schema")
    }

    const V1: &str =
        r#"{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":"string"}]}"#;

    #[test]
    fn normalized_ignores_formatting_but_keeps_logical_types_and_defaults() {
        let spaced = r#"{ "namespace": "n", "fields": [ {"type": "string", "name": "a"} ],
                          "type": "record", "name": "R" }"#;
        assert_eq!(parse(V1).normalized(), parse(spaced).normalized());
        let fullname = r#"{"type":"record","name":"n.R","fields":[{"name":"a","type":"string"}]}"#;
        assert_eq!(parse(V1).normalized(), parse(fullname).normalized());

        assert_ne!(
            parse(r#"{"type":"long","logicalType":"timestamp-millis"}"#).normalized(),
            parse(r#""long""#).normalized()
        );
        let with_default = r#"{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":"string","default":"x"}]}"#;
        assert_ne!(parse(V1).normalized(), parse(with_default).normalized());
    }

    #[test]
    fn backward_rules() {
        let added_with_default = r#"{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}"#;
        let added_without_default = r#"{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":"string"},{"name":"b","type":"int"}]}"#;
        let removed = r#"{"type":"record","name":"R","namespace":"n","fields":[]}"#;
        assert!(check_backward(&parse(V1), &parse(added_with_default)).is_ok());
        assert!(check_backward(&parse(V1), &parse(added_without_default)).is_err());
        assert!(check_backward(&parse(V1), &parse(removed)).is_ok());

        let e2 = r#"{"type":"enum","name":"E","symbols":["A","B"]}"#;
        let e3 = r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#;
        assert!(check_backward(&parse(e2), &parse(e3)).is_ok());
        // Dropping a symbol without a default is "partial" in apache-avro: refused.
        assert!(check_backward(&parse(e3), &parse(e2)).is_err());

        let retyped = r#"{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":{"type":"record","name":"Big","fields":[{"name":"x","type":"int"}]}}]}"#;
        let reason = check_backward(&parse(V1), &parse(retyped)).expect_err("incompatible");
        assert!(reason.contains("Field 'a'"), "{reason}");
        assert!(!reason.contains('\n') && reason.len() < 700, "{reason}");
    }

    #[test]
    fn references_are_resolved_and_inlined() {
        let address = r#"{"type":"record","name":"Address","namespace":"n","fields":[{"name":"city","type":"string"}]}"#.to_owned();
        let person = r#"{"type":"record","name":"Person","namespace":"n","fields":[{"name":"home","type":"n.Address"}]}"#;
        assert!(ParsedSchema::parse(person, &[]).is_err());
        let parsed = ParsedSchema::parse(person, std::slice::from_ref(&address)).expect("resolves");
        assert!(parsed.normalized().contains("n.Address"));
        let inlined = parsed.self_contained().expect("inlines");
        assert!(
            serde_json::to_string(&inlined)
                .expect("json")
                .contains("city")
        );
        assert!(check_backward(&parsed, &parsed).is_ok());
    }
}
