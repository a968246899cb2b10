//! Receipt records, idempotency reservations and documents on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use libsql::Value;
use receipts_domain::listing::{Order, received_at};
use receipts_domain::{
    ReceiptId, ReceiptRecord, ReceiptScan, ReceiptSummary, Reservation, Status, TenantId,
};
use serde::{Deserialize, Serialize};

use super::records::{self, Table, Versioned};
use super::{SqliteStore, codec};
use crate::{Cas, Document, DocumentStore, ReceiptStore, ReservationStore, Reserved, Result};

const RECEIPTS: Table = Table {
    name: "receipt_records",
    what: "receipt record",
    columns: &["id", "tenant_id", "status", "receipt_type", "summary"],
};

/// The `summary` column: what a list shows of a receipt, beside its id.
#[derive(Serialize, Deserialize)]
struct StoredSummary {
    status: Status,
    receipt_type: Option<String>,
    /// Unknown while the receipt's submission has not been projected.
    received_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl StoredSummary {
    fn of(record: &ReceiptRecord) -> Self {
        Self {
            status: record.status,
            receipt_type: record.receipt_type.clone(),
            received_at: record.received_at,
            updated_at: record.updated_at,
        }
    }

    fn summary(self, id: ReceiptId) -> ReceiptSummary {
        ReceiptSummary {
            id,
            status: self.status,
            receipt_type: self.receipt_type,
            received_at: self.received_at.unwrap_or_else(|| received_at(id)),
            updated_at: self.updated_at,
        }
    }
}

impl Versioned for ReceiptRecord {
    fn version(&self) -> u64 {
        self.version
    }
}

#[async_trait]
impl ReceiptStore for SqliteStore {
    async fn receipt(&self, id: ReceiptId) -> Result<Option<ReceiptRecord>> {
        self.read(move |conn| async move { records::load(&conn, &RECEIPTS, &id.to_string()).await })
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(receipt_id = %record.id, version = record.version, expected))]
    async fn save_receipt(&self, record: &ReceiptRecord, expected: u64) -> Result<Cas> {
        let record = record.clone();
        self.write(move |conn| async move {
            let columns = vec![
                Value::Text(record.id.to_string()),
                Value::Text(record.tenant_id.as_str().to_owned()),
                Value::Text(record.status.as_str().to_owned()),
                record.receipt_type.clone().map_or(Value::Null, Value::Text),
                Value::Text(codec::to_json(
                    &StoredSummary::of(&record),
                    "receipt summary",
                )?),
            ];
            records::save(&conn, &RECEIPTS, columns, &record, expected).await
        })
        .await
    }

    async fn scan_receipt_ids(&self, scan: &ReceiptScan, limit: usize) -> Result<Vec<ReceiptId>> {
        let scan = scan.clone();
        self.read(move |conn| async move {
            let mut sql = String::from(
                "SELECT id FROM receipt_records WHERE tenant_id = ?1 AND id > ?2 AND id < ?3",
            );
            let mut params = vec![
                Value::Text(scan.tenant.as_str().to_owned()),
                Value::Text(scan.after.to_string()),
                Value::Text(scan.before.to_string()),
            ];
            if !scan.statuses.is_empty() {
                let marks: Vec<String> = scan
                    .statuses
                    .iter()
                    .map(|status| {
                        params.push(Value::Text(status.as_str().to_owned()));
                        format!("?{}", params.len())
                    })
                    .collect();
                sql.push_str(&format!(" AND status IN ({})", marks.join(", ")));
            }
            if let Some(receipt_type) = &scan.receipt_type {
                params.push(Value::Text(receipt_type.clone()));
                sql.push_str(&format!(" AND receipt_type = ?{}", params.len()));
            }
            let direction = match scan.order {
                Order::Desc => "DESC",
                Order::Asc => "ASC",
            };
            params.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
            sql.push_str(&format!(" ORDER BY id {direction} LIMIT ?{}", params.len()));
            let mut rows = conn.query(&sql, params).await?;
            let mut ids = Vec::new();
            while let Some(row) = rows.next().await? {
                ids.push(receipt_id(&row, 0)?);
            }
            Ok(ids)
        })
        .await
    }

    async fn receipt_summaries(
        &self,
        tenant: &TenantId,
        first: ReceiptId,
        last: ReceiptId,
    ) -> Result<Vec<ReceiptSummary>> {
        let tenant = tenant.clone();
        self.read(move |conn| async move {
            let mut rows = conn
                .query(
                    "SELECT id, summary FROM receipt_records
                     WHERE tenant_id = ?1 AND id >= ?2 AND id <= ?3 ORDER BY id",
                    (tenant.as_str(), first.to_string(), last.to_string()),
                )
                .await?;
            let mut summaries = Vec::new();
            while let Some(row) = rows.next().await? {
                let id = receipt_id(&row, 0)?;
                let stored: StoredSummary =
                    codec::from_json(&codec::text(&row, 1, "receipt summary")?, "receipt summary")?;
                summaries.push(stored.summary(id));
            }
            Ok(summaries)
        })
        .await
    }
}

fn receipt_id(row: &libsql::Row, idx: i32) -> Result<ReceiptId> {
    codec::parse(
        &codec::text(row, idx, "receipt id")?,
        "receipt id",
        ReceiptId::parse,
    )
}

#[async_trait]
impl ReservationStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %reservation.tenant_id, receipt_id = %reservation.receipt_id))]
    async fn reserve(&self, reservation: &Reservation) -> Result<Reserved> {
        let reservation = reservation.clone();
        self.write(move |conn| async move {
            let json = codec::to_json(&reservation, "reservation")?;
            let inserted = conn
                .execute(
                    "INSERT INTO reservations (tenant_id, idempotency_key, receipt_id, record)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
                    (
                        reservation.tenant_id.as_str(),
                        reservation.idempotency_key.as_str(),
                        reservation.receipt_id.to_string(),
                        json,
                    ),
                )
                .await?;
            if inserted > 0 {
                return Ok(Reserved::New);
            }
            let earlier = reservation_where(
                &conn,
                "tenant_id = ?1 AND idempotency_key = ?2",
                vec![
                    Value::Text(reservation.tenant_id.as_str().to_owned()),
                    Value::Text(reservation.idempotency_key.as_str().to_owned()),
                ],
            )
            .await?
            .ok_or_else(|| codec::corrupt("reservation", "the conflicting row is missing"))?;
            Ok(Reserved::Existing(Box::new(earlier)))
        })
        .await
    }

    async fn reservation_of(&self, id: ReceiptId) -> Result<Option<Reservation>> {
        self.read(move |conn| async move {
            reservation_where(&conn, "receipt_id = ?1", vec![Value::Text(id.to_string())]).await
        })
        .await
    }
}

async fn reservation_where(
    conn: &libsql::Connection,
    filter: &str,
    params: Vec<Value>,
) -> Result<Option<Reservation>> {
    let sql = format!("SELECT record FROM reservations WHERE {filter}");
    let mut rows = conn.query(&sql, params).await?;
    match rows.next().await? {
        Some(row) => {
            codec::from_json(&codec::text(&row, 0, "reservation")?, "reservation").map(Some)
        }
        None => Ok(None),
    }
}

#[async_trait]
impl DocumentStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(receipt_id = %document.receipt_id, bytes = document.bytes.len()))]
    async fn put_document(&self, document: &Document) -> Result<()> {
        let document = document.clone();
        self.write(move |conn| async move {
            conn.execute(
                "INSERT INTO documents (receipt_id, tenant_id, content_type, bytes)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (receipt_id) DO NOTHING",
                (
                    document.receipt_id.to_string(),
                    document.tenant_id.as_str(),
                    document.content_type,
                    document.bytes,
                ),
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn document(&self, id: ReceiptId) -> Result<Option<Document>> {
        self.read(move |conn| async move {
            let mut rows = conn
                .query(
                    "SELECT tenant_id, content_type, bytes FROM documents WHERE receipt_id = ?1",
                    [id.to_string()],
                )
                .await?;
            let Some(row) = rows.next().await? else {
                return Ok(None);
            };
            Ok(Some(Document {
                receipt_id: id,
                tenant_id: codec::parse(
                    &codec::text(&row, 0, "documents.tenant_id")?,
                    "documents.tenant_id",
                    TenantId::parse,
                )?,
                content_type: codec::text(&row, 1, "documents.content_type")?,
                bytes: codec::blob(&row, 2, "documents.bytes")?,
            }))
        })
        .await
    }
}
