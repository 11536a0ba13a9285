//! The golden scenarios of `examples/`, decided by the library itself (the first of three hosts).

use std::path::Path;

use taskgate::{Gate, Peer, Request, TokenCache, Verdict};
use taskgate_scenario::{load_examples, run, Clock, Host, Observed, PreparedRequest, Suite};

/// The decision library as a host: what a proxy would do with each decision, without a proxy.
#[derive(Default)]
struct Native {
    gate: Option<Gate>,
}

impl Host for Native {
    fn name(&self) -> &str {
        "native"
    }

    fn load(&mut self, suite: &Suite) -> Result<(), String> {
        let (gate, _warnings) = Gate::new(&suite.config).map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        self.gate = Some(gate);
        Ok(())
    }

    fn send(&mut self, prepared: &PreparedRequest, now: u64) -> Result<Observed, String> {
        let gate = self.gate.as_ref().ok_or("no suite loaded")?;
        let headers = lower(&prepared.headers);
        let request = request_of(prepared, &headers);
        let decision = gate.decide(&request, now);
        Ok(match decision.verdict {
            Verdict::Allow { remove, set } => {
                let mut upstream: Vec<(String, String)> = headers
                    .into_iter()
                    .filter(|(name, _)| {
                        !remove.contains(name) && !set.iter().any(|(n, _)| n == name)
                    })
                    .collect();
                upstream.extend(set);
                Observed {
                    status: 200,
                    reason: "allowed".to_owned(),
                    response_headers: Vec::new(),
                    upstream_headers: upstream,
                }
            }
            Verdict::Deny(reason) => {
                let mut response_headers =
                    vec![("x-taskgate-reason".to_owned(), reason.code().to_owned())];
                if let Some(challenge) = reason.www_authenticate() {
                    response_headers.push(("www-authenticate".to_owned(), challenge));
                }
                Observed {
                    status: reason.status(),
                    reason: reason.code().to_owned(),
                    response_headers,
                    upstream_headers: Vec::new(),
                }
            }
        })
    }
}

#[test]
fn every_example_scenario_gets_its_expected_decision_natively() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let suites = load_examples(&examples).expect("examples load");
    let report = run(&mut Native::default(), &suites, Clock::Fixed);
    assert!(
        report.results.len() >= 100,
        "only {} cases ran",
        report.results.len()
    );
    println!("{}", report.table());
    assert_eq!(report.failed(), 0, "{}", report.table());
}

/// The same scenarios through one cache per suite, each case twice: the second decision of every
/// case comes from the cache when its token verified the first time, and must not differ.
#[test]
fn every_example_scenario_gets_the_same_decision_from_the_token_cache() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let suites = load_examples(&examples).expect("examples load");
    let mut hits = 0;
    for suite in &suites {
        let (gate, _) = Gate::new(&suite.config).expect("example config compiles");
        let mut cache = TokenCache::default();
        for case in &suite.cases {
            let prepared = case
                .prepare_with(&suite.keys, suite.pki.as_ref(), suite.now)
                .expect("case prepares");
            let headers = lower(&prepared.headers);
            let request = request_of(&prepared, &headers);
            let uncached = gate.decide(&request, suite.now);
            let first = gate.decide_cached(&request, suite.now, &mut cache);
            let before = cache.stats().0;
            let second = gate.decide_cached(&request, suite.now, &mut cache);
            hits += cache.stats().0 - before;
            assert_eq!(first, uncached, "{}: {}", suite.name, case.name);
            assert_eq!(second, uncached, "{}: {}", suite.name, case.name);
        }
    }
    assert!(hits > 50, "only {hits} cache hits");
}

#[test]
fn a_cached_token_is_not_served_after_it_expires_or_under_another_configuration() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let suite =
        taskgate_scenario::load_suite(&examples.join("k8s-payments/scenarios.json")).unwrap();
    let case = &suite.cases[0];
    let prepared = case.prepare(&suite.keys, suite.now).unwrap();
    let headers = lower(&prepared.headers);
    let request = request_of(&prepared, &headers);
    let (gate, _) = Gate::new(&suite.config).unwrap();
    let mut cache = TokenCache::default();
    assert!(gate
        .decide_cached(&request, suite.now, &mut cache)
        .is_allow());
    assert_eq!(cache.len(), 1);
    // The first case's token expires 3570 s after the clock; past that (and the skew) it is
    // verified again and refused, not served.
    let later = suite.now + 3570 + 61;
    assert_eq!(
        gate.decide_cached(&request, later, &mut cache).code(),
        "token_expired"
    );
    assert!(gate
        .decide_cached(&request, suite.now, &mut cache)
        .is_allow());
    let stricter = suite.config.replace(
        "\"max_lifetime_seconds\": 3600",
        "\"max_lifetime_seconds\": 60",
    );
    let (other, _) = Gate::new(&stricter).unwrap();
    assert_eq!(
        other.decide_cached(&request, suite.now, &mut cache).code(),
        "lifetime_exceeded"
    );
}

fn lower(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect()
}

fn request_of<'r>(prepared: &'r PreparedRequest, headers: &'r [(String, String)]) -> Request<'r> {
    let property = |name: &str| prepared.properties.get(name).map(String::as_str);
    Request {
        method: &prepared.method,
        authority: &prepared.host,
        path: &prepared.path,
        headers,
        peer: Peer {
            uri_san: property("connection.uri_san_peer_certificate"),
            certificate_sha256: property("connection.sha256_peer_certificate_digest"),
        },
    }
}
