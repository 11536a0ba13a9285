//! jwt-compact's own `Ed25519` on `ed25519-dalek` 2: what taskgate ships (without `fast`).

use dalek2::VerifyingKey;
use jwt_compact::alg::Ed25519;

use crate::{Alg, PublicKey, Verifier};

#[cfg(not(feature = "dalek2-fast"))]
pub const NAME: &str = "jwt-compact ed25519-dalek 2";
#[cfg(feature = "dalek2-fast")]
pub const NAME: &str = "jwt-compact ed25519-dalek 2 +fast";

pub fn verifier(alg: Alg, key: &PublicKey, _: usize) -> Option<Verifier> {
    match (alg, key) {
        (Alg::EdDsa, PublicKey::Ed25519(point)) => {
            let key = VerifyingKey::from_bytes(<&[u8; 32]>::try_from(*point).ok()?).ok()?;
            Some(Verifier::new(NAME, alg, Ed25519, key))
        }
        _ => None,
    }
}
