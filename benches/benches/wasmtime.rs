//! The per-request cost of the real release module inside the wasmtime proxy-wasm host, next to
//! the same decision made natively in the same run, so that the VM's share reads as a ratio.
//!
//! A proxy pays for the VM on every request: crossing the ABI for each header, copying the
//! headers into the module's memory, and running verification as WebAssembly instead of native
//! code. Each algorithm is measured twice per host: a first-sight token (a fresh token every
//! iteration, minted before the clock starts, as when every workload presents a new token) and
//! a repeated token (the same token every iteration, as when one workload calls again within
//! its token's lifetime, served from the verified-token cache). The native side keeps one
//! cache across requests as the module does, so both sides do the same work. A plugin update
//! (instantiation and `on_configure`) is measured at 1 and at 1,000 rules. The module is the one
//! Envoy loads, `target/taskgate.wasm`; when it is missing this prints how to build it and
//! measures nothing.

#![allow(
    clippy::expect_used,
    reason = "a benchmark whose inputs or host cannot be set up must stop, saying which and why"
)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use taskgate::TokenCache;
use taskgate_benches::{
    bearer, expect_allowed, gate, key_ring, many_rules_config, mint, one_rule_config,
    request as native_request, RuleShape, HOST, NOW, PATH,
};
use taskgate_harness::{default_module_path, Harness, LogLevel, Plugin, Request, BUILD_COMMAND};
use taskgate_scenario::KeyRing;

/// The algorithms measured, with the test key that signs each.
const ALGORITHMS: [(&str, &str); 4] = [
    ("ES256", "ec"),
    ("EdDSA", "ed"),
    ("RS256", "rsa"),
    ("PS256", "pss"),
];

/// Tokens with serials from here on are fresh: serial 0 is the repeated token.
const FIRST_FRESH_SERIAL: u64 = 1;

/// Hands out tokens never used before, minting each batch before it is timed.
struct Fresh<'k> {
    ring: &'k KeyRing,
    key: &'k str,
    next: u64,
}

impl Fresh<'_> {
    fn batch(&mut self, count: u64) -> Vec<String> {
        (0..count)
            .map(|_| {
                self.next += 1;
                mint(self.ring, self.key, self.next).expect("a fresh token")
            })
            .collect()
    }
}

/// A harness running the release module with the one-rule configuration for `key`, its clock
/// at the benchmark's `now`, dropping debug lines as Envoy does at its default `info` level.
fn harness(plugin: &Plugin, config: &str) -> Harness {
    let mut harness = Harness::with_plugin(plugin.clone());
    harness.set_log_level(LogLevel::Info);
    harness.set_time(NOW).expect("the harness clock is set");
    harness
        .configure(config)
        .expect("the release module accepts the one-rule configuration");
    harness
}

fn wasm_request(token: &str) -> Request {
    Request::get(HOST, PATH).header("authorization", &format!("Bearer {token}"))
}

/// Sends `request` once, and says why when the module did not let it through.
fn send_allowed(harness: &mut Harness, request: &Request) -> Result<(), String> {
    let exchange = harness.send(request).map_err(|e| e.to_string())?;
    if exchange.forwarded() {
        return Ok(());
    }
    let reason = exchange.response().header("x-taskgate-reason");
    Err(format!("the module denied the request: {reason:?}"))
}

fn per_algorithm(c: &mut Criterion, plugin: &Plugin, ring: &KeyRing, alg: &str, key: &str) {
    let config = one_rule_config(ring, key).expect("a one-rule configuration");
    let native = gate(&config).expect("the one-rule configuration compiles");
    let mut wasm = harness(plugin, &config);
    let repeated = mint(ring, key, 0).expect("the repeated token");
    let repeated_headers = bearer(&repeated);
    expect_allowed(&native, HOST, PATH, &repeated_headers).expect("natively allowed");
    let repeated_request = wasm_request(&repeated);
    send_allowed(&mut wasm, &repeated_request).expect("allowed by the module");
    let mut fresh = Fresh {
        ring,
        key,
        next: FIRST_FRESH_SERIAL,
    };

    let mut group = c.benchmark_group(format!("request/{alg}"));
    group.bench_function(BenchmarkId::new("wasmtime", "repeated"), |b| {
        b.iter(|| wasm.send(black_box(&repeated_request)).is_ok());
    });
    group.bench_function(BenchmarkId::new("wasmtime", "first_sight"), |b| {
        b.iter_custom(|iters| {
            let requests: Vec<Request> =
                fresh.batch(iters).iter().map(|t| wasm_request(t)).collect();
            let start = Instant::now();
            for request in &requests {
                black_box(wasm.send(request).is_ok());
            }
            start.elapsed()
        });
    });
    // The module keeps one verified-token cache per worker; natively, one per host likewise.
    let request = native_request("GET", HOST, PATH, &repeated_headers);
    let mut cache = TokenCache::default();
    native.decide_cached(&request, NOW, &mut cache);
    group.bench_function(BenchmarkId::new("native", "repeated"), |b| {
        b.iter(|| {
            native
                .decide_cached(black_box(&request), NOW, &mut cache)
                .is_allow()
        });
    });
    group.bench_function(BenchmarkId::new("native", "first_sight"), |b| {
        b.iter_custom(|iters| {
            let headers: Vec<_> = fresh.batch(iters).iter().map(|t| bearer(t)).collect();
            let start = Instant::now();
            for headers in &headers {
                let request = native_request("GET", HOST, PATH, headers);
                black_box(native.decide_cached(&request, NOW, &mut cache).is_allow());
            }
            start.elapsed()
        });
    });
    group.finish();
}

/// A plugin update: a new VM instance of the module and its `on_configure`, at 1 and at 1,000
/// rules, beside `Gate::new` natively. The difference between the two module figures is what
/// 999 more rules cost `on_configure`; the 1-rule figure is mostly instantiation.
fn configure(c: &mut Criterion, plugin: &Plugin, ring: &KeyRing) {
    let one = one_rule_config(ring, "ed").expect("a one-rule configuration");
    let many = many_rules_config(ring, "ed", 1_000, RuleShape::DistinctLeading)
        .expect("a 1,000-rule configuration");
    let mut wasm = harness(plugin, &one);
    wasm.configure(&many)
        .expect("the release module accepts the 1,000-rule configuration");
    let mut group = c.benchmark_group("configure");
    for (rules, config) in [("1_rule", &one), ("1000_rules", &many)] {
        group.bench_function(BenchmarkId::new("wasmtime", rules), |b| {
            b.iter(|| wasm.configure(black_box(config)).is_ok());
        });
        group.bench_function(BenchmarkId::new("native", rules), |b| {
            b.iter(|| taskgate::Gate::new(black_box(config)).is_ok());
        });
    }
    group.finish();
}

fn main() {
    let module = default_module_path();
    if !Path::new(&module).is_file() {
        eprintln!(
            "no release module at {}: build it with `{BUILD_COMMAND}`, then run the benchmark \
             again; nothing was measured",
            module.display()
        );
        return;
    }
    let plugin = Plugin::from_file(&module).expect("the release module compiles in wasmtime");
    let ring = key_ring().expect("test keys of examples/hostile-tokens");
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    for (alg, key) in ALGORITHMS {
        per_algorithm(&mut criterion, &plugin, &ring, alg, key);
    }
    configure(&mut criterion, &plugin, &ring);
    criterion.final_summary();
}
