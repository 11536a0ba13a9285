//! The host's own behaviour, checked against `fixtures/proxy_fixture.wat`: a tiny module whose
//! behaviour is picked by the first byte of its configuration (see the fixture's header).

use std::path::Path;
use std::sync::OnceLock;

use taskgate_harness::{CalloutReply, Harness, HarnessError, LogSource, Outcome, Plugin, Request};

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn plugin() -> Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN
        .get_or_init(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proxy_fixture.wat");
            Plugin::from_file(path).unwrap()
        })
        .clone()
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

fn request() -> Request {
    Request::get("api.internal", "/v1/items").header("X-Trace", "t-1")
}

#[test]
fn a_trap_in_request_headers_is_an_error_naming_the_callback() {
    let mut harness = configured("trap");
    let error = harness.send(&request()).unwrap_err();
    let HarnessError::Trap {
        callback, message, ..
    } = &error
    else {
        panic!("expected a trap, got {error}");
    };
    assert_eq!(*callback, "proxy_on_request_headers");
    assert!(message.contains("unreachable"), "{message}");
    assert!(error
        .to_string()
        .starts_with("module trapped in `proxy_on_request_headers`"));
}

#[test]
fn after_a_trap_the_instance_refuses_requests_until_it_is_reloaded() {
    let mut harness = configured("trap");
    harness.send(&request()).unwrap_err();
    let error = harness.send(&request()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "module crashed earlier in `proxy_on_request_headers` and must be reloaded"
    );
    harness.configure(b"allow").unwrap();
    assert!(harness.send(&request()).unwrap().forwarded());
}

#[test]
fn a_rejected_configuration_is_an_error_carrying_the_module_error_log() {
    let mut harness = Harness::with_plugin(plugin());
    let error = harness.configure(b"reject me").unwrap_err();
    assert!(matches!(error, HarnessError::ConfigRejected { .. }));
    assert_eq!(
        error.to_string(),
        "module rejected the plugin configuration in `proxy_on_configure`: rejected configuration"
    );
    assert!(!harness.is_configured());
    assert!(matches!(
        harness.send(&request()),
        Err(HarnessError::NotConfigured)
    ));
}

#[test]
fn a_rejected_reload_leaves_the_previous_configuration_serving() {
    let mut harness = configured("allow-v1");
    harness.configure(b"reject").unwrap_err();
    let exchange = harness.send(&request()).unwrap();
    assert_eq!(exchange.upstream_header("x-fixture"), Some("allow-v1"));
}

#[test]
fn a_reload_with_a_new_configuration_takes_effect_on_the_next_request() {
    let mut harness = configured("allow-v1");
    let before = harness.send(&request()).unwrap();
    assert_eq!(before.upstream_header("x-fixture"), Some("allow-v1"));
    harness.configure(b"deny").unwrap();
    let after = harness.send(&request()).unwrap();
    assert_eq!(after.status(), 403);
    assert_eq!(
        after.response().header("x-taskgate-reason"),
        Some("fixture_denied")
    );
}

#[test]
fn an_allowed_request_reaches_the_upstream_with_the_module_changes() {
    let mut harness = configured("allow");
    let exchange = harness.send(&request()).unwrap();
    let upstream = exchange.upstream_headers().unwrap();
    assert_eq!(exchange.status(), 200);
    assert_eq!(exchange.upstream_header("x-fixture"), Some("allow"));
    assert_eq!(exchange.upstream_header("x-trace"), Some("t-1"));
    assert_eq!(
        upstream[0],
        (":authority".to_string(), "api.internal".to_string())
    );
}

#[test]
fn a_local_response_is_captured_with_status_headers_and_details() {
    let mut harness = configured("deny");
    let exchange = harness.send(&request()).unwrap();
    let Outcome::Local(local) = &exchange.outcome else {
        panic!("expected a local response");
    };
    assert_eq!(local.response.status, 403);
    assert_eq!(local.details, "denied");
    assert_eq!(local.grpc_status, -1);
    assert_eq!(
        local.response.headers,
        vec![(
            "x-taskgate-reason".to_string(),
            "fixture_denied".to_string()
        )]
    );
    assert!(exchange.upstream_headers().is_none());
}

#[test]
fn a_connection_property_reaches_the_module_by_its_nul_separated_path() {
    let mut harness = configured("allow");
    let spiffe = "spiffe://cluster.local/ns/payments/sa/api";
    let exchange = harness
        .send(&request().property("connection.uri_san_peer_certificate", spiffe))
        .unwrap();
    assert_eq!(exchange.upstream_header("x-fixture-peer"), Some(spiffe));
    let without = harness.send(&request()).unwrap();
    assert_eq!(without.upstream_header("x-fixture-peer"), None);
}

#[test]
fn a_callout_that_times_out_is_reported_to_the_module_as_a_failed_call() {
    let mut harness = configured("callout");
    harness.script_callout("jwks", CalloutReply::Timeout);
    let start = harness.clock().unix_nanos();
    let exchange = harness.send(&request()).unwrap();
    assert_eq!(exchange.status(), 503);
    assert_eq!(
        exchange.response().header("x-taskgate-reason"),
        Some("callout_failed")
    );
    // The request waited the call's whole timeout.
    assert_eq!(harness.clock().unix_nanos() - start, 500_000_000);
    let call = &harness.callout_log()[0];
    assert_eq!(call.upstream, "jwks");
    assert_eq!(call.timeout_ms, 500);
    assert!(call
        .headers
        .contains(&(":path".to_string(), "/keys".to_string())));
}

#[test]
fn a_callout_answered_by_the_script_resumes_the_paused_request() {
    let mut harness = configured("callout");
    harness.script_callout("jwks", CalloutReply::json(r#"{"keys":[]}"#));
    let exchange = harness.send(&request()).unwrap();
    assert!(exchange.forwarded());
    assert_eq!(exchange.status(), 200);
}

#[test]
fn one_shot_callout_replies_are_used_before_the_standing_one() {
    let mut harness = configured("callout");
    harness
        .callouts_mut()
        .respond_once("jwks", CalloutReply::Reset);
    harness.script_callout("jwks", CalloutReply::json("{}"));
    assert_eq!(harness.send(&request()).unwrap().status(), 503);
    assert_eq!(harness.send(&request()).unwrap().status(), 200);
}

#[test]
fn a_callout_to_an_unscripted_cluster_leaves_the_request_stalled() {
    let mut harness = configured("callout");
    let error = harness.send(&request()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "module paused the request in `proxy_on_request_headers` and never resumed or answered it"
    );
    assert!(harness.callout_log().is_empty());
}

#[test]
fn advancing_the_clock_fires_one_tick_per_period() {
    let mut harness = configured("allow");
    harness.advance(3_500).unwrap();
    assert_eq!(harness.metrics().value("fixture_ticks"), Some(3));
    harness.advance(500).unwrap();
    assert_eq!(harness.metrics().value("fixture_ticks"), Some(4));
}

#[test]
fn a_large_clock_jump_fires_a_bounded_number_of_ticks() {
    let mut harness = configured("allow");
    let now = harness.clock().unix_seconds();
    harness.set_time(now + 365 * 24 * 3600).unwrap();
    let ticks = harness.metrics().value("fixture_ticks").unwrap();
    assert!((1..=10_000).contains(&ticks), "{ticks}");
    assert_eq!(harness.clock().unix_seconds(), now + 365 * 24 * 3600);
}

#[test]
fn setting_the_clock_back_changes_wall_time_without_firing_ticks() {
    let mut harness = configured("allow");
    harness.set_time(1_600_000_000).unwrap();
    assert_eq!(harness.clock().unix_seconds(), 1_600_000_000);
    assert_eq!(harness.metrics().value("fixture_ticks"), Some(0));
}

#[test]
fn stdout_and_proxy_log_lines_are_captured_in_order() {
    let harness = configured("allow");
    let lines: Vec<_> = harness
        .logs()
        .iter()
        .map(|line| (line.source, line.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (LogSource::Stdout, "hello from stdout"),
            (LogSource::Proxy, "configured")
        ]
    );
}

#[test]
fn metrics_survive_a_reload_like_envoy_stats() {
    let mut harness = configured("allow");
    harness.advance(1_000).unwrap();
    harness.configure(b"allow-v2").unwrap();
    harness.advance(1_000).unwrap();
    assert_eq!(harness.metrics().value("fixture_ticks"), Some(2));
}

#[test]
fn a_module_without_the_abi_version_export_is_refused() {
    let error =
        Plugin::from_bytes(b"(module (memory (export \"memory\") 1))", "inline.wat").unwrap_err();
    assert_eq!(
        error.to_string(),
        "module does not speak proxy-wasm abi 0.2.1: it has no `proxy_abi_version_0_2_1` export"
    );
}

#[test]
fn a_missing_module_file_is_an_error_naming_the_path() {
    let error = Harness::new("/nonexistent/taskgate_proxy.wasm").unwrap_err();
    assert!(error
        .to_string()
        .starts_with("cannot read module `/nonexistent/taskgate_proxy.wasm`"));
}
