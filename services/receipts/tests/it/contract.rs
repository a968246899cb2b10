//! Contract fuzzing: schemathesis (from PyPI) generates requests from the served OpenAPI
//! document against the running platform, once with a read-write key and once with a read key,
//! and checks every response: no 5xx, statuses, content types, headers and bodies as documented,
//! invalid input refused, authentication enforced (`tests/contract/schemathesis.toml` names the
//! two checks left out, and why). Bounded: a fixed number of examples per operation and seed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::helpers::RunningPlatform;

const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// A new API key of `scope` for tenant `dev` (the dev key's tenant), made by the CLI.
fn create_key(data_dir: &Path, scope: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_receipts"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["clients", "create", "--tenant", "dev", "--scope", scope])
        .output()
        .expect("receipts clients create");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("key"))
        .map(|k| k.trim().to_owned())
        .expect("a key line")
}

fn schemathesis(base: &str, key: &str, seed: u32) -> std::process::Output {
    let venv = receipts_testkit::python_venv("schemathesis", &[SCHEMATHESIS]);
    let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract");
    // `python -c` rather than the venv's `st` script, whose first line names the directory the
    // venv was built in (it is renamed into place).
    Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; sys.exit(schemathesis())",
            "--config-file",
        ])
        .arg(contract.join("schemathesis.toml"))
        .args(["run", &format!("{base}/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--max-examples", "15", "--seed", &seed.to_string()])
        .args(["--request-timeout", "20", "--workers", "2"])
        .env("PYTHONPATH", &contract)
        .env("SCHEMATHESIS_HOOKS", "ndjson_hooks")
        .env("NO_COLOR", "1")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("schemathesis runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_openapi_contract_under_fuzzing() {
    let platform = RunningPlatform::start().await;
    let data_dir = platform.env.dir.path().to_owned();
    let read_write = create_key(&data_dir, "read-write");
    let read = create_key(&data_dir, "read");
    for (label, key, seed) in [("read-write", read_write, 1), ("read", read, 2)] {
        let base = platform.base.clone();
        let output = tokio::time::timeout(
            Duration::from_secs(600),
            tokio::task::spawn_blocking(move || schemathesis(&base, &key, seed)),
        )
        .await
        .expect("schemathesis finishes within 10 minutes")
        .expect("schemathesis task");
        let report = String::from_utf8_lossy(&output.stdout);
        println!("schemathesis with the {label} key:\n{report}");
        assert!(
            output.status.success(),
            "schemathesis found contract violations with the {label} key:\n{report}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Every operation of the document was selected and tested (schemathesis leaves out
        // only the operation serving the document itself).
        let count = |label: &str| {
            report
                .lines()
                .find_map(|l| l.trim().strip_prefix(label))
                .and_then(|rest| rest.split(['/', ' ']).next()?.trim().parse::<usize>().ok())
        };
        let (selected, tested) = (count("Selected: "), count("Tested: "));
        assert!(
            selected.is_some_and(|n| n >= 20) && selected == tested,
            "every operation was tested with the {label} key:\n{report}"
        );
    }
}
