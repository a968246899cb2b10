//! What a registry's answer about a receipt comes to, however it arrived: the registrar's own
//! call, or the registry's signed callback to the gateway. Both report through here, so the
//! same answer is the same event (its id depends only on the receipt, the registry and the
//! outcome's kind) and is counted once.

use receipts_domain::event::now_millis;
use receipts_domain::registry::failure_code;
use receipts_domain::{
    ReceiptEvent, ReceiptId, Registered, Registration, RegistrationFailed, RegistrationFailure,
    RegistryName, TenantId,
};
use receipts_registries::Outcome;

/// The event for `outcome` of registering `receipt` with `registry` after `attempts` calls;
/// `None` while the registry has not decided (asynchronous processing).
pub fn outcome_event(
    registry: &RegistryName,
    receipt: ReceiptId,
    tenant: TenantId,
    outcome: Outcome,
    attempts: u32,
) -> Option<ReceiptEvent> {
    match outcome {
        Outcome::Registered {
            registration_id,
            registered_at,
        } => Some(
            Registered::new(
                receipt,
                tenant,
                Registration {
                    registry: registry.clone(),
                    registration_id,
                    registered_at,
                    attempts,
                },
            )
            .into(),
        ),
        Outcome::Rejected { code, reason } => Some(failed_event(
            registry,
            receipt,
            tenant,
            failure_code::REJECTED_BY_REGISTRY,
            format!("{code}: {reason}"),
            attempts,
        )),
        Outcome::Pending => None,
    }
}

/// The event of a registration that failed for good, with `code` and `reason`.
pub fn failed_event(
    registry: &RegistryName,
    receipt: ReceiptId,
    tenant: TenantId,
    code: &str,
    reason: String,
    attempts: u32,
) -> ReceiptEvent {
    RegistrationFailed::new(
        receipt,
        tenant,
        RegistrationFailure {
            registry: registry.clone(),
            code: code.into(),
            reason,
            failed_at: now_millis(),
            attempts,
        },
    )
    .into()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn tax() -> RegistryName {
        RegistryName::parse("tax").expect("name")
    }

    fn tenant() -> TenantId {
        TenantId::parse("acme").expect("tenant")
    }

    #[test]
    fn the_same_answer_by_either_path_is_one_event() {
        let receipt = ReceiptId::new();
        let registered = || Outcome::Registered {
            registration_id: "FN-1".into(),
            registered_at: Utc::now(),
        };
        let by_call = outcome_event(&tax(), receipt, tenant(), registered(), 3).expect("event");
        let by_callback = outcome_event(&tax(), receipt, tenant(), registered(), 1).expect("event");
        assert_eq!(by_call.meta().event_id, by_callback.meta().event_id);
        let ReceiptEvent::Registered(r) = by_call else {
            panic!("registered")
        };
        assert_eq!(
            (r.registration.registry, r.registration.attempts),
            (tax(), 3)
        );
    }

    #[test]
    fn a_refusal_fails_the_registration_with_the_registrys_reason() {
        let event = outcome_event(
            &tax(),
            ReceiptId::new(),
            tenant(),
            Outcome::Rejected {
                code: "blacklisted".into(),
                reason: "seller is blocked".into(),
            },
            1,
        )
        .expect("event");
        let ReceiptEvent::RegistrationFailed(f) = event else {
            panic!("failed")
        };
        assert_eq!(f.failure.code, failure_code::REJECTED_BY_REGISTRY);
        assert_eq!(f.failure.reason, "blacklisted: seller is blocked");
        assert!(
            outcome_event(&tax(), ReceiptId::new(), tenant(), Outcome::Pending, 1).is_none(),
            "nothing to report yet"
        );
    }
}
