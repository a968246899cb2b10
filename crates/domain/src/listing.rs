//! Listing a tenant's receipts by when they were received: the query partners ask, its limits,
//! the key range it covers and the summary each listed receipt shows.
//!
//! Receipt ids are UUIDv7: their leading 48 bits are the millisecond the gateway received the
//! receipt. So the id alone orders receipts by reception, a time interval is a range of ids,
//! and a page ends at an id (keyset pagination: receipts arriving meanwhile never shift a page).

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ReceiptId, ReceiptRecord, Status, TenantId};

/// Most receipts one page may hold.
pub const MAX_LIMIT: usize = 10_000;
/// Receipts per page unless the caller asks otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The interval listed when the caller names no `from`: the 30 days before `to`.
pub const DEFAULT_WINDOW: TimeDelta = TimeDelta::days(30);

/// The longest interval one query may cover: 20 years (of 365.25 days).
pub fn max_window() -> TimeDelta {
    TimeDelta::days(20 * 365 + 5)
}

/// Newest first (the default) or oldest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Desc,
    Asc,
}

impl Order {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "desc" => Some(Self::Desc),
            "asc" => Some(Self::Asc),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Desc => "desc",
            Self::Asc => "asc",
        }
    }
}

/// Why a list query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("`from` ({from}) must be before `to` ({to})")]
    FromNotBeforeTo { from: String, to: String },
    #[error("the interval from {from} to {to} is longer than 20 years")]
    WindowTooLong { from: String, to: String },
    #[error("`limit` must be between 1 and {MAX_LIMIT}, got {0}")]
    Limit(usize),
    #[error("the interval must lie between 1970 and the year 10000")]
    OutOfRange,
}

/// A list query as the caller asked it: every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub statuses: BTreeSet<Status>,
    pub receipt_type: Option<String>,
    pub order: Option<Order>,
}

/// A list query with its defaults applied and its limits checked: receipts received in
/// `[from, to)`, with one of `statuses` (any, when empty) and of `receipt_type` (any, when
/// none), in `order`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ListQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub statuses: BTreeSet<Status>,
    pub receipt_type: Option<String>,
    pub order: Order,
}

impl ListRequest {
    /// The query this request stands for at `now`: `to` defaults to `now`, `from` to
    /// [`DEFAULT_WINDOW`] before `to`; both are cut to the millisecond (the precision of ids).
    pub fn resolve(self, now: DateTime<Utc>) -> Result<ListQuery, ListError> {
        let to = truncate_ms(self.to.unwrap_or(now));
        let from = truncate_ms(self.from.unwrap_or(to - DEFAULT_WINDOW));
        let shown = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if from >= to {
            return Err(ListError::FromNotBeforeTo {
                from: shown(from),
                to: shown(to),
            });
        }
        if to - from > max_window() {
            return Err(ListError::WindowTooLong {
                from: shown(from),
                to: shown(to),
            });
        }
        if from.timestamp_millis() < 0 || id_bound(to).is_none() {
            return Err(ListError::OutOfRange);
        }
        Ok(ListQuery {
            from,
            to,
            statuses: self.statuses,
            receipt_type: self.receipt_type,
            order: self.order.unwrap_or_default(),
        })
    }
}

/// A page size as asked (`None`: the default), checked.
pub fn page_limit(asked: Option<usize>) -> Result<usize, ListError> {
    match asked.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        n => Err(ListError::Limit(n)),
    }
}

impl ListQuery {
    /// The ids to scan for the page after `position` (the last id of the previous page; none
    /// for the first page) of `tenant`'s receipts.
    pub fn scan(&self, tenant: &TenantId, position: Option<ReceiptId>) -> ReceiptScan {
        // `resolve` checked that both bounds are representable.
        let floor = |t| id_bound(t).unwrap_or(ReceiptId::from_uuid(Uuid::nil()));
        let (mut after, mut before) = (floor(self.from), floor(self.to));
        match (self.order, position) {
            (Order::Desc, Some(last)) => before = before.min(last),
            (Order::Asc, Some(last)) => after = after.max(last),
            (_, None) => {}
        }
        ReceiptScan {
            tenant: tenant.clone(),
            after,
            before,
            statuses: self.statuses.clone(),
            receipt_type: self.receipt_type.clone(),
            order: self.order,
        }
    }
}

/// What a store scans for one page: the tenant's receipts with ids strictly between `after`
/// and `before`, matching the filters, in `order` of id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptScan {
    pub tenant: TenantId,
    pub after: ReceiptId,
    pub before: ReceiptId,
    /// Any status when empty.
    pub statuses: BTreeSet<Status>,
    pub receipt_type: Option<String>,
    pub order: Order,
}

impl ReceiptScan {
    /// Whether a receipt with this summary is one the scan is for (stores that cannot filter
    /// in the query filter with this).
    pub fn matches(&self, summary: &ReceiptSummary) -> bool {
        summary.id > self.after
            && summary.id < self.before
            && (self.statuses.is_empty() || self.statuses.contains(&summary.status))
            && self
                .receipt_type
                .as_ref()
                .is_none_or(|t| summary.receipt_type.as_ref() == Some(t))
    }
}

/// The smallest id a receipt received at `at` could have: every id of a receipt received at
/// or after `at` is above it, every earlier one below. (It is never an id itself: real ids
/// carry version bits.) `None` outside the 48-bit millisecond range of UUIDv7.
pub fn id_bound(at: DateTime<Utc>) -> Option<ReceiptId> {
    let ms = u64::try_from(at.timestamp_millis()).ok()?;
    if ms >= 1 << 48 {
        return None;
    }
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    Some(ReceiptId::from_uuid(Uuid::from_bytes(bytes)))
}

/// When the gateway received the receipt with this id (the millisecond in its UUIDv7).
pub fn received_at(id: ReceiptId) -> DateTime<Utc> {
    let bytes = id.as_uuid().into_bytes();
    let mut ms = [0u8; 8];
    ms[2..].copy_from_slice(&bytes[..6]);
    let ms = i64::try_from(u64::from_be_bytes(ms)).unwrap_or(i64::MAX);
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// What a list shows of one receipt (the full record is one `GET` away).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptSummary {
    pub id: ReceiptId,
    pub status: Status,
    /// Unknown until the first event that names it is projected.
    pub receipt_type: Option<String>,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ReceiptSummary {
    pub fn of(record: &ReceiptRecord) -> Self {
        Self {
            id: record.id,
            status: record.status,
            receipt_type: record.receipt_type.clone(),
            received_at: record.received_at.unwrap_or_else(|| received_at(record.id)),
            updated_at: record.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    fn tenant() -> TenantId {
        TenantId::parse("acme").expect("tenant")
    }

    #[test]
    fn an_id_knows_when_it_was_received() {
        let before = Utc::now();
        let id = ReceiptId::new();
        let after = Utc::now();
        let t = received_at(id);
        assert!(
            truncate_ms(before) <= t && t <= after,
            "{before} {t} {after}"
        );
    }

    proptest! {
        /// An id received at `t` lies between the bounds of `t` and of the next millisecond.
        #[test]
        fn bounds_bracket_every_id_of_their_millisecond(ms in 0i64..(1 << 47), rest in any::<u128>()) {
            let t = DateTime::from_timestamp_millis(ms).expect("t");
            let random = Uuid::from_u128(rest).into_bytes();
            let mut bytes = id_bound(t).expect("bound").as_uuid().into_bytes();
            bytes[6..].copy_from_slice(&random[6..]);
            bytes[6] = (bytes[6] & 0x0f) | 0x70; // version 7
            let id = ReceiptId::from_uuid(Uuid::from_bytes(bytes));
            prop_assert_eq!(received_at(id), t);
            prop_assert!(id_bound(t).expect("bound") < id);
            prop_assert!(id < id_bound(t + TimeDelta::milliseconds(1)).expect("bound"));
        }
    }

    #[test]
    fn defaults_are_the_last_30_days_newest_first() {
        let now = at("2026-12-01T10:00:00.123456Z");
        let q = ListRequest::default().resolve(now).expect("query");
        assert_eq!(q.to, at("2026-12-01T10:00:00.123Z"));
        assert_eq!(q.from, at("2026-11-01T10:00:00.123Z"));
        assert_eq!(q.order, Order::Desc);
        assert_eq!(page_limit(None), Ok(DEFAULT_LIMIT));
    }

    #[test]
    fn bad_queries_are_refused_precisely() {
        let now = at("2026-12-01T10:00:00Z");
        let req = |from: &str, to: &str| ListRequest {
            from: Some(at(from)),
            to: Some(at(to)),
            ..Default::default()
        };
        assert!(matches!(
            req("2026-12-01T00:00:00Z", "2026-11-01T00:00:00Z").resolve(now),
            Err(ListError::FromNotBeforeTo { .. })
        ));
        assert!(matches!(
            req("2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z").resolve(now),
            Err(ListError::FromNotBeforeTo { .. })
        ));
        assert!(matches!(
            req("2000-01-01T00:00:00Z", "2026-01-01T00:00:00Z").resolve(now),
            Err(ListError::WindowTooLong { .. })
        ));
        assert!(
            req("2006-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
                .resolve(now)
                .is_ok(),
            "20 years is allowed"
        );
        assert_eq!(
            req("1960-01-01T00:00:00Z", "1970-01-02T00:00:00Z").resolve(now),
            Err(ListError::OutOfRange)
        );
        assert_eq!(page_limit(Some(0)), Err(ListError::Limit(0)));
        assert_eq!(page_limit(Some(MAX_LIMIT)), Ok(MAX_LIMIT));
        assert_eq!(
            page_limit(Some(MAX_LIMIT + 1)),
            Err(ListError::Limit(MAX_LIMIT + 1))
        );
    }

    #[test]
    fn a_position_narrows_the_scan_on_the_side_the_order_walks_to() {
        let now = at("2026-12-01T10:00:00Z");
        let desc = ListRequest::default().resolve(now).expect("query");
        let first = desc.scan(&tenant(), None);
        assert_eq!(first.before, id_bound(desc.to).expect("bound"));
        assert_eq!(first.after, id_bound(desc.from).expect("bound"));
        let last = ReceiptId::new();
        let next = desc.scan(&tenant(), Some(last));
        assert_eq!(
            (next.after, next.before),
            (first.after, first.before.min(last))
        );
        let asc = ListQuery {
            order: Order::Asc,
            ..desc
        };
        let next = asc.scan(&tenant(), Some(last));
        assert_eq!(
            (next.after, next.before),
            (first.after.max(last), first.before)
        );
    }

    #[test]
    fn a_scan_matches_by_range_and_filters() {
        let now = Utc::now();
        let query = ListRequest {
            statuses: [Status::Accepted].into(),
            receipt_type: Some("retail-receipt/v1".into()),
            ..Default::default()
        }
        .resolve(now + TimeDelta::seconds(1))
        .expect("query");
        let scan = query.scan(&tenant(), None);
        let summary = ReceiptSummary {
            id: ReceiptId::new(),
            status: Status::Accepted,
            receipt_type: Some("retail-receipt/v1".into()),
            received_at: now,
            updated_at: now,
        };
        assert!(scan.matches(&summary));
        assert!(!scan.matches(&ReceiptSummary {
            status: Status::Rejected,
            ..summary.clone()
        }));
        assert!(!scan.matches(&ReceiptSummary {
            receipt_type: None,
            ..summary.clone()
        }));
        let past = query.scan(&tenant(), Some(summary.id));
        assert!(!past.matches(&summary), "the position itself is excluded");
    }
}
