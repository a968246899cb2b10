//! Declarative mapping of an XML format to a type's canonical JSON (`xml.toml`): which element or
//! attribute each field comes from, repeated elements as arrays, namespaces and value types. The
//! mapped document is then checked by the same schema and rules as JSON, and every canonical
//! pointer is translated back to the XPath of its source element.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use receipts_domain::Reason;
use receipts_domain::document::{as_utf8, parse_xml};
use roxmltree::{Node, NodeId};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::pointer;
use crate::reasons::code;

/// `xml.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MappingFile {
    /// The document element, `prefix:Name`.
    pub root: String,
    #[serde(default)]
    pub namespaces: BTreeMap<String, String>,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
    #[serde(default)]
    pub arrays: BTreeMap<String, ArraySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum FieldSpec {
    Path(String),
    Typed {
        path: String,
        #[serde(rename = "type", default)]
        kind: Kind,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArraySpec {
    /// Path of the repeated element, relative to the root.
    pub path: String,
    /// Fields of each item, relative to the repeated element.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
}

/// The JSON type a field's text becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    #[default]
    String,
    Integer,
    Boolean,
}

/// One step of a path: an element `(namespace, local name)`, an attribute, or `.` (the text of
/// the element itself).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Element(Option<String>, String),
    Attribute(Option<String>, String),
    Text,
}

#[derive(Debug)]
struct Field {
    pointer: String,
    steps: Vec<Step>,
    kind: Kind,
    /// The path as written, for XPaths of absent fields.
    written: String,
}

#[derive(Debug)]
struct Array {
    pointer: String,
    steps: Vec<Step>,
    written: String,
    fields: Vec<Field>,
}

/// A compiled mapping.
#[derive(Debug)]
pub(crate) struct Mapping {
    root: (Option<String>, String),
    root_written: String,
    prefixes: HashMap<String, String>,
    fields: Vec<Field>,
    arrays: Vec<Array>,
}

/// A mapped document: the canonical JSON and where each pointer came from.
#[derive(Debug)]
pub(crate) struct Mapped {
    pub document: Value,
    /// Canonical pointer -> XPath of the source, for present and absent fields alike.
    pub sources: HashMap<String, String>,
    /// The mapping's own reasons (repeated, unknown or non-text elements), each with the
    /// canonical pointer it sorts at.
    pub found: Vec<(String, Reason)>,
}

impl Mapping {
    /// Compiles `file`; errors name the offending entry.
    pub fn compile(file: MappingFile) -> Result<Mapping, String> {
        let prefixes: HashMap<String, String> = file
            .namespaces
            .iter()
            .map(|(prefix, uri)| (uri.clone(), prefix.clone()))
            .collect();
        let steps = |path: &str| parse_path(path, &file.namespaces);
        let root = match steps(&file.root)?.as_slice() {
            [Step::Element(ns, name)] => (ns.clone(), name.clone()),
            _ => return Err(format!("root {:?} must be one element name", file.root)),
        };
        let field = |pointer: &str, spec: &FieldSpec| -> Result<Field, String> {
            let (path, kind) = match spec {
                FieldSpec::Path(path) => (path.as_str(), Kind::String),
                FieldSpec::Typed { path, kind } => (path.as_str(), *kind),
            };
            pointer::check(pointer).map_err(|e| format!("field {pointer:?}: {e}"))?;
            Ok(Field {
                pointer: pointer.to_owned(),
                steps: steps(path).map_err(|e| format!("field {pointer:?}: {e}"))?,
                kind,
                written: path.to_owned(),
            })
        };
        let fields = file
            .fields
            .iter()
            .map(|(pointer, spec)| field(pointer, spec))
            .collect::<Result<Vec<_>, _>>()?;
        let mut arrays = Vec::new();
        for (pointer, spec) in &file.arrays {
            pointer::check(pointer).map_err(|e| format!("array {pointer:?}: {e}"))?;
            let array_steps = steps(&spec.path).map_err(|e| format!("array {pointer:?}: {e}"))?;
            if !matches!(array_steps.last(), Some(Step::Element(..))) {
                return Err(format!(
                    "array {pointer:?}: its path must end in an element"
                ));
            }
            arrays.push(Array {
                pointer: pointer.clone(),
                steps: array_steps,
                written: spec.path.clone(),
                fields: spec
                    .fields
                    .iter()
                    .map(|(p, s)| field(p, s))
                    .collect::<Result<Vec<_>, _>>()?,
            });
        }
        Ok(Mapping {
            root,
            root_written: file.root,
            prefixes,
            fields,
            arrays,
        })
    }

    /// Every canonical pointer this mapping can produce (array items as `/lines/0/...`), for the
    /// completeness check against the schema.
    pub fn pointers(&self) -> Vec<String> {
        let mut pointers: Vec<String> = self.fields.iter().map(|f| f.pointer.clone()).collect();
        for array in &self.arrays {
            pointers.push(array.pointer.clone());
            for field in &array.fields {
                pointers.push(format!("{}/0{}", array.pointer, field.pointer));
            }
        }
        pointers
    }

    /// Maps `bytes` to the canonical JSON, or gives the reasons it cannot be read (not UTF-8,
    /// malformed, DTD, wrong root) or has elements the mapping does not know, or repeats one.
    pub fn map(&self, bytes: &[u8]) -> Result<Mapped, Vec<Reason>> {
        let unreadable = |message: String| vec![Reason::new("/", code::INVALID_DOCUMENT, message)];
        let text = as_utf8(bytes).map_err(|e| unreadable(e.to_string()))?;
        let xml = parse_xml(text).map_err(|e| unreadable(e.to_string()))?;
        let root = xml.root_element();
        let (ns, name) = &self.root;
        if root.tag_name().namespace() != ns.as_deref() || root.tag_name().name() != name {
            return Err(unreadable(format!(
                "expected the document element {} ({}), found {}{}",
                self.root_written,
                ns.as_deref().unwrap_or("no namespace"),
                root.tag_name().name(),
                root.tag_name()
                    .namespace()
                    .map(|n| format!(" in {n}"))
                    .unwrap_or_default(),
            )));
        }
        let mut state = State {
            mapping: self,
            document: Value::Object(Map::new()),
            sources: HashMap::new(),
            used: HashSet::from([root.id()]),
            items: HashSet::new(),
            paths: RefCell::default(),
            reasons: Vec::new(),
        };
        let root_path = state.xpath(root);
        state.sources.insert(String::new(), "/".to_owned());
        for field in &self.fields {
            state.field(root, &root_path, "", field);
        }
        for array in &self.arrays {
            // The wrapper elements (every step but the item's) may appear once each.
            let (wrappers, _) = array.steps.split_at(array.steps.len() - 1);
            for depth in 1..=wrappers.len() {
                for extra in select(root, &wrappers[..depth]).iter().skip(1) {
                    let path = state.xpath(*extra);
                    let name = self.step_name(*extra);
                    let reason = Reason::new(
                        path,
                        code::DUPLICATE,
                        format!("{name} may appear only once"),
                    );
                    state.reasons.push((array.pointer.clone(), reason));
                }
            }
            let items = state.walk(root, &array.steps);
            state.items.extend(items.iter().map(|i| i.id()));
            let base = array.pointer.clone();
            // The array's own path: its container element (where an empty list is reported).
            let container = match select(root, wrappers).first() {
                Some(wrapper) => state.xpath(*wrapper),
                None => match array.written.rsplit_once('/') {
                    Some((written, _)) => format!("{root_path}/{written}"),
                    None => root_path.clone(),
                },
            };
            state.sources.insert(base.clone(), container);
            // No item: the array is absent (as an optional JSON array would be), not empty.
            if items.is_empty() {
                continue;
            }
            let mut values = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let item_pointer = format!("{base}/{index}");
                let item_path = state.xpath(*item);
                state
                    .sources
                    .insert(item_pointer.clone(), item_path.clone());
                let mut object = Value::Object(Map::new());
                std::mem::swap(&mut state.document, &mut object);
                for field in &array.fields {
                    state.field(*item, &item_path, &item_pointer, field);
                }
                std::mem::swap(&mut state.document, &mut object);
                values.push(object);
            }
            pointer::insert(&mut state.document, &base, Value::Array(values));
        }
        state.unknown(root, &mut None);
        let State {
            document,
            sources,
            reasons,
            ..
        } = state;
        Ok(Mapped {
            document,
            sources,
            found: reasons,
        })
    }

    /// The byte range of the text of the top-level field `pointer` in `text` (for samples that
    /// replace a value and keep the rest of the document as written).
    pub fn text_range(&self, text: &str, pointer: &str) -> Option<std::ops::Range<usize>> {
        let xml = parse_xml(text).ok()?;
        let field = self.fields.iter().find(|f| f.pointer == pointer)?;
        let (node, _) = select_values(xml.root_element(), &field.steps)
            .into_iter()
            .next()?;
        match field.steps.last() {
            Some(Step::Attribute(ns, name)) => node
                .attributes()
                .find(|a| a.name() == name && a.namespace() == ns.as_deref())
                .map(|a| a.range_value()),
            _ => node.children().find(|c| c.is_text()).map(|t| t.range()),
        }
    }

    /// The XPath step of an element: its mapping prefix (none for unmapped namespaces).
    fn step_name(&self, node: Node<'_, '_>) -> String {
        let name = node.tag_name().name();
        match node
            .tag_name()
            .namespace()
            .and_then(|ns| self.prefixes.get(ns))
        {
            Some(prefix) if !prefix.is_empty() => format!("{prefix}:{name}"),
            _ => name.to_owned(),
        }
    }
}

struct State<'m> {
    mapping: &'m Mapping,
    document: Value,
    sources: HashMap<String, String>,
    used: HashSet<NodeId>,
    /// Array items: always written with their position in XPaths.
    items: HashSet<NodeId>,
    /// XPaths computed so far.
    paths: RefCell<HashMap<NodeId, String>>,
    /// Each with the canonical pointer it sorts at.
    reasons: Vec<(String, Reason)>,
}

impl State<'_> {
    /// Maps one field found from `context` (whose XPath is `context_path`) into the document
    /// (the item's object for array fields: `prefix` is then the item's pointer).
    fn field(&mut self, context: Node<'_, '_>, context_path: &str, prefix: &str, field: &Field) {
        let full_pointer = format!("{prefix}{}", field.pointer);
        // An object on the way (`/seller` of `/seller/tax_id` = `Seller/TaxId`) is reported at
        // its element, when pointer and path have as many steps.
        let segments: Vec<&str> = field.pointer.split('/').skip(1).collect();
        let written: Vec<&str> = field.written.split('/').collect();
        if segments.len() == written.len() {
            for depth in 1..segments.len() {
                let object = format!("{prefix}/{}", segments[..depth].join("/"));
                let path = format!("{context_path}/{}", written[..depth].join("/"));
                self.sources.entry(object).or_insert(path);
            }
        }
        // One walk down the element steps, marking every element on the way as read.
        let nodes = self.walk(context, &field.steps);
        let mut found = values_of(nodes, &field.steps);
        // An empty element is no value (as an absent one); an attribute is a value even empty.
        if !matches!(field.steps.last(), Some(Step::Attribute(..))) {
            found
                .retain(|(node, text)| !text.is_empty() || node.children().any(|c| c.is_element()));
        }
        let Some((node, text)) = found.first() else {
            let written = field.written.trim_start_matches("./");
            let path = match written {
                "." => context_path.to_owned(),
                _ => format!("{context_path}/{written}"),
            };
            self.sources.insert(full_pointer, path);
            return;
        };
        let source = self.source_path(*node, &field.steps);
        for (duplicate, _) in found.iter().skip(1) {
            let path = self.source_path(*duplicate, &field.steps);
            let name = self.mapping.step_name(*duplicate);
            let reason = Reason::new(
                path,
                code::DUPLICATE,
                format!("{name} may appear only once"),
            );
            self.reasons.push((full_pointer.clone(), reason));
        }
        // A value is text: elements inside it are a type error (and not unknown fields).
        if !matches!(field.steps.last(), Some(Step::Attribute(..)))
            && node.children().any(|c| c.is_element())
        {
            self.used.extend(node.descendants().map(|d| d.id()));
            let name = self.mapping.step_name(*node);
            let reason = Reason::new(
                source.clone(),
                code::INVALID_TYPE,
                format!("{name} must hold text, not elements"),
            );
            self.reasons.push((full_pointer.clone(), reason));
        }
        self.sources.insert(full_pointer, source);
        let value = match field.kind {
            Kind::String => Value::String(text.clone()),
            // A value that is not of its type stays text, so the schema names the problem.
            Kind::Integer => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(text.clone())),
            Kind::Boolean => match text.trim() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => Value::String(text.clone()),
            },
        };
        pointer::insert(&mut self.document, &field.pointer, value);
    }

    fn source_path(&self, node: Node<'_, '_>, steps: &[Step]) -> String {
        match steps.last() {
            Some(Step::Attribute(_, name)) => format!("{}/@{name}", self.xpath(node)),
            _ => self.xpath(node),
        }
    }

    /// The elements the element steps of `steps` select from `context`, every element on the
    /// way marked as read (one walk for both).
    fn walk<'a, 'input>(
        &mut self,
        context: Node<'a, 'input>,
        steps: &[Step],
    ) -> Vec<Node<'a, 'input>> {
        let mut current = vec![context];
        for step in steps {
            let Step::Element(ns, name) = step else { break };
            current = current
                .iter()
                .flat_map(|n| n.children().filter(|c| matches(*c, ns, name)))
                .collect();
            self.used.extend(current.iter().map(|n| n.id()));
        }
        current
    }

    /// Reports every element nothing in the mapping reads (the outermost one of a subtree), at
    /// the pointer of its nearest mapped ancestor.
    fn unknown(&mut self, node: Node<'_, '_>, pointers: &mut Option<HashMap<String, String>>) {
        for child in node.children().filter(Node::is_element) {
            if self.used.contains(&child.id()) {
                self.unknown(child, pointers);
                continue;
            }
            let path = self.xpath(child);
            let name = self.mapping.step_name(child);
            // XPath -> pointer, built once and only for a document with an unknown element.
            let pointers = pointers.get_or_insert_with(|| {
                self.sources
                    .iter()
                    .map(|(pointer, path)| (path.clone(), pointer.clone()))
                    .collect()
            });
            let parent = child
                .ancestors()
                .skip(1)
                .find_map(|a| pointers.get(&self.xpath(a)))
                .cloned()
                .unwrap_or_default();
            let reason = Reason::new(
                path,
                code::UNKNOWN_FIELD,
                format!("{name} is not an element of this receipt type"),
            );
            self.reasons.push((format!("{parent}/{name}"), reason));
        }
    }

    /// The XPath of `node`: mapping prefixes; an array item's position always, another
    /// element's only from the second of a name on (`Number`, `Number[2]`). Memoized: the
    /// fields of one element share its path.
    fn xpath(&self, node: Node<'_, '_>) -> String {
        if let Some(path) = self.paths.borrow().get(&node.id()) {
            return path.clone();
        }
        let parent = node
            .parent()
            .filter(Node::is_element)
            .map(|p| self.xpath(p))
            .unwrap_or_default();
        let mut step = self.mapping.step_name(node);
        let same = |n: &Node<'_, '_>| n.is_element() && n.tag_name() == node.tag_name();
        // `prev_siblings` starts with the element itself: this is its 1-based position.
        let position = node.prev_siblings().filter(same).count();
        if position > 1 || self.items.contains(&node.id()) {
            step = format!("{step}[{position}]");
        }
        let path = format!("{parent}/{step}");
        self.paths.borrow_mut().insert(node.id(), path.clone());
        path
    }
}

fn matches(node: Node<'_, '_>, ns: &Option<String>, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && node.tag_name().namespace() == ns.as_deref()
}

/// The elements `steps` (elements only) select from `context`, in document order.
fn select<'a, 'input>(context: Node<'a, 'input>, steps: &[Step]) -> Vec<Node<'a, 'input>> {
    let mut current = vec![context];
    for step in steps {
        let Step::Element(ns, name) = step else { break };
        current = current
            .iter()
            .flat_map(|n| n.children().filter(|c| matches(*c, ns, name)))
            .collect();
    }
    current
}

/// The values `steps` select from `context`: the element's text, or an attribute's value.
fn select_values<'a, 'input>(
    context: Node<'a, 'input>,
    steps: &[Step],
) -> Vec<(Node<'a, 'input>, String)> {
    let elements = steps
        .iter()
        .take_while(|s| matches!(s, Step::Element(..)))
        .count();
    values_of(select(context, &steps[..elements]), steps)
}

/// The values of `nodes`, the elements a field's `steps` select: their text, or the attribute
/// the last step names.
fn values_of<'a, 'input>(
    nodes: Vec<Node<'a, 'input>>,
    steps: &[Step],
) -> Vec<(Node<'a, 'input>, String)> {
    match steps.last() {
        Some(Step::Attribute(ns, name)) => nodes
            .into_iter()
            .filter_map(|n| {
                let value = match ns {
                    Some(ns) => n.attribute((ns.as_str(), name.as_str())),
                    None => n.attribute(name.as_str()),
                };
                value.map(|v| (n, v.to_owned()))
            })
            .collect(),
        _ => nodes
            .into_iter()
            .map(|n| {
                let text: String = n
                    .children()
                    .filter(|c| c.is_text())
                    .filter_map(|c| c.text())
                    .collect();
                (n, text.trim().to_owned())
            })
            .collect(),
    }
}

/// Parses `a:B/c:D`, `a:B/@attr`, `.` or `./@attr` against the declared prefixes.
fn parse_path(path: &str, namespaces: &BTreeMap<String, String>) -> Result<Vec<Step>, String> {
    let name = |qualified: &str| -> Result<(Option<String>, String), String> {
        match qualified.split_once(':') {
            Some((prefix, local)) => namespaces
                .get(prefix)
                .map(|uri| (Some(uri.clone()), local.to_owned()))
                .ok_or_else(|| format!("prefix {prefix:?} of {path:?} is not in [namespaces]")),
            // Unprefixed names are in the default namespace, when the mapping declares one.
            None => Ok((namespaces.get("").cloned(), qualified.to_owned())),
        }
    };
    let mut steps = Vec::new();
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match *part {
            "." if i == 0 => {
                if last {
                    steps.push(Step::Text);
                }
            }
            "" => return Err(format!("{path:?} has an empty step")),
            attribute if attribute.starts_with('@') => {
                if !last {
                    return Err(format!("{path:?}: an attribute must be the last step"));
                }
                // An unprefixed attribute is in no namespace, whatever the default one is.
                let (ns, local) = match attribute[1..].contains(':') {
                    true => name(&attribute[1..])?,
                    false => (None, attribute[1..].to_owned()),
                };
                steps.push(Step::Attribute(ns, local));
            }
            element => {
                let (ns, local) = name(element)?;
                steps.push(Step::Element(ns, local));
            }
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(text: &str) -> Mapping {
        Mapping::compile(toml::from_str(text).expect("toml")).expect("mapping")
    }

    const MAPPING: &str = r#"
        root = "r:Receipt"
        [namespaces]
        r = "urn:example"
        [fields]
        "/number" = "r:Number"
        "/seller/tax_id" = "r:Seller/r:TaxId"
        "/covers" = { path = "r:Covers", type = "integer" }
        [arrays."/payments"]
        path = "r:Payments/r:Payment"
        fields = { "/method" = "./@method", "/amount" = "." }
    "#;

    #[test]
    fn maps_fields_arrays_attributes_and_types() {
        let xml = r#"<Receipt xmlns="urn:example"><Number>7</Number><Seller><TaxId>DE1</TaxId></Seller>
            <Covers>4</Covers><Payments><Payment method="card">1.00</Payment><Payment method="cash">2.00</Payment></Payments></Receipt>"#;
        let Mapped {
            document,
            sources,
            found: reasons,
        } = mapping(MAPPING).map(xml.as_bytes()).expect("mapped");
        assert!(reasons.is_empty(), "{reasons:?}");
        assert_eq!(
            document,
            serde_json::json!({"number": "7", "seller": {"tax_id": "DE1"}, "covers": 4,
                "payments": [{"method": "card", "amount": "1.00"}, {"method": "cash", "amount": "2.00"}]})
        );
        assert_eq!(
            sources["/payments/1/method"],
            "/r:Receipt/r:Payments/r:Payment[2]/@method"
        );
        assert_eq!(sources["/seller/tax_id"], "/r:Receipt/r:Seller/r:TaxId");
    }

    #[test]
    fn absent_duplicate_and_unknown_elements() {
        let xml = r#"<Receipt xmlns="urn:example"><Number>7</Number><Number>8</Number><Extra/></Receipt>"#;
        let Mapped {
            sources,
            found: reasons,
            ..
        } = mapping(MAPPING).map(xml.as_bytes()).expect("mapped");
        assert_eq!(sources["/seller/tax_id"], "/r:Receipt/r:Seller/r:TaxId");
        let found: Vec<(&str, &str)> = reasons
            .iter()
            .map(|(_, r)| (r.path.as_str(), r.code.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("/r:Receipt/r:Number[2]", code::DUPLICATE),
                ("/r:Receipt/r:Extra", "unknown-field")
            ]
        );
    }

    #[test]
    fn absent_arrays_stay_absent_and_repeated_wrappers_are_duplicates() {
        let xml = r#"<Receipt xmlns="urn:example"><Number>7</Number></Receipt>"#;
        let Mapped {
            document,
            found: reasons,
            ..
        } = mapping(MAPPING).map(xml.as_bytes()).expect("mapped");
        assert!(reasons.is_empty(), "{reasons:?}");
        assert_eq!(document.get("payments"), None);
        let xml = r#"<Receipt xmlns="urn:example"><Payments><Payment method="a">1</Payment></Payments>
            <Payments><Payment method="b">2</Payment></Payments></Receipt>"#;
        let reasons = mapping(MAPPING).map(xml.as_bytes()).expect("mapped").found;
        let found: Vec<(&str, &str)> = reasons
            .iter()
            .map(|(_, r)| (r.path.as_str(), r.code.as_str()))
            .collect();
        assert_eq!(found, [("/r:Receipt/r:Payments[2]", code::DUPLICATE)]);
    }

    #[test]
    fn unreadable_documents() {
        let m = mapping(MAPPING);
        for bad in [
            &b"<Other xmlns=\"urn:example\"/>"[..],
            b"<Receipt",
            b"\xff",
            b"<!DOCTYPE x><x/>",
        ] {
            let reasons = m.map(bad).expect_err("unreadable");
            assert_eq!(reasons[0].code, code::INVALID_DOCUMENT);
        }
    }

    #[test]
    fn wrong_mappings_are_refused() {
        for (text, expected) in [
            (r#"root = "x:R""#, "prefix \"x\""),
            ("root = \"R\"\n[fields]\n\"/a\" = \"@x/B\"", "last step"),
            ("root = \"R\"\n[fields]\n\"a\" = \"B\"", "field \"a\""),
        ] {
            let error = Mapping::compile(toml::from_str(text).expect("toml")).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
