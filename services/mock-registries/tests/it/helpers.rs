use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use mock_registries::{MockConfig, RegistryKind, RunningMock};
use reqwest::header::HeaderMap as ReqwestHeaders;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const SELLER: &str = "DE136695976";
pub const BLACKLISTED: &str = "DE000000666";

pub fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(15))
}

pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("client")
}

/// One mock on a random port with a client for it.
pub struct Mock {
    pub kind: RegistryKind,
    pub running: RunningMock,
    pub base: String,
    pub http: reqwest::Client,
}

pub async fn spawn(kind: RegistryKind) -> Mock {
    spawn_with(MockConfig::ephemeral(kind)).await
}

pub async fn spawn_with(config: MockConfig) -> Mock {
    let kind = config.kind;
    let running = mock_registries::start(config).await.expect("mock starts");
    Mock {
        kind,
        base: running.base_url(),
        running,
        http: client(),
    }
}

/// A registration body for `kind`.
pub fn body(kind: RegistryKind, receipt_ref: &str, tax_id: &str) -> Value {
    match kind {
        RegistryKind::Tax => json!({
            "receipt_ref": receipt_ref,
            "seller_tax_id": tax_id,
            "issued_at": "2026-03-01T10:15:00+01:00",
            "currency": "EUR",
            "total_gross": "12.34",
            "total_vat": "1.97",
            "line_count": 3,
        }),
        RegistryKind::Logistics => json!({
            "reference": receipt_ref,
            "sender": {"vat_id": tax_id, "country": "DE"},
            "declared_value": {"amount": "12.34", "currency": "EUR"},
            "item_count": 3,
            "issued_at": "2026-03-01T10:15:00+01:00",
        }),
    }
}

/// The path of the registration `key`.
pub fn path(kind: RegistryKind, key: &str) -> String {
    match kind {
        RegistryKind::Tax => format!("/api/v1/fiscal-receipts/{key}"),
        RegistryKind::Logistics => format!("/v2/registrations/{key}"),
    }
}

impl Mock {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Submits `body` under `key`, the way each registry wants it.
    pub async fn try_submit(&self, key: &str, body: &Value) -> reqwest::Result<reqwest::Response> {
        self.try_submit_with(&self.http, key, body).await
    }

    pub async fn try_submit_with(
        &self,
        http: &reqwest::Client,
        key: &str,
        body: &Value,
    ) -> reqwest::Result<reqwest::Response> {
        match self.kind {
            RegistryKind::Tax => {
                http.post(self.url("/api/v1/fiscal-receipts"))
                    .header("Idempotency-Key", key)
                    .json(body)
                    .send()
                    .await
            }
            RegistryKind::Logistics => {
                http.put(self.url(&path(self.kind, key)))
                    .json(body)
                    .send()
                    .await
            }
        }
    }

    pub async fn submit(&self, key: &str, body: &Value) -> (StatusCode, Value) {
        read(self.try_submit(key, body).await.expect("submit")).await
    }

    pub async fn query(&self, key: &str) -> (StatusCode, Value) {
        read(
            self.http
                .get(self.url(&path(self.kind, key)))
                .send()
                .await
                .expect("query"),
        )
        .await
    }

    pub async fn put_faults(&self, faults: Value) -> Value {
        let (status, body) = read(
            self.http
                .put(self.url("/admin/faults"))
                .json(&faults)
                .send()
                .await
                .expect("put faults"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn admin(&self, path: &str) -> Value {
        let (status, body) = read(self.http.get(self.url(path)).send().await.expect("admin")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    pub async fn stats(&self) -> Value {
        self.admin("/admin/stats").await
    }

    pub async fn registrations(&self) -> Value {
        self.stats().await["registrations"].clone()
    }

    pub async fn calls(&self) -> Vec<Value> {
        self.admin("/admin/calls")
            .await
            .as_array()
            .expect("calls array")
            .clone()
    }

    pub async fn outcomes(&self) -> Vec<String> {
        self.calls()
            .await
            .iter()
            .map(|c| c["outcome"].as_str().expect("outcome").to_owned())
            .collect()
    }

    /// Polls the query endpoint until it stops answering 202.
    pub async fn await_completion(&self, key: &str) -> (StatusCode, Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.query(key).await;
            if status != StatusCode::ACCEPTED || Instant::now() > deadline {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Status and JSON body (`null` when empty).
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

/// RFC 3339, UTC, with milliseconds: `2026-03-01T09:15:00.123Z`.
pub fn assert_ms_utc(timestamp: &Value) {
    let text = timestamp.as_str().expect("timestamp string");
    chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339");
    assert_eq!(text.len(), 24, "{text}");
    assert!(text.ends_with('Z'), "{text}");
}

/// One callback as received.
#[derive(Debug)]
pub struct Delivery {
    pub headers: ReqwestHeaders,
    pub body: Bytes,
    pub at: Instant,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("callback JSON")
    }
}

/// A local endpoint that records every callback; the first `fail_first` get a 500.
pub struct CallbackReceiver {
    pub url: String,
    pub deliveries: mpsc::UnboundedReceiver<Delivery>,
    shutdown: CancellationToken,
}

impl Drop for CallbackReceiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Clone)]
struct ReceiverState {
    tx: mpsc::UnboundedSender<Delivery>,
    remaining_failures: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut copied = ReqwestHeaders::new();
    for (name, value) in &headers {
        copied.insert(name.clone(), value.clone());
    }
    let _ = state.tx.send(Delivery {
        headers: copied,
        body,
        at: Instant::now(),
    });
    let fail = state
        .remaining_failures
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        )
        .is_ok();
    if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

pub async fn callback_receiver(fail_first: usize) -> CallbackReceiver {
    let (tx, deliveries) = mpsc::unbounded_channel();
    let state = ReceiverState {
        tx,
        remaining_failures: std::sync::Arc::new(fail_first.into()),
    };
    let router = axum::Router::new()
        .route("/callbacks", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/callbacks", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .expect("receiver serves");
    });
    CallbackReceiver {
        url,
        deliveries,
        shutdown,
    }
}

impl CallbackReceiver {
    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(Duration::from_secs(10), self.deliveries.recv())
            .await
            .expect("a callback within 10 s")
            .expect("receiver open")
    }

    /// No further callback within `wait`.
    pub async fn assert_quiet(&mut self, wait: Duration) {
        if let Ok(Some(extra)) = tokio::time::timeout(wait, self.deliveries.recv()).await {
            panic!("unexpected callback: {extra:?}");
        }
    }
}

/// Lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"`, computed here independently of the
/// crate's own signing code.
pub fn expected_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a tax callback's `X-Tax-Signature: t=<unix>,v1=<hex>`.
pub fn verify_tax_signature(delivery: &Delivery, secret: &str) {
    let header = delivery
        .headers
        .get("x-tax-signature")
        .expect("X-Tax-Signature")
        .to_str()
        .expect("ascii");
    let (t, v1) = header.split_once(',').expect("t=..,v1=..");
    let t = t.strip_prefix("t=").expect("t=");
    let v1 = v1.strip_prefix("v1=").expect("v1=");
    assert_fresh(t);
    assert_eq!(
        v1,
        expected_signature(secret, t, &delivery.body),
        "{header}"
    );
}

/// Checks a logistics callback's `X-Timestamp` and `X-Signature-256: sha256=<hex>`.
pub fn verify_logistics_signature(delivery: &Delivery, secret: &str) {
    let header = |name: &str| {
        delivery
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("{name}"))
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    let timestamp = header("x-timestamp");
    assert_fresh(&timestamp);
    let signature = header("x-signature-256");
    let hex = signature.strip_prefix("sha256=").expect("sha256=");
    assert_eq!(hex, expected_signature(secret, &timestamp, &delivery.body));
}

fn assert_fresh(unix: &str) {
    let t: i64 = unix.parse().expect("unix seconds");
    let now = chrono::Utc::now().timestamp();
    assert!((now - t).abs() <= 5, "timestamp {t} vs now {now}");
}
