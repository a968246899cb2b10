//! The partner-facing client commands (`receipts submit`, `get`, `list`, …), run as the built
//! binary against a running platform's API.

use std::path::{Path, PathBuf};

use receipts_testkit::receiver::{Receiver, Reply};
use serde_json::Value;

use crate::helpers::*;

/// The `receipts` binary talking to one platform, with a profile file of its own.
struct Cli {
    base: String,
    key: String,
    home: tempfile::TempDir,
}

/// What one run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("JSON on stdout ({e}): {self:?}"))
    }
}

impl Cli {
    fn new(platform: &RunningPlatform) -> Self {
        Self {
            base: platform.base.clone(),
            key: platform.key.clone(),
            home: tempfile::tempdir().expect("dir"),
        }
    }

    fn profiles(&self) -> PathBuf {
        self.home.path().join("profiles.toml")
    }

    /// `receipts ARGS` with `--url` and `RECEIPTS_KEY` (unless `env` sets its own).
    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[("RECEIPTS_KEY", &self.key)], Some(&self.base), None)
            .await
    }

    async fn run_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        url: Option<&str>,
        stdin: Option<&[u8]>,
    ) -> Run {
        use tokio::io::AsyncWriteExt;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_receipts"));
        command.args(args);
        if let Some(url) = url {
            command.args(["--url", url]);
        }
        for name in [
            "RECEIPTS_URL",
            "RECEIPTS_KEY",
            "RECEIPTS_PROFILE",
            "RECEIPTS_CONFIG",
        ] {
            command.env_remove(name);
        }
        command
            .env("RECEIPTS_PROFILES", self.profiles())
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("run receipts");
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.unwrap_or_default())
            .await
            .expect("write stdin");
        drop(input);
        let output = child.wait_with_output().await.expect("wait");
        let run = Run {
            code: output.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        for shown in [&run.stdout, &run.stderr] {
            assert!(
                !shown.contains(&self.key),
                "the API key is never shown: {args:?} {run:?}"
            );
        }
        run
    }
}

fn example(file: &str) -> String {
    examples_dir().join(file).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_watch_get_document_and_list_round_trip() {
    let platform = RunningPlatform::start().await;
    let cli = Cli::new(&platform);
    let (valid, invalid, xml) = (
        example("retail-valid.json"),
        example("retail-invalid-totals.json"),
        example("retail-xml-valid.xml"),
    );

    // No --type: JSON files are retail-receipt/v1, the XML one declares its type by namespace.
    let submitted = cli
        .run(&["submit", &valid, &invalid, &xml, "-o", "json"])
        .await;
    assert_eq!(submitted.code, 0, "{submitted:?}");
    let summary = submitted.json();
    assert_eq!(summary["accepted"], 3, "{summary}");
    let ids: Vec<String> = summary["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        summary["files"][2]["receipt_type"], "retail-receipt-xml/v1",
        "{summary}"
    );

    let accepted = cli
        .run(&["watch", &ids[0], "--interval", "200ms", "--timeout", "90s"])
        .await;
    assert_eq!(accepted.code, 0, "ACCEPTED exits 0: {accepted:?}");
    assert!(
        accepted.stdout.contains("RECEIVED") || accepted.stdout.contains("VALIDATED"),
        "transitions are printed: {accepted:?}"
    );
    assert!(accepted.stdout.contains("ACCEPTED"), "{accepted:?}");
    let rejected = cli
        .run(&["watch", &ids[1], "--interval", "200ms", "--timeout", "90s"])
        .await;
    assert_eq!(rejected.code, 2, "REJECTED exits 2: {rejected:?}");
    assert!(
        rejected.stdout.contains("REJECTED") && rejected.stdout.contains("mismatch"),
        "the reasons are printed: {rejected:?}"
    );
    let xml_watched = cli
        .run(&["watch", &ids[2], "--interval", "200ms", "-o", "json"])
        .await;
    assert_eq!(xml_watched.code, 0, "{xml_watched:?}");
    assert_eq!(xml_watched.json()["receipt_type"], "retail-receipt-xml/v1");

    let got = cli.run(&["get", &ids[0], "--output", "json"]).await;
    assert_eq!(got.code, 0, "{got:?}");
    let receipt = got.json();
    assert_eq!(receipt["status"], "ACCEPTED");
    assert_eq!(receipt["registrations"].as_array().map(Vec::len), Some(2));
    assert!(receipt["links"]["document"].is_string(), "nothing is lost");
    let text = cli.run(&["get", &ids[1]]).await;
    assert!(
        text.stdout.contains("status") && text.stdout.contains("reasons"),
        "{text:?}"
    );

    // The document, byte for byte, on stdout and into a file.
    let document = tokio::process::Command::new(env!("CARGO_BIN_EXE_receipts"))
        .args(["document", &ids[2], "--url", &cli.base])
        .env("RECEIPTS_KEY", &cli.key)
        .env("RECEIPTS_PROFILES", cli.profiles())
        .output()
        .await
        .expect("run");
    assert!(document.status.success());
    assert_eq!(document.stdout, std::fs::read(&xml).expect("example"));
    let out = cli.home.path().join("copy.json");
    let written = cli
        .run(&["document", &ids[0], "--out", &out.display().to_string()])
        .await;
    assert_eq!(written.code, 0, "{written:?}");
    assert_eq!(
        std::fs::read(&out).expect("written"),
        std::fs::read(&valid).expect("example")
    );

    // The same file again replays its receipt instead of creating a second one.
    let again = cli.run(&["submit", &valid]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.starts_with("replayed") && again.stdout.contains(&ids[0]),
        "{again:?}"
    );
    assert!(again.stderr.contains("1 replayed"), "{again:?}");

    // Every page, as NDJSON and CSV: each receipt once.
    let ndjson = cli
        .run(&[
            "list", "--all", "--limit", "1", "--order", "asc", "-o", "ndjson",
        ])
        .await;
    assert_eq!(ndjson.code, 0, "{ndjson:?}");
    let listed: Vec<String> = ndjson
        .stdout
        .lines()
        .map(|l| {
            let item: Value = serde_json::from_str(l).expect("a JSON line");
            item["id"].as_str().expect("id").to_owned()
        })
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "oldest first (ids are UUIDv7)");
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected, "each receipt once, across pages");
    let csv = cli
        .run(&["list", "--all", "--status", "rejected", "-o", "csv"])
        .await;
    assert_eq!(csv.code, 0, "{csv:?}");
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines[0], "id,status,type,received_at,updated_at");
    assert_eq!(lines.len(), 2, "{csv:?}");
    assert!(lines[1].starts_with(&format!("{},REJECTED,", ids[1])));
    let first_page = cli.run(&["list", "--limit", "1"]).await;
    assert!(first_page.stderr.contains("--all"), "{first_page:?}");
    assert_eq!(first_page.stdout.lines().count(), 2, "{first_page:?}");

    let deliveries = cli.run(&["deliveries", &ids[0], "-o", "json"]).await;
    assert_eq!(deliveries.code, 0, "{deliveries:?}");
    assert!(deliveries.json().is_array());
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_exit_codes_keys_and_profiles() {
    let platform = RunningPlatform::start().await;
    let cli = Cli::new(&platform);
    let missing = "01a1fdb0-466b-7339-a3c0-b494a01de95d";

    // A wrong key: the problem's title and detail, exit 5, the key never echoed.
    let wrong = "rk_not-a-key-of-this-platform";
    let refused = cli
        .run_with(
            &["get", missing],
            &[("RECEIPTS_KEY", wrong)],
            Some(&cli.base),
            None,
        )
        .await;
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(
        refused.stderr.contains("Authentication required")
            && refused.stderr.contains("missing or invalid credentials"),
        "{refused:?}"
    );
    assert!(!refused.stderr.contains(wrong) && !refused.stdout.contains(wrong));
    let submit = cli
        .run_with(
            &[
                "submit",
                &example("retail-valid.json"),
                &example("retail-invalid-totals.json"),
            ],
            &[("RECEIPTS_KEY", wrong)],
            Some(&cli.base),
            None,
        )
        .await;
    assert_eq!(submit.code, 5, "{submit:?}");
    let no_key = cli.run_with(&["list"], &[], Some(&cli.base), None).await;
    assert_eq!(no_key.code, 5, "{no_key:?}");

    let not_found = cli.run(&["get", missing]).await;
    assert_eq!(not_found.code, 5, "{not_found:?}");
    assert!(
        not_found.stderr.contains("Receipt not found"),
        "{not_found:?}"
    );
    let unreachable = cli
        .run_with(
            &["get", missing],
            &[("RECEIPTS_KEY", &cli.key)],
            Some(&format!("http://{}", receipts_testkit::free_addr())),
            None,
        )
        .await;
    assert_eq!(unreachable.code, 6, "{unreachable:?}");
    let usage = cli.run(&["list", "--status", "DONE"]).await;
    assert_eq!(usage.code, 1, "{usage:?}");

    // A refused document is reported with the problem, exit 2.
    let bad = cli.home.path().join("bad.json");
    std::fs::write(&bad, b"{not json").expect("write");
    let refused = cli.run(&["submit", &bad.display().to_string()]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stdout.starts_with("refused") && refused.stdout.contains("Malformed JSON"),
        "{refused:?}"
    );

    // A profile set from standard input, then used alone: no --url, no RECEIPTS_KEY.
    let set = cli
        .run_with(
            &["profile", "set", "local", "--url", &cli.base, "--key-stdin"],
            &[],
            None,
            Some(format!("{}\n", cli.key).as_bytes()),
        )
        .await;
    assert_eq!(set.code, 0, "{set:?}");
    assert_mode(&cli.profiles(), 0o600);
    let types = cli
        .run_with(
            &["types", "list", "--profile", "local", "-o", "json"],
            &[],
            None,
            None,
        )
        .await;
    assert_eq!(types.code, 0, "{types:?}");
    let listed = cli.run_with(&["profile", "list"], &[], None, None).await;
    assert!(
        listed.stdout.contains("local") && listed.stdout.contains("set"),
        "{listed:?}"
    );
    let unknown = cli
        .run_with(&["list", "--profile", "staging"], &[], None, None)
        .await;
    assert_eq!(unknown.code, 1, "{unknown:?}");

    // A profile file others may read is refused while it holds a key.
    set_mode(&cli.profiles(), 0o644);
    let shared = cli
        .run_with(&["list", "--profile", "local"], &[], None, None)
        .await;
    assert_eq!(shared.code, 1, "{shared:?}");
    assert!(shared.stderr.contains("chmod 600"), "{shared:?}");
    platform.stop().await;
}

#[cfg(unix)]
fn assert_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let actual = std::fs::metadata(path).expect("file").permissions().mode() & 0o777;
    assert_eq!(actual, mode, "{}", path.display());
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_types_completions_and_help() {
    let platform = RunningPlatform::start().await;
    let cli = Cli::new(&platform);

    let created = cli
        .run(&[
            "endpoints",
            "create",
            "https://hooks.example.com/receipts",
            "--event",
            "receipt.accepted,receipt.failed",
            "--description",
            "ERP",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(created.code, 0, "{created:?}");
    let endpoint = created.json();
    let id = endpoint["id"].as_str().expect("id").to_owned();
    let secret = endpoint["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        endpoint["events"],
        serde_json::json!(["receipt.accepted", "receipt.failed"])
    );

    let listed = cli.run(&["endpoints", "list", "-o", "json"]).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    assert_eq!(listed.json()[0]["id"], id.as_str());
    assert!(!listed.stdout.contains(&secret), "lists never show secrets");
    let table = cli.run(&["endpoints", "list"]).await;
    assert!(
        table.stdout.contains(&id) && table.stdout.contains("ERP"),
        "{table:?}"
    );

    let updated = cli
        .run(&[
            "endpoints",
            "update",
            &id,
            "--disable",
            "--all-events",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(updated.code, 0, "{updated:?}");
    assert_eq!(updated.json()["enabled"], false);
    assert!(updated.json()["events"].is_null());
    let nothing = cli.run(&["endpoints", "update", &id]).await;
    assert_eq!(nothing.code, 1, "{nothing:?}");

    let rotated = cli
        .run(&["endpoints", "rotate-secret", &id, "-o", "json"])
        .await;
    assert_eq!(rotated.code, 0, "{rotated:?}");
    let new_secret = rotated.json()["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);

    let deleted = cli.run(&["endpoints", "delete", &id]).await;
    assert_eq!(deleted.code, 0, "{deleted:?}");
    let gone = cli.run(&["endpoints", "show", &id]).await;
    assert_eq!(gone.code, 5, "{gone:?}");
    assert!(
        gone.stderr.contains("Webhook endpoint not found"),
        "{gone:?}"
    );
    let local = cli
        .run(&["endpoints", "create", "http://10.0.0.1/hooks"])
        .await;
    assert_eq!(
        local.code, 5,
        "a refused address is the API's problem: {local:?}"
    );

    // `endpoints test`: one signed message, now, to a receiver on this machine (the platform's
    // policy allows loopback); exit 0 when delivered, 2 when not.
    let receiver = Receiver::ok().await;
    let hook = cli
        .run(&["endpoints", "create", &receiver.url("/hooks"), "-o", "json"])
        .await;
    assert_eq!(hook.code, 0, "{hook:?}");
    let hook = hook.json();
    let hook_id = hook["id"].as_str().expect("id").to_owned();
    let tested = cli.run(&["endpoints", "test", &hook_id]).await;
    assert_eq!(tested.code, 0, "{tested:?}");
    assert!(
        tested.stdout.starts_with("delivered (HTTP 200 in "),
        "{tested:?}"
    );
    let received = receiver.requests();
    assert_eq!(received.len(), 1, "one message");
    assert_eq!(received[0].json()["type"], "webhook.test");
    assert_eq!(received[0].json()["data"]["endpoint_id"], hook_id.as_str());
    standardwebhooks::Webhook::new(hook["secret"].as_str().expect("secret"))
        .expect("a whsec_ secret")
        .verify(&received[0].body, &received[0].headers)
        .expect("signed with the endpoint's secret");
    let failing = Receiver::start(|_| Reply::Status(500)).await;
    let moved = cli
        .run(&[
            "endpoints",
            "update",
            &hook_id,
            "--endpoint-url",
            &failing.url("/hooks"),
        ])
        .await;
    assert_eq!(moved.code, 0, "{moved:?}");
    let not_delivered = cli
        .run(&["endpoints", "test", &hook_id, "-o", "json"])
        .await;
    assert_eq!(not_delivered.code, 2, "{not_delivered:?}");
    assert_eq!(not_delivered.json()["delivered"], false);
    assert_eq!(not_delivered.json()["http_status"], 500);
    let text = cli.run(&["endpoints", "test", &hook_id]).await;
    assert_eq!(text.code, 2, "{text:?}");
    assert!(text.stdout.contains("not delivered: HTTP 500"), "{text:?}");
    assert_eq!(failing.count(), 2, "one message per test, never retried");
    let deleted_one = cli.run(&["endpoints", "test", &id]).await;
    assert_eq!(deleted_one.code, 5, "{deleted_one:?}");

    let types = cli.run(&["types", "list", "-o", "json"]).await;
    assert_eq!(types.code, 0, "{types:?}");
    let listed = types.json();
    assert!(
        listed
            .as_array()
            .expect("types")
            .iter()
            .any(|t| t["id"] == "retail-receipt/v1"),
        "{types:?}"
    );
    let shown = cli
        .run(&["types", "show", "retail-receipt/v1", "-o", "json"])
        .await;
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(shown.json()["schema"].is_object());
    assert_eq!(
        shown.json()["aliases"][0]["id"],
        "retail-receipt-xml/v1",
        "{shown:?}"
    );
    let text = cli.run(&["types", "show", "retail-receipt/v1"]).await;
    assert!(text.stdout.contains("schema"), "{text:?}");
    let unknown = cli.run(&["types", "show", "nope/v1"]).await;
    assert_eq!(unknown.code, 5, "{unknown:?}");
    let offline = cli
        .run_with(
            &[
                "types",
                "list",
                "--dir",
                &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../receipt-types")
                    .display()
                    .to_string(),
            ],
            &[],
            None,
            None,
        )
        .await;
    assert_eq!(offline.code, 0, "{offline:?}");
    assert!(offline.stdout.contains("restaurant-bill/v1"), "{offline:?}");

    let completions = cli
        .run_with(&["completions", "bash"], &[], None, None)
        .await;
    assert_eq!(completions.code, 0);
    assert!(
        completions.stdout.contains("complete -F") && completions.stdout.contains("submit"),
        "a bash completion script"
    );
    for command in [
        vec!["submit", "--help"],
        vec!["list", "--help"],
        vec!["watch", "--help"],
        vec!["endpoints", "create", "--help"],
        vec!["endpoints", "test", "--help"],
        vec!["types", "show", "--help"],
    ] {
        let help = cli
            .run_with(&command, &[("RECEIPTS_KEY", &cli.key)], None, None)
            .await;
        assert_eq!(help.code, 0, "{help:?}");
        assert!(help.stdout.contains("Examples:"), "{command:?}: {help:?}");
    }
    platform.stop().await;
}
