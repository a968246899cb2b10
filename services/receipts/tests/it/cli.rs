use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use receipts_domain::ApiKey;
use receipts_store::{ClientStore, SqliteOptions, SqliteStore};
use receipts_testkit::{eventually, free_addr};

use crate::helpers::*;

fn receipts(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_receipts"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run receipts")
}

fn line<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_create_list_revoke() {
    let dir = tempfile::tempdir().expect("dir");
    let created = receipts(
        dir.path(),
        &["clients", "create", "--tenant", "acme", "--scope", "read"],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8_lossy(&created.stdout).into_owned();
    let key = line(&stdout, "key").to_owned();
    let id = line(&stdout, "client").to_owned();
    assert!(key.starts_with("rk_"));
    assert_eq!(line(&stdout, "scope"), "read");

    // Stored hashed, never in clear.
    let db = std::fs::read(dir.path().join("receipts.db")).expect("db");
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "the key is not stored in clear"
    );
    let store = SqliteStore::open(&dir.path().join("receipts.db"), &SqliteOptions::default())
        .await
        .expect("store");
    let client = store
        .client_by_key_hash(&ApiKey::hash_of(&key))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(client.tenant_id.as_str(), "acme");
    drop(store);

    let listed = receipts(dir.path(), &["clients", "list", "--tenant", "acme"]);
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains(&id) && listing.contains("active"),
        "{listing}"
    );
    assert!(!listing.contains(&key), "listings never show keys");

    let revoked = receipts(dir.path(), &["clients", "revoke", &id]);
    assert!(revoked.status.success());
    let listing =
        String::from_utf8_lossy(&receipts(dir.path(), &["clients", "list"]).stdout).into_owned();
    assert!(listing.contains("revoked"), "{listing}");
    assert!(
        !receipts(dir.path(), &["clients", "revoke", &id])
            .status
            .success(),
        "revoking twice fails"
    );

    let bad = receipts(
        dir.path(),
        &[
            "clients",
            "create",
            "--tenant",
            "Not A Tenant",
            "--scope",
            "read",
        ],
    );
    assert!(!bad.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_list_prints_a_tenants_receipts_page_by_page() {
    use receipts_store::conformance::ReceiptFixture;
    use receipts_store::{Cas, ReceiptStore};

    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(&dir.path().join("receipts.db"), &SqliteOptions::default())
        .await
        .expect("store");
    let acme = receipts_domain::TenantId::parse("acme").expect("tenant");
    let mut ids = Vec::new();
    for n in 0..5 {
        let fx = ReceiptFixture::for_tenant(acme.clone());
        let record = if n == 2 {
            fx.record(&[fx.submitted(), fx.rejected()])
        } else {
            fx.record(&[fx.submitted()])
        };
        assert_eq!(
            store.save_receipt(&record, 0).await.expect("save"),
            Cas::Written
        );
        ids.push(record.id.to_string());
    }
    let other = ReceiptFixture::default();
    let _ = store
        .save_receipt(&other.record(&[other.submitted()]), 0)
        .await
        .expect("save");
    drop(store);

    let listed = receipts(
        dir.path(),
        &["store", "list", "--tenant", "acme", "--limit", "2"],
    );
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "one page: {table}");
    assert!(
        rows[0].starts_with(&ids[4]) && rows[1].starts_with(&ids[3]),
        "{table}"
    );
    assert!(String::from_utf8_lossy(&listed.stderr).contains("--all"));

    let all = receipts(
        dir.path(),
        &[
            "store", "list", "--tenant", "acme", "--limit", "2", "--all", "--asc", "--output",
            "ndjson",
        ],
    );
    assert!(all.status.success());
    let shown: Vec<serde_json::Value> = String::from_utf8_lossy(&all.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let shown_ids: Vec<&str> = shown
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(shown_ids, ids, "every page, oldest first, acme only");

    let rejected = receipts(
        dir.path(),
        &[
            "store", "list", "--tenant", "acme", "--status", "rejected", "--output", "ndjson",
        ],
    );
    let text = String::from_utf8_lossy(&rejected.stdout).into_owned();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(&ids[2]) && text.contains("REJECTED"));

    let bad = receipts(
        dir.path(),
        &["store", "list", "--tenant", "acme", "--limit", "10001"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("limit"));
}

struct UpAndReady {
    dir: tempfile::TempDir,
    child: tokio::process::Child,
    kafka: SocketAddr,
    gateway: SocketAddr,
}

/// `receipts up` on free ports, once its gateway is ready. Another test process may take a port
/// between `free_addr` and the bind (then `receipts up` exits), so that tries again on new ports.
async fn up_and_ready() -> UpAndReady {
    let http = http_client();
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("dir");
        let (kafka, registry, gateway) = (free_addr(), free_addr(), free_addr());
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_receipts"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("up")
            .env("RECEIPTS_KAFKA__BOOTSTRAP_SERVERS", kafka.to_string())
            .env("RECEIPTS_SCHEMA_REGISTRY__URL", url(registry).as_str())
            .env("RECEIPTS_GATEWAY__LISTEN", gateway.to_string())
            .env("RECEIPTS_GATEWAY__PUBLIC_URL", url(gateway).as_str())
            .env("RECEIPTS_MOCKS__TAX__LISTEN", free_addr().to_string())
            .env("RECEIPTS_MOCKS__LOGISTICS__LISTEN", free_addr().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start receipts up");
        let ready = eventually("the gateway ready, or receipts up gone", WAIT, || {
            let status = child.try_wait().expect("child status");
            let http = &http;
            async move {
                if status.is_some() {
                    return Some(false);
                }
                let response = http.get(format!("http://{gateway}/readyz")).send().await;
                response
                    .is_ok_and(|r| r.status().is_success())
                    .then_some(true)
            }
        })
        .await;
        if ready {
            return UpAndReady {
                dir,
                child,
                kafka,
                gateway,
            };
        }
    }
    panic!("receipts up did not start in five tries");
}

/// `receipts up` as people run it: starts everything, serves, and stops cleanly on Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_up_runs_and_stops_on_ctrl_c() {
    let UpAndReady {
        dir,
        mut child,
        kafka,
        gateway,
    } = up_and_ready().await;
    let http = http_client();
    let base = format!("http://{gateway}");
    let key = std::fs::read_to_string(dir.path().join("dev-api-key"))
        .expect("dev key file")
        .trim()
        .to_owned();
    let example = &manifest()[0];
    let body = std::fs::read(examples_dir().join(&example.file)).expect("example");
    let id = submit(
        &http,
        &base,
        &key,
        &example.content_type,
        &example.receipt_type,
        "up-1",
        body,
    )
    .await;
    wait_for_status(&http, &base, &key, &id, &[&example.expect]).await;

    // The dead-letter tooling talks to the same broker: every consumer has its (empty) DLT.
    let listed = Command::new(env!("CARGO_BIN_EXE_receipts"))
        .args(["dlt", "list"])
        .env("RECEIPTS_KAFKA__BOOTSTRAP_SERVERS", kafka.to_string())
        .output()
        .expect("run receipts dlt list");
    let listing = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    for dlt in [
        "validator.receipts.submitted.dlt",
        "tax-registrar.receipts.validated.dlt",
        "logistics-registrar.receipts.validated.dlt",
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(dlt) && l.trim_end().ends_with('0')),
            "{dlt} in {listing}"
        );
    }

    let pid = child.id().expect("pid").to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(status.success(), "clean exit on Ctrl-C: {status}");
    let mut stdout = String::new();
    use tokio::io::AsyncReadExt;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .await
        .expect("read");
    assert!(
        stdout.contains("receipts is up") && stdout.contains(&key),
        "{stdout}"
    );
}

/// `receipts sample` prints fresh, distinct documents that validate (or, with --invalid, do not).
#[test]
fn sample_prints_distinct_documents_of_each_type() {
    let dir = tempfile::tempdir().expect("dir");
    for receipt_type in ["retail-receipt/v1", "retail-receipt-xml/v1"] {
        let parsed = receipts_domain::ReceiptType::lookup(receipt_type).expect("type");
        let now = chrono::Utc::now();
        let first = receipts(dir.path(), &["sample", "--type", receipt_type]);
        let second = receipts(dir.path(), &["sample", "--type", receipt_type]);
        assert!(first.status.success() && second.status.success());
        assert_ne!(
            first.stdout, second.stdout,
            "each call prints a fresh document"
        );
        for output in [&first, &second] {
            assert!(receipts_validation::validate(&parsed, &output.stdout, now).is_ok());
        }
        let invalid = receipts(dir.path(), &["sample", "--type", receipt_type, "--invalid"]);
        let reasons =
            receipts_validation::validate(&parsed, &invalid.stdout, now).expect_err("invalid");
        assert!(reasons.len() >= 2);
    }
    let unknown = receipts(dir.path(), &["sample", "--type", "nope/v1"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown receipt type"));
}

/// `receipts probe` (the containers' healthcheck) succeeds on a 2xx and fails on anything else,
/// whatever configuration the container's service reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_checks_a_url_and_ignores_the_services_configuration() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("validator.toml");
    std::fs::write(&config, "[admin]\nlisten = \"0.0.0.0:9090\"\n").expect("config");
    let receiver = receipts_testkit::receiver::Receiver::ok().await;
    let probe = |url: String| {
        let config = config.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_receipts"))
                .args(["probe", &url, "--timeout", "2s"])
                .env("RECEIPTS_CONFIG", &config)
                .env("RECEIPTS_ADMIN__LISTEN", "0.0.0.0:9090")
                .output()
                .await
                .expect("run receipts probe")
        }
    };
    let up = probe(receiver.url("/livez")).await;
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let down = probe(format!("http://{}/livez", free_addr())).await;
    assert_eq!(down.status.code(), Some(1));
}
