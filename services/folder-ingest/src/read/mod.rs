//! Streaming readers: each turns a file into its records, one at a time, holding at most one
//! record (bounded by [`Limits::max_record_bytes`]) in memory, never the file.
//!
//! A record that cannot be turned into a document (too large, not UTF-8, an inconsistent CSV
//! receipt) is still a record, [`Content::Unreadable`], so record numbers never depend on what
//! the gateway says. A file whose structure is broken (a JSON array that is never closed, a CSV
//! header with an unknown column) is a [`ReadError::Malformed`]: the whole file is refused.

mod csv;
mod json;
mod ndjson;
mod single;

use std::io::{self, BufRead};

use crate::format::Format;

pub use self::csv::{LINE_COLUMNS, OPTIONAL_RECEIPT_COLUMNS, RECEIPT_COLUMNS};

/// How large one record may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A larger record is [`Content::Unreadable`] (and is skipped without being held).
    pub max_record_bytes: usize,
}

/// One record of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its position among the file's records, from 1.
    pub number: u64,
    /// The line it starts on, from 1.
    pub line: u64,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The document to submit, as text.
    Document(String),
    /// Why this record cannot be submitted.
    Unreadable(String),
}

/// Why a file cannot be read (to the end).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The file's structure is broken: no record after this point can be trusted.
    #[error("line {line}: {detail}")]
    Malformed { line: u64, detail: String },
}

impl ReadError {
    pub(crate) fn malformed(line: u64, detail: impl Into<String>) -> Self {
        Self::Malformed {
            line,
            detail: detail.into(),
        }
    }
}

/// The records of a file.
pub type Records = Box<dyn Iterator<Item = Result<Record, ReadError>> + Send>;

/// The records of `reader`, read as `format`.
pub fn records<R: BufRead + Send + 'static>(format: Format, reader: R, limits: Limits) -> Records {
    match format {
        Format::Ndjson => Box::new(ndjson::Lines::new(reader, limits)),
        Format::Json => Box::new(json::Documents::new(reader, limits)),
        Format::Csv => Box::new(csv::Receipts::new(reader, limits)),
        Format::Xml => Box::new(single::Whole::new(reader, limits)),
    }
}

/// A UTF-8 byte order mark, dropped at the start of JSON and CSV files.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The document in `bytes`, or why it is unreadable.
pub(crate) fn text(bytes: Vec<u8>) -> Content {
    match String::from_utf8(bytes) {
        Ok(text) => Content::Document(text),
        Err(error) => Content::Unreadable(format!("not UTF-8: {}", error.utf8_error())),
    }
}

pub(crate) fn too_large(limits: Limits) -> Content {
    Content::Unreadable(format!(
        "larger than {} bytes (folder_ingest.max_record_bytes)",
        limits.max_record_bytes
    ))
}

/// A byte-at-a-time view of a buffered reader that counts lines.
pub(crate) struct Cursor<R> {
    reader: R,
    /// The line of the next byte, from 1.
    pub line: u64,
}

impl<R: BufRead> Cursor<R> {
    pub fn new(reader: R) -> Self {
        Self { reader, line: 1 }
    }

    pub fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.reader.fill_buf() {
                Ok(buffer) => return Ok(buffer.first().copied()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Consumes the byte [`Cursor::peek`] returned.
    pub fn bump(&mut self, byte: u8) {
        self.reader.consume(1);
        if byte == b'\n' {
            self.line += 1;
        }
    }

    /// Skips whitespace; returns the next other byte, not consumed.
    pub fn skip_whitespace(&mut self) -> io::Result<Option<u8>> {
        while let Some(byte) = self.peek()? {
            if !byte.is_ascii_whitespace() {
                return Ok(Some(byte));
            }
            self.bump(byte);
        }
        Ok(None)
    }

    /// Skips a UTF-8 byte order mark at the current position.
    pub fn skip_bom(&mut self) -> io::Result<()> {
        let buffer = loop {
            match self.reader.fill_buf() {
                Ok(buffer) => break buffer,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if buffer.starts_with(BOM) {
            self.reader.consume(BOM.len());
        }
        Ok(())
    }
}
