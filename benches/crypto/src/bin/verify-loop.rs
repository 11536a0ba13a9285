//! Verifies each fixture token N times per backend and prints the time per verification.
//! The same program runs natively and, built for `wasm32-wasip1`, inside wasmtime.
//!
//! Usage: `verify-loop [N] [BACKEND-SUBSTRING]`; prints `backend<TAB>alg<TAB>us/verify<TAB>N`.

use std::hint::black_box;
use std::time::Instant;

use taskgate_crypto::{backends, fixtures, MIN_RSA_BITS};

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let filter = args.next().unwrap_or_default();
    for backend in backends::all().iter().filter(|b| b.name.contains(&filter)) {
        for token in fixtures::TOKENS {
            let Some(verifier) = (backend.make)(token.alg, token.key, MIN_RSA_BITS) else {
                continue;
            };
            let (input, signature) = token.parts();
            if !verifier.verifies(input, &signature) {
                println!(
                    "{}\t{}\tREFUSED A VALID TOKEN",
                    backend.name,
                    token.alg.name()
                );
                continue;
            }
            for _ in 0..iterations.min(20) {
                black_box(verifier.verifies(black_box(input), black_box(&signature)));
            }
            let started = Instant::now();
            let mut accepted = 0u32;
            for _ in 0..iterations {
                accepted += u32::from(verifier.verifies(black_box(input), black_box(&signature)));
            }
            let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
            assert_eq!(accepted, iterations);
            println!(
                "{}\t{}\t{micros:.1}\t{iterations}",
                backend.name,
                token.alg.name()
            );
        }
    }
}
