//! Each stage of a decision, natively: framing, verification per algorithm, rule matching as the
//! rule count grows, the whole decision for each example suite, and compiling a configuration.
//!
//! Inside a proxy every microsecond is paid on every request, so each stage is measured on its
//! own to show where a request's time goes: signature verification should dominate, framing and
//! rule matching should be small beside it, and rules the rule index cannot tell apart should
//! show their linear scan as cost growing with the rules a request passes first. Compiling
//! is paid once per configuration update, not per request, and is measured at a size a large
//! mesh could push. The decisions run at a fixed clock inside the tokens' validity, and every
//! input is checked to be allowed before it is timed, so that no figure measures an early deny.

#![allow(
    clippy::expect_used,
    reason = "a benchmark whose inputs cannot be built must stop, saying which input and why"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use taskgate::framing::frame;
use taskgate::{Peer, Request, TokenCache, Verdict};
use taskgate_benches::{
    bearer, expect_allowed, gate, key_ring, many_rules_config, mint, one_rule_config, request,
    RuleShape, ALGORITHMS, HOST, NOW, PATH,
};
use taskgate_scenario::load_examples;

/// The configured default cap on token size.
const MAX_TOKEN_BYTES: usize = 8192;

/// Rule counts: a small policy, a large one, and one far past any real policy.
const RULE_COUNTS: [usize; 3] = [10, 1_000, 10_000];

/// Splitting a real ES256 token and decoding its header and claims as strict JSON.
fn framing(c: &mut Criterion) {
    let ring = key_ring().expect("test keys of examples/hostile-tokens");
    let token = mint(&ring, "ec", 0).expect("an ES256 token");
    frame(&token, MAX_TOKEN_BYTES).expect("the minted token is well framed");
    c.bench_function("framing/ES256", |b| {
        b.iter(|| frame(black_box(&token), MAX_TOKEN_BYTES).is_ok());
    });
}

/// A whole decision with a one-rule configuration, so verification is nearly all of it.
fn verification(c: &mut Criterion) {
    let ring = key_ring().expect("test keys of examples/hostile-tokens");
    let mut group = c.benchmark_group("verify");
    for (alg, key) in ALGORITHMS {
        let config = one_rule_config(&ring, key).expect("a one-rule configuration");
        let gate = gate(&config).expect("the one-rule configuration compiles");
        let token = mint(&ring, key, 0).expect("a token");
        let headers = bearer(&token);
        expect_allowed(&gate, HOST, PATH, &headers).expect("the token is allowed");
        let request = request("GET", HOST, PATH, &headers);
        group.bench_function(alg, |b| {
            b.iter(|| gate.decide(black_box(&request), NOW).is_allow());
        });
    }
    group.finish();
}

/// The rules' share of a decision as the rule count grows, with the covering rule last. The
/// token comes from a warm verified-token cache, so what is left of the decision is finding the
/// token, the cache lookup and the rules: once with rules the index tells apart by their leading
/// segment, once with rules it cannot tell apart, which it must match one by one.
fn rule_match(c: &mut Criterion) {
    let ring = key_ring().expect("test keys of examples/hostile-tokens");
    let token = mint(&ring, "ed", 0).expect("an EdDSA token");
    let headers = bearer(&token);
    let mut group = c.benchmark_group("rule_match");
    for shape in [RuleShape::DistinctLeading, RuleShape::SharedLeading] {
        for count in RULE_COUNTS {
            let config =
                many_rules_config(&ring, "ed", count, shape).expect("a many-rule configuration");
            let gate = gate(&config).expect("the many-rule configuration compiles");
            let path = shape.last_path(count);
            expect_allowed(&gate, HOST, &path, &headers).expect("the last rule allows");
            let request = request("GET", HOST, &path, &headers);
            let mut cache = TokenCache::default();
            gate.decide_cached(&request, NOW, &mut cache);
            let id = BenchmarkId::new(shape.name(), count);
            group.bench_with_input(id, &request, |b, request| {
                b.iter(|| {
                    gate.decide_cached(black_box(request), NOW, &mut cache)
                        .is_allow()
                });
            });
        }
    }
    group.finish();
}

/// The first allowed case of every example suite, decided as the golden test decides it. A
/// suite that cannot be set up is named on stderr and left out, so that one example being
/// edited does not stop the figures of the others.
fn suites(c: &mut Criterion) {
    let suites = load_examples(&taskgate_benches::examples_dir()).expect("the example suites");
    let mut group = c.benchmark_group("suite");
    for suite in &suites {
        let Some(case) = suite
            .cases
            .iter()
            .find(|case| case.expect.reason == "allowed")
        else {
            continue;
        };
        let gate = match gate(&suite.config) {
            Ok(gate) => gate,
            Err(error) => {
                eprintln!(
                    "suite/{}: configuration refused: {error}; not measured",
                    suite.name
                );
                continue;
            }
        };
        let prepared = match case.prepare_with(&suite.keys, suite.pki.as_ref(), suite.now) {
            Ok(prepared) => prepared,
            Err(error) => {
                eprintln!("suite/{}: {error}; not measured", suite.name);
                continue;
            }
        };
        let headers: Vec<(String, String)> = prepared
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        let property = |name: &str| prepared.properties.get(name).map(String::as_str);
        let request = Request {
            peer: Peer {
                uri_san: property("connection.uri_san_peer_certificate"),
                certificate_sha256: property("connection.sha256_peer_certificate_digest"),
            },
            ..request(&prepared.method, &prepared.host, &prepared.path, &headers)
        };
        let decision = gate.decide(&request, suite.now);
        if !matches!(decision.verdict, Verdict::Allow { .. }) {
            eprintln!(
                "suite/{}: case `{}` is not allowed natively ({}); not measured",
                suite.name,
                case.name,
                decision.code()
            );
            continue;
        }
        group.bench_function(&suite.name, |b| {
            b.iter(|| gate.decide(black_box(&request), suite.now).is_allow());
        });
    }
    group.finish();
}

/// `Gate::new` on a configuration of 1,000 rules (parse, validate, keys, rule index): the work
/// of each plugin update.
fn compile(c: &mut Criterion) {
    let ring = key_ring().expect("test keys of examples/hostile-tokens");
    let config = many_rules_config(&ring, "ed", 1_000, RuleShape::DistinctLeading)
        .expect("a 1,000-rule configuration");
    gate(&config).expect("the 1,000-rule configuration compiles");
    c.bench_function("compile/1000_rules", |b| {
        b.iter(|| taskgate::Gate::new(black_box(&config)).is_ok());
    });
}

criterion_group!(benches, framing, verification, rule_match, suites, compile);
criterion_main!(benches);
