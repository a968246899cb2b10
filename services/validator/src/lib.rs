//! validator: consumes `receipts.submitted`, checks each document against its receipt type's
//! rules and produces `receipts.validated` (with the normalized receipt) or `receipts.rejected`
//! (with every reason).
#![forbid(unsafe_code)]

use receipts_avro::SchemaRegistryConfig;
use receipts_domain::{
    DocumentFormat, EventMeta, Reason, ReceiptEvent, Rejected, Submitted, Topic, Validated,
};
use receipts_kafka::{EventHandler, EventProducer, HandlerError, KafkaConfig, MessageContext};
use receipts_runtime::TelemetryConfig;
use receipts_service::{Admin, AdminConfig, Consumer, Service, ServiceConfig};
use receipts_validation::types::{Catalog, ReceiptTypesConfig, TypeSet, Valid};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Service name: consumer group, client id, dead-letter topic prefix.
pub const SERVICE: &str = "validator";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorConfig {
    pub admin: AdminConfig,
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub telemetry: TelemetryConfig,
    /// The receipt types documents are validated as (the same set as the gateway's).
    pub receipt_types: ReceiptTypesConfig,
}

impl ServiceConfig for ValidatorConfig {
    fn service(&self) -> String {
        SERVICE.into()
    }

    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }

    fn admin(&self) -> Result<Option<Admin>, receipts_service::Error> {
        Admin::consumer(SERVICE, &self.admin, &self.kafka, &self.schema_registry).map(Some)
    }
}

/// Runs the validator until `shutdown` is cancelled.
pub async fn run(
    config: ValidatorConfig,
    shutdown: CancellationToken,
) -> Result<(), receipts_service::Error> {
    let service = Service::new(SERVICE, &config.kafka, &config.schema_registry)
        .consumes([Topic::Submitted])
        .produces([Topic::Validated, Topic::Rejected])
        .connect()
        .await?;
    let handler = Validator {
        producer: service.producer().clone(),
        receipt_types: receipts_service::receipt_types::open(&config.receipt_types, &shutdown)?,
    };
    service
        .run(
            Consumer::new(SERVICE, [Topic::Submitted]),
            handler,
            shutdown,
        )
        .await
}

struct Validator {
    producer: EventProducer,
    receipt_types: Catalog,
}

impl EventHandler for Validator {
    async fn handle(
        &self,
        event: ReceiptEvent,
        _context: &MessageContext,
    ) -> Result<(), HandlerError> {
        let ReceiptEvent::Submitted(submitted) = event else {
            return Ok(());
        };
        let mut types = self.receipt_types.current();
        if !types.names(&submitted.receipt_type) {
            // The gateway knew the type: this copy of the types directory is likely a reload
            // behind (a type just added), so look again before rejecting the receipt for it.
            self.receipt_types.reload_if_changed();
            types = self.receipt_types.current();
        }
        let outcome = outcome(&types, &submitted);
        match &outcome {
            ReceiptEvent::Validated(_) => {
                tracing::info!(receipt_id = %submitted.meta.receipt_id, "receipt valid")
            }
            ReceiptEvent::Rejected(r) => tracing::info!(
                receipt_id = %submitted.meta.receipt_id,
                reasons = r.reasons.len(),
                first_code = r.reasons.first().map(|r| r.code.as_str()).unwrap_or_default(),
                "receipt rejected"
            ),
            _ => {}
        }
        self.producer.publish(&outcome).await?;
        Ok(())
    }
}

/// The validation outcome event for a submission. Pure and deterministic: the submission's own
/// time is the reference for date checks, and the event id derives from the submission's, so
/// validating the same submission twice yields the very same event.
pub fn outcome(types: &TypeSet, submitted: &Submitted) -> ReceiptEvent {
    let result = DocumentFormat::from_content_type(&submitted.content_type)
        .map_err(|e| vec![Reason::new("", "invalid-document", e.to_string())])
        .and_then(|format| {
            types.validate(
                &submitted.receipt_type,
                format,
                &submitted.document,
                submitted.meta.occurred_at,
            )
        });
    let receipt_type = submitted.receipt_type.clone();
    match result {
        Ok(Valid { receipt, extension }) => Validated {
            meta: EventMeta::derived(&submitted.meta, "validated"),
            receipt_type,
            receipt,
            extension,
        }
        .into(),
        Err(reasons) => Rejected {
            meta: EventMeta::derived(&submitted.meta, "rejected"),
            receipt_type,
            reasons,
        }
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use receipts_domain::{IdempotencyKey, ReceiptId, ReceiptType, TenantId};

    use super::*;

    fn submission(receipt_type: &str, document: Vec<u8>) -> Submitted {
        Submitted {
            meta: EventMeta::new(ReceiptId::new(), TenantId::parse("dev").expect("tenant")),
            receipt_type: receipt_type.into(),
            content_type: "application/json".into(),
            document,
            idempotency_key: IdempotencyKey::parse("k").expect("key"),
            callback_url: None,
        }
    }

    #[test]
    fn valid_and_invalid_documents() {
        let json = ReceiptType::lookup("retail-receipt/v1").expect("type");
        let good = submission(
            "retail-receipt/v1",
            receipts_validation::sample::generate(&json, true, 1),
        );
        let ReceiptEvent::Validated(v) = outcome(&TypeSet::builtin(), &good) else {
            panic!("expected validated")
        };
        assert_eq!(v.meta.receipt_id, good.meta.receipt_id);
        assert_eq!(v.meta.tenant_id, good.meta.tenant_id);

        let bad = submission(
            "retail-receipt/v1",
            receipts_validation::sample::generate(&json, false, 1),
        );
        let ReceiptEvent::Rejected(r) = outcome(&TypeSet::builtin(), &bad) else {
            panic!("expected rejected")
        };
        assert!(r.reasons.len() >= 2);
        assert!(r.reasons.iter().all(|reason| !reason.code.is_empty()));
    }

    #[test]
    fn the_same_submission_gives_the_same_event() {
        let json = ReceiptType::lookup("retail-receipt/v1").expect("type");
        let s = submission(
            "retail-receipt/v1",
            receipts_validation::sample::generate(&json, true, 7),
        );
        assert_eq!(
            outcome(&TypeSet::builtin(), &s).meta().event_id,
            outcome(&TypeSet::builtin(), &s).meta().event_id
        );
    }

    #[test]
    fn unknown_receipt_types_are_rejected_with_a_reason() {
        let ReceiptEvent::Rejected(r) =
            outcome(&TypeSet::builtin(), &submission("nope/v1", b"{}".to_vec()))
        else {
            panic!("expected rejected")
        };
        assert_eq!(r.reasons[0].code, "unknown-receipt-type");
    }
}
