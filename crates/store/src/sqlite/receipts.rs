//! Receipt records, idempotency reservations and documents on SQLite.

use async_trait::async_trait;
use libsql::Value;
use receipts_domain::{ReceiptId, ReceiptRecord, Reservation, TenantId};

use super::records::{self, Table, Versioned};
use super::{SqliteStore, codec};
use crate::{Cas, Document, DocumentStore, ReceiptStore, ReservationStore, Reserved, Result};

const RECEIPTS: Table = Table {
    name: "receipt_records",
    what: "receipt record",
    columns: &["id", "tenant_id", "status"],
};

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
            ];
            records::save(&conn, &RECEIPTS, columns, &record, expected).await
        })
        .await
    }
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
