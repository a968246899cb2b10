//! The receipt projection: what a receipt looks like after its events (ARCHITECTURE.md section 4),
//! as a pure function of the stored record and one event.
//!
//! Events of one receipt travel on different topics, so they may arrive late, twice or in any
//! order. The projection is built so that none of that matters:
//! - an event is applied once: its id in the timeline marks it as applied;
//! - the status derives from the *set* of facts the events state ([`ReceiptState`]), and a
//!   terminal status is never left;
//! - the data of each fact comes from the event that stated it, and the timeline is kept in the
//!   order the events occurred (`occurred_at`, then event id), each entry with the status the
//!   receipt had after it in that order.
//!
//! So any duplication and any order of the same events ends in the same record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{EventKind, EventMeta, ReceiptEvent, StatusChanged};
use crate::idempotency::Reservation;
use crate::registry::{Registration, RegistrationFailure, RegistryName};
use crate::state::{Fact, ReceiptState, Status, StatusPolicy, Transition};
use crate::{CallbackUrl, EventId, NormalizedReceipt, Reason, ReceiptId, TenantId};

/// A receipt as the platform knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    pub id: ReceiptId,
    pub tenant_id: TenantId,
    /// The status the events applied so far add up to.
    pub status: Status,
    /// The number of events applied; every stored change increments it (the version a store
    /// compares before it writes).
    pub version: u64,
    /// Known once an event that carries it (submitted, validated, rejected) has been applied;
    /// a receipt first seen through a registration has none yet.
    pub receipt_type: Option<String>,
    /// Known once the `submitted` event has been applied.
    pub content_type: Option<String>,
    pub callback_url: Option<CallbackUrl>,
    pub received_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Why the receipt was rejected (empty otherwise).
    pub reasons: Vec<Reason>,
    /// The normalized receipt, once validated.
    pub receipt: Option<NormalizedReceipt>,
    /// One per registry that registered the receipt, in registry-name order.
    pub registrations: Vec<Registration>,
    /// One per registry that failed for good, in registry-name order.
    pub failures: Vec<RegistrationFailure>,
    /// Every event applied, each once, in the order they occurred.
    pub timeline: Vec<TimelineEntry>,
}

/// One event in a receipt's history.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub event_id: EventId,
    pub event: EventKind,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    /// The receipt's status right after this event, in timeline order.
    pub status: Status,
    /// The registry a registration event (`registered`, `registration_failed`) is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryName>,
}

/// What applying one event to a receipt comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// The event was new: `record` is the receipt with it (one version higher), and the status
    /// moved (or stayed) as `transition` says.
    Applied {
        record: Box<ReceiptRecord>,
        transition: Transition,
    },
    /// The record already holds the event; nothing changes.
    AlreadyApplied,
    /// The event states no fact about its receipt (a status change, a webhook message).
    Ignored,
}

/// An event that can never be applied to its receipt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    #[error(
        "event {event_id} for receipt {receipt_id} names tenant {event_tenant}, but the receipt belongs to {stored_tenant}"
    )]
    TenantMismatch {
        receipt_id: ReceiptId,
        event_id: EventId,
        event_tenant: TenantId,
        stored_tenant: TenantId,
    },
    #[error("event {event_id} is about receipt {event_receipt}, not about receipt {record}")]
    OtherReceipt {
        event_id: EventId,
        event_receipt: ReceiptId,
        record: ReceiptId,
    },
}

impl ReceiptRecord {
    /// A receipt nothing is known about yet.
    fn empty(meta: &EventMeta, now: DateTime<Utc>) -> Self {
        Self {
            id: meta.receipt_id,
            tenant_id: meta.tenant_id.clone(),
            status: Status::Received,
            version: 0,
            receipt_type: None,
            content_type: None,
            callback_url: None,
            received_at: None,
            updated_at: now,
            reasons: Vec::new(),
            receipt: None,
            registrations: Vec::new(),
            failures: Vec::new(),
            timeline: Vec::new(),
        }
    }

    /// The receipt as it stands right after its submission, from the gateway's reservation:
    /// what partners see until the projection has the `submitted` event (version 0: never
    /// stored).
    pub fn received(reservation: &Reservation) -> Self {
        let at = reservation.received_at;
        Self {
            id: reservation.receipt_id,
            tenant_id: reservation.tenant_id.clone(),
            status: Status::Received,
            version: 0,
            receipt_type: Some(reservation.receipt_type.clone()),
            content_type: Some(reservation.content_type.clone()),
            callback_url: reservation.callback_url.clone(),
            received_at: Some(at),
            updated_at: at,
            reasons: Vec::new(),
            receipt: None,
            registrations: Vec::new(),
            failures: Vec::new(),
            timeline: vec![TimelineEntry {
                event_id: reservation.event_id,
                event: EventKind::Submitted,
                occurred_at: at,
                recorded_at: at,
                status: Status::Received,
                registry: None,
            }],
        }
    }

    /// Whether the projection has applied the receipt's `submitted` event yet.
    pub fn has_submission(&self) -> bool {
        self.received_at.is_some()
    }

    /// The record with what its submission says (type, content type, callback URL, time of
    /// receipt) taken from the gateway's `reservation`, for a record whose other events
    /// overtook its `submitted` event. Read side only: the timeline stays as projected.
    pub fn with_submission(mut self, reservation: &Reservation) -> Self {
        if !self.has_submission() {
            self.receipt_type = Some(reservation.receipt_type.clone());
            self.content_type = Some(reservation.content_type.clone());
            self.callback_url.clone_from(&reservation.callback_url);
            self.received_at = Some(reservation.received_at);
        }
        self
    }

    /// The receipt `current` (none: not seen yet) after `event`, recorded at `now`, with
    /// statuses derived by `policy`.
    pub fn project(
        current: Option<&ReceiptRecord>,
        event: &ReceiptEvent,
        policy: &StatusPolicy,
        now: DateTime<Utc>,
    ) -> Result<Projection, ProjectionError> {
        let Some(fact) = event.fact() else {
            return Ok(Projection::Ignored);
        };
        let meta = event.meta();
        if let Some(record) = current {
            if record.id != meta.receipt_id {
                return Err(ProjectionError::OtherReceipt {
                    event_id: meta.event_id,
                    event_receipt: meta.receipt_id,
                    record: record.id,
                });
            }
            if record.tenant_id != meta.tenant_id {
                return Err(ProjectionError::TenantMismatch {
                    receipt_id: record.id,
                    event_id: meta.event_id,
                    event_tenant: meta.tenant_id.clone(),
                    stored_tenant: record.tenant_id.clone(),
                });
            }
            if record.holds(meta.event_id) {
                return Ok(Projection::AlreadyApplied);
            }
        }
        let mut record = current.cloned().unwrap_or_else(|| Self::empty(meta, now));
        let before = record.state();
        record.take_data(event, &before);
        let from = record.status;
        let to = next_status(from, before.with(&fact).status(policy));
        record.status = to;
        record.version += 1;
        record.updated_at = now;
        record.timeline.push(TimelineEntry {
            event_id: meta.event_id,
            event: event.kind(),
            occurred_at: meta.occurred_at,
            recorded_at: now,
            status: to,
            registry: fact.registry().cloned(),
        });
        record.order_timeline(policy);
        Ok(Projection::Applied {
            record: Box::new(record),
            transition: Transition { from, to },
        })
    }

    /// Whether event `id` has been applied.
    pub fn holds(&self, id: EventId) -> bool {
        self.timeline.iter().any(|entry| entry.event_id == id)
    }

    /// The facts the applied events stated.
    pub fn state(&self) -> ReceiptState {
        let mut state = ReceiptState::default();
        for fact in self.timeline.iter().filter_map(TimelineEntry::fact) {
            state.add(&fact);
        }
        state
    }

    /// Takes what `event` tells about the receipt. Each fact's data comes from the first event
    /// that stated it: a second, different event of the same kind only enters the timeline, so
    /// a fiscal document or a registration, once recorded, is never replaced.
    fn take_data(&mut self, event: &ReceiptEvent, before: &ReceiptState) {
        match event {
            ReceiptEvent::Submitted(e) if !before.submitted => {
                // The submission names the type the partner declared; it wins over any other.
                self.receipt_type = Some(e.receipt_type.clone());
                self.content_type = Some(e.content_type.clone());
                self.callback_url.clone_from(&e.callback_url);
                self.received_at = Some(e.meta.occurred_at);
            }
            ReceiptEvent::Validated(e) if !before.validated => {
                self.receipt = Some(e.receipt.clone());
            }
            ReceiptEvent::Rejected(e) if !before.rejected => {
                self.reasons.clone_from(&e.reasons);
            }
            ReceiptEvent::Registered(e) => {
                insert_first(&mut self.registrations, &e.registration, |r| &r.registry);
            }
            ReceiptEvent::RegistrationFailed(e) => {
                insert_first(&mut self.failures, &e.failure, |f| &f.registry);
            }
            _ => {}
        }
        if self.receipt_type.is_none() {
            self.receipt_type = event.receipt_type().map(str::to_owned);
        }
    }

    /// Sorts the timeline by when the events occurred and gives each entry the status after it
    /// in that order.
    fn order_timeline(&mut self, policy: &StatusPolicy) {
        self.timeline.sort_by_key(|e| (e.occurred_at, e.event_id));
        let mut state = ReceiptState::default();
        let mut status = Status::Received;
        for entry in &mut self.timeline {
            if let Some(fact) = entry.fact() {
                state.add(&fact);
            }
            status = next_status(status, state.status(policy));
            entry.status = status;
        }
    }

    /// Whether the receipt's current status rests on facts of `fact`'s kind: the submission for
    /// every status but RECEIVED, the validation for VALIDATED, the validation and
    /// registrations for ACCEPTED, a rejection for REJECTED, a failed registration for FAILED. An event stating such a fact may be the one that reached
    /// the status, so its redelivery announces the status again.
    pub fn status_rests_on(&self, fact: &Fact) -> bool {
        // A late submission releases whatever status the other facts had reached.
        if *fact == Fact::Submitted {
            return self.status != Status::Received;
        }
        match self.status {
            Status::Received => false,
            Status::Validated => *fact == Fact::Validated,
            Status::Accepted => matches!(fact, Fact::Validated | Fact::Registered(_)),
            Status::Rejected => *fact == Fact::Rejected,
            Status::Failed => matches!(fact, Fact::RegistrationFailed(_)),
        }
    }

    /// The status the receipt had before it reached its current one (in timeline order).
    pub fn reached_from(&self) -> Status {
        self.timeline
            .iter()
            .take_while(|entry| entry.status != self.status)
            .last()
            .map_or(Status::Received, |entry| entry.status)
    }

    /// The status changes this record's timeline shows that `previous` (the same receipt before
    /// its latest event) did not, in timeline order: each status the receipt reached, once.
    /// Events may arrive out of order, so one event can reveal several (a late validation of a
    /// receipt already registered everywhere: VALIDATED, then ACCEPTED).
    pub fn changes_since(&self, previous: Option<&ReceiptRecord>) -> Vec<Transition> {
        let shown: Vec<Status> = previous
            .map(|p| p.timeline.iter().map(|e| e.status).collect())
            .unwrap_or_default();
        let mut changes = Vec::new();
        let mut from = Status::Received;
        for entry in &self.timeline {
            if entry.status != from {
                if !shown.contains(&entry.status) {
                    changes.push(Transition {
                        from,
                        to: entry.status,
                    });
                }
                from = entry.status;
            }
        }
        changes
    }

    /// The announcement that the receipt reached `change.to`, coming from `change.from`, with
    /// what the receipt looks like now. A receipt reaches each status at most once, and the
    /// announcement's id depends only on the receipt and the status reached: however often and
    /// by whichever event it is announced, it is one event for everyone downstream.
    pub fn announcement(&self, change: Transition) -> StatusChanged {
        let step = format!("status-changed:{}", change.to);
        StatusChanged {
            meta: EventMeta::for_receipt(self.id, self.tenant_id.clone(), &step, 1),
            from: change.from,
            to: change.to,
            receipt_type: self.receipt_type.clone().unwrap_or_default(),
            callback_url: self.callback_url.clone(),
            reasons: self.reasons.clone(),
            registrations: self.registrations.clone(),
            failures: self.failures.clone(),
        }
    }

    /// The change that reached the current status (in timeline order).
    pub fn current_change(&self) -> Transition {
        Transition {
            from: self.reached_from(),
            to: self.status,
        }
    }
}

impl TimelineEntry {
    /// The fact this entry's event stated.
    pub fn fact(&self) -> Option<Fact> {
        match (self.event, &self.registry) {
            (EventKind::Submitted, _) => Some(Fact::Submitted),
            (EventKind::Validated, _) => Some(Fact::Validated),
            (EventKind::Rejected, _) => Some(Fact::Rejected),
            (EventKind::Registered, Some(r)) => Some(Fact::Registered(r.clone())),
            (EventKind::RegistrationFailed, Some(r)) => Some(Fact::RegistrationFailed(r.clone())),
            _ => None,
        }
    }
}

/// The status after `current` once the facts add up to `derived`: a terminal status is never
/// left (should a configuration change or a contradicting registry ever say otherwise).
fn next_status(current: Status, derived: Status) -> Status {
    if current.is_terminal() {
        current
    } else {
        derived
    }
}

/// Adds `item` to `items` (kept in registry-name order) unless its registry already has one:
/// the first report of a registry's outcome wins.
fn insert_first<T: Clone>(items: &mut Vec<T>, item: &T, registry: impl Fn(&T) -> &RegistryName) {
    if let Err(at) = items.binary_search_by(|x| registry(x).cmp(registry(item))) {
        items.insert(at, item.clone());
    }
}

#[cfg(test)]
mod tests;
