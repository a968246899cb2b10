//! Applying receipt events to receipt records.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use receipts_domain::{Projection, ReceiptEvent, ReceiptRecord, StatusPolicy, Transition};
use receipts_store::{Cas, ReceiptStore};

use crate::cas::MAX_ATTEMPTS;
use crate::{Error, Result};

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projected {
    /// The event was new and is now stored: the receipt as it is now, its status change, and
    /// every status its timeline shows for the first time (to announce, in order).
    Applied {
        record: Box<ReceiptRecord>,
        transition: Transition,
        changes: Vec<Transition>,
    },
    /// The event had been applied before (a redelivery, or the same outcome reported twice):
    /// the receipt as it is.
    AlreadyApplied { record: Box<ReceiptRecord> },
    /// The event states no fact about its receipt.
    Ignored,
}

/// Applies events to receipt records: the only writer of receipt records.
#[derive(Clone)]
pub struct Projector {
    store: Arc<dyn ReceiptStore>,
    policy: StatusPolicy,
}

impl Projector {
    /// Statuses are derived with `policy` (which registries ACCEPTED needs).
    pub fn new(store: Arc<dyn ReceiptStore>, policy: StatusPolicy) -> Self {
        Self { store, policy }
    }

    pub fn policy(&self) -> &StatusPolicy {
        &self.policy
    }

    /// Applies `event` to its receipt, recorded at `now`: loads the record, projects the event
    /// (a domain rule) and stores the result with compare-and-set on the version it loaded,
    /// starting again when another event of the same receipt was stored first.
    pub async fn apply(&self, event: &ReceiptEvent, now: DateTime<Utc>) -> Result<Projected> {
        let id = event.meta().receipt_id;
        for attempt in 1..=MAX_ATTEMPTS {
            let current = self.store.receipt(id).await?;
            let expected = current.as_ref().map_or(0, |r| r.version);
            let projection = ReceiptRecord::project(current.as_ref(), event, &self.policy, now)?;
            match (projection, current) {
                (Projection::AlreadyApplied, Some(record)) => {
                    return Ok(Projected::AlreadyApplied {
                        record: Box::new(record),
                    });
                }
                (Projection::Applied { record, transition }, current) => {
                    match self.store.save_receipt(&record, expected).await? {
                        Cas::Written => {
                            let changes = record.changes_since(current.as_ref());
                            return Ok(Projected::Applied {
                                record,
                                transition,
                                changes,
                            });
                        }
                        Cas::Conflict => {
                            tracing::debug!(receipt_id = %id, attempt, "concurrent event; applying again");
                        }
                    }
                }
                // `project` finds an event applied only in an existing record.
                (Projection::Ignored | Projection::AlreadyApplied, _) => {
                    return Ok(Projected::Ignored);
                }
            }
        }
        Err(Error::Contention {
            what: "receipt",
            id: id.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }
}

#[cfg(test)]
mod tests {
    use receipts_domain::Status;
    use receipts_domain::event::now_millis;
    use receipts_store::conformance::ReceiptFixture;
    use receipts_store::{SqliteOptions, SqliteStore, Stores};

    use super::*;

    async fn projector() -> (tempfile::TempDir, Projector) {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(&dir.path().join("r.db"), &SqliteOptions::default())
            .await
            .expect("store");
        let stores = Stores::of(store);
        (
            dir,
            Projector::new(stores.receipts, StatusPolicy::default()),
        )
    }

    #[tokio::test]
    async fn events_are_applied_once_and_stored() {
        let (_dir, projector) = projector().await;
        let fx = ReceiptFixture::default();
        let submitted = fx.submitted();
        let Projected::Applied {
            record, transition, ..
        } = projector
            .apply(&submitted, now_millis())
            .await
            .expect("apply")
        else {
            panic!("applied")
        };
        assert_eq!((record.version, transition.to), (1, Status::Received));
        assert!(matches!(
            projector.apply(&submitted, now_millis()).await.expect("apply"),
            Projected::AlreadyApplied { record } if record.version == 1
        ));
        let change = record.announcement(record.current_change()).into();
        assert_eq!(
            projector.apply(&change, now_millis()).await.expect("apply"),
            Projected::Ignored
        );
    }

    /// Events of one receipt applied concurrently (as the projector's partitions do): each is
    /// applied exactly once, and the receipt ends ACCEPTED with all of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_events_of_one_receipt_all_land() {
        let (_dir, projector) = projector().await;
        let fx = ReceiptFixture::default();
        let events = [
            fx.submitted(),
            fx.validated(),
            fx.registered("tax"),
            fx.registered("logistics"),
        ];
        let mut tasks = tokio::task::JoinSet::new();
        for event in [events.clone(), events].concat() {
            let projector = projector.clone();
            tasks.spawn(async move { projector.apply(&event, now_millis()).await });
        }
        let mut applied = 0;
        while let Some(joined) = tasks.join_next().await {
            if let Projected::Applied { .. } = joined.expect("task").expect("apply") {
                applied += 1;
            }
        }
        assert_eq!(applied, 4, "each distinct event once");
        let stored = projector
            .store
            .receipt(fx.receipt_id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!((stored.status, stored.version), (Status::Accepted, 4));
    }

    #[tokio::test]
    async fn an_event_of_another_tenant_is_refused_for_good() {
        let (_dir, projector) = projector().await;
        let fx = ReceiptFixture::default();
        projector
            .apply(&fx.submitted(), now_millis())
            .await
            .expect("apply");
        let mut intruder = fx.validated();
        if let ReceiptEvent::Validated(v) = &mut intruder {
            v.meta.tenant_id = receipts_store::conformance::unique_tenant();
        }
        let error = projector
            .apply(&intruder, now_millis())
            .await
            .expect_err("refused");
        assert!(matches!(error, Error::Projection(_)), "{error}");
        assert!(!error.is_transient());
    }
}
