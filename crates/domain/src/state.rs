//! The receipt state machine (ARCHITECTURE.md section 4), owned by the status projector.
//!
//! The state is the *set* of facts learned from events, and the status is derived from that set
//! by a fixed precedence. So applying events in any order, any number of times, ends in the same
//! state: late and duplicate deliveries change nothing, by construction.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::EventKind;

/// What partners see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Accepted by the gateway, not yet validated.
    Received,
    /// The document passed validation.
    Validated,
    /// The document failed validation (terminal).
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "RECEIVED",
            Self::Validated => "VALIDATED",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Received, Self::Validated, Self::Rejected]
            .into_iter()
            .find(|st| st.as_str() == s)
    }

    /// Whether no later event can change this status.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Rejected)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts known about one receipt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReceiptState {
    pub submitted: bool,
    pub validated: bool,
    pub rejected: bool,
}

/// The effect of applying one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
}

impl Transition {
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

impl ReceiptState {
    /// The status these facts add up to. Precedence: a rejection is final whatever else arrived.
    pub fn status(&self) -> Status {
        if self.rejected {
            Status::Rejected
        } else if self.validated {
            Status::Validated
        } else {
            Status::Received
        }
    }

    /// Records the fact an event of `kind` states. Idempotent and commutative.
    pub fn apply(&mut self, kind: EventKind) -> Transition {
        let from = self.status();
        match kind {
            EventKind::Submitted => self.submitted = true,
            EventKind::Validated => self.validated = true,
            EventKind::Rejected => self.rejected = true,
        }
        Transition {
            from,
            to: self.status(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn kind() -> impl Strategy<Value = EventKind> {
        prop::sample::select(EventKind::ALL.to_vec())
    }

    fn fold(events: &[EventKind]) -> ReceiptState {
        let mut state = ReceiptState::default();
        for &e in events {
            state.apply(e);
        }
        state
    }

    #[test]
    fn happy_and_sad_paths() {
        assert_eq!(fold(&[EventKind::Submitted]).status(), Status::Received);
        assert_eq!(
            fold(&[EventKind::Submitted, EventKind::Validated]).status(),
            Status::Validated
        );
        assert_eq!(
            fold(&[EventKind::Submitted, EventKind::Rejected]).status(),
            Status::Rejected
        );
        // The validation outcome may overtake the submission (different topics).
        assert_eq!(
            fold(&[EventKind::Validated, EventKind::Submitted]).status(),
            Status::Validated
        );
    }

    #[test]
    fn transitions_report_changes_only() {
        let mut state = ReceiptState::default();
        assert!(!state.apply(EventKind::Submitted).changed());
        let t = state.apply(EventKind::Validated);
        assert_eq!((t.from, t.to), (Status::Received, Status::Validated));
        assert!(!state.apply(EventKind::Validated).changed());
    }

    #[test]
    fn rejection_is_terminal() {
        assert!(Status::Rejected.is_terminal());
        assert_eq!(
            fold(&[EventKind::Rejected, EventKind::Validated]).status(),
            Status::Rejected
        );
    }

    proptest! {
        /// Any order and any duplication of the same events gives the same final state.
        #[test]
        fn order_and_duplicates_do_not_matter(events in prop::collection::vec(kind(), 0..12), seed in any::<u64>()) {
            let mut shuffled = events.clone();
            // Duplicate a prefix and rotate by the seed: a replay after a crash, delivered late.
            let dup = (seed as usize) % (events.len() + 1);
            shuffled.extend_from_slice(&events[..dup]);
            if !shuffled.is_empty() {
                let len = shuffled.len();
                shuffled.rotate_left((seed as usize / 7) % len);
            }
            prop_assert_eq!(fold(&events), fold(&shuffled));
        }

        /// Permutations: reversing any sequence ends in the same state.
        #[test]
        fn reverse_order_is_the_same(events in prop::collection::vec(kind(), 0..12)) {
            let mut reversed = events.clone();
            reversed.reverse();
            prop_assert_eq!(fold(&events).status(), fold(&reversed).status());
        }
    }
}
