//! Every hostile signature in the fixtures is refused by every compiled backend (a high-S ECDSA
//! signature may be accepted: JOSE does not require low S), and every fixture token verifies.
//! `cargo test --release --features <backends> -- --nocapture` prints the table in the README.

use taskgate_crypto::{backends, fixtures, MIN_RSA_BITS};

#[test]
fn every_backend_verifies_every_fixture_token_it_supports() {
    for backend in backends::all() {
        for token in fixtures::TOKENS {
            if let Some(verifier) = (backend.make)(token.alg, token.key, MIN_RSA_BITS) {
                let (input, signature) = token.parts();
                assert!(
                    verifier.verifies(input, &signature),
                    "{} {:?}",
                    backend.name,
                    token.alg
                );
            }
        }
    }
}

#[test]
fn every_backend_refuses_every_hostile_signature() {
    let mut failures = Vec::new();
    for backend in backends::all() {
        for hostile in fixtures::HOSTILE {
            let line = |outcome: &str| {
                format!(
                    "{}\t{}\t{}\t{outcome}",
                    backend.name,
                    hostile.alg.name(),
                    hostile.case
                )
            };
            // Unchecked by taskgate's 2048-bit rule: what the library itself decides.
            let library = (backend.make)(hostile.alg, hostile.key, 0).map(|verifier| {
                verifier.verifies(hostile.signing_input.as_bytes(), hostile.signature)
            });
            let taskgate = (backend.make)(hostile.alg, hostile.key, MIN_RSA_BITS).map(|verifier| {
                verifier.verifies(hostile.signing_input.as_bytes(), hostile.signature)
            });
            let describe = |result: Option<bool>| match result {
                None => "key refused",
                Some(true) => "ACCEPTED",
                Some(false) => "refused",
            };
            let supported = fixtures::TOKENS
                .iter()
                .find(|token| token.alg == hostile.alg)
                .and_then(|token| (backend.make)(token.alg, token.key, 0))
                .is_some();
            if !supported {
                continue;
            }
            println!(
                "{}",
                line(&format!(
                    "library: {}; with taskgate's key check: {}",
                    describe(library),
                    describe(taskgate)
                ))
            );
            if taskgate == Some(true) && !hostile.may_accept {
                failures.push(line("accepted"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "accepted hostile signatures:\n{}",
        failures.join("\n")
    );
}
