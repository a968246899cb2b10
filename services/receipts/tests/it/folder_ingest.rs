//! Watched-folder ingest against the whole platform: every format in one folder with refused
//! records, a file dropped again, and `receipts ingest-folder` killed with SIGKILL in the middle
//! of a large file then restarted: every record ends registered exactly once.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use folder_ingest::progress::{Outcome, Silent};
use folder_ingest::{IngestConfig, Mode, ingest_folder};
use receipts_domain::Secret;
use receipts_testkit::eventually;
use serde_json::Value;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// A valid retail receipt, on one line.
fn retail(seed: u64) -> String {
    let t = receipts_domain::ReceiptType::lookup("retail-receipt/v1").expect("type");
    let document = receipts_validation::sample::generate(&t, true, seed);
    let value: Value = serde_json::from_slice(&document).expect("a JSON sample");
    value.to_string()
}

/// An invalid one (validation REJECTS it).
fn retail_invalid(seed: u64) -> String {
    let t = receipts_domain::ReceiptType::lookup("retail-receipt/v1").expect("type");
    let document = receipts_validation::sample::generate(&t, false, seed);
    let value: Value = serde_json::from_slice(&document).expect("a JSON sample");
    value.to_string()
}

const CSV: &str = "\
receipt_number,issued_at,currency,seller_tax_id,seller_name,description,quantity,unit_price,vat_rate,net_amount,vat_amount,gross_amount,total_net_amount,total_vat_amount,total_gross_amount,payment_method,payment_amount
CSV-1,2026-11-14T08:12:31+01:00,EUR,DE136695976,Bäckerei Beispiel GmbH,Roggenbrot,1,3.50,7,3.50,0.25,3.75,8.30,0.59,8.89,card,8.89
CSV-1,,,,,Croissant,4,1.20,7,4.80,0.34,5.14,,,,,
CSV-2,2026-11-14T09:00:00+01:00,EUR,DE136695976,,Roggenbrot,1,3.50,7,3.50,0.25,3.75,3.50,0.25,3.75,,
CSV-3,2026-11-14T09:10:00+01:00,EUR,DE136695976,,Roggenbrot,1,3.50,7,3.50,0.25,3.75,3.50,0.25,3.75,,
CSV-3,2026-11-14T09:10:00+01:00,USD,DE136695976,,Roggenbrot,1,3.50,7,3.50,0.25,3.75,,,,,
";

fn config(platform: &RunningPlatform, dir: &Path) -> IngestConfig {
    IngestConfig {
        dir: dir.to_path_buf(),
        gateway_url: platform.base.parse().expect("url"),
        api_key: Some(Secret::new(platform.key.clone())),
        quiet_period: Duration::from_millis(100),
        batch_size: 2,
        wait: true,
        wait_timeout: WAIT,
        ..IngestConfig::default()
    }
}

fn report(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// Every receipt of the platform's dev tenant, by status.
async fn receipts(platform: &RunningPlatform) -> Vec<(String, String)> {
    let response = platform
        .http
        .get(format!("{}/v1/receipts?limit=10000", platform.base))
        .bearer_auth(&platform.key)
        .send()
        .await
        .expect("list");
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.expect("json");
    assert!(page["next_cursor"].is_null(), "one page");
    page["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_owned(),
                r["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_takes_every_format_reports_refusals_and_a_file_dropped_again_changes_nothing() {
    let platform = RunningPlatform::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let path = |name: &str| dir.path().join(name);
    let ndjson = format!(
        "{}\n\n{}\n{{\"not\": \"closed\"\n{}\n",
        retail(1),
        retail(2),
        retail_invalid(3)
    );
    std::fs::write(path("day.ndjson"), &ndjson).expect("write");
    let pretty = |seed| {
        let value: Value = serde_json::from_str(&retail(seed)).expect("json");
        serde_json::to_string_pretty(&value).expect("json")
    };
    std::fs::write(
        path("batch.json"),
        format!("[\n{},\n{}\n]\n", pretty(4), pretty(5)),
    )
    .expect("write");
    std::fs::write(path("shop.csv"), CSV).expect("write");
    std::fs::copy(
        examples_dir().join("retail-xml-valid.xml"),
        path("receipt.xml"),
    )
    .expect("copy");
    std::fs::write(path("broken.json"), "[{\"a\": 1},\n").expect("write");
    std::fs::write(path("notes.txt"), "not mine").expect("write");
    std::fs::write(path("coming.ndjson.tmp"), retail(6)).expect("write");

    let summary = ingest_folder(
        config(&platform, dir.path()),
        Arc::new(Silent),
        Mode::Once,
        CancellationToken::new(),
    )
    .await
    .expect("ingested");
    assert!(summary.complete(), "{summary:?}");
    let by_name = |name: &str| {
        summary
            .files
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} in {summary:?}"))
            .clone()
    };
    assert_eq!(summary.files.len(), 5, "{summary:?}");

    // NDJSON: 4 records; the unclosed one refused by the gateway, the invalid one REJECTED.
    let day = by_name("day.ndjson");
    assert_eq!((day.records, day.accepted, day.replayed), (4, 3, 0));
    assert_eq!(day.refused, 2, "{day:?}");
    let lines = report(&path("rejected/day.ndjson.report.ndjson"));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (lines[0]["record"].as_u64(), lines[0]["line"].as_u64()),
        (Some(3), Some(4))
    );
    assert_eq!(lines[0]["refused_by"], "gateway");
    assert_eq!(lines[0]["status"], 400);
    assert!(
        lines[0]["problem"]["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("malformed-json")),
        "{lines:?}"
    );
    assert!(
        lines[0]["idempotency_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("folder:") && k.ends_with(":3"))
    );
    assert_eq!(lines[1]["record"], 4);
    assert_eq!(lines[1]["refused_by"], "validation");
    assert_eq!(lines[1]["receipt_status"], "REJECTED");
    assert!(
        !lines[1]["reasons"].as_array().expect("reasons").is_empty(),
        "{lines:?}"
    );

    let json = by_name("batch.json");
    assert_eq!((json.records, json.accepted, json.refused), (2, 2, 0));
    assert_eq!(json.report, None);

    // CSV: three receipts; the one whose rows disagree on the currency is never sent.
    let csv = by_name("shop.csv");
    assert_eq!(
        (csv.records, csv.accepted, csv.refused),
        (3, 2, 1),
        "{csv:?}"
    );
    let lines = report(&path("rejected/shop.csv.report.ndjson"));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["record"], 3);
    assert_eq!(lines[0]["line"], 5);
    assert_eq!(lines[0]["refused_by"], "reader");
    assert!(
        lines[0]["detail"]
            .as_str()
            .expect("detail")
            .contains("currency")
    );

    let xml = by_name("receipt.xml");
    assert_eq!((xml.records, xml.accepted, xml.refused), (1, 1, 0));

    // A broken file is refused whole, with a report; nothing of it is sent.
    let broken = by_name("broken.json");
    assert!(
        matches!(broken.outcome, Outcome::Refused { .. }),
        "{broken:?}"
    );
    assert!(path("rejected/broken.json").exists());
    let lines = report(&path("rejected/broken.json.report.ndjson"));
    assert!(
        lines[0]["detail"]
            .as_str()
            .expect("detail")
            .contains("ends inside")
    );

    for name in ["day.ndjson", "batch.json", "shop.csv", "receipt.xml"] {
        assert!(path(&format!("done/{name}")).exists(), "{name} in done/");
        assert!(!path(name).exists(), "{name} moved");
    }
    assert!(path("notes.txt").exists() && path("coming.ndjson.tmp").exists());
    let work: Vec<_> = std::fs::read_dir(path(".receipts-ingest"))
        .expect("work dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != "lock")
        .collect();
    assert!(work.is_empty(), "no work file left: {work:?}");

    // 8 receipts: the REJECTED one and 7 ACCEPTED (--wait waited for terminal statuses).
    let listed = eventually("every receipt listed", WAIT, || async {
        let listed = receipts(&platform).await;
        (listed.len() == 8).then_some(listed)
    })
    .await;
    let accepted = listed.iter().filter(|(_, s)| s == "ACCEPTED").count();
    let rejected = listed.iter().filter(|(_, s)| s == "REJECTED").count();
    assert_eq!((accepted, rejected), (7, 1), "{listed:?}");

    // The same NDJSON file again, renamed: every record replays, nothing new is recorded.
    std::fs::copy(path("done/day.ndjson"), path("day-again.ndjson")).expect("copy");
    let again = ingest_folder(
        config(&platform, dir.path()),
        Arc::new(Silent),
        Mode::Once,
        CancellationToken::new(),
    )
    .await
    .expect("ingested again");
    let day_again = &again.files[0];
    assert_eq!(
        (day_again.accepted, day_again.replayed, day_again.refused),
        (0, 3, 2),
        "{day_again:?}"
    );
    assert!(path("done/day-again.ndjson").exists());
    assert_eq!(receipts(&platform).await.len(), 8, "nothing recorded twice");
    platform.stop().await;
}

/// The checkpoint's progress in `dir`, if a file is under way.
fn checkpoint_done(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir.join(".receipts-ingest"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".checkpoint"))
        .find_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            serde_json::from_str::<Value>(&text).ok()?["done"].as_u64()
        })
}

fn ingest_command(platform: &RunningPlatform, dir: &Path, log: &str) -> Command {
    let log = std::fs::File::create(dir.with_extension(log)).expect("log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_receipts"));
    command
        .args(["ingest-folder", "--once", "--no-progress"])
        .args([
            "--rate",
            "500",
            "--batch-size",
            "50",
            "--quiet-period",
            "0s",
        ])
        .arg("--url")
        .arg(&platform.base)
        .arg(dir)
        .env("RECEIPTS_KEY", &platform.key)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_a_file_then_a_restart_registers_every_record_exactly_once() {
    const RECORDS: u64 = 2_000;
    let platform = RunningPlatform::start().await;
    let scratch = tempfile::tempdir().expect("dir");
    let dir = scratch.path().join("inbox");
    std::fs::create_dir(&dir).expect("inbox");
    let lines: Vec<String> = (0..RECORDS).map(|n| retail(50_000 + n)).collect();
    std::fs::write(dir.join("big.ndjson"), lines.join("\n") + "\n").expect("write");

    // Killed once the checkpoint shows progress, mid-file.
    let mut first = ingest_command(&platform, &dir, "first.log")
        .spawn()
        .expect("start");
    let done = eventually("the checkpoint to pass record 500", WAIT, || async {
        checkpoint_done(&dir).filter(|done| *done >= 500)
    })
    .await;
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("killed");
    let after_kill = checkpoint_done(&dir).expect("a checkpoint");
    assert!(
        after_kill >= done && after_kill < RECORDS,
        "killed mid-file: {after_kill} of {RECORDS}"
    );
    assert!(dir.join("big.ndjson").exists(), "the file is still there");

    // Restarted: it resumes from the checkpoint and finishes.
    let second = ingest_command(&platform, &dir, "second.log")
        .output()
        .await
        .expect("second run");
    let stdout = String::from_utf8_lossy(&second.stdout);
    eprintln!("killed at record {after_kill}; the second run: {stdout}");
    assert!(second.status.success(), "{stdout}");
    assert!(stdout.contains("resumed after record"), "{stdout}");
    assert!(dir.join("done/big.ndjson").exists(), "{stdout}");
    assert!(
        !dir.join("rejected/big.ndjson.report.ndjson").exists(),
        "{stdout}"
    );
    assert_eq!(checkpoint_done(&dir), None, "the checkpoint is gone");

    // Every record is one receipt, ACCEPTED, registered once with each registry.
    let listed = eventually(
        "every record ACCEPTED",
        Duration::from_secs(600),
        || async {
            let listed = receipts(&platform).await;
            let accepted = listed.iter().filter(|(_, s)| s == "ACCEPTED").count();
            (accepted as u64 == RECORDS).then_some(listed)
        },
    )
    .await;
    assert_eq!(listed.len() as u64, RECORDS, "one receipt per record");
    for registry in ["tax", "logistics"] {
        let stats = platform.admin(registry, "/admin/stats").await;
        let registrations = stats["registrations"].as_object().expect("registrations");
        assert_eq!(registrations.len() as u64, RECORDS, "{registry}");
        for (id, _) in &listed {
            assert_eq!(registrations[id], 1, "{registry}: {id} registered once");
        }
    }
    platform.stop().await;
}
