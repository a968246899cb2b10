//! Between rows and domain values: records as JSON, timestamps, versions, and the outcome of a
//! lightweight transaction.

use chrono::{DateTime, Utc};
use scylla::response::query_result::QueryResult;
use scylla::value::{CqlTimestamp, CqlValue, Row};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::backend;
use crate::{Error, Result};

pub(super) fn to_json<T: Serialize>(value: &T, what: &'static str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Encode {
        what,
        detail: e.to_string(),
    })
}

pub(super) fn from_json<T: DeserializeOwned>(json: &str, what: &'static str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt {
        what,
        detail: e.to_string(),
    })
}

pub(super) fn version(version: u64, what: &'static str) -> Result<i64> {
    i64::try_from(version).map_err(|_| Error::Encode {
        what,
        detail: format!("version {version} exceeds a bigint"),
    })
}

/// A `(version, record)` row whose two versions must agree.
pub(super) fn versioned<T: DeserializeOwned>(
    row: (i64, String),
    what: &'static str,
    record_version: impl Fn(&T) -> u64,
) -> Result<T> {
    let (stored, json) = row;
    let record: T = from_json(&json, what)?;
    if i64::try_from(record_version(&record)).ok() != Some(stored) {
        return Err(Error::Corrupt {
            what,
            detail: format!(
                "the row says version {stored}, its record {}",
                record_version(&record)
            ),
        });
    }
    Ok(record)
}

pub(super) fn timestamp(at: DateTime<Utc>) -> CqlTimestamp {
    CqlTimestamp(at.timestamp_millis())
}

pub(super) fn from_timestamp(at: CqlTimestamp, what: &'static str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(at.0).ok_or_else(|| Error::Corrupt {
        what,
        detail: format!("{} is not a time", at.0),
    })
}

/// The write timestamp of a listed receipt's row: its record's version. Rows of one receipt are
/// written after each stored version, possibly out of order (retries, concurrent appliers);
/// the highest version wins whatever order the writes land in, and a replay changes nothing.
pub(super) fn listed_write_timestamp(record_version: u64) -> i64 {
    i64::try_from(record_version).unwrap_or(i64::MAX)
}

/// Microseconds below which [`first_wins_timestamp`] counts down.
const FIRST_WINS_BASE: i64 = 1 << 62;

/// A write timestamp that is *smaller* the later the write: of several inserts of one row the
/// first stays, without a transaction (documents: a retried submission never replaces the
/// document first stored).
pub(super) fn first_wins_timestamp(now: DateTime<Utc>) -> i64 {
    FIRST_WINS_BASE - now.timestamp_micros()
}

/// Whether a lightweight transaction was applied (its first column, `[applied]`).
pub(super) fn applied(result: QueryResult) -> Result<bool> {
    let rows = result.into_rows_result().map_err(backend)?;
    let row = rows.first_row::<Row>().map_err(backend)?;
    match row.columns.first() {
        Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
        other => Err(Error::Corrupt {
            what: "lightweight transaction result",
            detail: format!("no [applied] column: {other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn later_versions_win_and_earlier_documents_stay() {
        assert!(listed_write_timestamp(5) > listed_write_timestamp(4));
        let now = Utc::now();
        assert!(first_wins_timestamp(now) > first_wins_timestamp(now + TimeDelta::microseconds(1)));
        // Positive and far from overflow for millennia.
        assert!(first_wins_timestamp(now + TimeDelta::days(365 * 1000)) > 0);
    }

    #[test]
    fn a_versioned_row_must_agree_with_its_record() {
        #[derive(serde::Deserialize)]
        struct R {
            version: u64,
        }
        let ok: R = versioned((3, r#"{"version":3}"#.into()), "r", |r: &R| r.version).expect("ok");
        assert_eq!(ok.version, 3);
        assert!(matches!(
            versioned((4, r#"{"version":3}"#.into()), "r", |r: &R| r.version),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            versioned::<R>((3, "garbage".into()), "r", |r: &R| r.version),
            Err(Error::Corrupt { .. })
        ));
        let t = DateTime::from_timestamp_millis(1_700_000_000_123).expect("t");
        assert_eq!(from_timestamp(timestamp(t), "t").expect("t"), t);
    }
}
