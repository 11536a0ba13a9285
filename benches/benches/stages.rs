//! Each stage of a decision, natively: framing, verification per algorithm, rule matching as the
//! rule count grows, the whole decision for each example suite, and compiling a configuration.
//!
//! Inside a proxy every microsecond is paid on every request, so each stage is measured on its
//! own to show where a request's time goes: signature verification should dominate, framing and
//! the rule scan should be small beside it, and a linear scan over rules should show as cost
//! growing with the number of rules a request passes before the one that covers it. Compiling
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
use taskgate::{Request, Verdict};
use taskgate_benches::{
    bearer, expect_allowed, gate, key_ring, last_rule_path, many_rules_config, mint,
    one_rule_config, ALGORITHMS, HOST, NOW, PATH,
};
use taskgate_scenario::load_examples;

/// The configured default cap on token size.
const MAX_TOKEN_BYTES: usize = 8192;

/// Rule counts for the scan: a small policy, a large one, and one far past any real policy.
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
        let request = Request {
            method: "GET",
            authority: HOST,
            path: PATH,
            headers: &headers,
        };
        group.bench_function(alg, |b| {
            b.iter(|| gate.decide(black_box(&request), NOW).is_allow());
        });
    }
    group.finish();
}

/// The rule scan alone (every route tried until one covers the request, as the gate walks
/// them), and the whole decision around it, with the covering rule last.
fn rule_match(c: &mut Criterion) {
    let ring = key_ring().expect("test keys of examples/hostile-tokens");
    let token = mint(&ring, "ed", 0).expect("an EdDSA token");
    let headers = bearer(&token);
    let mut group = c.benchmark_group("rule_match");
    for count in RULE_COUNTS {
        let config = many_rules_config(&ring, "ed", count).expect("a many-rule configuration");
        let gate = gate(&config).expect("the many-rule configuration compiles");
        let path = last_rule_path(count);
        expect_allowed(&gate, HOST, &path, &headers).expect("the last rule allows the request");
        let request = Request {
            method: "GET",
            authority: HOST,
            path: &path,
            headers: &headers,
        };
        let rules = &gate.plan().rules;
        group.bench_with_input(BenchmarkId::new("scan", count), &request, |b, request| {
            b.iter(|| {
                rules
                    .iter()
                    .position(|rule| rule.route.matches(black_box(request)).is_some())
            });
        });
        group.bench_with_input(BenchmarkId::new("decide", count), &request, |b, request| {
            b.iter(|| gate.decide(black_box(request), NOW).is_allow());
        });
    }
    group.finish();
}

/// The first allowed case of every example suite, decided as the golden test decides it.
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
        let gate = gate(&suite.config).expect("the suite's configuration compiles");
        let prepared = case
            .prepare(&suite.keys, suite.now)
            .expect("the case's tokens mint");
        let headers: Vec<(String, String)> = prepared
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        let request = Request {
            method: &prepared.method,
            authority: &prepared.host,
            path: &prepared.path,
            headers: &headers,
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

/// `Gate::new` on a configuration of 1,000 rules: the work of each plugin update.
fn compile(c: &mut Criterion) {
    let ring = key_ring().expect("test keys of examples/hostile-tokens");
    let config = many_rules_config(&ring, "ed", 1_000).expect("a 1,000-rule configuration");
    gate(&config).expect("the 1,000-rule configuration compiles");
    c.bench_function("compile/1000_rules", |b| {
        b.iter(|| taskgate::Gate::new(black_box(&config)).is_ok());
    });
}

criterion_group!(benches, framing, verification, rule_match, suites, compile);
criterion_main!(benches);
