//! The golden scenarios of `examples/`, decided by the library itself (the first of three hosts).

use std::path::Path;

use taskgate::{Gate, Peer, Request, Verdict};
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
        let headers: Vec<(String, String)> = prepared
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        let property = |name: &str| prepared.properties.get(name).map(String::as_str);
        let request = Request {
            method: &prepared.method,
            authority: &prepared.host,
            path: &prepared.path,
            headers: &headers,
            peer: Peer {
                uri_san: property("connection.uri_san_peer_certificate"),
                certificate_sha256: property("connection.sha256_peer_certificate_digest"),
            },
        };
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
