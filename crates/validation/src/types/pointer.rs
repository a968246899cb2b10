//! JSON Pointers (RFC 6901) as the canonical form's field addresses.

use serde_json::{Map, Value};

/// A pointer a type file may write: `/a/b`, no empty segments.
pub(crate) fn check(pointer: &str) -> Result<(), String> {
    match pointer.strip_prefix('/') {
        Some(rest) if !rest.is_empty() && rest.split('/').all(|s| !s.is_empty()) => Ok(()),
        _ => Err("expected a JSON pointer such as \"/seller/tax_id\"".into()),
    }
}

/// Sets `pointer` in `document` to `value`, creating the objects on the way.
pub(crate) fn insert(document: &mut Value, pointer: &str, value: Value) {
    let mut current = document;
    let mut segments = pointer.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(object) = current else {
            return;
        };
        if segments.peek().is_none() {
            object.insert(segment.to_owned(), value);
            return;
        }
        current = object
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// `parent` + `/` + `name`, escaped.
pub(crate) fn child(parent: &str, name: &str) -> String {
    format!("{parent}/{}", name.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_creates_objects() {
        let mut document = Value::Object(Map::new());
        insert(&mut document, "/seller/tax_id", "DE1".into());
        insert(&mut document, "/seller/name", "A".into());
        insert(&mut document, "/currency", "EUR".into());
        assert_eq!(
            document,
            serde_json::json!({"seller": {"tax_id": "DE1", "name": "A"}, "currency": "EUR"})
        );
    }

    #[test]
    fn pointers_are_checked_and_escaped() {
        assert!(check("/a/b").is_ok());
        assert!(check("a").is_err() && check("/").is_err() && check("/a//b").is_err());
        assert_eq!(child("/x", "a/b"), "/x/a~1b");
    }
}
