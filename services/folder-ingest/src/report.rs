//! The report of a file's refused records, `rejected/<name>.report.ndjson`: one JSON object per
//! line, in record order. While the file is ingested it grows in the work directory; the
//! checkpoint remembers its length, so lines written after the last checkpoint (whose records
//! are sent again after a crash) are cut on resume and never appear twice.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who refused a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefusedBy {
    /// It could not be read from the file (never sent): `detail` says why.
    Reader,
    /// The gateway refused it: `status` and `problem` are its answer (RFC 9457).
    Gateway,
    /// `--wait`: the receipt was validated and REJECTED: `reasons`.
    Validation,
    /// `--wait`: a registry refused the receipt, or could not be reached in time (FAILED):
    /// `reasons` are its failures.
    Registry,
}

/// One refused record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Its number in the file, from 1.
    pub record: u64,
    /// The line it starts on.
    pub line: u64,
    pub idempotency_key: String,
    pub refused_by: RefusedBy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Value>,
}

impl Entry {
    fn new(record: u64, line: u64, key: &str, refused_by: RefusedBy) -> Self {
        Self {
            record,
            line,
            idempotency_key: key.to_owned(),
            refused_by,
            status: None,
            problem: None,
            detail: None,
            receipt_id: None,
            receipt_status: None,
            reasons: None,
        }
    }

    /// A record the reader could not turn into a document.
    pub fn unreadable(record: u64, line: u64, key: &str, detail: String) -> Self {
        Self {
            detail: Some(detail),
            ..Self::new(record, line, key, RefusedBy::Reader)
        }
    }

    /// A record the gateway refused with `problem`.
    pub fn refused(record: u64, line: u64, key: &str, status: u16, problem: Value) -> Self {
        Self {
            status: Some(status),
            problem: Some(problem),
            ..Self::new(record, line, key, RefusedBy::Gateway)
        }
    }

    /// `--wait`: a receipt that ended REJECTED or FAILED.
    pub fn terminal(accepted: &Accepted, receipt_status: &str, reasons: Value) -> Self {
        let refused_by = if receipt_status == "REJECTED" {
            RefusedBy::Validation
        } else {
            RefusedBy::Registry
        };
        Self {
            receipt_id: Some(accepted.id.clone()),
            receipt_status: Some(receipt_status.to_owned()),
            reasons: Some(reasons),
            ..Self::new(
                accepted.record,
                accepted.line,
                &accepted.idempotency_key,
                refused_by,
            )
        }
    }
}

/// A whole file refused: it cannot be read (to the end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRefusal {
    pub file: String,
    pub refused_by: RefusedBy,
    pub line: u64,
    pub detail: String,
}

/// `--wait`: an accepted record and its receipt, to poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub record: u64,
    pub line: u64,
    pub idempotency_key: String,
    pub id: String,
}

/// An append-only NDJSON work file, cut back to a known length when reopened.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    len: u64,
}

impl Journal {
    /// Opens (or creates) `path`, keeping its first `keep` bytes (what the last checkpoint saw).
    pub fn open(path: PathBuf, keep: u64) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        let actual = file.metadata()?.len();
        if actual < keep {
            tracing::warn!(path = %path.display(), actual, expected = keep, "a work file is shorter than its checkpoint says; keeping what is there");
        }
        let len = actual.min(keep);
        file.set_len(len)?;
        file.seek(SeekFrom::Start(len))?;
        Ok(Self { path, file, len })
    }

    /// Appends one line per item.
    pub fn append<T: Serialize>(&mut self, items: &[T]) -> io::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut buffer = Vec::new();
        for item in items {
            serde_json::to_writer(&mut buffer, item)?;
            buffer.push(b'\n');
        }
        self.file.write_all(&buffer)?;
        self.len += buffer.len() as u64;
        Ok(())
    }

    /// Makes what was appended durable (before a checkpoint that counts it).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every line, parsed, from the start.
    pub fn read<T: serde::de::DeserializeOwned>(
        path: &Path,
    ) -> io::Result<impl Iterator<Item = io::Result<T>> + use<T>> {
        let reader = BufReader::new(File::open(path)?);
        Ok(reader.lines().map(|line| {
            let line = line?;
            serde_json::from_str(&line).map_err(io::Error::from)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_cuts_what_the_checkpoint_did_not_see() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("r.ndjson");
        let mut journal = Journal::open(path.clone(), 0).expect("open");
        let first = Entry::unreadable(1, 1, "k1", "too large".into());
        journal
            .append(std::slice::from_ref(&first))
            .expect("append");
        journal.sync().expect("sync");
        let kept = journal.len();
        let second = Entry::refused(2, 2, "k2", 400, serde_json::json!({"type": "x"}));
        journal
            .append(std::slice::from_ref(&second))
            .expect("append");
        drop(journal);
        let mut journal = Journal::open(path.clone(), kept).expect("reopen");
        assert_eq!(journal.len(), kept);
        journal
            .append(std::slice::from_ref(&second))
            .expect("append");
        let entries: Vec<Entry> = Journal::read(&path)
            .expect("read")
            .collect::<io::Result<_>>()
            .expect("parse");
        assert_eq!(entries, [first, second]);
        let text = std::fs::read_to_string(&path).expect("text");
        assert!(text.starts_with("{\"record\":1,\"line\":1,\"idempotency_key\":\"k1\",\"refused_by\":\"reader\",\"detail\":\"too large\"}\n"), "{text}");
    }
}
