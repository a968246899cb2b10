//! The order reasons are reported in: by field, as the schema declares its properties (array
//! items by index), fields the schema does not know after the known ones, alphabetically.

use std::collections::HashMap;

use serde_json::Value;

/// Sort key of one pointer segment: (declared position, name when undeclared, array index).
type SegmentKey = (usize, String, u64);

/// The declared property order of a schema.
#[derive(Debug, Default)]
pub(crate) struct FieldOrder {
    schema: Value,
    /// Property names in declaration order, by the JSON Pointer of their schema object.
    declared: HashMap<String, Vec<String>>,
}

impl FieldOrder {
    pub fn new(schema: &Value, schema_text: &str) -> FieldOrder {
        FieldOrder {
            schema: schema.clone(),
            declared: crate::json::declared_properties(schema_text).unwrap_or_default(),
        }
    }

    /// The sort key of a canonical JSON Pointer.
    pub fn key(&self, pointer: &str) -> Vec<SegmentKey> {
        let mut key = Vec::new();
        // Where in the schema the walk is; `None` once outside what it declares.
        let mut at = Some(String::new());
        for raw in pointer.split('/').skip(1) {
            let segment = raw.replace("~1", "/").replace("~0", "~");
            at = at.map(|at| self.resolve(at));
            let node = at.as_deref().and_then(|at| self.schema.pointer(at));
            if let Ok(index) = segment.parse::<u64>() {
                key.push((0, String::new(), index));
                at = match (at, node) {
                    (Some(at), Some(node)) if node.get("items").is_some() => {
                        Some(format!("{at}/items"))
                    }
                    _ => None,
                };
                continue;
            }
            let position = at
                .as_ref()
                .and_then(|at| self.declared.get(at))
                .and_then(|names| names.iter().position(|n| *n == segment));
            match (position, at) {
                (Some(position), Some(at_now)) => {
                    key.push((position, String::new(), 0));
                    at = Some(format!("{at_now}/properties/{raw}"));
                }
                _ => {
                    key.push((usize::MAX, segment, 0));
                    at = None;
                }
            }
        }
        key
    }

    /// Follows local `$ref`s from the schema object at `at` (a few levels at most).
    fn resolve(&self, mut at: String) -> String {
        for _ in 0..8 {
            let reference = self
                .schema
                .pointer(&at)
                .and_then(|node| node.get("$ref"))
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'));
            match reference {
                Some(target) => at = target.to_owned(),
                None => break,
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_sort_as_the_schema_declares_its_properties() {
        let text = r##"{
            "properties": {
                "number": {}, "seller": {"$ref": "#/$defs/party"}, "lines": {"items": {"$ref": "#/$defs/line"}},
                "totals": {"properties": {"net": {}, "gross": {}}}
            },
            "$defs": {
                "party": {"properties": {"tax_id": {}, "name": {}}},
                "line": {"properties": {"description": {}, "net": {}, "gross": {}}}
            }
        }"##;
        let schema: Value = serde_json::from_str(text).expect("schema");
        let order = FieldOrder::new(&schema, text);
        let mut pointers = vec![
            "/zeta",
            "/totals/gross",
            "/lines/10/gross",
            "/lines/2/net",
            "/lines/2/description",
            "/seller/name",
            "/seller/tax_id",
            "/alpha",
            "/number",
            "",
            "/lines/2/extra",
        ];
        pointers.sort_by_key(|p| order.key(p));
        assert_eq!(
            pointers,
            [
                "",
                "/number",
                "/seller/tax_id",
                "/seller/name",
                "/lines/2/description",
                "/lines/2/net",
                "/lines/2/extra",
                "/lines/10/gross",
                "/totals/gross",
                "/alpha",
                "/zeta",
            ]
        );
    }
}
