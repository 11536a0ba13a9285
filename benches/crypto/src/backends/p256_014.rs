//! `p256` 0.14 (ecdsa 0.17, primefield/primeorder) behind `Algorithm`; with the
//! `p256-014-tables` feature its base-point tables are on.

use std::borrow::Cow;

use jwt_compact::Algorithm;
use p256_014::ecdsa::signature::Verifier as _;
use p256_014::ecdsa::{Signature, VerifyingKey};

use crate::{Alg, NoSigningKey, PublicKey, Sig64, Verifier};

#[cfg(not(feature = "p256-014-tables"))]
pub const NAME: &str = "p256 0.14";
#[cfg(feature = "p256-014-tables")]
pub const NAME: &str = "p256 0.14 +tables";

/// ES256 on `p256` 0.14.
#[derive(Debug, Clone, Copy)]
pub struct Es256v14;

impl Algorithm for Es256v14 {
    type SigningKey = NoSigningKey;
    type VerifyingKey = VerifyingKey;
    type Signature = Sig64;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES256")
    }

    fn sign(&self, signing_key: &NoSigningKey, _: &[u8]) -> Sig64 {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &Sig64, key: &VerifyingKey, message: &[u8]) -> bool {
        match Signature::from_slice(&signature.0) {
            Ok(signature) => key.verify(message, &signature).is_ok(),
            Err(_) => false,
        }
    }
}

pub fn verifier(alg: Alg, key: &PublicKey, _: usize) -> Option<Verifier> {
    match (alg, key) {
        (Alg::Es256, PublicKey::P256(point)) => {
            let key = VerifyingKey::from_sec1_bytes(point).ok()?;
            Some(Verifier::new(NAME, alg, Es256v14, key))
        }
        _ => None,
    }
}
