//! Fixtures shared by the benchmarks: the test keys, configurations and tokens they measure.
//!
//! Every benchmark decides requests a real deployment would see: tokens signed by the keys of
//! `examples/hostile-tokens/keys`, minted by the same code the golden scenarios use, checked
//! against configurations written in the product's own vocabulary. Nothing here is timed; it
//! only builds inputs, and each builder reports a failure instead of stopping, so that a bench
//! decides whether a missing input ends the run.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use taskgate::{Gate, Request};
use taskgate_scenario::{KeyRing, MintSpec};

/// The clock every benchmark decides at (Unix seconds): the hostile-tokens suite's `now`.
pub const NOW: u64 = 1_796_342_400;

/// Issuer and audience of the benchmark provider.
pub const ISSUER: &str = "https://issuer.bench.test";
pub const AUDIENCE: &str = "bench-api";

/// Host and path of the request the one-rule configurations allow.
pub const HOST: &str = "api.bench.test";
pub const PATH: &str = "/api/report";

/// Signature algorithms and the test key (in `examples/hostile-tokens/keys`) that signs each.
pub const ALGORITHMS: [(&str, &str); 4] = [
    ("RS256", "rsa"),
    ("PS256", "pss"),
    ("ES256", "ec"),
    ("EdDSA", "ed"),
];

/// The workspace's `examples/` folder.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The private test keys of the hostile-tokens example.
pub fn key_ring() -> Result<KeyRing, String> {
    KeyRing::load(&examples_dir().join("hostile-tokens/keys")).map_err(|e| e.to_string())
}

/// A provider that trusts only `key`, as configuration JSON.
fn provider(ring: &KeyRing, key: &str) -> Result<Value, String> {
    Ok(json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "max_lifetime_seconds": 3600,
        "local_jwks": { "inline": ring.jwks(&[key])? },
    }))
}

/// One provider trusting `key` and one rule allowing any of its tokens on `/api/`.
pub fn one_rule_config(ring: &KeyRing, key: &str) -> Result<String, String> {
    let config = json!({
        "providers": { "main": provider(ring, key)? },
        "rules": [{
            "name": "reports",
            "match": { "methods": ["GET"], "path": { "prefix": "/api/" } },
            "providers": ["main"],
        }],
    });
    Ok(config.to_string())
}

/// How the rules of a many-rule configuration lay out their paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleShape {
    /// `/svc{i}/items/{item}`: each rule under its own leading segment, as services are, so
    /// the gate's rule index goes straight to the one rule that can cover a request.
    DistinctLeading,
    /// `/api/{tenant}/svc{i}`: every rule under the same leading segment and a parameter, so
    /// the index can rule none out and every rule is matched in order: a linear scan.
    SharedLeading,
}

impl RuleShape {
    pub fn name(self) -> &'static str {
        match self {
            Self::DistinctLeading => "distinct_leading",
            Self::SharedLeading => "shared_leading",
        }
    }

    fn template(self, i: usize) -> String {
        match self {
            Self::DistinctLeading => format!("/svc{i}/items/{{item}}"),
            Self::SharedLeading => format!("/api/{{tenant}}/svc{i}"),
        }
    }

    /// A path covered by rule `i` and by no other.
    pub fn path(self, i: usize) -> String {
        match self {
            Self::DistinctLeading => format!("/svc{i}/items/item-42"),
            Self::SharedLeading => format!("/api/acme/svc{i}"),
        }
    }

    /// A path covered by the last of `count` rules only.
    pub fn last_path(self, count: usize) -> String {
        self.path(count.saturating_sub(1))
    }
}

/// `count` rules over distinct path templates laid out as `shape` says, all trusting `key`.
pub fn many_rules_config(
    ring: &KeyRing,
    key: &str,
    count: usize,
    shape: RuleShape,
) -> Result<String, String> {
    let rules: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "name": format!("rule-{i}"),
                "match": {
                    "methods": ["GET"],
                    "path": { "template": shape.template(i) },
                },
                "providers": ["main"],
            })
        })
        .collect();
    let config = json!({ "providers": { "main": provider(ring, key)? }, "rules": rules });
    Ok(config.to_string())
}

/// A token from `key` that the benchmark provider accepts at [`NOW`]; `serial` goes into `jti`
/// so that tokens minted with different serials differ.
pub fn mint(ring: &KeyRing, key: &str, serial: u64) -> Result<String, String> {
    let spec: MintSpec = serde_json::from_value(json!({
        "key": key,
        "claims": {
            "iss": ISSUER,
            "sub": "spiffe://bench.test/ns/reports/sa/reporter",
            "aud": AUDIENCE,
            "jti": format!("bench-{serial}"),
        },
    }))
    .map_err(|e| e.to_string())?;
    spec.mint(ring, NOW).map_err(|e| e.to_string())
}

/// The `Authorization` header carrying `token`, as the gate reads it.
pub fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("authorization".to_owned(), format!("Bearer {token}"))]
}

/// A request over a connection without a client certificate.
pub fn request<'r>(
    method: &'r str,
    authority: &'r str,
    path: &'r str,
    headers: &'r [(String, String)],
) -> Request<'r> {
    Request::new(method, authority, path, headers)
}

/// Compiles `config`, refusing one with errors.
pub fn gate(config: &str) -> Result<Gate, String> {
    Gate::new(config)
        .map(|(gate, _warnings)| gate)
        .map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
}

/// Decides `GET host path` with `headers` at [`NOW`], and says why when it is not allowed: a
/// benchmark of an allowed request that is in fact denied would measure the wrong path.
pub fn expect_allowed(
    gate: &Gate,
    host: &str,
    path: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let decision = gate.decide(&request("GET", host, path, headers), NOW);
    if decision.is_allow() {
        Ok(())
    } else {
        Err(format!(
            "`GET {host}{path}` was denied: {}",
            decision.code()
        ))
    }
}
