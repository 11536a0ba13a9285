//! `ed25519-compact` 2 behind `Algorithm`, calling it exactly as jwt-compact's own
//! `ed25519-compact` algorithm does. (jwt-compact's type is unreachable here: with its
//! `ed25519-dalek` feature also on, `alg::Ed25519` names the dalek one.)

use std::borrow::Cow;

use ed25519_compact::{PublicKey as EdPublicKey, Signature};
use jwt_compact::Algorithm;

use crate::{Alg, NoSigningKey, PublicKey, Sig64, Verifier};

pub const NAME: &str = "ed25519-compact 2";

/// EdDSA on `ed25519-compact`.
#[derive(Debug, Clone, Copy)]
pub struct Ed25519Compact;

impl Algorithm for Ed25519Compact {
    type SigningKey = NoSigningKey;
    type VerifyingKey = EdPublicKey;
    type Signature = Sig64;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("EdDSA")
    }

    fn sign(&self, signing_key: &NoSigningKey, _: &[u8]) -> Sig64 {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &Sig64, key: &EdPublicKey, message: &[u8]) -> bool {
        key.verify(message, &Signature::new(signature.0)).is_ok()
    }
}

pub fn verifier(alg: Alg, key: &PublicKey, _: usize) -> Option<Verifier> {
    match (alg, key) {
        (Alg::EdDsa, PublicKey::Ed25519(point)) => {
            let key = EdPublicKey::from_slice(point).ok()?;
            Some(Verifier::new(NAME, alg, Ed25519Compact, key))
        }
        _ => None,
    }
}
