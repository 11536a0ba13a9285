//! The real taskgate module (`target/taskgate.wasm`) in the
//! harness. Build it first with `cargo build -p taskgate-proxy --target wasm32-wasip1
//! --release`; these tests fail, saying so, when it is missing.
//!
//! Tokens are minted at run time with a key generated into a temporary folder, so no key is
//! kept in the repository for these tests.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::plugin;
use serde_json::{json, Value};
use taskgate_harness::{Harness, HarnessError, Request, WasmtimeHost};
use taskgate_scenario::{KeyRing, MintSpec, TestKey};

const ISSUER: &str = "https://issuer.harness.test";
const AUDIENCE: &str = "payments";
const SUBJECT: &str = "system:serviceaccount:payments:api";

/// A key ring with one freshly generated ES256 key named `harness`.
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn keys() -> &'static KeyRing {
    static KEYS: OnceLock<KeyRing> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("taskgate-harness-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let jwk = TestKey::generate("ES256", "harness-1").unwrap();
        std::fs::write(dir.join("harness.jwk.json"), jwk.to_string()).unwrap();
        let ring = KeyRing::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        ring
    })
}

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn config(path_prefix: &str) -> String {
    json!({
        "providers": {
            "harness": {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "local_jwks": { "inline": keys().jwks(&["harness"]).unwrap() }
            }
        },
        "rules": [{
            "name": "payments-api",
            "match": { "path": { "prefix": path_prefix } },
            "providers": ["harness"]
        }]
    })
    .to_string()
}

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn token(now: u64, times: Value) -> String {
    let spec: MintSpec = serde_json::from_value(json!({
        "key": "harness",
        "claims": { "iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT },
        "times": times
    }))
    .unwrap();
    spec.mint(keys(), now).unwrap()
}

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn configured(config: &str) -> Harness {
    let mut harness = Harness::with_plugin(plugin());
    harness.configure(config.as_bytes()).unwrap();
    harness
}

fn bearer(harness: &Harness, times: Value) -> Request {
    let token = token(harness.clock().unix_seconds(), times);
    Request::get("payments.internal", "/v1/charges")
        .header("authorization", &format!("Bearer {token}"))
}

fn fresh() -> Value {
    json!({ "iat": -5, "exp": 300 })
}

#[test]
fn the_release_module_imports_nothing_the_host_leaves_unimplemented() {
    assert_eq!(plugin().unimplemented_imports(), &[] as &[(String, String)]);
}

#[test]
fn a_token_signed_by_the_configured_issuer_is_forwarded_with_its_subject() {
    let mut harness = configured(&config("/"));
    let exchange = harness.send(&bearer(&harness, fresh())).unwrap();
    assert!(exchange.forwarded(), "{:?}", exchange.outcome);
    assert_eq!(
        exchange.upstream_header("x-taskgate-subject"),
        Some(SUBJECT)
    );
    assert_eq!(
        exchange.upstream_header("x-taskgate-rule"),
        Some("payments-api")
    );
    // The token itself is not handed to the upstream unless a provider says `forward`.
    assert_eq!(exchange.upstream_header("authorization"), None);
    assert_eq!(harness.metrics().value("taskgate.allowed"), Some(1));
}

#[test]
fn a_request_without_a_token_is_denied_with_401_a_challenge_and_a_reason() {
    let mut harness = configured(&config("/"));
    let exchange = harness
        .send(&Request::get("payments.internal", "/v1/charges"))
        .unwrap();
    assert_eq!(exchange.status(), 401);
    let response = exchange.response();
    assert!(response
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Bearer")));
    assert!(response
        .header("x-taskgate-reason")
        .is_some_and(|v| !v.is_empty()));
    assert!(exchange.upstream_headers().is_none());
}

#[test]
fn a_token_is_denied_once_the_harness_clock_passes_its_expiry() {
    let mut harness = configured(&config("/"));
    let request = bearer(&harness, fresh());
    assert!(harness.send(&request).unwrap().forwarded());
    // Five minutes of lifetime plus the default 60 s of skew, and one second more.
    harness.advance(361_000).unwrap();
    let exchange = harness.send(&request).unwrap();
    assert_eq!(exchange.status(), 401);
}

#[test]
fn a_configuration_with_an_unknown_field_is_rejected_at_on_configure() {
    let mut harness = Harness::with_plugin(plugin());
    let error = harness
        .configure(br#"{"providers": {}, "rules": [], "surprise": true}"#)
        .unwrap_err();
    let HarnessError::ConfigRejected { errors } = &error else {
        panic!("expected a rejected configuration, got {error}");
    };
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|line| line.contains("configuration refused")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|line| line.contains("surprise")),
        "{errors:?}"
    );
}

#[test]
fn a_reload_with_a_new_configuration_changes_the_next_decision() {
    let mut harness = configured(&config("/v1/"));
    let request = bearer(&harness, fresh());
    assert!(harness.send(&request).unwrap().forwarded());
    harness.configure(config("/v2/").as_bytes()).unwrap();
    let exchange = harness.send(&request).unwrap();
    assert_eq!(exchange.status(), 403);
}

#[test]
fn a_rejected_reload_leaves_the_previous_configuration_serving() {
    let mut harness = configured(&config("/v1/"));
    harness.configure(b"{not json").unwrap_err();
    let exchange = harness.send(&bearer(&harness, fresh())).unwrap();
    assert!(exchange.forwarded());
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn every_example_scenario_gets_its_expected_decision_in_wasmtime() {
    let suites = taskgate_scenario::load_examples(&examples_dir()).unwrap();
    let mut host = WasmtimeHost::new(plugin());
    let report = taskgate_scenario::run(&mut host, &suites, taskgate_scenario::Clock::Fixed);
    assert!(!report.results.is_empty());
    assert_eq!(host.load_failures(), &[] as &[(String, String)]);
    assert_eq!(report.failed(), 0, "{}", report.table());
}
