//! jwt-compact's own `Es256` on `p256` 0.13: what taskgate ships.

use jwt_compact::alg::Es256;
use p256_013::ecdsa::VerifyingKey;

use crate::{Alg, PublicKey, Verifier};

pub const NAME: &str = "jwt-compact p256 0.13";

pub fn verifier(alg: Alg, key: &PublicKey, _: usize) -> Option<Verifier> {
    match (alg, key) {
        (Alg::Es256, PublicKey::P256(point)) => {
            let key = VerifyingKey::from_sec1_bytes(point).ok()?;
            Some(Verifier::new(NAME, alg, Es256, key))
        }
        _ => None,
    }
}
