//! The `taskgate-harness` command as a user runs it: scenario files replayed through the
//! release module, configurations checked, and the exit status that tells a script what
//! happened (0 all passed, 1 a decision differed or a configuration was refused, 2 nothing
//! could be compared).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};
use taskgate_scenario::TestKey;

const ISSUER: &str = "https://issuer.harness.test";
const SUBJECT: &str = "spiffe://harness.test/ns/payments/sa/api";

/// A scenario folder in the temporary directory, removed when dropped.
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn scenario_folder(tag: &str, allowed_reason: &str) -> Folder {
    let dir =
        std::env::temp_dir().join(format!("taskgate-harness-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let jwk = TestKey::generate("ES256", "cli-1").unwrap();
    std::fs::write(dir.join("keys/cli.jwk.json"), jwk.to_string()).unwrap();
    let public = TestKey::from_jwk("cli", &jwk).unwrap().public_jwk;
    let config = json!({
        "providers": {
            "cli": { "issuer": ISSUER, "audiences": ["cli"], "local_jwks": { "inline": { "keys": [public] } } }
        },
        "rules": [{ "name": "all", "match": { "path": { "prefix": "/" } }, "providers": ["cli"] }]
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let scenarios = json!({
        "description": "two requests for the command-line tests",
        "config": "config.json",
        "now": 1_767_225_600u64,
        "cases": [
            {
                "name": "a signed token is allowed",
                "request": { "host": "payments.internal", "path": "/v1/charges" },
                "tokens": [{ "mint": { "key": "cli", "claims": { "iss": ISSUER, "sub": SUBJECT, "aud": "cli" } } }],
                "expect": {
                    "status": 200,
                    "reason": allowed_reason,
                    "upstream_headers": { "x-taskgate-subject": SUBJECT, "authorization": null }
                }
            },
            {
                "name": "a request without a token is refused",
                "request": { "host": "payments.internal", "path": "/v1/charges" },
                "expect": { "status": 401, "reason": "token_missing" }
            }
        ]
    });
    std::fs::write(dir.join("scenarios.json"), scenarios.to_string()).unwrap();
    Folder(dir)
}

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn harness(args: &[&str]) -> Output {
    let wasm = taskgate_harness::default_module_path();
    assert!(
        wasm.is_file(),
        "the release module is missing at `{}`: build it with `{}`",
        wasm.display(),
        taskgate_harness::BUILD_COMMAND
    );
    Command::new(env!("CARGO_BIN_EXE_taskgate-harness"))
        .arg("--wasm")
        .arg(&wasm)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(folder: &Folder, name: &str) -> String {
    folder.0.join(name).to_string_lossy().into_owned()
}

#[test]
fn run_prints_each_decision_and_exits_zero_when_all_cases_pass() {
    let folder = scenario_folder("pass", "allowed");
    let output = harness(&["run", &path(&folder, "scenarios.json")]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("a signed token is allowed"), "{stdout}");
    assert!(stdout.contains("200 allowed"), "{stdout}");
    assert!(stdout.contains("401 token_missing"), "{stdout}");
    assert!(
        stdout.lines().any(|line| line == "2 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn run_exits_one_when_a_decision_differs_from_the_expected_one() {
    let folder = scenario_folder("mismatch", "some_other_reason");
    let output = harness(&["run", &path(&folder, "scenarios.json")]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("MISMATCH"), "{stdout}");
    assert!(
        stdout.lines().any(|line| line == "1 passed, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn run_with_json_prints_one_object_with_every_case() {
    let folder = scenario_folder("json", "allowed");
    let output = harness(&["run", "--json", &path(&folder, "scenarios.json")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["passed"], 2);
    assert_eq!(report["failed"], 0);
    let second = &report["results"][1];
    assert_eq!(second["case"], "a request without a token is refused");
    assert_eq!(
        second["observed"],
        json!({ "status": 401, "reason": "token_missing" })
    );
}

#[test]
fn run_exits_two_for_a_scenario_file_that_does_not_exist() {
    let output = harness(&["run", "/nonexistent/scenarios.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot load scenario file"));
}

#[test]
fn a_missing_module_exits_two_and_says_how_to_build_it() {
    let folder = scenario_folder("nowasm", "allowed");
    let output = Command::new(env!("CARGO_BIN_EXE_taskgate-harness"))
        .args(["--wasm", "/nonexistent/taskgate_proxy.wasm", "run"])
        .arg(path(&folder, "scenarios.json"))
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(taskgate_harness::BUILD_COMMAND), "{stderr}");
}

#[test]
fn check_accepts_a_valid_configuration() {
    let folder = scenario_folder("check-ok", "allowed");
    let output = harness(&["check", &path(&folder, "config.json")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert!(text(&output.stdout).starts_with("accepted: "));
}

#[test]
fn check_refuses_a_configuration_and_prints_the_module_error_lines() {
    let folder = scenario_folder("check-bad", "allowed");
    let bad = folder.0.join("bad.json");
    std::fs::write(&bad, r#"{"providers": {}, "rules": [], "surprise": 1}"#).unwrap();
    let output = harness(&["check", &bad.to_string_lossy()]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("[error]") && l.contains("surprise")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("rejected: ")),
        "{stdout}"
    );
}

#[test]
fn a_command_line_without_a_subcommand_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_taskgate-harness"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("Usage:"));
}
