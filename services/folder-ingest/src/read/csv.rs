//! `.csv`: retail receipts, one row per receipt line. The first row names the columns (any
//! order); consecutive rows with the same `receipt_number` (or an empty one, continuing the row
//! above) are one receipt, turned into a `retail-receipt/v1` JSON document. Receipt columns
//! come from the receipt's rows (empty or repeated on later rows; a different value refuses the
//! receipt); line columns come from each row. An empty cell leaves its member out, so the
//! receipt type's validation says what is missing. The layout is documented in docs/bulk.md.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use csv::{ByteRecord, ReaderBuilder, Trim};
use serde_json::{Map, Value};

use super::{BOM, Content, Limits, ReadError, Record};

/// Receipt columns every file must have.
pub const RECEIPT_COLUMNS: &[&str] = &[
    "receipt_number",
    "issued_at",
    "currency",
    "seller_tax_id",
    "total_net_amount",
    "total_vat_amount",
    "total_gross_amount",
];
/// Receipt columns a file may have.
pub const OPTIONAL_RECEIPT_COLUMNS: &[&str] = &[
    "seller_name",
    "buyer_tax_id",
    "buyer_name",
    "payment_method",
    "payment_amount",
];
/// Line columns (every file has them all): one receipt line per row.
pub const LINE_COLUMNS: &[&str] = &[
    "description",
    "quantity",
    "unit_price",
    "vat_rate",
    "net_amount",
    "vat_amount",
    "gross_amount",
];

/// The retail type's own limit on lines: a larger receipt is refused without being held.
const MAX_LINES: usize = 1000;

/// Bytes a row may take beyond the record limit before the file is refused as broken (an
/// unterminated quote would otherwise make one field of the rest of the file).
const ROW_SLACK: u64 = 64 * 1024;

pub struct Receipts<R> {
    rows: csv::Reader<Guard<R>>,
    limit: Arc<AtomicU64>,
    limits: Limits,
    columns: Option<Columns>,
    pending: Option<Row>,
    number: u64,
    done: bool,
}

impl<R: Read> Receipts<R> {
    pub fn new(reader: R, limits: Limits) -> Self {
        let limit = Arc::new(AtomicU64::new(0));
        let guard = Guard {
            inner: reader,
            read: 0,
            limit: Arc::clone(&limit),
        };
        let rows = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(Trim::All)
            .from_reader(guard);
        let this = Self {
            rows,
            limit,
            limits,
            columns: None,
            pending: None,
            number: 0,
            done: false,
        };
        this.allow_from(0);
        this
    }

    /// Lets the reader read one row's worth past `offset`.
    fn allow_from(&self, offset: u64) {
        let row = u64::try_from(self.limits.max_record_bytes).unwrap_or(u64::MAX);
        self.limit.store(
            offset.saturating_add(row).saturating_add(ROW_SLACK),
            Ordering::Relaxed,
        );
    }

    fn raw_row(&mut self) -> Result<Option<ByteRecord>, ReadError> {
        let mut record = ByteRecord::new();
        let line = self.rows.position().line();
        match self.rows.read_byte_record(&mut record) {
            Ok(true) => {
                self.allow_from(self.rows.position().byte());
                Ok(Some(record))
            }
            Ok(false) => Ok(None),
            Err(error) => Err(csv_error(error, line, self.limits)),
        }
    }

    fn header(&mut self) -> Result<(), ReadError> {
        let Some(header) = self.raw_row()? else {
            self.done = true;
            return Ok(());
        };
        self.columns = Some(Columns::new(&header)?);
        Ok(())
    }

    fn row(&mut self) -> Result<Option<Row>, ReadError> {
        let Some(record) = self.raw_row()? else {
            return Ok(None);
        };
        let columns = self
            .columns
            .as_ref()
            .ok_or_else(|| ReadError::malformed(1, "no header row"))?;
        Ok(Some(Row::new(&record, columns)))
    }

    fn step(&mut self) -> Result<Option<Record>, ReadError> {
        if self.columns.is_none() {
            self.header()?;
            if self.done {
                return Ok(None);
            }
        }
        let first = match self.pending.take() {
            Some(row) => row,
            None => match self.row()? {
                Some(row) => row,
                None => return Ok(None),
            },
        };
        self.number += 1;
        let mut receipt = match Receipt::start(first, self.limits) {
            Ok(receipt) => receipt,
            Err((line, why)) => {
                return Ok(Some(Record {
                    number: self.number,
                    line,
                    content: Content::Unreadable(why),
                }));
            }
        };
        while let Some(row) = self.row()? {
            if !receipt.continues_with(&row) {
                self.pending = Some(row);
                break;
            }
            receipt.add(row, self.limits);
        }
        let columns = self
            .columns
            .as_ref()
            .ok_or_else(|| ReadError::malformed(1, "no header row"))?;
        Ok(Some(Record {
            number: self.number,
            line: receipt.line,
            content: receipt.document(columns),
        }))
    }
}

impl<R: Read> Iterator for Receipts<R> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

fn csv_error(error: csv::Error, line: u64, limits: Limits) -> ReadError {
    let line = line.max(1);
    match error.into_kind() {
        csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|e| e.is::<RowTooLong>()) => {
            ReadError::malformed(
                line,
                format!(
                    "a row longer than {} bytes: is a quote left open?",
                    limits.max_record_bytes
                ),
            )
        }
        csv::ErrorKind::Io(io) => ReadError::Io(io),
        other => ReadError::malformed(line, format!("{other:?}")),
    }
}

/// Where each known column is.
#[derive(Debug)]
struct Columns {
    /// The column of each field, in order.
    names: Vec<&'static str>,
    /// The field of each column.
    index: std::collections::HashMap<&'static str, usize>,
    width: usize,
}

impl Columns {
    fn new(header: &ByteRecord) -> Result<Self, ReadError> {
        let known = || {
            RECEIPT_COLUMNS
                .iter()
                .chain(OPTIONAL_RECEIPT_COLUMNS)
                .chain(LINE_COLUMNS)
        };
        let mut index = std::collections::HashMap::new();
        let mut names = Vec::new();
        for (i, field) in header.iter().enumerate() {
            let field = field.strip_prefix(BOM).unwrap_or(field);
            let name = std::str::from_utf8(field).unwrap_or_default();
            let Some(known) = known().find(|k| **k == name) else {
                return Err(ReadError::malformed(
                    1,
                    format!(
                        "unknown column {name:?} (the columns are in docs/bulk.md: {})",
                        known().copied().collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            if index.insert(*known, i).is_some() {
                return Err(ReadError::malformed(1, format!("column {name:?} twice")));
            }
            names.push(*known);
        }
        let missing: Vec<&str> = RECEIPT_COLUMNS
            .iter()
            .chain(LINE_COLUMNS)
            .filter(|c| !index.contains_key(*c))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(ReadError::malformed(
                1,
                format!("missing columns: {}", missing.join(", ")),
            ));
        }
        Ok(Self {
            names,
            index,
            width: header.len(),
        })
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

/// The receipt a row belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Number(String),
    /// An empty `receipt_number`: the receipt of the row above.
    Blank,
    /// The cell cannot be read (missing from a short row, not UTF-8).
    Unreadable,
}

#[derive(Debug)]
struct Row {
    line: u64,
    key: Key,
    /// Every field, as text (empty when unreadable).
    fields: Vec<String>,
    problem: Option<String>,
    bytes: usize,
}

impl Row {
    fn new(record: &ByteRecord, columns: &Columns) -> Self {
        let line = record.position().map_or(0, csv::Position::line);
        let mut problem = (record.len() != columns.width).then(|| {
            format!(
                "line {line} has {} fields; the header has {}",
                record.len(),
                columns.width
            )
        });
        let fields: Vec<String> = record
            .iter()
            .enumerate()
            .map(|(i, field)| match std::str::from_utf8(field) {
                Ok(text) => text.to_owned(),
                Err(_) => {
                    let column = columns.names.get(i).copied().unwrap_or("(extra)");
                    problem
                        .get_or_insert_with(|| format!("line {line}, column {column}: not UTF-8"));
                    String::new()
                }
            })
            .collect();
        let key = match columns
            .position("receipt_number")
            .and_then(|i| record.get(i))
            .map(std::str::from_utf8)
        {
            Some(Ok("")) => Key::Blank,
            Some(Ok(number)) => Key::Number(number.to_owned()),
            Some(Err(_)) | None => Key::Unreadable,
        };
        Self {
            line,
            key,
            bytes: record.as_slice().len(),
            fields,
            problem,
        }
    }
}

/// The rows of one receipt, as they are read.
struct Receipt {
    line: u64,
    number: String,
    rows: Vec<Row>,
    bytes: usize,
    problem: Option<String>,
}

impl Receipt {
    /// A receipt starting with `row`, or the line and why it cannot start one.
    fn start(row: Row, limits: Limits) -> Result<Self, (u64, String)> {
        let number = match &row.key {
            Key::Number(number) => number.clone(),
            Key::Blank => {
                return Err((
                    row.line,
                    format!(
                        "line {}: no receipt_number (an empty one continues the receipt of the row above, and there is none)",
                        row.line
                    ),
                ));
            }
            Key::Unreadable => {
                return Err((
                    row.line,
                    row.problem.clone().unwrap_or_else(|| {
                        format!("line {}: no readable receipt_number", row.line)
                    }),
                ));
            }
        };
        let mut receipt = Self {
            line: row.line,
            number,
            rows: Vec::new(),
            bytes: 0,
            problem: None,
        };
        receipt.add(row, limits);
        Ok(receipt)
    }

    fn continues_with(&self, row: &Row) -> bool {
        match &row.key {
            Key::Number(number) => *number == self.number,
            Key::Blank => true,
            Key::Unreadable => false,
        }
    }

    fn add(&mut self, row: Row, limits: Limits) {
        if self.problem.is_none() {
            self.problem = row.problem.clone();
        }
        self.bytes = self.bytes.saturating_add(row.bytes);
        if self.problem.is_none() && self.rows.len() >= MAX_LINES {
            self.problem = Some(format!("more than {MAX_LINES} lines"));
        }
        if self.problem.is_none() && self.bytes > limits.max_record_bytes {
            self.problem = Some(format!(
                "larger than {} bytes (folder_ingest.max_record_bytes)",
                limits.max_record_bytes
            ));
        }
        if self.problem.is_some() {
            // Keep reading the receipt's rows, but hold none of them.
            self.rows = Vec::new();
        } else {
            self.rows.push(row);
        }
    }

    fn document(self, columns: &Columns) -> Content {
        if let Some(problem) = self.problem {
            return Content::Unreadable(problem);
        }
        match build(&self.rows, columns) {
            Ok(document) => Content::Document(document.to_string()),
            Err(problem) => Content::Unreadable(problem),
        }
    }
}

/// The retail document of a receipt's rows, or why the rows disagree.
fn build(rows: &[Row], columns: &Columns) -> Result<Value, String> {
    let cell = |row: &Row, name: &str| -> String {
        columns
            .position(name)
            .and_then(|i| row.fields.get(i))
            .cloned()
            .unwrap_or_default()
    };
    // A receipt column: its first non-empty value; another value on a later row is an error.
    let receipt_value = |name: &str| -> Result<Option<String>, String> {
        let mut value: Option<(u64, String)> = None;
        for row in rows {
            let text = cell(row, name);
            if text.is_empty() {
                continue;
            }
            match &value {
                None => value = Some((row.line, text)),
                Some((line, first)) if *first != text => {
                    return Err(format!(
                        "column {name}: {first:?} on line {line} but {text:?} on line {}",
                        row.line
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(value.map(|(_, text)| text))
    };
    let object = |members: &[(&str, &str)]| -> Result<Option<Value>, String> {
        let mut map = Map::new();
        for (member, column) in members {
            if let Some(value) = receipt_value(column)? {
                map.insert((*member).to_owned(), Value::String(value));
            }
        }
        Ok((!map.is_empty()).then_some(Value::Object(map)))
    };
    let mut document = Map::new();
    for (member, column) in [
        ("receipt_number", "receipt_number"),
        ("issued_at", "issued_at"),
        ("currency", "currency"),
    ] {
        if let Some(value) = receipt_value(column)? {
            document.insert(member.to_owned(), Value::String(value));
        }
    }
    if let Some(seller) = object(&[("tax_id", "seller_tax_id"), ("name", "seller_name")])? {
        document.insert("seller".into(), seller);
    }
    if let Some(buyer) = object(&[("tax_id", "buyer_tax_id"), ("name", "buyer_name")])? {
        document.insert("buyer".into(), buyer);
    }
    let lines: Vec<Value> = rows
        .iter()
        .map(|row| {
            let line: Map<String, Value> = LINE_COLUMNS
                .iter()
                .filter_map(|column| {
                    let text = cell(row, column);
                    (!text.is_empty()).then(|| ((*column).to_owned(), Value::String(text)))
                })
                .collect();
            Value::Object(line)
        })
        .collect();
    document.insert("lines".into(), Value::Array(lines));
    let totals = object(&[
        ("net_amount", "total_net_amount"),
        ("vat_amount", "total_vat_amount"),
        ("gross_amount", "total_gross_amount"),
    ])?;
    document.insert(
        "totals".into(),
        totals.unwrap_or_else(|| Value::Object(Map::new())),
    );
    if let Some(payment) = object(&[("method", "payment_method"), ("amount", "payment_amount")])? {
        document.insert("payments".into(), Value::Array(vec![payment]));
    }
    Ok(Value::Object(document))
}

/// Marks the error a [`Guard`] returns.
#[derive(Debug, thiserror::Error)]
#[error("a CSV row is too long")]
struct RowTooLong;

/// Refuses to read further than the current row allows, so that a broken file (an
/// unterminated quote) cannot make the CSV reader buffer the rest of it.
struct Guard<R> {
    inner: R,
    read: u64,
    limit: Arc<AtomicU64>,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let limit = self.limit.load(Ordering::Relaxed);
        let room = limit.saturating_sub(self.read);
        if room == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, RowTooLong));
        }
        let take = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..take])?;
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "receipt_number,issued_at,currency,seller_tax_id,seller_name,description,quantity,unit_price,vat_rate,net_amount,vat_amount,gross_amount,total_net_amount,total_vat_amount,total_gross_amount,payment_method,payment_amount";

    fn read(input: &str) -> Result<Vec<Record>, ReadError> {
        Receipts::new(
            input.as_bytes(),
            Limits {
                max_record_bytes: 4096,
            },
        )
        .collect()
    }

    fn json(record: &Record) -> Value {
        match &record.content {
            Content::Document(text) => serde_json::from_str(text).expect("JSON"),
            Content::Unreadable(why) => panic!("record {} unreadable: {why}", record.number),
        }
    }

    #[test]
    fn consecutive_rows_make_one_retail_receipt() {
        let input = format!(
            "{HEADER}\n\
             2026-1,2026-11-14T08:12:31+01:00,EUR,DE136695976,\"Bäckerei, GmbH\",Roggenbrot,1,3.50,7,3.50,0.25,3.75,8.30,0.59,8.89,card,8.89\n\
             ,,,,,Croissant,4,1.20,7,4.80,0.34,5.14,,,,,\n\
             2026-2,2026-11-14T09:00:00+01:00,EUR,DE136695976,,Tea,1,2.00,19,2.00,0.38,2.38,2.00,0.38,2.38,,\n"
        );
        let records = read(&input).expect("reads");
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].number, records[0].line), (1, 2));
        assert_eq!((records[1].number, records[1].line), (2, 4));
        let first = json(&records[0]);
        assert_eq!(first["receipt_number"], "2026-1");
        assert_eq!(first["seller"]["name"], "Bäckerei, GmbH");
        assert_eq!(first["lines"].as_array().expect("lines").len(), 2);
        assert_eq!(first["lines"][1]["description"], "Croissant");
        assert_eq!(first["lines"][1]["gross_amount"], "5.14");
        assert_eq!(first["totals"]["gross_amount"], "8.89");
        assert_eq!(first["payments"][0]["method"], "card");
        let second = json(&records[1]);
        assert!(second.get("payments").is_none());
        assert!(second["seller"].get("name").is_none());
        assert!(second.get("buyer").is_none());
    }

    #[test]
    fn disagreeing_rows_refuse_only_their_receipt() {
        let input = format!(
            "{HEADER}\n\
             A,2026-11-14T08:00:00Z,EUR,DE136695976,,x,1,1,7,1,0.07,1.07,1,0.07,1.07,,\n\
             A,2026-11-14T08:00:00Z,USD,DE136695976,,y,1,1,7,1,0.07,1.07,,,,,\n\
             B,2026-11-14T08:00:00Z,EUR,DE136695976,,z,1,1,7,1,0.07,1.07,1,0.07,1.07\n\
             C,2026-11-14T08:00:00Z,EUR,DE136695976,,z,1,1,7,1,0.07,1.07,1,0.07,1.07,,\n"
        );
        let records = read(&input).expect("reads");
        assert_eq!(records.len(), 3);
        assert!(
            matches!(&records[0].content, Content::Unreadable(why) if why.contains("currency")),
            "{records:?}"
        );
        assert!(
            matches!(&records[1].content, Content::Unreadable(why) if why.contains("15 fields")),
            "{records:?}"
        );
        assert_eq!(json(&records[2])["receipt_number"], "C");
    }

    #[test]
    fn the_header_is_checked() {
        let unknown = read("receipt_number,colour\n1,red\n");
        assert!(
            matches!(unknown, Err(ReadError::Malformed { ref detail, .. }) if detail.contains("colour")),
            "{unknown:?}"
        );
        let missing = read("receipt_number,issued_at\n1,x\n");
        assert!(
            matches!(missing, Err(ReadError::Malformed { ref detail, .. }) if detail.contains("missing columns")),
            "{missing:?}"
        );
        assert!(read("").expect("empty").is_empty());
        assert!(
            read(&format!("\u{feff}{HEADER}\n"))
                .expect("header only")
                .is_empty()
        );
    }

    #[test]
    fn an_open_quote_refuses_the_file_without_reading_it_all() {
        let mut input = format!("{HEADER}\n\"A,");
        input.push_str(&"x".repeat(200_000));
        let result = read(&input);
        assert!(
            matches!(result, Err(ReadError::Malformed { ref detail, .. }) if detail.contains("quote")),
            "{result:?}"
        );
    }

    #[test]
    fn empty_cells_leave_members_out() {
        let input = format!("{HEADER}\nA,,EUR,DE136695976,,x,,1,7,1,0.07,1.07,1,0.07,1.07,,\n");
        let document = json(&read(&input).expect("reads")[0]);
        assert!(document.get("issued_at").is_none());
        assert!(document["lines"][0].get("quantity").is_none());
    }
}
