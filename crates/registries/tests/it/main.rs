//! The adapters against the project's mock registries (real HTTP on 127.0.0.1): every outcome and
//! failure class, and callbacks signed by the mock verified by the adapters.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::Utc;
use mock_registries::{
    AsyncMode, CallbackTarget, FailFirst, FaultKind, Faults, MockConfig, RegistryKind, RejectRule,
    RunningMock,
};
use receipts_domain::Secret;
use receipts_domain::{NormalizedReceipt, ReceiptId, ReceiptType, RegistryName};
use receipts_registries::{
    AdapterKind, CallError, CallbackConfig, CallbackError, Outcome, RegistrationRequest, Registry,
    RegistryConfig, read_callback,
};
use tokio::sync::mpsc;

const BLACKLISTED: &str = "DE136695976";

fn receipt(seed: u64) -> NormalizedReceipt {
    let t = ReceiptType::lookup("retail-receipt/v1").expect("type");
    let doc = receipts_validation::sample::generate(&t, true, seed);
    receipts_validation::validate(&t, &doc, Utc::now()).expect("sample is valid")
}

fn adapter_kind(kind: RegistryKind) -> AdapterKind {
    match kind {
        RegistryKind::Tax => AdapterKind::TaxAuthorityV1,
        RegistryKind::Logistics => AdapterKind::LogisticsV2,
    }
}

async fn mock(kind: RegistryKind, faults: Faults, callback: Option<CallbackTarget>) -> RunningMock {
    let config = MockConfig {
        faults,
        callback,
        ..MockConfig::ephemeral(kind)
    };
    mock_registries::start(config).await.expect("mock starts")
}

fn client(kind: RegistryKind, mock: &RunningMock, timeout: Duration) -> Registry {
    let mut config = match kind {
        RegistryKind::Tax => RegistryConfig::tax_default(),
        RegistryKind::Logistics => RegistryConfig::logistics_default(),
    };
    config.base_url = mock.base_url().parse().expect("url");
    config.timeout = timeout;
    assert_eq!(config.kind, adapter_kind(kind));
    Registry::new(config).expect("client")
}

async fn register(
    registry: &Registry,
    id: ReceiptId,
    receipt: &NormalizedReceipt,
) -> Result<Outcome, CallError> {
    registry
        .register(RegistrationRequest {
            receipt_id: id,
            receipt,
        })
        .await
}

async fn stats(mock: &RunningMock) -> serde_json::Value {
    reqwest::get(format!("{}/admin/stats", mock.base_url()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json")
}

const KINDS: [RegistryKind; 2] = [RegistryKind::Tax, RegistryKind::Logistics];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_idempotent_on_the_receipt_and_registry() {
    for kind in KINDS {
        let mock = mock(kind, Faults::default(), None).await;
        let registry = client(kind, &mock, Duration::from_secs(10));
        let (id, receipt) = (ReceiptId::new(), receipt(1));
        let Outcome::Registered {
            registration_id, ..
        } = register(&registry, id, &receipt).await.expect("registered")
        else {
            panic!("{kind}: not registered")
        };
        let prefix = if kind == RegistryKind::Tax {
            "TX-"
        } else {
            "LG-"
        };
        assert!(registration_id.starts_with(prefix), "{registration_id}");
        let again = register(&registry, id, &receipt).await.expect("again");
        assert!(
            matches!(again, Outcome::Registered { registration_id: ref r, .. } if *r == registration_id)
        );
        assert_eq!(
            stats(&mock).await["registrations"][id.to_string()],
            1,
            "{kind}: counted once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blacklisted_seller_is_rejected_with_the_registrys_reason() {
    for kind in KINDS {
        let faults = Faults {
            reject: vec![RejectRule {
                tax_id: BLACKLISTED.into(),
                reason: "seller under investigation".into(),
            }],
            ..Faults::default()
        };
        let mock = mock(kind, faults, None).await;
        let registry = client(kind, &mock, Duration::from_secs(10));
        let mut receipt = receipt(2);
        receipt.seller.tax_id = BLACKLISTED.into();
        let outcome = register(&registry, ReceiptId::new(), &receipt)
            .await
            .expect("an answer");
        let Outcome::Rejected { reason, .. } = outcome else {
            panic!("{kind}: {outcome:?}")
        };
        assert!(
            reason.contains("seller under investigation"),
            "{kind}: {reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_classified_retryable_with_retry_after() {
    for kind in KINDS {
        for (fault, expected_kind) in [
            (FaultKind::Http503, "http-503"),
            (FaultKind::Http500, "http-500"),
            (FaultKind::Http429, "http-429"),
            (FaultKind::Reset, "connection"),
            (FaultKind::Timeout, "timeout"),
        ] {
            let faults = Faults {
                fail_first: FailFirst {
                    count: 1,
                    kind: fault,
                },
                retry_after_seconds: 4,
                timeout_seconds: 10,
                ..Faults::default()
            };
            let mock = mock(kind, faults, None).await;
            let registry = client(kind, &mock, Duration::from_secs(1));
            let (id, receipt) = (ReceiptId::new(), receipt(3));
            let error = register(&registry, id, &receipt)
                .await
                .expect_err("first call faulted");
            let CallError::Retryable {
                kind: got,
                retry_after,
                ..
            } = error
            else {
                panic!("{kind} {fault:?}: {error}")
            };
            assert_eq!(got, expected_kind, "{kind} {fault:?}");
            if fault == FaultKind::Http429 {
                assert_eq!(retry_after, Some(Duration::from_secs(4)));
            }
            assert!(
                matches!(
                    register(&registry, id, &receipt).await,
                    Ok(Outcome::Registered { .. })
                ),
                "{kind} {fault:?}: the retry succeeds"
            );
            assert_eq!(stats(&mock).await["registrations"][id.to_string()], 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_is_a_connect_error() {
    let mut config = RegistryConfig::tax_default();
    config.base_url = "http://127.0.0.1:9/".parse().expect("url");
    let error = register(
        &Registry::new(config).expect("client"),
        ReceiptId::new(),
        &receipt(4),
    )
    .await
    .expect_err("down");
    assert!(
        matches!(error, CallError::Retryable { ref kind, .. } if kind == "connect"),
        "{error}"
    );
}

/// A local receiver for the mock's callbacks: hands over the raw headers and body.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let tx = Arc::new(tx);
    let app = axum::Router::new().route(
        "/cb",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/cb", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_registries_call_back_with_signatures_the_adapters_verify() {
    for kind in KINDS {
        let (url, mut callbacks) = receiver().await;
        let secret = "callback-secret";
        let faults = Faults {
            async_mode: AsyncMode {
                enabled: true,
                delay_ms: 50,
                ..AsyncMode::default()
            },
            reject: vec![RejectRule {
                tax_id: BLACKLISTED.into(),
                reason: "blacklisted".into(),
            }],
            ..Faults::default()
        };
        let target = CallbackTarget {
            url: url.parse().expect("url"),
            secret: receipts_domain::Secret::new(secret),
        };
        let mock = mock(kind, faults, Some(target)).await;
        let registry = client(kind, &mock, Duration::from_secs(10));
        let callback_config = CallbackConfig {
            kind: adapter_kind(kind),
            secrets: vec![Secret::new("old"), Secret::new(secret)],
            tolerance: Duration::from_secs(300),
        };

        let (id, receipt) = (ReceiptId::new(), receipt(5));
        assert_eq!(
            register(&registry, id, &receipt).await.expect("accepted"),
            Outcome::Pending
        );
        let (headers, body) = tokio::time::timeout(Duration::from_secs(30), callbacks.recv())
            .await
            .expect("callback")
            .expect("sent");
        let callback =
            read_callback(&callback_config, &headers, &body, Utc::now()).expect("verifies");
        assert_eq!(callback.receipt_id, id);
        let Outcome::Registered {
            registration_id, ..
        } = callback.outcome
        else {
            panic!("{kind}: {:?}", callback.outcome)
        };
        // Asking again after the callback answers the same registration.
        assert!(
            matches!(register(&registry, id, &receipt).await, Ok(Outcome::Registered { registration_id: ref r, .. }) if *r == registration_id)
        );

        // A forged or tampered callback is refused.
        let forged = CallbackConfig {
            secrets: vec![Secret::new("not-the-secret")],
            ..callback_config.clone()
        };
        assert!(matches!(
            read_callback(&forged, &headers, &body, Utc::now()),
            Err(CallbackError::Signature(_))
        ));
        let mut tampered = body.to_vec();
        tampered.extend_from_slice(b" ");
        assert!(matches!(
            read_callback(&callback_config, &headers, &tampered, Utc::now()),
            Err(CallbackError::Signature(_))
        ));
        let later = Utc::now() + chrono::Duration::minutes(10);
        assert!(
            matches!(
                read_callback(&callback_config, &headers, &body, later),
                Err(CallbackError::Signature(_))
            ),
            "replayed late"
        );

        // An asynchronous rejection arrives by callback too.
        let mut blacklisted = receipt.clone();
        blacklisted.seller.tax_id = BLACKLISTED.into();
        let rejected_id = ReceiptId::new();
        assert_eq!(
            register(&registry, rejected_id, &blacklisted)
                .await
                .expect("accepted"),
            Outcome::Pending
        );
        let (headers, body) = tokio::time::timeout(Duration::from_secs(30), callbacks.recv())
            .await
            .expect("callback")
            .expect("sent");
        let callback =
            read_callback(&callback_config, &headers, &body, Utc::now()).expect("verifies");
        assert_eq!(callback.receipt_id, rejected_id);
        assert!(
            matches!(callback.outcome, Outcome::Rejected { .. }),
            "{kind}: {:?}",
            callback.outcome
        );
    }
}

#[test]
fn registries_are_named_and_keyed_per_receipt() {
    let id = ReceiptId::new();
    let tax = RegistryName::parse("tax").expect("name");
    assert_eq!(
        receipts_registries::idempotency_key(id, &tax),
        format!("{id}-tax")
    );
    assert!(
        RegistryConfig::tax_default().callbacks().is_none(),
        "no secret, no callbacks"
    );
}
