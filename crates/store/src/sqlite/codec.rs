//! Between SQLite values and domain values. libsql's typed getters panic on a type mismatch, so
//! every value is read as a [`Value`] and anything unexpected becomes [`Error::Corrupt`].
//! Records are stored as JSON (the domain types' serde form); timestamps in key columns as
//! integer epoch milliseconds (UTC).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use libsql::{Row, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// SQLite primary result codes that no retry can fix: corruption, constraint violations, misuse.
const PERMANENT: &[i32] = &[
    11, // SQLITE_CORRUPT
    19, // SQLITE_CONSTRAINT
    20, // SQLITE_MISMATCH
    21, // SQLITE_MISUSE
    25, // SQLITE_RANGE
    26, // SQLITE_NOTADB
];

impl From<libsql::Error> for Error {
    fn from(e: libsql::Error) -> Self {
        let transient = match &e {
            // Busy, locked, I/O, full disk, ...: another moment may do.
            libsql::Error::SqliteFailure(code, _) => !PERMANENT.contains(&(code & 0xff)),
            // The rest are misuses of the API (a wrong column type or index, ...).
            _ => false,
        };
        Error::Backend {
            backend: super::BACKEND,
            transient,
            source: Arc::new(e),
        }
    }
}

pub(super) fn corrupt(what: &'static str, detail: impl ToString) -> Error {
    Error::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

fn value(row: &Row, idx: i32, what: &'static str) -> Result<Value> {
    row.get_value(idx).map_err(|e| corrupt(what, e))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Integer(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Blob(_) => "blob",
    }
}

pub(super) fn opt_text(row: &Row, idx: i32, what: &'static str) -> Result<Option<String>> {
    match value(row, idx, what)? {
        Value::Null => Ok(None),
        Value::Text(s) => Ok(Some(s)),
        other => Err(corrupt(
            what,
            format!("expected text, found {}", type_name(&other)),
        )),
    }
}

pub(super) fn text(row: &Row, idx: i32, what: &'static str) -> Result<String> {
    opt_text(row, idx, what)?.ok_or_else(|| corrupt(what, "unexpected null"))
}

pub(super) fn opt_int(row: &Row, idx: i32, what: &'static str) -> Result<Option<i64>> {
    match value(row, idx, what)? {
        Value::Null => Ok(None),
        Value::Integer(i) => Ok(Some(i)),
        other => Err(corrupt(
            what,
            format!("expected integer, found {}", type_name(&other)),
        )),
    }
}

pub(super) fn int(row: &Row, idx: i32, what: &'static str) -> Result<i64> {
    opt_int(row, idx, what)?.ok_or_else(|| corrupt(what, "unexpected null"))
}

pub(super) fn blob(row: &Row, idx: i32, what: &'static str) -> Result<Vec<u8>> {
    match value(row, idx, what)? {
        Value::Blob(bytes) => Ok(bytes),
        other => Err(corrupt(
            what,
            format!("expected blob, found {}", type_name(&other)),
        )),
    }
}

/// A version as stored: SQLite integers are signed.
pub(super) fn version(version: u64, what: &'static str) -> Result<i64> {
    i64::try_from(version).map_err(|_| Error::Encode {
        what,
        detail: format!("version {version} is too large"),
    })
}

pub(super) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn time(ms: i64, what: &'static str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| corrupt(what, format!("timestamp {ms} out of range")))
}

pub(super) fn parse<T, E: std::fmt::Display>(
    s: &str,
    what: &'static str,
    parse: impl FnOnce(&str) -> std::result::Result<T, E>,
) -> Result<T> {
    parse(s).map_err(|e| {
        let shown: String = s.chars().take(100).collect();
        corrupt(what, format!("{e} (stored value {shown:?})"))
    })
}

pub(super) fn from_json<T: DeserializeOwned>(s: &str, what: &'static str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

pub(super) fn to_json<T: Serialize>(value: &T, what: &'static str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Encode {
        what,
        detail: e.to_string(),
    })
}
