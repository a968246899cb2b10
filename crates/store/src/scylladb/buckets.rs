//! Time buckets of the per-tenant receipt list (see docs/storage.md).
//!
//! A receipt is listed in the partition `(tenant, bucket)`, where the bucket is the minute of
//! its reception (from its UUIDv7 id): at the specified peak of 1,000 receipts/s, all from one
//! tenant, a partition holds at most 60,000 rows. Non-empty buckets are indexed per tenant and
//! month (`(tenant, month) -> bucket`), and non-empty months per tenant (`tenant -> month`), so
//! a query over 20 years reads only what exists: no empty bucket or month is ever probed.

use chrono::{DateTime, Datelike, Utc};
use receipts_domain::ReceiptId;
use receipts_domain::listing::received_at;

/// The width of a bucket.
pub const BUCKET_MILLIS: i64 = 60_000;

/// Minutes since the Unix epoch.
pub type Bucket = i32;
/// Months since January 1970 (`year * 12 + month0 - 1970 * 12`).
pub type Month = i32;

/// The bucket of the minute `at` falls in.
pub fn bucket_at(at: DateTime<Utc>) -> Bucket {
    // 2^31 minutes is past the year 6000; UUIDv7 times end earlier still.
    Bucket::try_from(at.timestamp_millis().div_euclid(BUCKET_MILLIS)).unwrap_or(Bucket::MAX)
}

/// The bucket a receipt is listed in.
pub fn bucket_of(id: ReceiptId) -> Bucket {
    bucket_at(received_at(id))
}

/// The month a bucket lies in.
pub fn month_of(bucket: Bucket) -> Month {
    let start = DateTime::from_timestamp_millis(i64::from(bucket) * BUCKET_MILLIS)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (start.year() - 1970) * 12 + start.month0() as Month
}

/// The buckets and months a scan between two ids (both excluded) may find receipts in,
/// inclusive at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first_bucket: Bucket,
    pub last_bucket: Bucket,
    pub first_month: Month,
    pub last_month: Month,
}

impl Span {
    pub fn between(after: ReceiptId, before: ReceiptId) -> Self {
        let (first_bucket, last_bucket) = (bucket_of(after), bucket_of(before));
        Self {
            first_bucket,
            last_bucket,
            first_month: month_of(first_bucket),
            last_month: month_of(last_bucket),
        }
    }

    /// The part of this span inside `month`, as bucket bounds (inclusive).
    pub fn buckets_in(&self, month: Month) -> (Bucket, Bucket) {
        let first = if month == self.first_month {
            self.first_bucket
        } else {
            Bucket::MIN
        };
        let last = if month == self.last_month {
            self.last_bucket
        } else {
            Bucket::MAX
        };
        (first, last)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use proptest::prelude::*;
    use receipts_domain::listing::id_bound;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    #[test]
    fn buckets_are_minutes_and_months_calendar_months() {
        assert_eq!(bucket_at(at("1970-01-01T00:00:59.999Z")), 0);
        assert_eq!(bucket_at(at("1970-01-01T00:01:00Z")), 1);
        assert_eq!(month_of(0), 0);
        assert_eq!(month_of(bucket_at(at("1970-02-01T00:00:00Z"))), 1);
        assert_eq!(month_of(bucket_at(at("1970-01-31T23:59:59Z"))), 0);
        assert_eq!(
            month_of(bucket_at(at("2026-12-02T10:00:00Z"))),
            56 * 12 + 11
        );
        let id = ReceiptId::new();
        assert_eq!(bucket_of(id), bucket_at(received_at(id)));
    }

    #[test]
    fn a_span_bounds_its_buckets_per_month() {
        let after = id_bound(at("2026-01-31T23:58:30Z")).expect("id");
        let before = id_bound(at("2026-03-01T00:00:30Z")).expect("id");
        let span = Span::between(after, before);
        assert_eq!(span.last_month - span.first_month, 2);
        assert_eq!(
            span.buckets_in(span.first_month),
            (span.first_bucket, Bucket::MAX)
        );
        assert_eq!(
            span.buckets_in(span.first_month + 1),
            (Bucket::MIN, Bucket::MAX)
        );
        assert_eq!(
            span.buckets_in(span.last_month),
            (Bucket::MIN, span.last_bucket)
        );
    }

    proptest! {
        /// Every receipt received within a span's interval lies in a bucket and month the span
        /// covers, and a bucket's month contains the bucket's whole minute.
        #[test]
        fn a_span_covers_every_receipt_between_its_ids(
            from in 0i64..(1 << 44),
            len in 1i64..(1 << 36),
            pick in 0.0f64..1.0,
        ) {
            let t0 = DateTime::from_timestamp_millis(from).expect("t0");
            let t1 = t0 + TimeDelta::milliseconds(len);
            let span = Span::between(id_bound(t0).expect("id"), id_bound(t1).expect("id"));
            let inside = t0 + TimeDelta::milliseconds((len as f64 * pick) as i64);
            let b = bucket_at(inside);
            prop_assert!(span.first_bucket <= b && b <= span.last_bucket);
            let m = month_of(b);
            prop_assert!(span.first_month <= m && m <= span.last_month);
            let (lo, hi) = span.buckets_in(m);
            prop_assert!(lo <= b && b <= hi);
            let minute_end = DateTime::from_timestamp_millis(i64::from(b) * BUCKET_MILLIS + BUCKET_MILLIS - 1).expect("end");
            prop_assert_eq!(month_of(b), (minute_end.year() - 1970) * 12 + minute_end.month0() as Month);
        }
    }
}
