//! The conformance suite: what every backend must do to be a store of this platform, as one
//! async function per guarantee, each taking a fresh [`Stores`]. A backend's test file runs them
//! all with [`conformance_suite!`](crate::conformance_suite):
//!
//! ```text
//! async fn open() -> (receipts_store::Stores, tempfile::TempDir) { … }
//! receipts_store::conformance_suite!(open);
//! ```
//!
//! The suite checks storage guarantees only (keys, compare-and-set, idempotent inserts, orders,
//! byte-exactness, concurrency); the rules that decide what is written are domain code with
//! tests of their own.

pub mod clients;
pub mod deliveries;
pub mod documents;
pub mod endpoints;
pub mod receipts;
pub mod reservations;

use chrono::{DateTime, TimeDelta, Utc};
use receipts_domain::event::now_millis;
use receipts_domain::{
    EventId, EventMeta, IdempotencyKey, NormalizedReceipt, Projection, Reason, ReceiptEvent,
    ReceiptId, ReceiptRecord, Registered, Registration, RegistrationFailed, RegistrationFailure,
    RegistryName, Rejected, StatusPolicy, Submitted, TenantId, Validated,
};

/// Runs every function of the suite as a test against the backend `open` opens: an async fn
/// returning `(Stores, guard)`, a fresh backend per test (the guard, kept until the test ends,
/// may own its files).
#[macro_export]
macro_rules! conformance_suite {
    ($open:path) => {
        $crate::conformance_suite!(@tests $open;
            receipts::a_record_round_trips_whole,
            receipts::compare_and_set_refuses_a_stale_version,
            receipts::of_concurrent_writers_of_one_version_exactly_one_wins,
            receipts::receipt_ids_are_scanned_by_tenant_range_order_and_filter,
            receipts::summaries_show_each_receipt_as_last_saved,
            reservations::the_first_reservation_of_a_key_wins,
            reservations::concurrent_reservations_of_one_key_agree,
            documents::documents_are_byte_exact_and_the_first_stays,
            clients::clients_are_created_found_listed_and_revoked,
            clients::ids_and_key_hashes_are_unique,
            endpoints::endpoints_round_trip_list_in_id_order_and_delete,
            endpoints::endpoint_writes_compare_versions,
            endpoints::callback_secrets_are_created_once,
            deliveries::deliveries_are_recorded_once_and_listed_in_order,
            deliveries::delivery_writes_compare_versions,
            deliveries::attempts_are_upserted_by_number,
            receipts::the_backend_answers_pings,
        );
    };
    (@tests $open:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (stores, _guard) = $open().await;
                $crate::conformance::$module::$name(&stores).await;
            }
        )*
    };
}

/// A tenant id no other test uses.
pub fn unique_tenant() -> TenantId {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    TenantId::parse(&format!("t-{}", &suffix[..16])).expect("a valid tenant id")
}

pub fn registry(name: &str) -> RegistryName {
    RegistryName::parse(name).expect("a valid registry name")
}

/// A valid normalized receipt.
pub fn sample_receipt() -> NormalizedReceipt {
    serde_json::from_value(serde_json::json!({
        "receipt_number": "R-2024-0001",
        "issued_at": "2024-05-01T10:15:00+02:00",
        "seller": { "tax_id": "DE136695976", "country": "DE", "name": "Muster GmbH" },
        "buyer": null,
        "currency": "EUR",
        "lines": [{
            "description": "Kaffee",
            "quantity": "2",
            "unit_price": "2.50",
            "vat_rate": "19",
            "net_amount": "4.20",
            "vat_amount": "0.80",
            "gross_amount": "5.00"
        }],
        "totals": { "net_amount": "4.20", "vat_amount": "0.80", "gross_amount": "5.00" },
        "payments": [{ "method": "card", "amount": "5.00" }]
    }))
    .expect("the sample receipt is a valid NormalizedReceipt")
}

/// Builds the events of one receipt. Events get fresh ids and occur in pipeline order: the
/// submission at `submitted_at`, validation outcomes one second later, registration outcomes
/// two seconds later.
#[derive(Debug, Clone)]
pub struct ReceiptFixture {
    pub tenant: TenantId,
    pub receipt_id: ReceiptId,
    pub submitted_at: DateTime<Utc>,
}

impl Default for ReceiptFixture {
    fn default() -> Self {
        Self::for_tenant(unique_tenant())
    }
}

impl ReceiptFixture {
    /// A new receipt of `tenant`.
    pub fn for_tenant(tenant: TenantId) -> Self {
        Self {
            tenant,
            receipt_id: ReceiptId::new(),
            // Milliseconds: the precision events keep on the wire.
            submitted_at: now_millis(),
        }
    }

    /// An envelope with a fresh event id, `offset` after the submission.
    pub fn meta(&self, offset: TimeDelta) -> EventMeta {
        EventMeta {
            event_id: EventId::new(),
            receipt_id: self.receipt_id,
            tenant_id: self.tenant.clone(),
            occurred_at: self.submitted_at + offset,
            attempt: 1,
        }
    }

    pub fn submitted(&self) -> ReceiptEvent {
        Submitted {
            meta: self.meta(TimeDelta::zero()),
            receipt_type: "retail-receipt/v1".into(),
            content_type: "application/json".into(),
            document: br#"{"receipt_number": "R-2024-0001"}"#.to_vec(),
            idempotency_key: IdempotencyKey::parse(&format!("order-{}", self.receipt_id))
                .expect("a valid key"),
            callback_url: None,
        }
        .into()
    }

    pub fn validated(&self) -> ReceiptEvent {
        Validated {
            meta: self.meta(TimeDelta::seconds(1)),
            receipt_type: "retail-receipt/v1".into(),
            receipt: sample_receipt(),
            extension: None,
        }
        .into()
    }

    pub fn rejected(&self) -> ReceiptEvent {
        Rejected {
            meta: self.meta(TimeDelta::seconds(1)),
            receipt_type: "retail-receipt/v1".into(),
            reasons: vec![Reason::new("/total", "total-mismatch", "totals differ")],
        }
        .into()
    }

    pub fn registered(&self, name: &str) -> ReceiptEvent {
        Registered {
            meta: self.meta(TimeDelta::seconds(2)),
            registration: Registration {
                registry: registry(name),
                registration_id: format!("{name}-{}", self.receipt_id),
                registered_at: self.submitted_at + TimeDelta::seconds(2),
                attempts: 1,
            },
        }
        .into()
    }

    pub fn failed(&self, name: &str) -> ReceiptEvent {
        RegistrationFailed {
            meta: self.meta(TimeDelta::seconds(2)),
            failure: RegistrationFailure {
                registry: registry(name),
                code: "rejected-by-registry".into(),
                reason: "the registry refused it".into(),
                failed_at: self.submitted_at + TimeDelta::seconds(2),
                attempts: 1,
            },
        }
        .into()
    }

    /// The record after `events`, as the projection builds it (each event new).
    pub fn record(&self, events: &[ReceiptEvent]) -> ReceiptRecord {
        let mut record: Option<ReceiptRecord> = None;
        for event in events {
            match ReceiptRecord::project(
                record.as_ref(),
                event,
                &StatusPolicy::default(),
                now_millis(),
            ) {
                Ok(Projection::Applied { record: next, .. }) => record = Some(*next),
                other => panic!("fixture event not applied: {other:?}"),
            }
        }
        record.expect("at least one event")
    }

    /// The accepted receipt: submitted, validated, registered with tax and logistics.
    pub fn accepted(&self) -> ReceiptRecord {
        self.record(&[
            self.submitted(),
            self.validated(),
            self.registered("tax"),
            self.registered("logistics"),
        ])
    }
}
