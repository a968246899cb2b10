//! Receipt types as configuration on a running platform: a type directory added while it runs
//! is picked up and its receipts go end to end (validated by its rules, registered, ACCEPTED or
//! REJECTED with its reasons); a broken directory is refused while the loaded set keeps serving.

use std::path::Path;
use std::time::Duration;

use receipts_testkit::eventually;

use crate::helpers::*;

const MANIFEST: &str = r#"
name = "parking-ticket"
version = "v1"
description = "A car park's ticket"
formats = ["json"]
"#;

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["receipt_number", "issued_at", "seller", "currency", "zone", "lines", "totals"],
  "properties": {
    "receipt_number": {"type": "string"},
    "issued_at": {"type": "string", "format": "date-time"},
    "seller": {"type": "object", "required": ["tax_id"], "properties": {"tax_id": {"type": "string"}}},
    "currency": {"type": "string"},
    "zone": {"type": "string"},
    "lines": {"type": "array", "items": {"type": "object", "required": ["description", "quantity", "unit_price", "vat_rate", "net_amount", "vat_amount", "gross_amount"],
      "properties": {"description": {"type": "string"}, "quantity": {"type": "string"}, "unit_price": {"type": "string"}, "vat_rate": {"type": "string"},
                     "net_amount": {"type": "string"}, "vat_amount": {"type": "string"}, "gross_amount": {"type": "string"}}}},
    "totals": {"type": "object", "required": ["net_amount", "vat_amount", "gross_amount"],
      "properties": {"net_amount": {"type": "string"}, "vat_amount": {"type": "string"}, "gross_amount": {"type": "string"}}}
  }
}"#;

const RULES: &str = r#"
[[rule]]
id = "zone-unknown"
expr = "receipt.zone in ['A', 'B']"
message = "zone ${receipt.zone} is not a zone of this car park"
pointer = "/zone"

[[rule]]
id = "gross-mismatch"
expr = "decimal(receipt.totals.net_amount) + decimal(receipt.totals.vat_amount) == decimal(receipt.totals.gross_amount)"
message = "net plus VAT is ${decimal(receipt.totals.net_amount) + decimal(receipt.totals.vat_amount)}"
pointer = "/totals/gross_amount"
"#;

const EXAMPLES: &str = r#"
[[example]]
file = "valid.json"
"#;

fn ticket(number: &str, zone: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "receipt_number": number,
        "issued_at": "2026-11-14T08:00:00+01:00",
        "seller": {"tax_id": "DE136695976"},
        "currency": "EUR",
        "zone": zone,
        "lines": [{"description": "2 hours", "quantity": "2", "unit_price": "2.00", "vat_rate": "19",
                   "net_amount": "4.00", "vat_amount": "0.76", "gross_amount": "4.76"}],
        "totals": {"net_amount": "4.00", "vat_amount": "0.76", "gross_amount": "4.76"}
    }))
    .expect("json")
}

fn write_type(dir: &Path, rules: &str) {
    std::fs::create_dir_all(dir.join("examples")).expect("dirs");
    std::fs::write(dir.join("schema.json"), SCHEMA).expect("schema");
    std::fs::write(dir.join("rules.toml"), rules).expect("rules");
    std::fs::write(dir.join("examples/examples.toml"), EXAMPLES).expect("examples");
    std::fs::write(dir.join("examples/valid.json"), ticket("P-1", "A")).expect("example");
    // The manifest last: a directory without one is not a type yet.
    std::fs::write(dir.join("type.toml"), MANIFEST).expect("manifest");
}

async fn submit_ticket(platform: &RunningPlatform, key: &str, body: Vec<u8>) -> reqwest::Response {
    submit_as(platform, "parking-ticket/v1", key, body).await
}

async fn submit_as(
    platform: &RunningPlatform,
    receipt_type: &str,
    key: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    platform
        .http
        .post(format!("{}/v1/receipts", platform.base))
        .bearer_auth(&platform.key)
        .header("Content-Type", "application/json")
        .header("Receipt-Type", receipt_type)
        .header("Idempotency-Key", key)
        .body(body)
        .send()
        .await
        .expect("submit")
}

/// The receipt `id` once it is terminal.
async fn terminal(platform: &RunningPlatform, id: &str) -> serde_json::Value {
    let statuses = ["ACCEPTED", "REJECTED", "FAILED"];
    wait_for_status(&platform.http, &platform.base, &platform.key, id, &statuses).await
}

async fn accepted_id(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 202);
    response.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_added_to_a_running_platform_serves_and_a_broken_one_is_refused() {
    let types = tempfile::tempdir().expect("types dir");
    let platform = RunningPlatform::start_with(|config| {
        config.receipt_types.dir = Some(types.path().to_owned());
        config.receipt_types.reload_interval = Duration::from_millis(100);
    })
    .await;

    // Not there yet: a 400 problem naming the known types.
    let response = submit_ticket(&platform, "before", ticket("P-0", "A")).await;
    assert_eq!(response.status(), 400);
    let problem: serde_json::Value = response.json().await.expect("problem");
    assert_eq!(
        problem["type"]
            .as_str()
            .map(|t| t.ends_with("unknown-receipt-type")),
        Some(true),
        "{problem}"
    );

    let type_dir = types.path().join("parking-ticket/v1");
    write_type(&type_dir, RULES);
    let listed = eventually("the new type is listed", WAIT, || async {
        let list: serde_json::Value = platform
            .http
            .get(format!("{}/v1/receipt-types", platform.base))
            .bearer_auth(&platform.key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let ids: Vec<String> = list["receipt_types"]
            .as_array()?
            .iter()
            .filter_map(|t| t["id"].as_str().map(str::to_owned))
            .collect();
        ids.contains(&"parking-ticket/v1".to_owned()).then_some(ids)
    })
    .await;
    assert!(listed.contains(&"parking-ticket/v1".to_owned()));

    let valid = accepted_id(submit_ticket(&platform, "valid", ticket("P-1", "A")).await).await;
    let invalid = accepted_id(submit_ticket(&platform, "invalid", ticket("P-2", "Z")).await).await;
    let receipt = terminal(&platform, &valid).await;
    assert_eq!(receipt["status"], "ACCEPTED", "{receipt}");
    assert_eq!(receipt["receipt_type"], "parking-ticket/v1", "{receipt}");
    let receipt = terminal(&platform, &invalid).await;
    assert_eq!(receipt["status"], "REJECTED", "{receipt}");
    assert_eq!(receipt["reasons"][0]["code"], "zone-unknown", "{receipt}");
    assert_eq!(receipt["reasons"][0]["path"], "/zone", "{receipt}");
    assert_eq!(
        receipt["reasons"][0]["message"], "zone Z is not a zone of this car park",
        "{receipt}"
    );

    // Broken: a rule that does not compile, and a new type without a schema. Both are refused
    // (the reload counter says so) and the loaded version keeps serving.
    std::fs::write(
        type_dir.join("rules.toml"),
        "[[rule]]\nid = \"x\"\nexpr = \"1 +\"\nmessage = \"m\"\npointer = \"/zone\"\n",
    )
    .expect("break");
    let broken = types.path().join("broken/v1");
    std::fs::create_dir_all(&broken).expect("dir");
    std::fs::write(
        broken.join("type.toml"),
        MANIFEST.replace("parking-ticket", "broken"),
    )
    .expect("manifest");
    eventually("the broken directory is refused", WAIT, || async {
        let metrics = platform
            .http
            .get(format!("{}/metrics", platform.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics
            .contains("receipts_receipt_types_reloads_total{outcome=\"refused\"}")
            .then_some(())
    })
    .await;
    let still =
        accepted_id(submit_ticket(&platform, "after-break", ticket("P-3", "B")).await).await;
    let receipt = terminal(&platform, &still).await;
    assert_eq!(
        receipt["status"], "ACCEPTED",
        "the previous version still validates: {receipt}"
    );
    let response = submit_as(&platform, "broken/v1", "broken", ticket("P-4", "A")).await;
    assert_eq!(response.status(), 400, "a refused type is not accepted");

    // A deprecated version still works, and says until when.
    let old = types.path().join("parking-ticket/v0");
    write_type(&old, RULES);
    let deprecated = MANIFEST.replace("\"v1\"", "\"v0\"")
        + "status = \"deprecated\"\ndeprecated_since = \"2026-06-01\"\nsunset = \"2027-06-30\"\n";
    std::fs::write(old.join("type.toml"), deprecated).expect("manifest");
    let response = eventually("the deprecated version is loaded", WAIT, || async {
        let response = submit_as(
            &platform,
            "parking-ticket/v0",
            "deprecated",
            ticket("P-5", "A"),
        )
        .await;
        (response.status() == 202).then_some(response)
    })
    .await;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("deprecation").as_deref(), Some("@1780272000"));
    assert_eq!(
        header("sunset").as_deref(),
        Some("Wed, 30 Jun 2027 00:00:00 GMT")
    );
    let id = accepted_id(response).await;
    let receipt = terminal(&platform, &id).await;
    assert_eq!(receipt["status"], "ACCEPTED", "{receipt}");
    assert_eq!(
        receipt["receipt_type"], "parking-ticket/v0",
        "recorded with its exact version"
    );

    // The type's own schema is served.
    let detail: serde_json::Value = platform
        .http
        .get(format!(
            "{}/v1/receipt-types/parking-ticket/v1",
            platform.base
        ))
        .bearer_auth(&platform.key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(detail["schema"]["required"][4], "zone", "{detail}");
    platform.stop().await;
}

/// Every shipped type, in every format it accepts, end to end: a valid sample ends ACCEPTED
/// (validated, registered with both registries), an invalid one REJECTED with the reasons its
/// rules give; the typed core is what the registries and the status see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_type_goes_end_to_end() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../receipt-types");
    let (types, errors) = receipts_validation::types::TypeSet::load(&dir, None);
    assert!(errors.is_empty(), "{errors:?}");
    let platform = RunningPlatform::start_with(|config| {
        config.receipt_types.dir = Some(dir.clone());
    })
    .await;
    let mut submitted = Vec::new();
    for (n, (receipt_type, format)) in types.submission_kinds().into_iter().enumerate() {
        for valid in [true, false] {
            let body = types
                .sample(&receipt_type, format, valid, n as u64)
                .expect("sample");
            let id = submit(
                &platform.http,
                &platform.base,
                &platform.key,
                format.media_type(),
                &receipt_type,
                &format!("{receipt_type}-{format}-{valid}"),
                body,
            )
            .await;
            submitted.push((receipt_type.clone(), format, valid, id));
        }
    }
    assert!(submitted.len() >= 10, "{submitted:?}");
    for (receipt_type, format, valid, id) in submitted {
        let receipt = terminal(&platform, &id).await;
        let what = format!("{receipt_type} {format} valid={valid}: {receipt}");
        assert_eq!(receipt["receipt_type"], receipt_type.as_str(), "{what}");
        if valid {
            assert_eq!(receipt["status"], "ACCEPTED", "{what}");
            assert!(receipt["receipt"]["seller"]["tax_id"].is_string(), "{what}");
            assert_eq!(
                receipt["registrations"].as_array().map(Vec::len),
                Some(2),
                "{what}"
            );
        } else {
            assert_eq!(receipt["status"], "REJECTED", "{what}");
            let reasons = receipt["reasons"].as_array().expect("reasons");
            assert!(!reasons.is_empty(), "{what}");
            for reason in reasons {
                assert!(
                    reason["code"].is_string() && reason["path"].is_string(),
                    "{what}"
                );
            }
        }
    }
    platform.stop().await;
}
