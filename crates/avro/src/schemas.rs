//! The Avro schemas of every event, compiled in from `proto-schemas/`.

use std::sync::LazyLock;

use apache_avro::Schema;
use receipts_domain::EventKind;

const SUBMITTED: &str = include_str!("../../../proto-schemas/receipt-submitted.avsc");
const VALIDATED: &str = include_str!("../../../proto-schemas/receipt-validated.avsc");
const REJECTED: &str = include_str!("../../../proto-schemas/receipt-rejected.avsc");
const REGISTERED: &str = include_str!("../../../proto-schemas/receipt-registered.avsc");
const REGISTRATION_FAILED: &str =
    include_str!("../../../proto-schemas/receipt-registration-failed.avsc");
const STATUS_CHANGED: &str = include_str!("../../../proto-schemas/receipt-status-changed.avsc");
const WEBHOOK_REQUESTED: &str =
    include_str!("../../../proto-schemas/receipt-webhook-requested.avsc");
const WEBHOOK_FAILED: &str = include_str!("../../../proto-schemas/receipt-webhook-failed.avsc");

/// The schema text of an event kind, as registered.
pub fn schema_text(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Submitted => SUBMITTED,
        EventKind::Validated => VALIDATED,
        EventKind::Rejected => REJECTED,
        EventKind::Registered => REGISTERED,
        EventKind::RegistrationFailed => REGISTRATION_FAILED,
        EventKind::StatusChanged => STATUS_CHANGED,
        EventKind::WebhookRequested => WEBHOOK_REQUESTED,
        EventKind::WebhookFailed => WEBHOOK_FAILED,
    }
}

/// The record's full name, which identifies the event kind of a decoded payload.
pub fn full_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Submitted => "receipts.events.ReceiptSubmitted",
        EventKind::Validated => "receipts.events.ReceiptValidated",
        EventKind::Rejected => "receipts.events.ReceiptRejected",
        EventKind::Registered => "receipts.events.ReceiptRegistered",
        EventKind::RegistrationFailed => "receipts.events.ReceiptRegistrationFailed",
        EventKind::StatusChanged => "receipts.events.ReceiptStatusChanged",
        EventKind::WebhookRequested => "receipts.events.WebhookRequested",
        EventKind::WebhookFailed => "receipts.events.WebhookFailed",
    }
}

/// The kind whose record has this full name.
pub fn kind_of(full_name: &str) -> Option<EventKind> {
    EventKind::ALL
        .into_iter()
        .find(|&k| self::full_name(k) == full_name)
}

static PARSED: LazyLock<Vec<(EventKind, Schema)>> = LazyLock::new(|| {
    EventKind::ALL
        .into_iter()
        .filter_map(|kind| match Schema::parse_str(schema_text(kind)) {
            Ok(schema) => Some((kind, schema)),
            Err(error) => {
                // Unreachable once the `schemas_parse` test passes; logged rather than panicking.
                tracing::error!(%kind, %error, "compiled-in Avro schema does not parse");
                None
            }
        })
        .collect()
});

/// The parsed (reader) schema of an event kind.
pub fn schema(kind: EventKind) -> Option<&'static Schema> {
    PARSED.iter().find(|(k, _)| *k == kind).map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_parse_and_names_match() {
        for kind in EventKind::ALL {
            let schema = Schema::parse_str(schema_text(kind)).expect("schema parses");
            let Schema::Record(record) = schema else {
                panic!("{kind} is not a record")
            };
            assert_eq!(record.name.fullname(None), full_name(kind));
            assert_eq!(kind_of(full_name(kind)), Some(kind));
            assert!(super::schema(kind).is_some());
        }
    }
}
