//! Keys that change under a compiled gate: fetched sets installed, the verified-token cache bound
//! to them, and the denies a host acts on (`kid_unknown` with the missing key, `keys_unavailable`,
//! `trust_domain_mismatch`).
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failure is the test's failure"
)]

use std::sync::OnceLock;

use serde_json::{json, Value};
use taskgate::decision::MissingKey;
use taskgate::jwks::Alg;
use taskgate::remote::read_jwks;
use taskgate::{Gate, Peer, Request, TokenCache};
use taskgate_scenario::{KeyRing, MintSpec, TestKey};

const NOW: u64 = 1_767_225_600;
const ISSUER: &str = "https://issuer.test";

fn keys() -> &'static KeyRing {
    static KEYS: OnceLock<KeyRing> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("taskgate-core-remote-{}", std::process::id()));
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

fn gate(provider: Value) -> Gate {
    let mut fields = json!({"issuer": ISSUER});
    fields
        .as_object_mut()
        .unwrap()
        .extend(provider.as_object().unwrap().clone());
    let config = json!({
        "providers": {"p": fields},
        "rules": [{"name": "any", "match": {"path": {"prefix": "/"}}, "providers": ["p"]}]
    });
    Gate::new(&config.to_string()).unwrap().0
}

fn remote() -> Value {
    json!({"remote_jwks": {"http_uri": {"uri": "https://issuer.test/k", "cluster": "c"}}})
}

fn token(key: &str, sub: &str) -> String {
    let spec: MintSpec = serde_json::from_value(json!({
        "key": key, "claims": {"iss": ISSUER, "sub": sub}
    }))
    .unwrap();
    spec.mint(keys(), NOW).unwrap()
}

fn decide(gate: &Gate, token: &str, cache: &mut TokenCache) -> taskgate::Decision {
    let headers = vec![("authorization".to_owned(), format!("Bearer {token}"))];
    let request = Request {
        method: "GET",
        authority: "api",
        path: "/",
        headers: &headers,
        peer: Peer::default(),
    };
    gate.decide_cached(&request, NOW, cache)
}

fn install(gate: &Gate, names: &[&str], spiffe: bool) {
    let mut jwks = keys().jwks(names).unwrap();
    if spiffe {
        for key in jwks["keys"].as_array_mut().unwrap() {
            key["use"] = json!("jwt-svid");
        }
    }
    let fetched = read_jwks(jwks.to_string().as_bytes(), &Alg::ALL, spiffe, None).unwrap();
    assert!(gate.install_keys(0, fetched.keys));
}

#[test]
fn a_provider_without_keys_yet_denies_with_503_and_names_the_key_it_needs() {
    let gate = gate(remote());
    let decision = decide(&gate, &token("old", "a"), &mut TokenCache::default());
    assert_eq!(decision.code(), "keys_unavailable");
    let taskgate::Verdict::Deny(reason) = &decision.verdict else {
        panic!("expected a deny");
    };
    assert_eq!(reason.status(), 503);
    assert_eq!(reason.www_authenticate(), None);
    assert_eq!(
        decision.missing_key,
        Some(MissingKey {
            provider: 0,
            kid: Some("old-1".into())
        })
    );
}

#[test]
fn installed_keys_verify_and_an_unknown_kid_names_the_missing_key() {
    let gate = gate(remote());
    install(&gate, &["old"], false);
    let mut cache = TokenCache::default();
    assert!(decide(&gate, &token("old", "a"), &mut cache).is_allow());
    let decision = decide(&gate, &token("new", "a"), &mut cache);
    assert_eq!(decision.code(), "kid_unknown");
    assert_eq!(decision.missing_key.unwrap().kid.as_deref(), Some("new-1"));
}

#[test]
fn an_unknown_kid_of_inline_keys_names_no_missing_key() {
    let gate = gate(json!({"local_jwks": {"inline": keys().jwks(&["old"]).unwrap()}}));
    let decision = decide(&gate, &token("new", "a"), &mut TokenCache::default());
    assert_eq!(decision.code(), "kid_unknown");
    assert_eq!(decision.missing_key, None);
}

#[test]
fn the_cache_stops_serving_tokens_once_their_key_is_rotated_out() {
    let gate = gate(remote());
    install(&gate, &["old"], false);
    let mut cache = TokenCache::default();
    let old = token("old", "a");
    assert!(decide(&gate, &old, &mut cache).is_allow());
    assert!(decide(&gate, &old, &mut cache).is_allow());
    assert_eq!(cache.stats().0, 1);
    install(&gate, &["new"], false);
    assert_eq!(decide(&gate, &old, &mut cache).code(), "kid_unknown");
    assert_eq!(gate.key_generation(), 2);
}

#[test]
fn a_trust_domain_confines_every_token_of_the_provider() {
    let mut provider = remote();
    provider["trust_domain"] = json!("prod.acme");
    let gate = gate(provider);
    install(&gate, &["old"], true);
    let mut cache = TokenCache::default();
    assert!(decide(&gate, &token("old", "spiffe://prod.acme/ns/a"), &mut cache).is_allow());
    for sub in [
        "spiffe://dev.acme/ns/a",
        "spiffe://prod.acme.evil/ns/a",
        "spiffe://prod.acme/",
        "prod.acme",
    ] {
        let decision = decide(&gate, &token("old", sub), &mut cache);
        assert_eq!(decision.code(), "trust_domain_mismatch", "{sub}");
    }
}
