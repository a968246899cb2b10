//! Standard Webhooks signatures, checked by implementations that share no code with ours: a
//! hand-written HMAC-SHA256 (the `hmac` and `sha2` crates) and the reference Python library
//! (`standardwebhooks` from PyPI, installed into target/ on first use).

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use hmac::{Hmac, Mac};
use receipts_domain::{Status, WebhookSecret};
use sha2::Sha256;

use crate::support::{Dispatcher, Received, Receiver, fast_webhooks, tenant};

/// `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`, written from the specification.
fn expected_signature(secret: &WebhookSecret, id: &str, timestamp: &str, body: &[u8]) -> String {
    let encoded = secret
        .expose()
        .strip_prefix("whsec_")
        .expect("whsec_ prefix");
    let key = STANDARD.decode(encoded).expect("base64 key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn signatures(request: &Received) -> Vec<String> {
    request
        .header("webhook-signature")
        .split(' ')
        .map(str::to_owned)
        .collect()
}

/// A Python with the reference `standardwebhooks` package.
fn python_with_standardwebhooks() -> PathBuf {
    receipts_testkit::python_venv("standardwebhooks", &["standardwebhooks==1.1.0"])
        .join("bin/python")
}

/// Verifies `request` with the reference library; returns its verdict.
fn python_verifies(secret: &WebhookSecret, request: &Received) -> bool {
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
case = json.load(sys.stdin)
try:
    Webhook(case["secret"]).verify(case["body"], case["headers"])
    print("verified")
except Exception as e:
    print("refused:", e)
"#;
    let case = serde_json::json!({
        "secret": secret.expose(),
        "body": String::from_utf8(request.body.to_vec()).expect("utf-8 body"),
        "headers": {
            "webhook-id": request.header("webhook-id"),
            "webhook-timestamp": request.header("webhook-timestamp"),
            "webhook-signature": request.header("webhook-signature"),
        },
    });
    let mut child = Command::new(python_with_standardwebhooks())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(case.to_string().as_bytes())
            .expect("write case");
    }
    let output = child.wait_with_output().expect("python finishes");
    let verdict = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        verdict == "verified" || verdict.starts_with("refused"),
        "unexpected output: {verdict}"
    );
    verdict == "verified"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_verify_with_independent_implementations_through_a_rotation() {
    let receiver = Receiver::ok().await;
    let dispatcher = Dispatcher::start(fast_webhooks()).await;
    let endpoint = dispatcher.endpoint(&receiver.url("/hooks"), None).await;
    let first_secret = endpoint.live_secrets(Utc::now())[0].secret.clone();

    dispatcher.change(Status::Accepted, None).await;
    let first = receiver.wait_for(1).await.remove(0);
    assert_eq!(first.header("content-type"), "application/json");
    assert!(first.webhook_id().starts_with("msg_"));
    let timestamp = first.header("webhook-timestamp");
    let age = Utc::now().timestamp() - timestamp.parse::<i64>().expect("unix seconds");
    assert!((0..300).contains(&age), "a current timestamp");
    assert_eq!(
        signatures(&first),
        vec![expected_signature(
            &first_secret,
            &first.webhook_id(),
            &timestamp,
            &first.body
        )]
    );
    assert!(python_verifies(&first_secret, &first));
    assert!(
        !python_verifies(&WebhookSecret::generate(), &first),
        "another secret does not verify"
    );
    let mut tampered = first.clone();
    tampered
        .headers
        .insert("webhook-id", "msg_forged".parse().expect("header"));
    assert!(
        !python_verifies(&first_secret, &tampered),
        "a changed id does not verify"
    );

    // During a rotation both secrets sign, the new one first.
    let second_secret = WebhookSecret::generate();
    dispatcher
        .webhooks
        .rotate_endpoint_secret(
            &tenant(),
            endpoint.id,
            second_secret.clone(),
            Utc::now() + chrono::Duration::hours(1),
            Utc::now(),
        )
        .await
        .expect("rotate")
        .expect("endpoint exists");
    dispatcher.change(Status::Rejected, None).await;
    let second = receiver.wait_for(2).await.remove(1);
    let ts = second.header("webhook-timestamp");
    let id = second.webhook_id();
    assert_eq!(
        signatures(&second),
        vec![
            expected_signature(&second_secret, &id, &ts, &second.body),
            expected_signature(&first_secret, &id, &ts, &second.body),
        ]
    );
    assert!(python_verifies(&second_secret, &second));
    assert!(python_verifies(&first_secret, &second));
    assert_eq!(second.json()["type"], "receipt.rejected");
    dispatcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_urls_are_signed_with_the_tenants_callback_secret() {
    let receiver = Receiver::ok().await;
    let dispatcher = Dispatcher::start(fast_webhooks()).await;
    let receipt = dispatcher
        .change(Status::Accepted, Some(&receiver.url("/cb?ref=42")))
        .await;
    let request = receiver.wait_for(1).await.remove(0);
    let secrets = dispatcher
        .webhooks
        .callback_secrets(&tenant(), WebhookSecret::generate(), Utc::now())
        .await
        .expect("secrets");
    assert_eq!(secrets.len(), 1, "created on first use and kept");
    assert!(python_verifies(&secrets[0].secret, &request));
    let body = request.json();
    assert_eq!(body["type"], "receipt.accepted");
    assert_eq!(body["data"]["id"], receipt.to_string());
    assert_eq!(body["data"]["status"], "ACCEPTED");
    dispatcher.stop().await;
}
