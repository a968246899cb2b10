//! Listing a tenant's receipts page by page (the query and its rules are in
//! `receipts_domain::listing`).
//!
//! A page is decided before it is sent: one scan of ids (16 bytes each, at most 10,000) fixes
//! which receipts it holds and where the next page starts, so the `Link` to the next page can
//! lead the response; the summaries are then read and streamed in chunks, never held whole.
//! The cursor carries the query it continues, sealed with an HMAC over the tenant and the
//! query, so it cannot be altered, nor used by another tenant or for another query.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use receipts_domain::{ListQuery, Order, ReceiptId, ReceiptSummary, TenantId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::Result;
use crate::receipts::Receipts;

/// Summaries read from the store at a time while a page streams.
const CHUNK: usize = 1_000;

/// The receipts of one page, in order, and where the next page starts (none: this is the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub ids: Vec<ReceiptId>,
    pub next: Option<ReceiptId>,
}

impl Receipts {
    /// The page of `tenant`'s receipts that `query` selects after `position` (the previous
    /// page's last receipt; none: the first page), of at most `limit` receipts.
    pub async fn page(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
        position: Option<ReceiptId>,
        limit: usize,
    ) -> Result<Page> {
        let scan = query.scan(tenant, position);
        let mut ids = self
            .receipts
            .scan_receipt_ids(&scan, limit.saturating_add(1))
            .await?;
        let more = ids.len() > limit;
        ids.truncate(limit);
        let next = if more { ids.last().copied() } else { None };
        Ok(Page { ids, next })
    }

    /// The summaries of a page's receipts, in the page's order, read [`CHUNK`] at a time. A
    /// receipt is shown as it is when its chunk is read.
    pub fn summaries(
        &self,
        tenant: TenantId,
        ids: Vec<ReceiptId>,
        order: Order,
    ) -> BoxStream<'static, Result<ReceiptSummary>> {
        let receipts = self.receipts.clone();
        let chunks: Vec<Vec<ReceiptId>> = ids.chunks(CHUNK).map(<[_]>::to_vec).collect();
        let reads = futures::stream::iter(chunks).then(move |chunk| {
            let receipts = receipts.clone();
            let tenant = tenant.clone();
            async move {
                let (Some(first), Some(last)) = (chunk.iter().min(), chunk.iter().max()) else {
                    return Ok::<_, crate::Error>(Vec::new());
                };
                let wanted: HashSet<ReceiptId> = chunk.iter().copied().collect();
                // The range may hold receipts that arrived after the page was decided: not ours.
                let mut summaries: Vec<ReceiptSummary> = receipts
                    .receipt_summaries(&tenant, *first, *last)
                    .await?
                    .into_iter()
                    .filter(|s| wanted.contains(&s.id))
                    .collect();
                if order == Order::Desc {
                    summaries.reverse();
                }
                Ok(summaries)
            }
        });
        reads
            .map_ok(|summaries| futures::stream::iter(summaries.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }
}

/// The key cursors are sealed with. Every gateway of a deployment must share it, or a cursor
/// from one is refused by the next.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(***)")
    }
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is malformed")]
    Malformed,
    #[error("the cursor was not issued for this caller and query")]
    Foreign,
}

/// What a cursor says: the query it continues and the last receipt shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    query: ListQuery,
    last: ReceiptId,
}

impl CursorKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(secret.to_vec())
    }

    /// A key of 32 random bytes (cursors then hold only within this process).
    pub fn random() -> Self {
        Self(rand::random::<[u8; 32]>().to_vec())
    }

    /// The cursor to the page of `query` after receipt `last`, for `tenant` only.
    pub fn seal(&self, tenant: &TenantId, query: &ListQuery, last: ReceiptId) -> String {
        let position = Position {
            query: query.clone(),
            last,
        };
        // A query of domain types always serializes.
        let payload = serde_json::to_vec(&position).unwrap_or_default();
        let tag = self.tag(tenant, &payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The query and position `cursor` continues, if this key sealed it for `tenant`.
    pub fn open(
        &self,
        tenant: &TenantId,
        cursor: &str,
    ) -> Result<(ListQuery, ReceiptId), CursorError> {
        let (payload, tag) = cursor.split_once('.').ok_or(CursorError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CursorError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CursorError::Malformed)?;
        self.mac(tenant, &payload)
            .verify_slice(&tag)
            .map_err(|_| CursorError::Foreign)?;
        let position: Position =
            serde_json::from_slice(&payload).map_err(|_| CursorError::Malformed)?;
        Ok((position.query, position.last))
    }

    fn mac(&self, tenant: &TenantId, payload: &[u8]) -> Hmac<Sha256> {
        // Any key length is accepted by HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"receipts-list-cursor/v1\0");
        mac.update(tenant.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        mac
    }

    fn tag(&self, tenant: &TenantId, payload: &[u8]) -> Vec<u8> {
        self.mac(tenant, payload).finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use receipts_domain::{ListRequest, Status};

    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).expect("tenant")
    }

    fn query() -> ListQuery {
        ListRequest {
            statuses: [Status::Accepted].into(),
            ..Default::default()
        }
        .resolve(Utc::now())
        .expect("query")
    }

    #[test]
    fn a_cursor_opens_to_its_query_and_position() {
        let key = CursorKey::new(b"k");
        let (query, last) = (query(), ReceiptId::new());
        let cursor = key.seal(&tenant("acme"), &query, last);
        assert_eq!(key.open(&tenant("acme"), &cursor), Ok((query, last)));
    }

    #[test]
    fn a_cursor_is_bound_to_its_tenant_and_key_and_cannot_be_altered() {
        let key = CursorKey::new(b"k");
        let cursor = key.seal(&tenant("acme"), &query(), ReceiptId::new());
        assert_eq!(
            key.open(&tenant("other"), &cursor),
            Err(CursorError::Foreign)
        );
        assert_eq!(
            CursorKey::new(b"another key").open(&tenant("acme"), &cursor),
            Err(CursorError::Foreign)
        );
        // Another query under the same tag.
        let (_, tag) = cursor.split_once('.').expect("two parts");
        let mut other = query();
        other.statuses.clear();
        let forged_payload = serde_json::to_vec(&Position {
            query: other,
            last: ReceiptId::new(),
        })
        .expect("json");
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged_payload));
        assert_eq!(
            key.open(&tenant("acme"), &forged),
            Err(CursorError::Foreign)
        );
        for junk in ["", "abc", "a.b", "!!.??", &format!("{cursor}x")] {
            assert!(key.open(&tenant("acme"), junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn the_key_never_prints() {
        assert_eq!(format!("{:?}", CursorKey::new(b"secret")), "CursorKey(***)");
    }
}
