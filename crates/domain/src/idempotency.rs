//! Idempotent submission: the same key with the same request returns the original answer; the
//! same key with a different request is a conflict.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{CallbackUrl, DocumentFormat, EventId, IdempotencyKey, ReceiptId, TenantId};

/// A digest of everything that makes two submissions "the same request": receipt type, document
/// format, callback URL and the exact body bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestFingerprint(String);

impl RequestFingerprint {
    pub fn of(
        receipt_type: &str,
        format: DocumentFormat,
        callback_url: Option<&str>,
        body: &[u8],
    ) -> Self {
        let mut hash = Sha256::new();
        // Length-prefix every field so no two different requests can concatenate to the same bytes.
        for field in [
            receipt_type.as_bytes(),
            format.media_type().as_bytes(),
            callback_url.unwrap_or("").as_bytes(),
            body,
        ] {
            hash.update((field.len() as u64).to_be_bytes());
            hash.update(field);
        }
        // Distinguish "no callback" from "empty callback" (which the gateway never accepts anyway).
        hash.update([u8::from(callback_url.is_some())]);
        Self(hex::encode(hash.finalize()))
    }
}

/// What to do with a submission given what is already recorded under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyDecision {
    /// First time this key is seen: process it.
    Fresh,
    /// The same request again: answer as the first time, for this receipt.
    Replay(ReceiptId),
    /// A different request under a used key: refuse (409).
    Conflict(ReceiptId),
}

impl IdempotencyDecision {
    pub fn decide(
        recorded: Option<(ReceiptId, &RequestFingerprint)>,
        incoming: &RequestFingerprint,
    ) -> Self {
        match recorded {
            None => Self::Fresh,
            Some((id, fingerprint)) if fingerprint == incoming => Self::Replay(id),
            Some((id, _)) => Self::Conflict(id),
        }
    }
}

/// The first submission under a (tenant, idempotency key) pair, with the ids it was given, so that
/// a retry re-produces exactly the same `submitted` event, and with what a partner sees of the
/// receipt before the projection has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub tenant_id: TenantId,
    pub idempotency_key: IdempotencyKey,
    pub fingerprint: RequestFingerprint,
    pub receipt_id: ReceiptId,
    pub event_id: EventId,
    pub received_at: DateTime<Utc>,
    pub receipt_type: String,
    pub content_type: String,
    pub callback_url: Option<CallbackUrl>,
}

impl Reservation {
    /// What to do with a submission `incoming` under this reservation's key.
    pub fn decide(&self, incoming: &RequestFingerprint) -> IdempotencyDecision {
        IdempotencyDecision::decide(Some((self.receipt_id, &self.fingerprint)), incoming)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const JSON: DocumentFormat = DocumentFormat::Json;

    #[test]
    fn same_request_replays_different_conflicts() {
        let id = ReceiptId::new();
        let a = RequestFingerprint::of("retail-receipt/v1", JSON, None, b"{}");
        let b = RequestFingerprint::of("retail-receipt/v1", JSON, None, b"{ }");
        assert_eq!(
            IdempotencyDecision::decide(None, &a),
            IdempotencyDecision::Fresh
        );
        assert_eq!(
            IdempotencyDecision::decide(Some((id, &a)), &a),
            IdempotencyDecision::Replay(id)
        );
        assert_eq!(
            IdempotencyDecision::decide(Some((id, &a)), &b),
            IdempotencyDecision::Conflict(id)
        );
    }

    #[test]
    fn every_field_counts() {
        let base = RequestFingerprint::of("t/v1", JSON, Some("https://a.example/"), b"x");
        assert_ne!(
            base,
            RequestFingerprint::of("t/v2", JSON, Some("https://a.example/"), b"x")
        );
        assert_ne!(
            base,
            RequestFingerprint::of(
                "t/v1",
                DocumentFormat::Xml,
                Some("https://a.example/"),
                b"x"
            )
        );
        assert_ne!(
            base,
            RequestFingerprint::of("t/v1", JSON, Some("https://b.example/"), b"x")
        );
        assert_ne!(base, RequestFingerprint::of("t/v1", JSON, None, b"x"));
        assert_eq!(
            base,
            RequestFingerprint::of("t/v1", JSON, Some("https://a.example/"), b"x")
        );
    }

    proptest! {
        /// Moving bytes between fields never produces the same fingerprint.
        #[test]
        fn fields_do_not_run_together(a in "[a-z/]{0,8}", b in prop::collection::vec(any::<u8>(), 0..16), split in 0usize..8) {
            let split = split.min(a.len());
            let (head, tail) = a.split_at(split);
            let mut body = tail.as_bytes().to_vec();
            body.extend_from_slice(&b);
            let whole = RequestFingerprint::of(&a, JSON, None, &b);
            let moved = RequestFingerprint::of(head, JSON, None, &body);
            prop_assert!(tail.is_empty() || whole != moved);
        }
    }
}
