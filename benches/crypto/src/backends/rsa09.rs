//! jwt-compact's own `Rsa` algorithm on `rsa` 0.9 (num-bigint-dig): what taskgate ships.

use jwt_compact::alg::{Rsa, RsaPublicKey};
use rsa09::traits::PublicKeyParts;
use rsa09::BigUint;

use crate::{Alg, PublicKey, Verifier};

pub const NAME: &str = "jwt-compact rsa 0.9";

pub fn verifier(alg: Alg, key: &PublicKey, min_rsa_bits: usize) -> Option<Verifier> {
    let PublicKey::Rsa { n, e } = key else {
        return None;
    };
    let algorithm = match alg {
        Alg::Rs256 => Rsa::rs256(),
        Alg::Ps256 => Rsa::ps256(),
        _ => return None,
    };
    let key = RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e)).ok()?;
    if key.n().bits() < min_rsa_bits {
        return None;
    }
    Some(Verifier::new(NAME, alg, algorithm, key))
}
