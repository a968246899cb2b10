//! `receipts types check DIR`: everything that can be wrong with a type directory, found
//! offline. Loading compiles the manifest, schema, rules and mapping; this adds that rules only
//! name fields the schema has, that the XML mapping produces every required field, and that
//! every example gives exactly the reasons it lists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use receipts_domain::DocumentFormat;
use serde::Deserialize;
use serde_json::Value;

use super::{EXAMPLES, FileError, MANIFEST, TypeDefinition, TypeSet, read};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExamplesFile {
    /// The submission time the examples are validated at (date windows are relative to it).
    submitted_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "example")]
    examples: Vec<Example>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Example {
    file: String,
    /// Every reason the document must produce; empty: the document is valid.
    #[serde(default)]
    reasons: Vec<Expected>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    rule: String,
    at: String,
}

/// One example document of a type, as listed in its `examples/examples.toml`.
#[derive(Debug, Clone)]
pub struct ExampleDocument {
    pub path: PathBuf,
    pub format: DocumentFormat,
    pub valid: bool,
    /// The submission time the examples are written for.
    pub submitted_at: Option<DateTime<Utc>>,
}

/// Checks `dir`: a types directory, or one `<name>/<version>` directory in it. Returns every
/// problem found; empty means the directory is fit to serve.
pub fn check_dir(dir: &Path) -> Vec<FileError> {
    let (root, only) = if dir.join(MANIFEST).is_file() {
        let root = dir.parent().and_then(Path::parent).unwrap_or(dir);
        (root.to_owned(), Some(dir.to_owned()))
    } else {
        (dir.to_owned(), None)
    };
    let (set, mut errors) = TypeSet::load(&root, None);
    if let Some(only) = &only {
        errors.retain(|e| {
            e.file.starts_with(only)
                || !e.file.starts_with(&root)
                || e.file.parent() == Some(root.as_path())
        });
    }
    for definition in set.iter() {
        if only.as_ref().is_some_and(|o| *o != definition.dir) {
            continue;
        }
        errors.extend(static_checks(definition));
        errors.extend(run_examples(&set, definition));
    }
    if set.iter().next().is_none() && errors.is_empty() {
        errors.push(FileError::whole(
            dir,
            "no receipt type found (no <name>/<version>/type.toml)",
        ));
    }
    errors
}

impl TypeDefinition {
    /// The examples of this type, read once (samples draw from them for every document).
    pub fn examples(&self) -> &[ExampleDocument] {
        self.examples.get_or_init(|| {
            let Ok(file) = examples_file(self) else {
                return Vec::new();
            };
            let base = self.dir.join("examples");
            file.examples
                .iter()
                .filter_map(|e| {
                    Some(ExampleDocument {
                        path: base.join(&e.file),
                        format: format_of(&e.file)?,
                        valid: e.reasons.is_empty(),
                        submitted_at: file.submitted_at,
                    })
                })
                .collect()
        })
    }
}

fn examples_file(definition: &TypeDefinition) -> Result<ExamplesFile, FileError> {
    let path = definition.dir.join(EXAMPLES);
    let text = read(&path)?;
    toml::from_str(&text).map_err(|e| FileError::toml(&text, &e).in_file(&path))
}

fn format_of(file: &str) -> Option<DocumentFormat> {
    match Path::new(file).extension()?.to_str()? {
        "json" => Some(DocumentFormat::Json),
        "xml" => Some(DocumentFormat::Xml),
        _ => None,
    }
}

fn run_examples(set: &TypeSet, definition: &TypeDefinition) -> Vec<FileError> {
    let path = definition.dir.join(EXAMPLES);
    let file = match examples_file(definition) {
        Ok(file) => file,
        Err(e) => return vec![e],
    };
    let mut errors = Vec::new();
    let at = file.submitted_at.unwrap_or_else(Utc::now);
    let mut formats_seen = BTreeSet::new();
    let mut valid_seen = false;
    for example in &file.examples {
        let document_path = definition.dir.join("examples").join(&example.file);
        let fail = |message: String| FileError::whole(&document_path, message);
        let Some(format) = format_of(&example.file) else {
            errors.push(FileError::whole(
                &path,
                format!("{}: examples end in .json or .xml", example.file),
            ));
            continue;
        };
        formats_seen.insert(format.to_string());
        valid_seen |= example.reasons.is_empty();
        let bytes = match std::fs::read(&document_path) {
            Ok(bytes) => bytes,
            Err(e) => {
                errors.push(fail(e.to_string()));
                continue;
            }
        };
        let Some(receipt_type) = definition.id_for(format) else {
            errors.push(fail(format!(
                "{} accepts no {format} documents",
                definition.id()
            )));
            continue;
        };
        let found: BTreeSet<Expected> = match set.validate(&receipt_type, format, &bytes, at) {
            Ok(_) => BTreeSet::new(),
            Err(reasons) => reasons
                .into_iter()
                .map(|r| Expected {
                    rule: r.code,
                    at: r.path,
                })
                .collect(),
        };
        let expected: BTreeSet<Expected> = example.reasons.iter().cloned().collect();
        for missing in expected.difference(&found) {
            errors.push(fail(format!(
                "expected reason {} at {:?} was not given",
                missing.rule, missing.at
            )));
        }
        for extra in found.difference(&expected) {
            errors.push(fail(format!(
                "unexpected reason {} at {:?}",
                extra.rule, extra.at
            )));
        }
    }
    for format in &definition.formats {
        if !formats_seen.contains(&format.to_string()) {
            errors.push(FileError::whole(
                &path,
                format!("no example in the {format} format"),
            ));
        }
    }
    if !valid_seen {
        errors.push(FileError::whole(&path, "no valid example"));
    }
    errors
}

/// Rules name only fields of the schema; the XML mapping yields every required field.
fn static_checks(definition: &TypeDefinition) -> Vec<FileError> {
    let (rules, mapping) = (&definition.engine.rules, &definition.engine.mapping);
    let mut errors = Vec::new();
    let rules_path = definition.dir.join(super::RULES);
    for rule in rules {
        for (line, source) in &rule.sources {
            for (variable, fields) in field_references(source) {
                let mut path: Vec<String> = Vec::new();
                if variable == "item" {
                    let Some(array) = &rule.for_each else {
                        let message = format!("rule {:?} uses `item` without `for_each`", rule.id);
                        errors.push(FileError::at(*line, message).in_file(&rules_path));
                        continue;
                    };
                    path.extend(array.split('/').skip(1).map(str::to_owned));
                    path.push("0".into());
                }
                path.extend(fields.iter().cloned());
                if !schema_has(&definition.schema, &definition.schema, &path) {
                    let message = format!(
                        "rule {:?} names {variable}.{}, which the schema does not define",
                        rule.id,
                        fields.join(".")
                    );
                    errors.push(FileError::at(*line, message).in_file(&rules_path));
                }
            }
        }
    }
    if let Some(mapping) = mapping {
        let produced = mapping.pointers();
        let mut required = Vec::new();
        required_pointers(&definition.schema, &definition.schema, "", &mut required);
        for pointer in required {
            let covered = produced
                .iter()
                .any(|p| *p == pointer || p.starts_with(&format!("{pointer}/")));
            if !covered {
                let path = definition.dir.join(super::XML_MAPPING);
                errors.push(FileError::whole(
                    path,
                    format!("no mapping for the required field {pointer}"),
                ));
            }
        }
    }
    errors
}

/// `receipt.a.b` and `item.c` chains in a CEL source: the variable and its field names (a
/// name followed by `(` is a method call, not a field).
fn field_references(source: &str) -> Vec<(&'static str, Vec<String>)> {
    let bytes = source.as_bytes();
    let identifier = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    for variable in ["receipt", "item"] {
        let mut start = 0;
        while let Some(offset) = source[start..].find(variable) {
            let at = start + offset;
            start = at + variable.len();
            let before_ok = at == 0 || !(identifier(bytes[at - 1]) || bytes[at - 1] == b'.');
            if !before_ok || bytes.get(start) != Some(&b'.') {
                continue;
            }
            let mut fields = Vec::new();
            let mut cursor = start;
            while bytes.get(cursor) == Some(&b'.') {
                let name_start = cursor + 1;
                let mut end = name_start;
                while end < bytes.len() && identifier(bytes[end]) {
                    end += 1;
                }
                if end == name_start || bytes.get(end) == Some(&b'(') {
                    break;
                }
                fields.push(source[name_start..end].to_owned());
                cursor = end;
            }
            if !fields.is_empty() {
                found.push((variable, fields));
            }
        }
    }
    found
}

/// Follows a local `$ref` (`#/$defs/x`).
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .unwrap_or(node),
        None => node,
    }
}

/// Whether the schema defines the field at `path` (object properties; `0` for array items).
fn schema_has(root: &Value, node: &Value, path: &[String]) -> bool {
    let node = resolve(root, node);
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    if let Some(property) = node.get("properties").and_then(|p| p.get(first)) {
        return schema_has(root, property, rest);
    }
    if first.parse::<usize>().is_ok()
        && let Some(items) = node.get("items")
    {
        return schema_has(root, items, rest);
    }
    false
}

/// Every field the schema requires, as pointers (array items as `/0`).
fn required_pointers(root: &Value, node: &Value, at: &str, out: &mut Vec<String>) {
    let node = resolve(root, node);
    if let Some(required) = node.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            let pointer = format!("{at}/{name}");
            out.push(pointer.clone());
            if let Some(property) = node.get("properties").and_then(|p| p.get(name)) {
                required_pointers(root, property, &pointer, out);
            }
        }
    }
    if let Some(items) = node.get("items") {
        required_pointers(root, items, &format!("{at}/0"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_field_chains_not_methods() {
        let found = field_references(
            "decimal(item.net_amount) == sum(receipt.lines.map(l, decimal(l.x))) && receipt.currency.size() == 3 && my_receipt.x",
        );
        assert_eq!(
            found,
            [
                ("receipt", vec!["lines".to_owned()]),
                ("receipt", vec!["currency".to_owned()]),
                ("item", vec!["net_amount".to_owned()]),
            ]
        );
    }

    #[test]
    fn schema_paths_and_required_fields() {
        let schema = serde_json::json!({
            "$defs": {"party": {"type": "object", "required": ["tax_id"], "properties": {"tax_id": {}}}},
            "required": ["seller", "lines"],
            "properties": {
                "seller": {"$ref": "#/$defs/party"},
                "lines": {"type": "array", "items": {"required": ["net"], "properties": {"net": {}}}}
            }
        });
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(schema_has(&schema, &schema, &path(&["seller", "tax_id"])));
        assert!(schema_has(&schema, &schema, &path(&["lines", "0", "net"])));
        assert!(!schema_has(
            &schema,
            &schema,
            &path(&["lines", "0", "gross"])
        ));
        let mut required = Vec::new();
        required_pointers(&schema, &schema, "", &mut required);
        assert_eq!(
            required,
            ["/seller", "/seller/tax_id", "/lines", "/lines/0/net"]
        );
    }
}
