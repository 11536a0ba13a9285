//! Remote keys in the release module: fetched through scripted callouts on the harness clock.
//!
//! The issuer here is a scripted upstream cluster (`issuer_jwks`) whose answers each test sets:
//! good key sets, rotations, and every fault a real issuer endpoint shows. Keys are generated at
//! run time; nothing leaves the process.

mod common;

use std::sync::OnceLock;

use common::plugin;
use serde_json::{json, Value};
use taskgate_harness::{CalloutReply, Exchange, Harness, Request};
use taskgate_scenario::{KeyRing, MintSpec, TestKey};

const ISSUER: &str = "https://issuer.test";
const CLUSTER: &str = "issuer_jwks";
const SUBJECT: &str = "spiffe://prod.acme/ns/shop/sa/checkout";

/// Two ES256 keys: `old` (kid `old-1`) in use first, `new` (kid `new-1`) after a rotation.
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn keys() -> &'static KeyRing {
    static KEYS: OnceLock<KeyRing> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("taskgate-remote-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, kid) in [("old", "old-1"), ("new", "new-1")] {
            let jwk = TestKey::generate("ES256", kid).unwrap();
            std::fs::write(dir.join(format!("{name}.jwk.json")), jwk.to_string()).unwrap();
        }
        let ring = KeyRing::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        ring
    })
}

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn jwks(names: &[&str]) -> Value {
    keys().jwks(names).unwrap()
}

/// The public JWK of test key `name`, with `use` set to `usage`.
#[expect(
    clippy::indexing_slicing,
    reason = "a test helper: a ring without the key fails the test"
)]
fn public_key(name: &str, usage: &str) -> Value {
    let mut key = jwks(&[name])["keys"][0].clone();
    key["use"] = json!(usage);
    key
}

fn jwks_reply(names: &[&str]) -> CalloutReply {
    CalloutReply::json(jwks(names).to_string())
}

/// A provider with `remote_jwks`, plus `extra` provider fields.
fn config(extra: Value) -> String {
    let mut provider = json!({
        "issuer": ISSUER,
        "remote_jwks": {
            "http_uri": {"uri": "https://issuer.test/jwks.json", "cluster": CLUSTER, "timeout": "5s"},
            "cache_duration": "600s",
            "kid_refetch_interval": "30s",
            "retry_interval": "15s",
            "max_response_bytes": 4096
        }
    });
    if let (Some(fields), Value::Object(extra)) = (provider.as_object_mut(), extra) {
        fields.extend(extra);
    }
    json!({
        "providers": {"issuer": provider},
        "rules": [{"name": "any", "match": {"path": {"prefix": "/"}}, "providers": ["issuer"]}]
    })
    .to_string()
}

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn configured(config: &str, reply: Option<CalloutReply>) -> Harness {
    let mut harness = Harness::with_plugin(plugin());
    if let Some(reply) = reply {
        harness.script_callout(CLUSTER, reply);
    }
    harness.configure(config.as_bytes()).unwrap();
    harness
}

/// A token signed by test key `key`, naming `kid` (the key's own when `None`).
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn token(harness: &Harness, key: &str, kid: Option<&str>, sub: &str) -> String {
    let mut header = serde_json::Map::new();
    if let Some(kid) = kid {
        header.insert("kid".into(), kid.into());
    }
    let spec: MintSpec = serde_json::from_value(json!({
        "key": key,
        "header": header,
        "claims": {"iss": ISSUER, "sub": sub},
    }))
    .unwrap();
    spec.mint(keys(), harness.clock().unix_seconds()).unwrap()
}

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: its failure is the test's failure"
)]
fn send(harness: &mut Harness, key: &str, kid: Option<&str>) -> Exchange {
    let token = token(harness, key, kid, SUBJECT);
    harness
        .send(
            &Request::get("api.internal", "/v1/items")
                .header("authorization", &format!("Bearer {token}")),
        )
        .unwrap()
}

fn reason(exchange: &Exchange) -> &str {
    exchange
        .response()
        .header("x-taskgate-reason")
        .unwrap_or("allowed")
}

fn fetches(harness: &Harness) -> usize {
    harness
        .callout_log()
        .iter()
        .filter(|call| call.upstream == CLUSTER)
        .count()
}

fn metric(harness: &Harness, name: &str) -> u64 {
    harness
        .metrics()
        .value(&format!("taskgate.jwks.issuer.{name}"))
        .unwrap_or(0)
}

#[test]
fn the_first_request_waits_for_the_first_fetch_and_is_allowed() {
    let mut harness = configured(&config(json!({})), Some(jwks_reply(&["old"])));
    assert_eq!(fetches(&harness), 0);
    let exchange = send(&mut harness, "old", None);
    assert!(exchange.forwarded(), "{:?}", exchange.outcome);
    let call = &harness.callout_log()[0];
    assert_eq!(call.timeout_ms, 5000);
    for (name, value) in [
        (":method", "GET"),
        (":path", "/jwks.json"),
        (":authority", "issuer.test"),
    ] {
        assert!(
            call.headers.contains(&(name.into(), value.into())),
            "{:?}",
            call.headers
        );
    }
    assert_eq!(fetches(&harness), 1);
    assert_eq!(metric(&harness, "fetch_success"), 1);
    assert_eq!(metric(&harness, "keys_in_use"), 1);
}

#[test]
fn the_timer_fetches_keys_before_any_request_and_refreshes_them_before_they_expire() {
    let mut harness = configured(&config(json!({})), Some(jwks_reply(&["old"])));
    harness.advance(1_000).unwrap();
    assert_eq!(fetches(&harness), 1);
    assert!(send(&mut harness, "old", None).forwarded());
    assert_eq!(fetches(&harness), 1);
    // Fresh for four fifths of the 600 s cache duration.
    harness.advance(478_000).unwrap();
    assert_eq!(fetches(&harness), 1);
    assert_eq!(metric(&harness, "key_set_age_seconds"), 478);
    harness.advance(2_000).unwrap();
    assert_eq!(fetches(&harness), 2);
    assert_eq!(metric(&harness, "fetch_success"), 2);
    assert!(send(&mut harness, "old", None).forwarded());
}

#[test]
fn a_rotated_key_is_picked_up_by_the_first_request_that_needs_it_without_a_failed_request() {
    let mut harness = configured(&config(json!({})), Some(jwks_reply(&["old"])));
    harness.advance(1_000).unwrap();
    assert!(send(&mut harness, "old", None).forwarded());
    harness.script_callout(CLUSTER, jwks_reply(&["old", "new"]));
    let exchange = send(&mut harness, "new", None);
    assert!(exchange.forwarded(), "{}", reason(&exchange));
    assert_eq!(fetches(&harness), 2);
    assert!(send(&mut harness, "old", None).forwarded());
    assert_eq!(
        harness.metrics().value("taskgate.denied.kid_unknown"),
        Some(0)
    );
}

#[test]
fn a_key_removed_by_a_rotation_stops_vouching_for_tokens_it_verified() {
    let mut harness = configured(&config(json!({})), Some(jwks_reply(&["old"])));
    harness.advance(1_000).unwrap();
    let token = token(&harness, "old", None, SUBJECT);
    let request =
        Request::get("api.internal", "/").header("authorization", &format!("Bearer {token}"));
    assert!(harness.send(&request).unwrap().forwarded());
    harness.script_callout(CLUSTER, jwks_reply(&["new"]));
    harness.advance(480_000).unwrap();
    let exchange = harness.send(&request).unwrap();
    assert_eq!((exchange.status(), reason(&exchange)), (401, "kid_unknown"));
}

fn faults() -> Vec<(&'static str, CalloutReply)> {
    let respond =
        |status: u16, headers: Vec<(String, String)>, body: &[u8]| CalloutReply::Respond {
            status,
            headers,
            body: body.to_vec(),
        };
    let huge = json!({"keys": [public_key("new", "sig")], "padding": "x".repeat(5000)});
    vec![
        ("slow", CalloutReply::Timeout),
        ("reset", CalloutReply::Reset),
        ("500", respond(500, Vec::new(), b"oops")),
        (
            "redirect",
            respond(
                302,
                vec![("location".into(), "https://elsewhere.test/k".into())],
                b"",
            ),
        ),
        (
            "not json",
            respond(200, Vec::new(), b"<html>maintenance</html>"),
        ),
        ("huge", CalloutReply::json(huge.to_string())),
        ("key-less", CalloutReply::json(r#"{"keys": []}"#)),
        (
            "unusable",
            CalloutReply::json(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#),
        ),
    ]
}

#[test]
fn every_fault_keeps_the_last_good_keys_in_use_and_is_counted() {
    for (name, fault) in faults() {
        let mut harness = configured(&config(json!({})), Some(jwks_reply(&["old"])));
        harness.advance(1_000).unwrap();
        harness.script_callout(CLUSTER, fault);
        harness.advance(480_000).unwrap();
        assert_eq!(fetches(&harness), 2, "{name}");
        assert_eq!(metric(&harness, "fetch_failure"), 1, "{name}");
        assert_eq!(metric(&harness, "keys_in_use"), 1, "{name}");
        let exchange = send(&mut harness, "old", None);
        assert!(exchange.forwarded(), "{name}: {}", reason(&exchange));
        // A token naming a key the failed fetch might have brought is refused at once: the
        // retry interval holds, and nothing waits.
        let exchange = send(&mut harness, "new", None);
        assert_eq!(
            (exchange.status(), reason(&exchange)),
            (401, "kid_unknown"),
            "{name}"
        );
        assert_eq!(fetches(&harness), 2, "{name}");
    }
}

#[test]
fn a_redirect_is_never_followed() {
    let mut harness = configured(&config(json!({})), None);
    harness.script_callout(
        CLUSTER,
        CalloutReply::Respond {
            status: 301,
            headers: vec![("location".into(), "https://issuer.test/other".into())],
            body: Vec::new(),
        },
    );
    harness.advance(1_000).unwrap();
    assert_eq!(harness.callout_log().len(), 1);
    assert!(harness
        .logs()
        .iter()
        .any(|line| line.message.contains("(redirect)")));
}

#[test]
fn bootstrap_keys_serve_a_cold_start_while_the_issuer_is_down() {
    let extra = json!({"local_jwks": {"inline": jwks(&["old"])}});
    let mut harness = configured(&config(extra), Some(CalloutReply::Timeout));
    assert!(send(&mut harness, "old", None).forwarded());
    assert_eq!(fetches(&harness), 0);
    harness.advance(1_000).unwrap();
    assert_eq!(metric(&harness, "fetch_failure"), 1);
    assert!(send(&mut harness, "old", None).forwarded());
    // Once the issuer answers, its keys replace the bootstrap keys.
    harness.script_callout(CLUSTER, jwks_reply(&["new"]));
    harness.advance(15_000).unwrap();
    assert_eq!(metric(&harness, "fetch_success"), 1);
    assert!(send(&mut harness, "new", None).forwarded());
}

#[test]
fn an_issuer_that_went_down_is_asked_less_and_less_often() {
    let mut harness = configured(&config(json!({})), Some(jwks_reply(&["old"])));
    harness.advance(1_000).unwrap();
    assert_eq!(metric(&harness, "fetch_success"), 1);
    harness.script_callout(CLUSTER, unavailable());
    // The refresh falls due 480 s after the fetch; then the waits are 15, 30, 60 and 120 s (the
    // 15 s retry interval, doubled up to 8 × it), then 120 s each.
    let mut failed_at = Vec::new();
    for second in 2..=1000 {
        harness.advance(1_000).unwrap();
        if metric(&harness, "fetch_failure") > failed_at.len() as u64 {
            failed_at.push(second);
        }
    }
    assert_eq!(failed_at, [481, 496, 526, 586, 706, 826, 946]);
    assert!(send(&mut harness, "old", None).forwarded());
    // Once the issuer answers, at the next attempt, its keys are in use.
    harness.script_callout(CLUSTER, jwks_reply(&["new"]));
    harness.advance(120_000).unwrap();
    assert_eq!(metric(&harness, "fetch_success"), 2);
    assert!(send(&mut harness, "new", None).forwarded());
}

#[test]
fn a_provider_that_never_had_keys_denies_with_503_keys_unavailable() {
    let mut harness = configured(&config(json!({})), Some(unavailable()));
    for _ in 0..3 {
        let exchange = send(&mut harness, "old", None);
        assert_eq!(
            (exchange.status(), reason(&exchange)),
            (503, "keys_unavailable")
        );
        assert_eq!(exchange.response().header("www-authenticate"), None);
    }
    // One fetch; the next waits for the retry interval.
    assert_eq!(fetches(&harness), 1);
}

#[test]
fn a_flood_of_made_up_kids_causes_one_fetch_per_refetch_interval() {
    let mut harness = configured(&config(json!({})), Some(jwks_reply(&["old"])));
    harness.advance(1_000).unwrap();
    for i in 0..1000 {
        let kid = format!("made-up-{i}");
        let exchange = send(&mut harness, "old", Some(&kid));
        assert_eq!(reason(&exchange), "kid_unknown");
        // 1000 requests over 100 seconds.
        harness.advance(100).unwrap();
    }
    // The first fetch, then one per 30 s of the 100 s: at 0, 30, 60 and 90 s.
    assert_eq!(fetches(&harness), 1 + 4);
    assert!(send(&mut harness, "old", None).forwarded());
}

fn discovery_config(extra: Value) -> String {
    let mut remote = json!({"discovery": {"cluster": CLUSTER, "timeout": "5s"}});
    if let (Some(fields), Value::Object(extra)) = (remote.as_object_mut(), extra) {
        fields.extend(extra);
    }
    json!({
        "providers": {"issuer": {"issuer": ISSUER, "remote_jwks": remote}},
        "rules": [{"name": "any", "match": {"path": {"prefix": "/"}}, "providers": ["issuer"]}]
    })
    .to_string()
}

const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Scripts the next two answers: a discovery document naming
/// `https://keys.issuer.test/v1/keys`, then the keys `names` there.
fn answer_discovery_then_keys(harness: &mut Harness, names: &[&str]) {
    let document = json!({"issuer": ISSUER, "jwks_uri": "https://keys.issuer.test/v1/keys"});
    let callouts = harness.callouts_mut();
    callouts.respond_once(CLUSTER, CalloutReply::json(document.to_string()));
    callouts.respond_once(CLUSTER, jwks_reply(names));
}

/// An issuer answering 503.
fn unavailable() -> CalloutReply {
    CalloutReply::Respond {
        status: 503,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn paths(harness: &Harness) -> Vec<String> {
    harness
        .callout_log()
        .iter()
        .filter_map(|call| call.headers.iter().find(|(name, _)| name == ":path"))
        .map(|(_, path)| path.clone())
        .collect()
}

#[test]
fn discovery_finds_the_jwks_uri_of_the_same_issuer() {
    let mut harness = configured(&discovery_config(json!({})), None);
    answer_discovery_then_keys(&mut harness, &["old"]);
    assert!(send(&mut harness, "old", None).forwarded());
    assert_eq!(paths(&harness), [DISCOVERY_PATH, "/v1/keys"]);
    let authority = harness.callout_log()[1]
        .headers
        .iter()
        .find(|(name, _)| name == ":authority")
        .map(|(_, value)| value.clone());
    assert_eq!(authority.as_deref(), Some("keys.issuer.test"));
}

#[test]
fn a_discovered_jwks_uri_is_fetched_directly_until_a_fetch_through_it_fails() {
    let mut harness = configured(&discovery_config(json!({})), None);
    answer_discovery_then_keys(&mut harness, &["old"]);
    // The refresh, four fifths into the 600 s cache duration, goes straight to the keys.
    harness
        .callouts_mut()
        .respond_once(CLUSTER, jwks_reply(&["old"]));
    harness.advance(1_000).unwrap();
    assert!(send(&mut harness, "old", None).forwarded());
    harness.advance(480_000).unwrap();
    assert_eq!(paths(&harness), [DISCOVERY_PATH, "/v1/keys", "/v1/keys"]);
    assert_eq!(metric(&harness, "fetch_success"), 2);

    // A refresh that fails makes the next attempt, one retry interval later, ask discovery.
    harness.callouts_mut().respond_once(CLUSTER, unavailable());
    answer_discovery_then_keys(&mut harness, &["old"]);
    harness.advance(480_000).unwrap();
    assert_eq!(metric(&harness, "fetch_failure"), 1);
    harness.advance(20_000).unwrap();
    assert_eq!(
        paths(&harness)[3..],
        ["/v1/keys", DISCOVERY_PATH, "/v1/keys"]
    );
    assert_eq!(metric(&harness, "fetch_success"), 3);
    assert!(send(&mut harness, "old", None).forwarded());
}

#[test]
fn a_failed_fetch_in_one_worker_makes_another_ask_discovery_again() {
    let config = discovery_config(json!({}));
    let mut first = configured(&config, None);
    answer_discovery_then_keys(&mut first, &["old"]);
    first.advance(1_000).unwrap();
    assert_eq!(paths(&first), [DISCOVERY_PATH, "/v1/keys"]);
    let mut second = Harness::with_plugin(plugin());
    second.share_data_with(&first);
    second.configure(config.as_bytes()).unwrap();
    // The second worker's refresh, due 480 s after the first fetch, fails.
    second.script_callout(CLUSTER, unavailable());
    second.advance(482_000).unwrap();
    assert_eq!(metric(&second, "fetch_failure"), 1);
    // The first worker's next attempt, a retry interval later, does not trust the URI it
    // discovered before that failure.
    answer_discovery_then_keys(&mut first, &["old"]);
    first.advance(500_000).unwrap();
    assert_eq!(
        paths(&first),
        [DISCOVERY_PATH, "/v1/keys", DISCOVERY_PATH, "/v1/keys"]
    );
}

#[test]
fn a_discovery_document_of_another_issuer_is_a_failed_fetch() {
    let mut harness = configured(&discovery_config(json!({})), None);
    let document = json!({"issuer": "https://evil.test", "jwks_uri": "https://evil.test/keys"});
    harness.script_callout(CLUSTER, CalloutReply::json(document.to_string()));
    let exchange = send(&mut harness, "old", None);
    assert_eq!(
        (exchange.status(), reason(&exchange)),
        (503, "keys_unavailable")
    );
    assert_eq!(harness.callout_log().len(), 1);
    assert_eq!(metric(&harness, "fetch_failure"), 1);
    assert!(harness
        .logs()
        .iter()
        .any(|line| line.message.contains("issuer_mismatch")));
}

/// A SPIFFE bundle: the JWT keys of trust domain `prod.acme`.
fn bundle(sequence: u64) -> CalloutReply {
    let key = public_key("old", "jwt-svid");
    let x509 = json!({"kty": "EC", "crv": "P-256", "use": "x509-svid", "x": "AA", "y": "AA"});
    let body = json!({"spiffe_sequence": sequence, "spiffe_refresh_hint": 60, "keys": [key, x509]});
    CalloutReply::json(body.to_string())
}

#[test]
fn spiffe_bundle_keys_verify_only_tokens_of_their_trust_domain() {
    let mut harness = configured(
        &config(json!({"trust_domain": "prod.acme"})),
        Some(bundle(3)),
    );
    harness.advance(1_000).unwrap();
    assert!(send(&mut harness, "old", None).forwarded());
    for sub in [
        "spiffe://dev.acme/ns/shop/sa/checkout",
        "spiffe://prod.acme.evil/x",
        "checkout",
    ] {
        let token = token(&harness, "old", None, sub);
        let exchange = harness
            .send(
                &Request::get("api.internal", "/")
                    .header("authorization", &format!("Bearer {token}")),
            )
            .unwrap();
        assert_eq!(
            (exchange.status(), reason(&exchange)),
            (401, "trust_domain_mismatch"),
            "{sub}"
        );
    }
    // The bundle's refresh hint (60 s) brings the refresh forward; a lower sequence is refused.
    harness.script_callout(CLUSTER, bundle(2));
    harness.advance(48_000).unwrap();
    assert_eq!(fetches(&harness), 2);
    assert_eq!(metric(&harness, "fetch_failure"), 1);
    assert!(send(&mut harness, "old", None).forwarded());
}

#[test]
fn a_spiffe_bundle_key_is_left_out_without_a_trust_domain() {
    let mut harness = configured(&config(json!({})), Some(bundle(1)));
    harness.advance(1_000).unwrap();
    assert_eq!(metric(&harness, "fetch_failure"), 1);
    assert!(harness
        .logs()
        .iter()
        .any(|line| line.message.contains("no_usable_keys")));
}

#[test]
fn two_workers_share_one_fetch_through_shared_data() {
    let config = config(json!({}));
    let mut first = configured(&config, Some(jwks_reply(&["old"])));
    let mut second = Harness::with_plugin(plugin());
    second.share_data_with(&first);
    // The second worker has no route to the issuer at all: any fetch it tried would fail.
    second.script_callout(CLUSTER, CalloutReply::Reset);
    first.advance(1_000).unwrap();
    assert_eq!(fetches(&first), 1);
    // A worker started now takes the shared keys when it is configured.
    second.configure(config.as_bytes()).unwrap();
    assert!(send(&mut second, "old", None).forwarded());
    // A rotation fetched by one worker reaches the other on its next tick.
    first.script_callout(CLUSTER, jwks_reply(&["old", "new"]));
    assert!(send(&mut first, "new", None).forwarded());
    second.advance(1_000).unwrap();
    assert!(send(&mut second, "new", None).forwarded());
    // Its refresh was due with the first worker's, which already did it.
    assert_eq!(fetches(&second), 0);
}

#[test]
fn a_fetch_lease_held_by_another_worker_holds_this_one_back_until_it_ends() {
    let config = config(json!({}));
    let mut other = configured(&config, Some(jwks_reply(&["old"])));
    other.advance(1_000).unwrap();
    let mut harness = Harness::with_plugin(plugin());
    harness.share_data_with(&other);
    harness.script_callout(CLUSTER, jwks_reply(&["old", "new"]));
    harness.configure(config.as_bytes()).unwrap();
    // The other worker claims the source for a refresh and is still fetching for 20 s.
    let key = harness
        .shared_data()
        .keys()
        .find(|key| key.ends_with(".record"))
        .map(str::to_owned)
        .unwrap();
    let now_ms = harness.clock().unix_seconds() * 1000;
    let claimed = json!({"lease_until": now_ms + 20_000, "last_success": now_ms, "refresh_at": 0});
    let store = harness.env().shared_data.clone();
    store.set(&key, claimed.to_string().into_bytes(), 0);
    harness.advance(19_000).unwrap();
    assert_eq!(fetches(&harness), 0);
    // The lease ends; the refresh it stood for is still due, and this worker makes it.
    harness.advance(2_000).unwrap();
    assert_eq!(fetches(&harness), 1);
    assert!(send(&mut harness, "new", None).forwarded());
}
