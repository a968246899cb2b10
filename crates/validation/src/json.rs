//! The JSON reader of configured receipt types: members kept in document order and duplicates
//! reported (where `serde_json::Value` silently keeps the last), numbers as exact text.

use std::cell::RefCell;
use std::fmt;

use receipts_domain::Reason;
use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::reasons::code;

/// A JSON value that, unlike `serde_json::Value`, keeps object members in document order and
/// keeps duplicate keys, so duplicates can be reported instead of silently taking the last one.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// The number in plain decimal notation (no exponent).
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

/// The key serde_json uses for numbers when its `arbitrary_precision` feature is on (another
/// crate of the build may turn it on); such numbers arrive as a one-member map.
const ARBITRARY_PRECISION_KEY: &str = "$serde_json::private::Number";

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        // Rust prints the shortest decimal that reads back as the same f64, never with an
        // exponent, so "3.5" stays "3.5" and 1e-7 becomes "0.0000001".
        Ok(Json::Number(format!("{v}")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            members.push((key, value));
        }
        if let [(key, Json::String(number))] = members.as_slice()
            && key == ARBITRARY_PRECISION_KEY
        {
            return Ok(Json::Number(number.clone()));
        }
        Ok(Json::Object(members))
    }
}

/// How a configured type reads JSON (`[json]` of its manifest).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reading {
    /// Members (by name, wherever they are) whose JSON number is read as its decimal text
    /// (`3.5` as `"3.5"`), so amounts may be sent as numbers or strings alike.
    #[serde(default)]
    pub numbers_as_text: Vec<String>,
    /// A member whose value is `null` is read as absent.
    #[serde(default)]
    pub null_is_absent: bool,
}

/// Parses a JSON document strictly for the configured receipt types: a repeated member is a
/// `duplicate` reason at its pointer (the first occurrence is kept, as the built-in rules do).
/// Read in one pass into `serde_json::Value` (no intermediate tree).
pub(crate) fn parse_strict(
    text: &str,
    reading: &Reading,
) -> Result<(serde_json::Value, Vec<Reason>), serde_json::Error> {
    let duplicates = RefCell::new(Vec::new());
    let reader = Reader {
        reading,
        duplicates: &duplicates,
        at: &Path::Root,
        as_text: false,
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = reader.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok((value, duplicates.into_inner()))
}

/// Where a value is, built into a JSON Pointer only when a duplicate needs it.
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    Item(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn pointer(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Member(parent, name) => format!("{}/{}", parent.pointer(), escape(name)),
            Path::Item(parent, index) => format!("{}/{index}", parent.pointer()),
        }
    }
}

/// Reads one value at `at`; `as_text`: it is a member whose numbers are read as text.
struct Reader<'a> {
    reading: &'a Reading,
    duplicates: &'a RefCell<Vec<Reason>>,
    at: &'a Path<'a>,
    as_text: bool,
}

impl<'de> DeserializeSeed<'de> for Reader<'_> {
    type Value = serde_json::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reader<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Bool(value))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.number(v.to_string(), serde_json::Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.number(v.to_string(), serde_json::Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // Rust prints the shortest decimal that reads back as the same f64, never with an
        // exponent, so "3.5" stays "3.5" and 1e-7 becomes "0.0000001".
        let text = format!("{v}");
        let number = serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| serde_json::Value::String(text.clone()));
        Ok(self.number(text, number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(serde_json::Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(serde_json::Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let at = Path::Item(self.at, items.len());
            let reader = Reader {
                at: &at,
                as_text: false,
                ..self
            };
            match seq.next_element_seed(reader)? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            // serde_json's `arbitrary_precision` (if another crate turns it on) sends a number
            // as a one-member map.
            if key == ARBITRARY_PRECISION_KEY {
                let text: String = map.next_value()?;
                let number = text
                    .parse::<serde_json::Number>()
                    .map(serde_json::Value::Number)
                    .unwrap_or_else(|_| serde_json::Value::String(text.clone()));
                return Ok(self.number(text, number));
            }
            let at = Path::Member(self.at, &key);
            if !seen.insert(key.clone()) {
                self.duplicates.borrow_mut().push(Reason::new(
                    at.pointer(),
                    code::DUPLICATE,
                    format!("the member {key:?} appears more than once"),
                ));
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let reader = Reader {
                at: &at,
                as_text: self.reading.numbers_as_text.contains(&key),
                ..self
            };
            let value = map.next_value_seed(reader)?;
            if self.reading.null_is_absent && value.is_null() {
                continue;
            }
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

impl Reader<'_> {
    /// A number: its text for a member read as text, else the number.
    fn number(&self, text: String, number: serde_json::Value) -> serde_json::Value {
        if self.as_text {
            serde_json::Value::String(text)
        } else {
            number
        }
    }
}

/// For every object of the JSON `text` that has a `properties` object (a schema), the property
/// names in the order written, by the JSON Pointer of that schema object.
pub(crate) fn declared_properties(
    text: &str,
) -> Result<std::collections::HashMap<String, Vec<String>>, serde_json::Error> {
    let json: Json = serde_json::from_str(text)?;
    let mut found = std::collections::HashMap::new();
    collect_properties(&json, "", &mut found);
    Ok(found)
}

fn collect_properties(
    json: &Json,
    at: &str,
    found: &mut std::collections::HashMap<String, Vec<String>>,
) {
    match json {
        Json::Object(members) => {
            if let Some((_, Json::Object(properties))) =
                members.iter().find(|(k, _)| k == "properties")
            {
                found.insert(
                    at.to_owned(),
                    properties.iter().map(|(k, _)| k.clone()).collect(),
                );
            }
            for (key, value) in members {
                collect_properties(value, &format!("{at}/{}", escape(key)), found);
            }
        }
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_properties(item, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// RFC 6901 escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
