use crate::helpers::*;

/// Every example in the manifest ends in the status it promises; rejections carry reasons with
/// field paths. Table-driven, so a new example is tested by adding it to the manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_ends_in_its_expected_status() {
    let platform = RunningPlatform::start().await;
    let examples = manifest();
    assert!(
        examples.len() >= 4,
        "valid and invalid examples of both types"
    );
    let mut submitted = Vec::new();
    for example in &examples {
        let body = std::fs::read(examples_dir().join(&example.file)).expect("example file");
        let id = submit(
            &platform.http,
            &platform.base,
            &platform.key,
            &example.content_type,
            &example.receipt_type,
            &format!("example-{}", example.file),
            body,
        )
        .await;
        submitted.push((example, id));
    }
    for (example, id) in submitted {
        let receipt = wait_for_status(
            &platform.http,
            &platform.base,
            &platform.key,
            &id,
            &["ACCEPTED", "REJECTED", "FAILED"],
        )
        .await;
        assert_eq!(
            receipt["status"],
            example.expect.as_str(),
            "{}",
            example.file
        );
        let reasons = receipt["reasons"].as_array().expect("reasons");
        if example.expect == "REJECTED" {
            assert!(!reasons.is_empty(), "{} has reasons", example.file);
            for reason in reasons {
                assert!(
                    reason["path"].is_string()
                        && reason["code"].is_string()
                        && reason["message"].is_string()
                );
            }
            assert!(receipt["receipt"].is_null());
        } else {
            assert!(reasons.is_empty());
            assert!(
                receipt["receipt"]["totals"]["gross_amount"].is_string(),
                "normalized receipt attached"
            );
            let registrations = receipt["registrations"].as_array().expect("registrations");
            let ids: Vec<(&str, &str)> = registrations
                .iter()
                .filter_map(|r| Some((r["registry"].as_str()?, r["registration_id"].as_str()?)))
                .collect();
            assert_eq!(ids.len(), 2, "{}: {registrations:?}", example.file);
            assert!(
                ids.iter()
                    .any(|(r, id)| *r == "tax" && id.starts_with("TX-")),
                "a fiscal number"
            );
            assert!(
                ids.iter()
                    .any(|(r, id)| *r == "logistics" && id.starts_with("LG-")),
                "a logistics id"
            );
        }
        let events: Vec<&str> = receipt["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .filter_map(|t| t["event"].as_str())
            .collect();
        let expected = if example.expect == "REJECTED" { 2 } else { 4 };
        assert_eq!(events.len(), expected, "{}: {events:?}", example.file);
        assert!(events.contains(&"submitted"));
    }
    platform.stop().await;
}
