//! The receipt state machine (ARCHITECTURE.md section 4), owned by the status projector.
//!
//! The state is the *set* of facts learned from events, and the status is derived from that set
//! by a fixed precedence. So applying events in any order, any number of times, ends in the same
//! state: late and duplicate deliveries change nothing, by construction.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::registry::RegistryName;

/// What partners see.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Accepted by the gateway, not yet validated.
    Received,
    /// The document passed validation; registrations are under way.
    Validated,
    /// The document failed validation (terminal).
    Rejected,
    /// Valid and registered with every required registry (terminal).
    Accepted,
    /// A registry refused the receipt, or could not be reached within the retry horizon (terminal).
    Failed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Received,
        Status::Validated,
        Status::Rejected,
        Status::Accepted,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "RECEIVED",
            Self::Validated => "VALIDATED",
            Self::Rejected => "REJECTED",
            Self::Accepted => "ACCEPTED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether no later event can change this status.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Rejected | Self::Accepted | Self::Failed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one event states about its receipt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fact {
    Submitted,
    Validated,
    Rejected,
    Registered(RegistryName),
    RegistrationFailed(RegistryName),
}

impl Fact {
    /// The registry a registration fact is about.
    pub fn registry(&self) -> Option<&RegistryName> {
        match self {
            Self::Registered(r) | Self::RegistrationFailed(r) => Some(r),
            Self::Submitted | Self::Validated | Self::Rejected => None,
        }
    }
}

/// When a receipt counts as ACCEPTED: the registries it must be registered with
/// (configuration section `[status]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusPolicy {
    pub required_registries: BTreeSet<RegistryName>,
}

impl StatusPolicy {
    pub fn new(required: impl IntoIterator<Item = RegistryName>) -> Self {
        Self {
            required_registries: required.into_iter().collect(),
        }
    }

    pub fn required(&self) -> impl Iterator<Item = &RegistryName> {
        self.required_registries.iter()
    }

    /// The required registries, in name order.
    pub fn registries(&self) -> Vec<RegistryName> {
        self.required_registries.iter().cloned().collect()
    }
}

impl Default for StatusPolicy {
    /// The tax authority and the logistics provider.
    fn default() -> Self {
        Self::new(
            ["tax", "logistics"]
                .into_iter()
                .filter_map(|n| RegistryName::parse(n).ok()),
        )
    }
}

/// The facts known about one receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ReceiptState {
    pub submitted: bool,
    pub validated: bool,
    pub rejected: bool,
    pub registered: BTreeSet<RegistryName>,
    pub failed: BTreeSet<RegistryName>,
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
    /// The status these facts add up to. Nothing moves a receipt on before its submission is
    /// known: the submission names the callback URL that must hear the outcome, and its event
    /// may be overtaken by the others (they travel on other topics). Then precedence: a
    /// rejection is final whatever else arrived; then a failed registration; then acceptance
    /// once every required registry has registered a validated receipt.
    pub fn status(&self, policy: &StatusPolicy) -> Status {
        if !self.submitted {
            Status::Received
        } else if self.rejected {
            Status::Rejected
        } else if !self.failed.is_empty() {
            Status::Failed
        } else if self.validated && policy.required().all(|r| self.registered.contains(r)) {
            Status::Accepted
        } else if self.validated {
            Status::Validated
        } else {
            Status::Received
        }
    }

    /// Records a fact. Idempotent and commutative.
    pub fn add(&mut self, fact: &Fact) {
        match fact {
            Fact::Submitted => self.submitted = true,
            Fact::Validated => self.validated = true,
            Fact::Rejected => self.rejected = true,
            Fact::Registered(r) => {
                self.registered.insert(r.clone());
            }
            Fact::RegistrationFailed(r) => {
                self.failed.insert(r.clone());
            }
        }
    }

    /// These facts and `fact`.
    pub fn with(&self, fact: &Fact) -> Self {
        let mut next = self.clone();
        next.add(fact);
        next
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn registry(name: &str) -> RegistryName {
        RegistryName::parse(name).expect("name")
    }

    fn fact() -> impl Strategy<Value = Fact> {
        prop_oneof![
            Just(Fact::Submitted),
            Just(Fact::Validated),
            Just(Fact::Rejected),
            prop::sample::select(vec!["tax", "logistics", "other"])
                .prop_map(|r| Fact::Registered(registry(r))),
            prop::sample::select(vec!["tax", "logistics"])
                .prop_map(|r| Fact::RegistrationFailed(registry(r))),
        ]
    }

    fn fold(facts: &[Fact]) -> ReceiptState {
        let mut state = ReceiptState::default();
        for f in facts {
            state.add(f);
        }
        state
    }

    fn status(facts: &[Fact]) -> Status {
        fold(facts).status(&StatusPolicy::default())
    }

    #[test]
    fn the_paths_of_a_receipt() {
        use Fact::*;
        let (tax, logistics) = (
            Registered(registry("tax")),
            Registered(registry("logistics")),
        );
        assert_eq!(status(&[Submitted]), Status::Received);
        assert_eq!(status(&[Submitted, Validated]), Status::Validated);
        assert_eq!(status(&[Submitted, Rejected]), Status::Rejected);
        assert_eq!(
            status(&[Submitted, Validated, tax.clone()]),
            Status::Validated,
            "one registry is not enough"
        );
        assert_eq!(
            status(&[Submitted, Validated, tax.clone(), logistics.clone()]),
            Status::Accepted
        );
        assert_eq!(
            status(&[logistics.clone(), tax.clone(), Validated, Submitted]),
            Status::Accepted,
            "any order"
        );
        assert_eq!(
            status(&[Submitted, tax.clone(), logistics.clone()]),
            Status::Received,
            "registered but not (yet) known valid"
        );
        assert_eq!(
            status(&[Validated, tax, logistics]),
            Status::Received,
            "nothing moves before the submission is known"
        );
        assert_eq!(
            status(&[Submitted, Validated, RegistrationFailed(registry("tax"))]),
            Status::Failed
        );
        assert_eq!(status(&[Rejected]), Status::Received);
    }

    #[test]
    fn precedence_of_terminal_statuses() {
        use Fact::*;
        assert_eq!(
            status(&[
                Submitted,
                Validated,
                Rejected,
                RegistrationFailed(registry("tax"))
            ]),
            Status::Rejected
        );
        let all = [
            Submitted,
            Validated,
            Registered(registry("tax")),
            Registered(registry("logistics")),
        ];
        let mut failed = all.to_vec();
        failed.push(RegistrationFailed(registry("logistics")));
        assert_eq!(status(&failed), Status::Failed);
        for st in [Status::Rejected, Status::Accepted, Status::Failed] {
            assert!(st.is_terminal());
        }
        assert!(!Status::Validated.is_terminal() && !Status::Received.is_terminal());
    }

    #[test]
    fn the_policy_decides_what_accepted_needs() {
        let only_tax = StatusPolicy::new([registry("tax")]);
        let state = fold(&[
            Fact::Submitted,
            Fact::Validated,
            Fact::Registered(registry("tax")),
        ]);
        assert_eq!(state.status(&only_tax), Status::Accepted);
        assert_eq!(state.status(&StatusPolicy::default()), Status::Validated);
    }

    #[test]
    fn facts_name_their_registry() {
        assert_eq!(
            Fact::Registered(registry("tax")).registry(),
            Some(&registry("tax"))
        );
        assert_eq!(Fact::Validated.registry(), None);
        assert_eq!(
            fold(&[Fact::Submitted]).with(&Fact::Validated),
            fold(&[Fact::Validated, Fact::Submitted])
        );
    }

    proptest! {
        /// Any order and any duplication of the same facts gives the same final state.
        #[test]
        fn order_and_duplicates_do_not_matter(facts in prop::collection::vec(fact(), 0..14), seed in any::<u64>()) {
            let mut shuffled = facts.clone();
            let dup = (seed as usize) % (facts.len() + 1);
            shuffled.extend_from_slice(&facts[..dup]);
            if !shuffled.is_empty() {
                let len = shuffled.len();
                shuffled.rotate_left((seed as usize / 7) % len);
            }
            prop_assert_eq!(fold(&facts), fold(&shuffled));
        }
    }
}
