//! Reading columns without trusting them: libsql's typed getters panic on a type mismatch, so
//! every value is read as a [`Value`] and anything unexpected becomes [`Error::Corrupt`].

use chrono::{DateTime, Utc};
use libsql::{Row, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

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

/// Timestamps are stored as integer milliseconds since the Unix epoch (UTC).
pub(super) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn time(ms: i64, what: &'static str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| corrupt(what, format!("timestamp {ms} out of range")))
}

pub(super) fn opt_time(ms: Option<i64>, what: &'static str) -> Result<Option<DateTime<Utc>>> {
    ms.map(|ms| time(ms, what)).transpose()
}

pub(super) fn parse<T, E: std::fmt::Display>(
    s: &str,
    what: &'static str,
    parse: impl FnOnce(&str) -> std::result::Result<T, E>,
) -> Result<T> {
    parse(s).map_err(|e| corrupt(what, format!("{e} (stored value {:?})", truncate(s))))
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

fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}
