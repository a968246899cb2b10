//! Receipt records and their list, idempotency reservations and documents on ScyllaDB.

use async_trait::async_trait;
use chrono::Utc;
use futures::TryStreamExt;
use receipts_domain::{
    Order, ReceiptId, ReceiptRecord, ReceiptScan, ReceiptSummary, Reservation, Status, TenantId,
};
use scylla::value::{CqlTimestamp, MaybeUnset};
use uuid::Uuid;

use super::buckets::{Bucket, Month, Span, bucket_of, month_of};
use super::rows::{self, applied};
use super::{ScyllaStore, backend};
use crate::{Cas, Document, DocumentStore, ReceiptStore, ReservationStore, Reserved, Result};

/// Attempts at writing a stored record's list rows before the error is reported.
const LIST_WRITE_ATTEMPTS: u32 = 3;

/// A row of `receipts_by_tenant`.
type ListedRow = (Uuid, String, Option<String>, CqlTimestamp, CqlTimestamp);

fn summary(row: ListedRow) -> Result<ReceiptSummary> {
    let (id, status, receipt_type, received, updated) = row;
    let status = Status::parse(&status).ok_or_else(|| crate::Error::Corrupt {
        what: "listed receipt",
        detail: format!("unknown status {status:?}"),
    })?;
    Ok(ReceiptSummary {
        id: ReceiptId::from_uuid(id),
        status,
        receipt_type,
        received_at: rows::from_timestamp(received, "listed receipt")?,
        updated_at: rows::from_timestamp(updated, "listed receipt")?,
    })
}

impl ScyllaStore {
    /// The list rows of a stored record: its month and minute marked non-empty, and its
    /// summary, versioned by its record's version.
    async fn write_listing(&self, record: &ReceiptRecord) -> Result<()> {
        let bucket = bucket_of(record.id);
        let tenant = record.tenant_id.as_str();
        let session = self.session();
        let st = self.st();
        let summary = ReceiptSummary::of(record);
        session
            .execute_unpaged(&st.insert_month, (tenant, month_of(bucket)))
            .await
            .map_err(backend)?;
        session
            .execute_unpaged(&st.insert_bucket, (tenant, month_of(bucket), bucket))
            .await
            .map_err(backend)?;
        session
            .execute_unpaged(
                &st.upsert_listed,
                (
                    tenant,
                    bucket,
                    record.id.as_uuid(),
                    summary.status.as_str(),
                    // Unset, not NULL: a NULL would write a tombstone.
                    summary
                        .receipt_type
                        .as_deref()
                        .map_or(MaybeUnset::Unset, MaybeUnset::Set),
                    rows::timestamp(summary.received_at),
                    rows::timestamp(summary.updated_at),
                    rows::listed_write_timestamp(record.version),
                ),
            )
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ReceiptStore for ScyllaStore {
    async fn receipt(&self, id: ReceiptId) -> Result<Option<ReceiptRecord>> {
        self.one::<(i64, String)>(&self.st().receipt, (id.as_uuid(),))
            .await?
            .map(|row| rows::versioned(row, "receipt record", |r: &ReceiptRecord| r.version))
            .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(receipt_id = %record.id, version = record.version, expected))]
    async fn save_receipt(&self, record: &ReceiptRecord, expected: u64) -> Result<Cas> {
        let json = rows::to_json(record, "receipt record")?;
        let version = rows::version(record.version, "receipt record")?;
        let st = self.st();
        let result = if expected == 0 {
            self.session()
                .execute_unpaged(&st.insert_receipt, (record.id.as_uuid(), version, json))
                .await
        } else {
            let expected = rows::version(expected, "receipt record")?;
            self.session()
                .execute_unpaged(
                    &st.update_receipt,
                    (version, json, record.id.as_uuid(), expected),
                )
                .await
        };
        if !applied(result.map_err(backend)?)? {
            return Ok(Cas::Conflict);
        }
        // The record is stored; its list rows follow (idempotent, newest version wins). Should
        // they fail every time, the list shows the previous version until the next event.
        let mut attempt = 1;
        loop {
            match self.write_listing(record).await {
                Ok(()) => return Ok(Cas::Written),
                Err(e) if attempt < LIST_WRITE_ATTEMPTS && e.is_transient() => attempt += 1,
                Err(e) => {
                    tracing::warn!(receipt_id = %record.id, error = %e, "receipt stored, its list row not updated");
                    return Err(e);
                }
            }
        }
    }

    async fn scan_receipt_ids(&self, scan: &ReceiptScan, limit: usize) -> Result<Vec<ReceiptId>> {
        let mut ids = Vec::new();
        self.walk(scan, |summary| {
            if scan.matches(&summary) {
                ids.push(summary.id);
            }
            ids.len() < limit
        })
        .await?;
        Ok(ids)
    }

    async fn receipt_summaries(
        &self,
        tenant: &TenantId,
        first: ReceiptId,
        last: ReceiptId,
    ) -> Result<Vec<ReceiptSummary>> {
        // The walk excludes its bounds: one id wider on each side.
        let step = |id: ReceiptId, up: bool| {
            let n = id.as_uuid().as_u128();
            let n = if up {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            };
            ReceiptId::from_uuid(Uuid::from_u128(n))
        };
        let scan = ReceiptScan {
            tenant: tenant.clone(),
            after: step(first, false),
            before: step(last, true),
            statuses: Default::default(),
            receipt_type: None,
            order: Order::Asc,
        };
        let mut summaries = Vec::new();
        self.walk(&scan, |summary| {
            summaries.push(summary);
            true
        })
        .await?;
        Ok(summaries)
    }
}

impl ScyllaStore {
    /// Walks the listed rows of `scan`'s tenant strictly between its ids, in its order, through
    /// the non-empty months and minutes only, giving each row to `visit` until it returns false.
    async fn walk(
        &self,
        scan: &ReceiptScan,
        mut visit: impl FnMut(ReceiptSummary) -> bool + Send,
    ) -> Result<()> {
        let span = Span::between(scan.after, scan.before);
        let st = self.st();
        let tenant = scan.tenant.as_str();
        let (months_q, buckets_q, listed_q) = match scan.order {
            Order::Desc => (&st.months_desc, &st.buckets_desc, &st.listed_desc),
            Order::Asc => (&st.months_asc, &st.buckets_asc, &st.listed_asc),
        };
        let months = (tenant, span.first_month, span.last_month);
        for (month,) in self.all::<(Month,)>(months_q, months).await? {
            let (first, last) = span.buckets_in(month);
            let buckets = (tenant, month, first, last);
            for (bucket,) in self.all::<(Bucket,)>(buckets_q, buckets).await? {
                let mut rows = self
                    .session()
                    .execute_iter(
                        listed_q.clone(),
                        (tenant, bucket, scan.after.as_uuid(), scan.before.as_uuid()),
                    )
                    .await
                    .map_err(backend)?
                    .rows_stream::<ListedRow>()
                    .map_err(backend)?;
                while let Some(row) = rows.try_next().await.map_err(backend)? {
                    if !visit(summary(row)?) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ReservationStore for ScyllaStore {
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %reservation.tenant_id, receipt_id = %reservation.receipt_id))]
    async fn reserve(&self, reservation: &Reservation) -> Result<Reserved> {
        let json = rows::to_json(reservation, "reservation")?;
        let (tenant, key) = (
            reservation.tenant_id.as_str(),
            reservation.idempotency_key.as_str(),
        );
        let st = self.st();
        let result = self
            .session()
            .execute_unpaged(&st.reserve, (tenant, key, &json))
            .await
            .map_err(backend)?;
        let holder = if applied(result)? {
            None
        } else {
            // Read at LOCAL_SERIAL would see an in-flight Paxos round too; LOCAL_QUORUM after a
            // failed IF NOT EXISTS sees the committed winner.
            let (json,) = self
                .one::<(String,)>(&st.reservation, (tenant, key))
                .await?
                .ok_or_else(|| crate::Error::Corrupt {
                    what: "reservation",
                    detail: "the conflicting row is missing".into(),
                })?;
            Some(rows::from_json::<Reservation>(&json, "reservation")?)
        };
        // The lookup by receipt id, written (again) by whoever sees the reservation: a crash
        // right after the insert is healed by the retried submission.
        let winner = holder.as_ref().unwrap_or(reservation);
        self.session()
            .execute_unpaged(
                &st.index_reservation,
                (
                    winner.receipt_id.as_uuid(),
                    rows::to_json(winner, "reservation")?,
                ),
            )
            .await
            .map_err(backend)?;
        Ok(match holder {
            None => Reserved::New,
            Some(earlier) => Reserved::Existing(Box::new(earlier)),
        })
    }

    async fn reservation_of(&self, id: ReceiptId) -> Result<Option<Reservation>> {
        self.one::<(String,)>(&self.st().reservation_of, (id.as_uuid(),))
            .await?
            .map(|(json,)| rows::from_json(&json, "reservation"))
            .transpose()
    }
}

#[async_trait]
impl DocumentStore for ScyllaStore {
    #[tracing::instrument(level = "debug", skip_all, fields(receipt_id = %document.receipt_id, bytes = document.bytes.len()))]
    async fn put_document(&self, document: &Document) -> Result<()> {
        self.session()
            .execute_unpaged(
                &self.st().insert_document,
                (
                    document.receipt_id.as_uuid(),
                    document.tenant_id.as_str(),
                    document.content_type.as_str(),
                    document.bytes.as_slice(),
                    rows::first_wins_timestamp(Utc::now()),
                ),
            )
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn document(&self, id: ReceiptId) -> Result<Option<Document>> {
        let row = self
            .one::<(String, String, Vec<u8>)>(&self.st().document, (id.as_uuid(),))
            .await?;
        row.map(|(tenant, content_type, bytes)| {
            Ok(Document {
                receipt_id: id,
                tenant_id: TenantId::parse(&tenant).map_err(|e| crate::Error::Corrupt {
                    what: "document",
                    detail: e.to_string(),
                })?,
                content_type,
                bytes,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use receipts_domain::listing::received_at;

    use super::*;

    #[test]
    fn listed_rows_map_to_summaries() {
        let id = ReceiptId::new();
        let at = DateTime::from_timestamp_millis(1_764_600_000_123).expect("t");
        let row: ListedRow = (
            id.as_uuid(),
            "ACCEPTED".into(),
            Some("retail-receipt/v1".into()),
            rows::timestamp(at),
            rows::timestamp(at),
        );
        let s = summary(row).expect("summary");
        assert_eq!((s.id, s.status, s.received_at), (id, Status::Accepted, at));
        let bad: ListedRow = (
            id.as_uuid(),
            "DONE".into(),
            None,
            rows::timestamp(at),
            rows::timestamp(at),
        );
        assert!(summary(bad).is_err());
        assert_eq!(
            received_at(id).timestamp_millis() / 60_000,
            i64::from(bucket_of(id))
        );
    }
}
