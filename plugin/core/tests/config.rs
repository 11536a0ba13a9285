//! Configuration errors are part of the interface: each names the JSON path and the offending
//! value, in fixed wording that these tests pin.

use serde_json::{json, Value};
use taskgate::Gate;

fn ec_key() -> Value {
    json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
           "x": "BGrQPIWhB55ft4_QrqmZyinsCxCN6Wlu7y1P9CAVIm8",
           "y": "Ny8yAdyxXr1K-xD94FfAtl_ffKOrxSX4Rgfp1J5ykGs"})
}

fn config() -> Value {
    json!({
        "providers": {"mesh": {"issuer": "https://issuer.test", "audiences": ["api"],
                               "local_jwks": {"inline": {"keys": [ec_key()]}}}},
        "rules": [{"name": "r", "match": {"path": {"template": "/t/{ticket}"}}, "providers": ["mesh"]}]
    })
}

fn errors(config: &Value) -> Vec<String> {
    errors_of(&config.to_string())
}

fn errors_of(text: &str) -> Vec<String> {
    match Gate::new(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn accepts_the_minimal_configuration() {
    assert_eq!(errors(&config()), Vec::<String>::new());
}

#[test]
fn warns_that_a_provider_without_audiences_accepts_tokens_minted_for_any() {
    let mut c = config();
    c["providers"]["mesh"]
        .as_object_mut()
        .unwrap()
        .remove("audiences");
    let (_, warnings) = Gate::new(&c.to_string()).unwrap();
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["`providers.mesh.audiences`: empty: tokens this issuer minted for any audience are accepted"]
    );
}

#[test]
fn refuses_a_template_with_an_empty_segment_and_an_empty_exact_subject() {
    let mut c = config();
    c["rules"][0]["match"]["path"] = json!({"template": "/t/{ticket}/"});
    c["rules"][0]["subjects"] = json!([{"exact": ""}]);
    assert_eq!(
        errors(&c),
        [
            "`rules[0].match.path.template`: `/t/{ticket}/` has an empty segment",
            "`rules[0].subjects[0]`: ``: an exact subject cannot be empty"
        ]
    );
}

#[test]
fn refuses_a_transaction_provider_that_also_serves_as_the_workload_provider() {
    let mut c = config();
    c["rules"][0]["transaction_token"] = json!({"provider": "mesh"});
    assert_eq!(
        errors(&c),
        ["`rules[0].transaction_token.provider`: `mesh` is also one of the rule's `providers`: one token would serve as both"]
    );
}

#[test]
fn names_a_misspelt_field_and_where_it_stands() {
    let mut c = config();
    c["providers"]["mesh"]["audience"] = json!(["a"]);
    let errors = errors(&c);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .starts_with("`providers.mesh.audience`: unknown field `audience`, expected one of"),
        "{errors:?}"
    );
}

#[test]
fn names_an_unsupported_algorithm() {
    let mut c = config();
    c["providers"]["mesh"]["algorithms"] = json!(["ES256", "HS256"]);
    assert_eq!(
        errors(&c),
        ["`providers.mesh.algorithms[1]`: algorithm `HS256` is not supported (one of RS256, PS256, ES256, EdDSA)"]
    );
}

#[test]
fn names_an_unknown_provider_in_a_rule() {
    let mut c = config();
    c["rules"][0]["providers"] = json!(["mesh", "ci"]);
    assert_eq!(
        errors(&c),
        ["`rules[0].providers[1]`: unknown provider `ci`"]
    );
}

#[test]
fn refuses_an_rsa_key_under_2048_bits() {
    let weak: Value = serde_json::from_str(include_str!("fixtures/rsa-1024.jwk.json")).unwrap();
    let mut c = config();
    c["providers"]["mesh"]["local_jwks"]["inline"]["keys"] = json!([ec_key(), weak]);
    assert_eq!(
        errors(&c),
        ["`providers.mesh.local_jwks.keys[1]`: RSA key of 1024 bits is shorter than 2048 bits"]
    );
}

#[test]
fn refuses_a_jwks_with_no_usable_key_and_reports_skipped_ones_as_warnings() {
    let mut c = config();
    c["providers"]["mesh"]["local_jwks"]["inline"]["keys"] =
        json!([{"kty": "oct", "k": "c2VjcmV0"}]);
    assert_eq!(
        errors(&c),
        ["`providers.mesh.local_jwks`: no usable key: every provider needs at least one"]
    );
    c["providers"]["mesh"]["local_jwks"]["inline"]["keys"] =
        json!([{"kty": "oct", "k": "c2VjcmV0"}, ec_key()]);
    let (_, warnings) = Gate::new(&c.to_string()).unwrap();
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["`providers.mesh.local_jwks.keys[0]`: key type `oct` is not supported"]
    );
}

#[test]
fn reads_a_jwks_given_as_text_like_jwt_authn() {
    let mut c = config();
    c["providers"]["mesh"]["local_jwks"] =
        json!({"inline_string": json!({"keys": [ec_key()]}).to_string()});
    assert_eq!(errors(&c), Vec::<String>::new());
    c["providers"]["mesh"]["local_jwks"] = json!({"inline_string": "{\"keys\": ["});
    assert_eq!(
        errors(&c),
        ["`providers.mesh.local_jwks.inline_string`: JWKS text is not valid JSON"]
    );
}

#[test]
fn refuses_a_member_named_twice_and_says_where() {
    let text = r#"{"providers": {}, "rules": [], "rules": []}"#;
    assert_eq!(
        errors_of(text),
        ["`rules`: configuration has a member name twice"]
    );
}

#[test]
fn refuses_text_that_is_not_json_with_its_position() {
    let errors = errors_of("{\"providers\": ");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("configuration is not valid JSON: EOF while parsing"),
        "{errors:?}"
    );
}

#[test]
fn refuses_a_binding_to_a_parameter_the_template_lacks() {
    let mut c = config();
    c["rules"][0]["bindings"] = json!([{"claim": ["task_id"], "path_param": "task"}]);
    assert_eq!(
        errors(&c),
        ["`rules[0].bindings[0].path_param`: `task` is not a parameter of the rule's path template"]
    );
}

#[test]
fn refuses_a_spiffe_pattern_that_is_not_a_spiffe_id() {
    let mut c = config();
    c["rules"][0]["subjects"] = json!([{"spiffe_id": "spiffe://Prod.acme/ns/*"}]);
    assert_eq!(
        errors(&c),
        ["`rules[0].subjects[0]`: `spiffe://Prod.acme/ns/*`: not a well-formed SPIFFE ID pattern"]
    );
}

#[test]
fn refuses_a_condition_with_two_operators_and_a_non_scalar_value() {
    let mut c = config();
    c["rules"][0]["claims"] = json!([
        {"claim": ["env"], "equals": "prod", "one_of": ["prod"]},
        {"claim": ["env"], "equals": {"a": 1}}
    ]);
    assert_eq!(
        errors(&c),
        [
            "`rules[0].claims[0]`: exactly one of `equals`, `one_of` and `contains` is required",
            "`rules[0].claims[1]`: `{\"a\":1}` is not a string, number or boolean"
        ]
    );
}

#[test]
fn refuses_two_providers_with_one_issuer_at_one_place() {
    let mut c = config();
    c["providers"]["copy"] = c["providers"]["mesh"].clone();
    assert_eq!(
        errors(&c),
        ["`providers.mesh.issuer`: issuer `https://issuer.test` is also the issuer of provider `copy` at header authorization"]
    );
}

#[test]
fn reports_every_error_not_only_the_first() {
    let mut c = config();
    c["providers"]["mesh"]["algorithms"] = json!(["none"]);
    c["rules"][0]["match"]["methods"] = json!(["get"]);
    c["rules"][0]["scopes"] = json!(["a b"]);
    assert_eq!(errors(&c).len(), 4, "{:?}", errors(&c));
}

fn remote_config() -> Value {
    json!({
        "providers": {"mesh": {
            "issuer": "https://issuer.test",
            "remote_jwks": {"http_uri": {"uri": "https://issuer.test/jwks.json", "cluster": "issuer"}}
        }},
        "rules": [{"name": "r", "match": {"path": {"template": "/t/{ticket}"}}, "providers": ["mesh"]}]
    })
}

#[test]
fn accepts_remote_keys_without_bootstrap_keys() {
    assert_eq!(errors(&remote_config()), Vec::<String>::new());
}

#[test]
fn a_provider_needs_local_or_remote_keys() {
    let mut c = config();
    c["providers"]["mesh"] = json!({"issuer": "https://issuer.test"});
    assert_eq!(
        errors(&c),
        ["`providers.mesh`: one of `local_jwks` and `remote_jwks` is required"]
    );
}

#[test]
fn names_each_bad_remote_jwks_field_and_its_value() {
    let mut c = remote_config();
    c["providers"]["mesh"]["remote_jwks"] = json!({
        "http_uri": {"uri": "ftp://issuer.test/k", "cluster": "", "timeout": "90s"},
        "cache_duration": "10m",
        "kid_refetch_interval": "0.5s",
        "max_response_bytes": 0
    });
    assert_eq!(
        errors(&c),
        [
            "`providers.mesh.remote_jwks.http_uri.uri`: `ftp://issuer.test/k` is not an http or https URI with a host",
            "`providers.mesh.remote_jwks.http_uri.cluster`: cluster cannot be empty",
            "`providers.mesh.remote_jwks.http_uri.timeout`: `90s` is longer than `60s`",
            "`providers.mesh.remote_jwks.cache_duration`: `10m` is not a duration such as `5s`",
            "`providers.mesh.remote_jwks.kid_refetch_interval`: `0.5s` is shorter than `1s`",
            "`providers.mesh.remote_jwks.max_response_bytes`: `0` is outside 1..=4194304",
        ]
    );
}

#[test]
fn remote_jwks_takes_one_source() {
    let mut c = remote_config();
    c["providers"]["mesh"]["remote_jwks"]["discovery"] = json!({"cluster": "issuer"});
    assert_eq!(
        errors(&c),
        ["`providers.mesh.remote_jwks`: exactly one of `http_uri` and `discovery` is required"]
    );
}

#[test]
fn refuses_a_trust_domain_that_is_not_a_name() {
    let mut c = remote_config();
    c["providers"]["mesh"]["trust_domain"] = json!("Prod.acme/x");
    assert_eq!(
        errors(&c),
        ["`providers.mesh.trust_domain`: `Prod.acme/x` is not a SPIFFE trust domain name"]
    );
}

#[test]
fn a_spiffe_bundle_key_in_local_jwks_needs_a_trust_domain() {
    let mut c = config();
    let mut key = ec_key();
    key["use"] = json!("jwt-svid");
    c["providers"]["mesh"]["local_jwks"]["inline"]["keys"] = json!([key]);
    assert_eq!(
        errors(&c),
        ["`providers.mesh.local_jwks`: no usable key: every provider needs at least one"]
    );
    c["providers"]["mesh"]["trust_domain"] = json!("prod.acme");
    assert_eq!(errors(&c), Vec::<String>::new());
}

#[test]
fn skips_keys_that_are_not_points_on_their_curve_and_says_so() {
    let mut off_curve = ec_key();
    // The same x with another y: not on P-256.
    off_curve["y"] = json!("Ny8yAdyxXr1K-xD94FfAtl_ffKOrxSX4Rgfp1J5ykGo");
    let not_ed25519 = json!({"kty": "OKP", "crv": "Ed25519", "kid": "k3",
                             "x": "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"});
    let mut c = config();
    c["providers"]["mesh"]["local_jwks"]["inline"]["keys"] =
        json!([ec_key(), off_curve, not_ed25519]);
    let (_, warnings) = Gate::new(&c.to_string()).unwrap();
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "`providers.mesh.local_jwks.keys[1]`: key cannot be used for `ES256`: `x` and `y` are not a point on P-256",
            "`providers.mesh.local_jwks.keys[2]`: key cannot be used for `EdDSA`: `x` is not a point on Ed25519",
        ]
    );
}
