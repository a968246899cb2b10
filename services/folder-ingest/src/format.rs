//! Which files are taken and how each is read: by extension.

use std::path::Path;

/// The receipt type of JSON-based files (NDJSON, JSON, CSV) when none is configured.
pub const DEFAULT_JSON_TYPE: &str = "retail-receipt/v1";
/// The receipt type of XML files when none is configured.
pub const DEFAULT_XML_TYPE: &str = "retail-receipt-xml/v1";

/// An input file's format, from its extension (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.ndjson`, `.jsonl`: one JSON document per line; blank lines are skipped.
    Ndjson,
    /// `.json`: a JSON array of documents, or one document (an object).
    Json,
    /// `.csv`: retail receipts, one row per receipt line (docs/bulk.md has the columns).
    Csv,
    /// `.xml`: one XML document.
    Xml,
}

impl Format {
    /// The format of `path`, or `None` for a file the ingester leaves alone.
    pub fn of(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            "json" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            "xml" => Some(Self::Xml),
            _ => None,
        }
    }

    /// The media type of the documents a file of this format holds.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Xml => "application/xml",
            Self::Ndjson | Self::Json | Self::Csv => "application/json",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Xml => "xml",
        }
    }
}

/// The receipt types files are submitted as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptTypes {
    /// NDJSON, JSON and CSV files.
    pub json: String,
    /// XML files.
    pub xml: String,
}

impl ReceiptTypes {
    /// `receipt_type` for every file, `xml_receipt_type` for XML files; unset: the retail types.
    pub fn new(receipt_type: Option<&str>, xml_receipt_type: Option<&str>) -> Self {
        Self {
            json: receipt_type.unwrap_or(DEFAULT_JSON_TYPE).to_owned(),
            xml: xml_receipt_type
                .or(receipt_type)
                .unwrap_or(DEFAULT_XML_TYPE)
                .to_owned(),
        }
    }

    pub fn for_format(&self, format: Format) -> &str {
        match format {
            Format::Xml => &self.xml,
            Format::Ndjson | Format::Json | Format::Csv => &self.json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("a.NDJSON")), Some(Format::Ndjson));
        assert_eq!(Format::of(Path::new("a.jsonl")), Some(Format::Ndjson));
        assert_eq!(Format::of(Path::new("a.json")), Some(Format::Json));
        assert_eq!(Format::of(Path::new("a.csv")), Some(Format::Csv));
        assert_eq!(Format::of(Path::new("a.xml")), Some(Format::Xml));
        assert_eq!(Format::of(Path::new("a.txt")), None);
        assert_eq!(Format::of(Path::new("json")), None);
    }

    #[test]
    fn receipt_types_default_per_format() {
        let defaults = ReceiptTypes::new(None, None);
        assert_eq!(defaults.for_format(Format::Csv), DEFAULT_JSON_TYPE);
        assert_eq!(defaults.for_format(Format::Xml), DEFAULT_XML_TYPE);
        let one = ReceiptTypes::new(Some("fuel-receipt/v1"), None);
        assert_eq!(one.for_format(Format::Xml), "fuel-receipt/v1");
        let both = ReceiptTypes::new(Some("a/v1"), Some("b/v1"));
        assert_eq!(
            (both.for_format(Format::Json), both.for_format(Format::Xml)),
            ("a/v1", "b/v1")
        );
    }
}
