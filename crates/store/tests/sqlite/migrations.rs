//! Databases written by earlier builds open, migrate to the current schema, and keep every
//! record: the released migrations below are applied exactly as they shipped, then rows are
//! written the way those builds wrote them.

use chrono::{DateTime, Utc};
use receipts_domain::{
    DeliveryStatus, Destination, EndpointId, EventKind, Order, ReceiptId, ReceiptScan,
    ReceiptSummary, RegistryName, Status, TenantId, WebhookEventType,
};
use receipts_store::{
    ClientStore, DeliveryStore, DocumentStore, EndpointStore, ReceiptStore, ReservationStore,
};

use crate::{db, open_at};

const RELEASED: [&str; 3] = [
    include_str!("../../src/sqlite/migrations/0001.sql"),
    include_str!("../../src/sqlite/migrations/0002.sql"),
    include_str!("../../src/sqlite/migrations/0003.sql"),
];

/// 2024-05-01T08:00:00.123Z plus `seconds`, in epoch milliseconds.
fn ms(seconds: i64) -> i64 {
    1_714_550_400_123 + seconds * 1000
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms(seconds)).expect("time")
}

/// A version-3 database: an accepted receipt with its timeline, document and idempotency
/// record; a client; an endpoint with a rotated secret; callback secrets; a delivery with two
/// attempts.
async fn version_3_database(path: &std::path::Path, receipt: ReceiptId, endpoint: EndpointId) {
    let conn = libsql::Builder::new_local(path)
        .build()
        .await
        .expect("database")
        .connect()
        .expect("connection");
    for sql in RELEASED {
        conn.execute_batch(sql).await.expect("released migration");
    }
    conn.execute("PRAGMA user_version = 3", ())
        .await
        .expect("version");
    let r = receipt.to_string();
    let e = endpoint.to_string();
    let receipt_json = r#"{"receipt_number":"R-1","issued_at":"2024-05-01T10:15:00+02:00","seller":{"tax_id":"DE136695976","country":"DE","name":null},"buyer":null,"currency":"EUR","lines":[],"totals":{"net_amount":"4.20","vat_amount":"0.80","gross_amount":"5.00"},"payments":[]}"#;
    let registrations = r#"[{"registry":"logistics","registration_id":"L-1","registered_at":"2024-05-01T08:00:03Z","attempts":1},{"registry":"tax","registration_id":"T-1","registered_at":"2024-05-01T08:00:02Z","attempts":2}]"#;
    let statements = vec![
        format!(
            "INSERT INTO receipts VALUES ('{r}', 'acme', 'ACCEPTED', '{{}}', 4, 'retail-receipt/v1',
             'application/json', 'https://partner.example/cb', {received}, {updated}, NULL,
             '{receipt_json}', '{registrations}', '[]')",
            received = ms(0),
            updated = ms(3),
        ),
        format!("INSERT INTO timeline VALUES ('{r}', '01900000-0000-7000-8000-000000000001', 'submitted', {}, {}, 'RECEIVED', 1, 'RECEIVED', NULL)", ms(0), ms(0)),
        format!("INSERT INTO timeline VALUES ('{r}', '01900000-0000-7000-8000-000000000002', 'validated', {}, {}, 'VALIDATED', 2, 'RECEIVED', NULL)", ms(1), ms(1)),
        format!("INSERT INTO timeline VALUES ('{r}', '01900000-0000-7000-8000-000000000003', 'registered', {}, {}, 'VALIDATED', 3, 'VALIDATED', 'tax')", ms(2), ms(2)),
        format!("INSERT INTO timeline VALUES ('{r}', '01900000-0000-7000-8000-000000000004', 'registered', {}, {}, 'ACCEPTED', 4, 'VALIDATED', 'logistics')", ms(3), ms(3)),
        format!("INSERT INTO documents VALUES ('{r}', 'application/json', X'7B7D00FF')"),
        format!(
            "INSERT INTO idempotency VALUES ('acme', 'order-1', 'abc123', '{r}', '01900000-0000-7000-8000-000000000001', {})",
            ms(0)
        ),
        format!(
            "INSERT INTO api_clients VALUES ('01900000-0000-7000-8000-0000000000aa', 'acme', 'read-write', 'hash-1', 'rk_abc', 'ops', {}, NULL)",
            ms(0)
        ),
        format!(
            "INSERT INTO webhook_endpoints VALUES ('{e}', 'acme', 'https://hooks.example/', 'desc',
             '[\"receipt.accepted\"]', 0, 'disabled by its owner', {}, {}, {})",
            ms(5),
            ms(0),
            ms(6)
        ),
        format!("INSERT INTO webhook_endpoint_secrets VALUES ('{e}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', {}, {})", ms(100), ms(0)),
        format!("INSERT INTO webhook_endpoint_secrets VALUES ('{e}', 'whsec_c2VjcmV0LWtleS0xMjM0NTY3OA==', NULL, {})", ms(10)),
        format!("INSERT INTO webhook_callback_secrets VALUES ('acme', 'whsec_c2VjcmV0LWtleS0xMjM0NTY3OA==', NULL, {})", ms(0)),
        format!(
            "INSERT INTO webhook_deliveries VALUES ('msg_1', 'acme', '{r}', 'endpoint', '{e}',
             'https://hooks.example/', 'receipt.accepted', CAST('{{\"type\":\"receipt.accepted\"}}' AS BLOB),
             'failed', 'gave up', {}, {})",
            ms(4),
            ms(9)
        ),
        format!("INSERT INTO webhook_attempts VALUES ('msg_1', 1, {}, 'https://hooks.example/', 503, 12, 'busy', 'http-503', 0)", ms(4)),
        format!("INSERT INTO webhook_attempts VALUES ('msg_1', 2, {}, 'https://hooks.example/', NULL, 15000, NULL, 'timeout', 0)", ms(8)),
    ];
    for sql in statements {
        conn.execute(&sql, ())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::test]
async fn a_version_3_database_migrates_with_every_record() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (receipt, endpoint) = (ReceiptId::new(), EndpointId::new());
    version_3_database(&db(dir.path()), receipt, endpoint).await;
    let store = open_at(&db(dir.path())).await;
    assert_eq!(store.schema_version().await.expect("version"), 5);
    let acme = TenantId::parse("acme").expect("tenant");

    let record = store.receipt(receipt).await.expect("read").expect("kept");
    assert_eq!((record.status, record.version), (Status::Accepted, 4));
    assert_eq!(record.tenant_id, acme);
    assert_eq!(record.received_at, Some(at(0)), "milliseconds kept");
    assert_eq!(record.updated_at, at(3));
    assert_eq!(
        record.callback_url.as_ref().map(|u| u.as_str()),
        Some("https://partner.example/cb")
    );
    assert_eq!(
        record.receipt.as_ref().map(|r| r.receipt_number.as_str()),
        Some("R-1")
    );
    assert_eq!(record.registrations.len(), 2);
    let kinds: Vec<EventKind> = record.timeline.iter().map(|t| t.event).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Submitted,
            EventKind::Validated,
            EventKind::Registered,
            EventKind::Registered
        ]
    );
    assert_eq!(
        record.timeline[2].registry,
        Some(RegistryName::parse("tax").expect("name"))
    );
    assert_eq!(record.timeline[3].status, Status::Accepted);
    assert_eq!(record.state().status(&Default::default()), Status::Accepted);

    // Listed (migration 5) as its record says.
    let everything = ReceiptScan {
        tenant: acme.clone(),
        after: ReceiptId::from_uuid(uuid::Uuid::nil()),
        before: ReceiptId::from_uuid(uuid::Uuid::max()),
        statuses: [Status::Accepted].into(),
        receipt_type: Some("retail-receipt/v1".into()),
        order: Order::Desc,
    };
    assert_eq!(
        store.scan_receipt_ids(&everything, 10).await.expect("scan"),
        [receipt]
    );
    assert_eq!(
        store
            .receipt_summaries(&acme, receipt, receipt)
            .await
            .expect("summaries"),
        [ReceiptSummary::of(&record)]
    );

    let document = store.document(receipt).await.expect("read").expect("kept");
    assert_eq!(
        (document.bytes.as_slice(), &document.tenant_id),
        (&b"{}\x00\xff"[..], &acme)
    );
    let reservation = store
        .reservation_of(receipt)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(reservation.idempotency_key.as_str(), "order-1");
    assert_eq!(reservation.receipt_type, "retail-receipt/v1");
    assert_eq!(reservation.received_at, at(0));
    let clients = store.clients(Some(&acme)).await.expect("read");
    assert_eq!(
        (clients.len(), clients[0].label.as_deref()),
        (1, Some("ops"))
    );

    let hook = store.endpoint(endpoint).await.expect("read").expect("kept");
    assert!(!hook.enabled);
    assert_eq!(hook.events, Some(vec![WebhookEventType::Accepted]));
    assert_eq!(hook.failing_since, Some(at(5)));
    let secrets = hook.live_secrets(at(50));
    assert_eq!(secrets.len(), 2, "the current and the rotated-out one");
    assert_eq!(secrets[0].expires_at, None, "current first");
    assert_eq!(secrets[1].expires_at, Some(at(100)));
    assert_eq!(hook.live_secrets(at(100)).len(), 1);
    assert_eq!(store.endpoints(&acme).await.expect("list").len(), 1);
    let callback = store
        .callback_secrets(&acme)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(callback.secrets.live(at(0)).len(), 1);

    let delivery = store.delivery("msg_1").await.expect("read").expect("kept");
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(delivery.destination, Destination::Endpoint(endpoint));
    assert_eq!(delivery.payload, br#"{"type":"receipt.accepted"}"#);
    assert_eq!(delivery.failure_reason.as_deref(), Some("gave up"));
    let attempts = store.attempts("msg_1").await.expect("read");
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        (attempts[1].http_status, attempts[1].latency_ms),
        (None, 15_000)
    );
    assert_eq!(attempts[0].at, at(4));
    assert_eq!(store.deliveries_of(receipt).await.expect("list").len(), 1);
}
