//! Versioned JSON records: one row per record, keyed by its first column, with a `version`
//! column for compare-and-set and a `record` column holding the record as JSON. Table and column
//! names are constants of this backend, never input.

use libsql::{Connection, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec;
use crate::{Cas, Result};

/// A table of versioned records.
pub(super) struct Table {
    pub name: &'static str,
    /// What a record is, for error messages (`receipt record`, ...).
    pub what: &'static str,
    /// The key column first, then the other columns lookups need (kept equal to the record).
    pub columns: &'static [&'static str],
}

impl Table {
    fn key(&self) -> &'static str {
        self.columns[0]
    }
}

/// A record with the version stores compare before writing.
pub(super) trait Versioned: Serialize + DeserializeOwned {
    fn version(&self) -> u64;
}

/// The record under `key`, if any.
pub(super) async fn load<T: Versioned>(
    conn: &Connection,
    table: &Table,
    key: &str,
) -> Result<Option<T>> {
    let sql = format!(
        "SELECT version, record FROM {} WHERE {} = ?1",
        table.name,
        table.key()
    );
    let mut rows = conn.query(&sql, [key]).await?;
    match rows.next().await? {
        Some(row) => decode(&row, table).map(Some),
        None => Ok(None),
    }
}

/// Every record `filter` (a condition on the table, with `params`) selects, in `order`.
pub(super) async fn load_all<T: Versioned>(
    conn: &Connection,
    table: &Table,
    filter: &str,
    order: &str,
    params: Vec<Value>,
) -> Result<Vec<T>> {
    let sql = format!(
        "SELECT version, record FROM {} WHERE {filter} ORDER BY {order}",
        table.name
    );
    let mut rows = conn.query(&sql, params).await?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().await? {
        records.push(decode(&row, table)?);
    }
    Ok(records)
}

/// A `(version, record)` row.
fn decode<T: Versioned>(row: &libsql::Row, table: &Table) -> Result<T> {
    let version = codec::int(row, 0, table.what)?;
    let record: T = codec::from_json(&codec::text(row, 1, table.what)?, table.what)?;
    if i64::try_from(record.version()).ok() != Some(version) {
        return Err(codec::corrupt(
            table.what,
            format!(
                "the row says version {version}, its record {}",
                record.version()
            ),
        ));
    }
    Ok(record)
}

/// Compare-and-set: writes `record` with the values of `table.columns` (`columns`, key first)
/// if the stored version is `expected` (0: inserts if the key is free).
pub(super) async fn save<T: Versioned>(
    conn: &Connection,
    table: &Table,
    columns: Vec<Value>,
    record: &T,
    expected: u64,
) -> Result<Cas> {
    let version = Value::Integer(codec::version(record.version(), table.what)?);
    let json = Value::Text(codec::to_json(record, table.what)?);
    let written = if expected == 0 {
        let names = table.columns.join(", ");
        let marks: Vec<String> = (1..=table.columns.len() + 2)
            .map(|i| format!("?{i}"))
            .collect();
        let sql = format!(
            "INSERT INTO {} ({names}, version, record) VALUES ({}) ON CONFLICT DO NOTHING",
            table.name,
            marks.join(", ")
        );
        let mut params = columns;
        params.extend([version, json]);
        conn.execute(&sql, params).await?
    } else {
        let n = table.columns.len();
        let sets: Vec<String> = table
            .columns
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, column)| format!("{column} = ?{}", i + 1))
            .chain([
                format!("version = ?{}", n + 1),
                format!("record = ?{}", n + 2),
            ])
            .collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = ?1 AND version = ?{}",
            table.name,
            sets.join(", "),
            table.key(),
            n + 3
        );
        let mut params = columns;
        params.extend([
            version,
            json,
            Value::Integer(codec::version(expected, table.what)?),
        ]);
        conn.execute(&sql, params).await?
    };
    Ok(if written == 1 {
        Cas::Written
    } else {
        Cas::Conflict
    })
}
