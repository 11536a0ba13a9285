//! `ed25519-dalek` 3 (curve25519-dalek 5) behind `Algorithm`; `verify`, as jwt-compact calls
//! on dalek 2.

use std::borrow::Cow;

use dalek3::{Signature, Verifier as _, VerifyingKey};
use jwt_compact::Algorithm;

use crate::{Alg, NoSigningKey, PublicKey, Sig64, Verifier};

#[cfg(not(feature = "dalek3-fast"))]
pub const NAME: &str = "ed25519-dalek 3";
#[cfg(feature = "dalek3-fast")]
pub const NAME: &str = "ed25519-dalek 3 +fast";

/// EdDSA on `ed25519-dalek` 3.
#[derive(Debug, Clone, Copy)]
pub struct Ed25519v3;

impl Algorithm for Ed25519v3 {
    type SigningKey = NoSigningKey;
    type VerifyingKey = VerifyingKey;
    type Signature = Sig64;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("EdDSA")
    }

    fn sign(&self, signing_key: &NoSigningKey, _: &[u8]) -> Sig64 {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &Sig64, key: &VerifyingKey, message: &[u8]) -> bool {
        key.verify(message, &Signature::from_bytes(&signature.0))
            .is_ok()
    }
}

pub fn verifier(alg: Alg, key: &PublicKey, _: usize) -> Option<Verifier> {
    match (alg, key) {
        (Alg::EdDsa, PublicKey::Ed25519(point)) => {
            let key = VerifyingKey::from_bytes(<&[u8; 32]>::try_from(*point).ok()?).ok()?;
            Some(Verifier::new(NAME, alg, Ed25519v3, key))
        }
        _ => None,
    }
}
