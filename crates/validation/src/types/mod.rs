//! Receipt types as configuration: every type is a directory (`<name>/<version>/`) with a
//! manifest, a JSON Schema of its canonical JSON form, CEL rules, an XML mapping per XML format
//! and examples. A [`TypeSet`] is every type of a directory, compiled once; it validates
//! documents and answers which types exist. See `docs/receipt-types.md`.

mod catalog;
mod check;
mod core;
mod decimal;
mod files;
mod functions;
mod order;
mod pointer;
mod rules;
mod sample;
mod schema;
mod vat;
mod xml_map;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, NaiveDate, Utc};
use receipts_domain::document::as_utf8;
use receipts_domain::{DocumentFormat, NormalizedReceipt, Reason};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use catalog::{Catalog, ReceiptTypesConfig, Reload};
pub use check::{ExampleDocument, check_dir};
pub use files::FileError;

use self::order::FieldOrder;
use self::rules::Rule;
use self::vat::VatTable;
use self::xml_map::Mapping;
use crate::json::Reading;
use crate::reasons::{MAX_REASONS, code};

/// The manifest file of a type directory.
pub const MANIFEST: &str = "type.toml";
const SCHEMA: &str = "schema.json";
const RULES: &str = "rules.toml";
const XML_MAPPING: &str = "xml.toml";
const EXAMPLES: &str = "examples/examples.toml";
const VAT_RATES: &str = "vat-rates.toml";

/// Whether partners should still use a type version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Active,
    Deprecated,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    status: Status,
    #[serde(default)]
    deprecated_since: Option<NaiveDate>,
    #[serde(default)]
    sunset: Option<NaiveDate>,
    formats: Vec<DocumentFormat>,
    #[serde(default, rename = "alias")]
    aliases: Vec<Alias>,
    /// How JSON documents are read.
    #[serde(default)]
    json: Reading,
}

/// Another `name/version` a type answers to, for one format (kept for partners of old names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    pub name: String,
    pub format: DocumentFormat,
}

/// A type's compiled files.
struct Configured {
    validator: jsonschema::Validator,
    rules: Vec<Rule>,
    mapping: Option<Mapping>,
    reading: Reading,
    order: FieldOrder,
}

/// One loaded receipt type version.
pub struct TypeDefinition {
    pub name: String,
    pub version: String,
    pub description: String,
    pub status: Status,
    /// For a deprecated type: since when (the `Deprecation` header) and until when it is
    /// accepted (the `Sunset` header).
    pub deprecated_since: Option<NaiveDate>,
    pub sunset: Option<NaiveDate>,
    pub formats: Vec<DocumentFormat>,
    pub aliases: Vec<Alias>,
    /// The JSON Schema of the canonical JSON form, as written.
    pub schema: Value,
    pub dir: PathBuf,
    engine: Box<Configured>,
    /// `examples/examples.toml`, read on first use.
    examples: std::sync::OnceLock<Vec<ExampleDocument>>,
}

impl fmt::Debug for TypeDefinition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeDefinition")
            .field("id", &self.id())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl TypeDefinition {
    /// `name/version`, as the `Receipt-Type` header names it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }

    /// The `Receipt-Type` for documents in `format`: the type's own id, or the alias of that
    /// format.
    pub fn id_for(&self, format: DocumentFormat) -> Option<String> {
        if self.formats.contains(&format) {
            return Some(self.id());
        }
        self.aliases
            .iter()
            .find(|a| a.format == format)
            .map(|a| a.name.clone())
    }
}

/// A type the `Receipt-Type` header named, and the format the document is in.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub definition: Arc<TypeDefinition>,
    pub format: DocumentFormat,
}

/// Why a `Receipt-Type` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("unknown receipt type {name:?}; known types: {}", known.join(", "))]
    Unknown { name: String, known: Vec<String> },
    #[error("receipt type {name} accepts {}, not {format}", formats.join(", "))]
    Format {
        name: String,
        format: DocumentFormat,
        formats: Vec<String>,
    },
}

/// A valid receipt: its typed core and its type-specific extension.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid {
    pub receipt: NormalizedReceipt,
    pub extension: Option<Value>,
}

/// Every receipt type of a directory.
#[derive(Debug, Default, Clone)]
pub struct TypeSet {
    types: BTreeMap<String, Arc<TypeDefinition>>,
    /// Alias id -> (type id, format).
    aliases: BTreeMap<String, (String, DocumentFormat)>,
    vat: Arc<VatTable>,
    dir: Option<PathBuf>,
}

impl TypeSet {
    /// The types built into this release (the retail type), for a platform without a types
    /// directory.
    pub fn builtin() -> Arc<TypeSet> {
        static BUILTIN: LazyLock<Arc<TypeSet>> = LazyLock::new(|| Arc::new(embedded()));
        Arc::clone(&BUILTIN)
    }

    /// Loads every type of `dir`. A type directory with errors is left out (its errors are
    /// returned) unless `previous` has that type, whose loaded version then keeps serving.
    pub fn load(dir: &Path, previous: Option<&TypeSet>) -> (TypeSet, Vec<FileError>) {
        let mut errors = Vec::new();
        let mut set = TypeSet {
            dir: Some(dir.to_owned()),
            ..TypeSet::default()
        };
        let vat_path = dir.join(VAT_RATES);
        match std::fs::read_to_string(&vat_path) {
            Ok(text) => match VatTable::parse(&text) {
                Ok(table) => set.vat = Arc::new(table),
                Err(e) => {
                    errors.push(FileError::whole(&vat_path, e));
                    if let Some(previous) = previous {
                        set.vat = Arc::clone(&previous.vat);
                    }
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => errors.push(FileError::whole(&vat_path, e.to_string())),
        }
        for type_dir in type_dirs(dir, &mut errors) {
            match load_type(&type_dir, &read) {
                Ok(definition) => {
                    let id = definition.id();
                    if set.types.contains_key(&id) {
                        let message = format!("{id} is defined twice");
                        errors.push(FileError::whole(type_dir.join(MANIFEST), message));
                        continue;
                    }
                    set.insert(Arc::new(definition));
                }
                Err(type_errors) => {
                    // The previous version of the type in this directory keeps serving.
                    if let Some(old) =
                        previous.and_then(|p| p.types.values().find(|t| t.dir == type_dir).cloned())
                    {
                        set.insert(old);
                    }
                    errors.extend(type_errors);
                }
            }
        }
        (set, errors)
    }

    fn insert(&mut self, definition: Arc<TypeDefinition>) {
        let id = definition.id();
        for alias in &definition.aliases {
            self.aliases
                .insert(alias.name.clone(), (id.clone(), alias.format));
        }
        self.types.insert(id, definition);
    }

    /// The VAT rates of `country` on `day` in this set's table, highest first.
    pub(crate) fn vat_rates(&self, country: &str, day: NaiveDate) -> Vec<rust_decimal::Decimal> {
        self.vat.rates(country, day)
    }

    /// The directory the set was loaded from (`None`: built in).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Every type, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<TypeDefinition>> {
        self.types.values()
    }

    /// The type `name/version`, without aliases.
    pub fn get(&self, id: &str) -> Option<&Arc<TypeDefinition>> {
        self.types.get(id)
    }

    /// Whether `name` is a type id or an alias of one.
    pub fn names(&self, name: &str) -> bool {
        self.types.contains_key(name) || self.aliases.contains_key(name)
    }

    /// Every name the `Receipt-Type` header may carry.
    pub fn known(&self) -> Vec<String> {
        let mut known: Vec<String> = self.types.keys().cloned().collect();
        known.extend(self.aliases.keys().cloned());
        known.sort();
        known
    }

    /// The type a `Receipt-Type` header names, for a document in `format`.
    pub fn resolve(&self, name: &str, format: DocumentFormat) -> Result<Resolved, LookupError> {
        let (definition, formats) = match self.aliases.get(name) {
            Some((id, alias_format)) => (self.types.get(id), vec![*alias_format]),
            None => {
                let definition = self.types.get(name);
                (
                    definition,
                    definition.map(|d| d.formats.clone()).unwrap_or_default(),
                )
            }
        };
        let Some(definition) = definition else {
            return Err(LookupError::Unknown {
                name: name.chars().take(100).collect(),
                known: self.known(),
            });
        };
        if !formats.contains(&format) {
            return Err(LookupError::Format {
                name: name.to_owned(),
                format,
                formats: formats.iter().map(|f| f.media_type().to_owned()).collect(),
            });
        }
        Ok(Resolved {
            definition: Arc::clone(definition),
            format,
        })
    }

    /// Validates `document` as a receipt of the type `name` in `format`. `received_at` is the
    /// submission time of the event (not the wall clock): validation is deterministic.
    pub fn validate(
        &self,
        name: &str,
        format: DocumentFormat,
        document: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<Valid, Vec<Reason>> {
        let resolved = self
            .resolve(name, format)
            .map_err(|e| vec![Reason::new("", code::UNKNOWN_RECEIPT_TYPE, e.to_string())])?;
        let engine = &resolved.definition.engine;
        let input = Document::read(format, &engine.reading, engine.mapping.as_ref(), document)?;
        configured(engine, &self.vat, input, received_at)
    }
}

/// The retail type and the VAT table as shipped in `receipt-types/`, compiled into the binary:
/// the types of a platform without a types directory.
fn embedded() -> TypeSet {
    const DIR: &str = "receipt-types/retail-receipt/v1";
    let files = |path: &Path| -> Result<String, FileError> {
        let text = match path.file_name().and_then(|n| n.to_str()) {
            Some(MANIFEST) => include_str!("../../../../receipt-types/retail-receipt/v1/type.toml"),
            Some(SCHEMA) => include_str!("../../../../receipt-types/retail-receipt/v1/schema.json"),
            Some(RULES) => include_str!("../../../../receipt-types/retail-receipt/v1/rules.toml"),
            Some(XML_MAPPING) => {
                include_str!("../../../../receipt-types/retail-receipt/v1/xml.toml")
            }
            _ => return Err(FileError::whole(path, "not embedded")),
        };
        Ok(text.to_owned())
    };
    let mut set = TypeSet::default();
    match VatTable::parse(include_str!("../../../../receipt-types/vat-rates.toml")) {
        Ok(vat) => set.vat = Arc::new(vat),
        Err(error) => tracing::error!(%error, "the embedded VAT table does not load"),
    }
    match load_type(Path::new(DIR), &files) {
        Ok(retail) => set.insert(Arc::new(retail)),
        // The embedded files are checked by this crate's tests; this cannot happen in a release.
        Err(errors) => tracing::error!(?errors, "the embedded retail type does not load"),
    }
    set
}

/// A document read into its canonical JSON form.
struct Document {
    canonical: Value,
    /// What the reader found, each at the canonical pointer it sorts at: JSON members given
    /// twice; XML elements repeated, unknown or not text.
    found: Vec<(String, Reason)>,
    /// For XML: canonical pointer -> XPath.
    sources: Option<HashMap<String, String>>,
}

impl Document {
    fn read(
        format: DocumentFormat,
        reading: &Reading,
        mapping: Option<&Mapping>,
        bytes: &[u8],
    ) -> Result<Document, Vec<Reason>> {
        match (format, mapping) {
            (DocumentFormat::Xml, Some(mapping)) => {
                let mapped = mapping.map(bytes)?;
                Ok(Document {
                    canonical: mapped.document,
                    found: mapped.found,
                    sources: Some(mapped.sources),
                })
            }
            (DocumentFormat::Xml, None) => Err(vec![Reason::new(
                "/",
                code::INVALID_DOCUMENT,
                "this receipt type has no XML mapping",
            )]),
            (DocumentFormat::Json, _) => {
                let invalid =
                    |message: String| vec![Reason::new("", code::INVALID_DOCUMENT, message)];
                let text = as_utf8(bytes).map_err(|e| invalid(e.to_string()))?;
                match crate::json::parse_strict(text, reading) {
                    Ok((value @ Value::Object(_), duplicates)) => Ok(Document {
                        canonical: value,
                        found: duplicates
                            .into_iter()
                            .map(|r| (r.path.clone(), r))
                            .collect(),
                        sources: None,
                    }),
                    Ok(_) => Err(invalid("the document must be a JSON object".into())),
                    Err(e) => Err(invalid(format!("malformed JSON: {e}"))),
                }
            }
        }
    }
}

/// Where a reason came from: at one pointer, reasons sort in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    /// JSON members given twice.
    JsonReader,
    Schema,
    Rules,
    /// Repeated, unknown or non-text XML elements (their XPaths sort after the first
    /// occurrence's).
    XmlReader,
}

fn configured(
    engine: &Configured,
    vat: &Arc<VatTable>,
    document: Document,
    received_at: DateTime<Utc>,
) -> Result<Valid, Vec<Reason>> {
    let xml = document.sources.is_some();
    let reader_origin = if xml {
        Origin::XmlReader
    } else {
        Origin::JsonReader
    };
    let mut reasons: Vec<(String, Origin, Reason)> = document
        .found
        .into_iter()
        .map(|(pointer, reason)| (pointer, reader_origin, reason))
        .collect();
    let schema_reasons = schema::check(&engine.validator, &document.canonical);
    let input = rules::Input {
        document: &document.canonical,
        submitted_at: received_at.to_rfc3339(),
        vat,
        schema_failed: !reasons.is_empty() || !schema_reasons.is_empty(),
    };
    let rule_reasons = rules::run(&engine.rules, &input);
    let canonical = |origin| move |r: Reason| (r.path.clone(), origin, r);
    reasons.extend(schema_reasons.into_iter().map(canonical(Origin::Schema)));
    reasons.extend(rule_reasons.into_iter().map(canonical(Origin::Rules)));
    // Stable: reasons of one origin at one pointer keep the order they were found in.
    reasons.sort_by_cached_key(|(pointer, origin, _)| (engine.order.key(pointer), *origin));
    let mut reasons: Vec<Reason> = reasons
        .into_iter()
        .map(|(_, origin, mut reason)| {
            if let (Some(sources), Origin::Schema | Origin::Rules) = (&document.sources, origin) {
                reason.path = xpath_of(sources, &reason.path);
            }
            reason
        })
        .collect();
    if reasons.is_empty() {
        return match core::core(&document.canonical) {
            Ok(receipt) => Ok(Valid {
                receipt,
                extension: core::extension(&document.canonical),
            }),
            Err(problem) => Err(vec![Reason::new(
                if xml { "/" } else { "" },
                code::INVALID_DOCUMENT,
                format!("the receipt type does not define its core: {problem}"),
            )]),
        };
    }
    if reasons.len() > MAX_REASONS {
        let omitted = reasons.len() - (MAX_REASONS - 1);
        reasons.truncate(MAX_REASONS - 1);
        reasons.push(Reason::new(
            if xml { "/" } else { "" },
            code::TOO_MANY_REASONS,
            format!("{omitted} further reasons were left out; fix the ones above first"),
        ));
    }
    Err(reasons)
}

/// The XPath a canonical pointer came from: its own, or its nearest mapped ancestor's.
fn xpath_of(sources: &HashMap<String, String>, pointer: &str) -> String {
    let mut current = pointer;
    loop {
        if let Some(path) = sources.get(current) {
            return path.clone();
        }
        match current.rfind('/') {
            Some(cut) => current = &current[..cut],
            None => return "/".to_owned(),
        }
    }
}

/// The `<name>/<version>/` directories under `dir` that hold a manifest.
fn type_dirs(dir: &Path, errors: &mut Vec<FileError>) -> Vec<PathBuf> {
    let list = |path: &Path, errors: &mut Vec<FileError>| -> Vec<PathBuf> {
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut dirs: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    // Hidden entries: editors' files and Kubernetes' ConfigMap `..data` links.
                    .filter(|p| {
                        !p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .collect();
                dirs.sort();
                dirs
            }
            Err(e) => {
                errors.push(FileError::whole(path, e.to_string()));
                Vec::new()
            }
        }
    };
    list(dir, errors)
        .iter()
        .flat_map(|name| list(name, errors))
        .filter(|version| version.join(MANIFEST).is_file())
        .collect()
}

fn read(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|e| FileError::whole(path, e.to_string()))
}

/// Loads and compiles one type directory.
/// Reads one file of a type directory.
type Files<'a> = &'a dyn Fn(&Path) -> Result<String, FileError>;

/// Loads and compiles one type directory, reading its files with `read`.
fn load_type(dir: &Path, read: Files<'_>) -> Result<TypeDefinition, Vec<FileError>> {
    let manifest_path = dir.join(MANIFEST);
    let text = read(&manifest_path).map_err(|e| vec![e])?;
    let manifest: Manifest = toml::from_str(&text)
        .map_err(|e| vec![FileError::toml(&text, &e).in_file(&manifest_path)])?;
    let mut errors = Vec::new();
    let whole = |message: String| FileError::whole(&manifest_path, message);
    let expected = (
        dir.parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned()),
        dir.file_name().map(|n| n.to_string_lossy().into_owned()),
    );
    if expected != (Some(manifest.name.clone()), Some(manifest.version.clone())) {
        errors.push(whole(format!(
            "name {:?} and version {:?} must be the directory's <name>/<version>",
            manifest.name, manifest.version
        )));
    }
    if manifest.formats.is_empty() {
        errors.push(whole("formats must name at least one of json, xml".into()));
    }
    if manifest.status == Status::Deprecated
        && (manifest.sunset.is_none() || manifest.deprecated_since.is_none())
    {
        errors.push(whole(
            "a deprecated type needs deprecated_since and sunset dates".into(),
        ));
    }
    let schema_path = dir.join(SCHEMA);
    let schema_text = read(&schema_path).unwrap_or_default();
    let schema = read(&schema_path).and_then(|text| {
        serde_json::from_str::<Value>(&text).map_err(|e| FileError::json(&e).in_file(&schema_path))
    });
    let (schema, validator) = match schema {
        Ok(schema) => match schema::compile(&schema) {
            Ok(validator) => (schema, Some(validator)),
            Err(e) => {
                errors.push(FileError::whole(&schema_path, e));
                (schema, None)
            }
        },
        Err(e) => {
            errors.push(e);
            (Value::Null, None)
        }
    };
    let rules_path = dir.join(RULES);
    let rules = read(&rules_path).map_err(|e| vec![e]).and_then(|text| {
        rules::compile(&text).map_err(|es| es.into_iter().map(|e| e.in_file(&rules_path)).collect())
    });
    let rules = rules.map_err(|es| errors.extend(es)).ok();
    let reads_xml = manifest.formats.contains(&DocumentFormat::Xml)
        || manifest
            .aliases
            .iter()
            .any(|a| a.format == DocumentFormat::Xml);
    let mapping = if reads_xml {
        let path = dir.join(XML_MAPPING);
        let mapping = read(&path).and_then(|text| {
            let file =
                toml::from_str(&text).map_err(|e| FileError::toml(&text, &e).in_file(&path))?;
            Mapping::compile(file).map_err(|e| FileError::whole(&path, e))
        });
        match mapping {
            Ok(mapping) => Some(Some(mapping)),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    } else {
        Some(None)
    };
    let engine = match (validator, rules, mapping) {
        (Some(validator), Some(rules), Some(mapping)) => Some(Box::new(Configured {
            validator,
            rules,
            mapping,
            reading: manifest.json.clone(),
            order: FieldOrder::new(&schema, &schema_text),
        })),
        _ => None,
    };
    match engine {
        Some(engine) if errors.is_empty() => Ok(TypeDefinition {
            name: manifest.name,
            version: manifest.version,
            description: manifest.description,
            status: manifest.status,
            deprecated_since: manifest.deprecated_since,
            sunset: manifest.sunset,
            formats: manifest.formats,
            aliases: manifest.aliases,
            schema,
            dir: dir.to_owned(),
            engine,
            examples: std::sync::OnceLock::new(),
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded files load (a broken one would only be logged at run time).
    #[test]
    fn the_builtin_set_loads_its_embedded_files() {
        let set = TypeSet::builtin();
        let retail = set.get("retail-receipt/v1").expect("retail type");
        assert!(retail.engine.rules.len() > 20);
        assert!(retail.engine.mapping.is_some());
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).expect("date");
        assert_eq!(set.vat_rates("DE", day).len(), 3);
        assert!(set.names("retail-receipt/v1") && set.names("retail-receipt-xml/v1"));
        assert!(!set.names("parking-ticket/v1"));
        assert!(
            set.resolve("retail-receipt-xml/v1", DocumentFormat::Xml)
                .is_ok()
        );
        assert!(
            set.resolve("retail-receipt/v1", DocumentFormat::Xml)
                .is_err()
        );
    }
}
