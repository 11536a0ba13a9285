//! `ring` 0.17 behind `Algorithm`. ring parses the public key on every call (it has no parsed
//! public-key type for these algorithms), so that cost is in its figures; it refuses RSA keys
//! under 2048 bits by itself.

use std::borrow::Cow;

use jwt_compact::Algorithm;
use ring::signature::{
    RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm,
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
};

use crate::{Alg, NoSigningKey, PublicKey, Sig64, VarSig, Verifier};

pub const NAME: &str = "ring 0.17";

/// RS256 or PS256 on ring.
#[derive(Debug, Clone, Copy)]
pub struct RingRsa {
    name: &'static str,
    params: &'static RsaParameters,
}

impl Algorithm for RingRsa {
    type SigningKey = NoSigningKey;
    type VerifyingKey = RsaPublicKeyComponents<Vec<u8>>;
    type Signature = VarSig;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }

    fn sign(&self, signing_key: &NoSigningKey, _: &[u8]) -> VarSig {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &VarSig,
        key: &RsaPublicKeyComponents<Vec<u8>>,
        message: &[u8],
    ) -> bool {
        key.verify(self.params, message, &signature.0).is_ok()
    }
}

/// ES256 (fixed `r || s`) or EdDSA on ring.
#[derive(Debug, Clone, Copy)]
pub struct RingFixed {
    name: &'static str,
    algorithm: &'static dyn VerificationAlgorithm,
}

impl Algorithm for RingFixed {
    type SigningKey = NoSigningKey;
    type VerifyingKey = Vec<u8>;
    type Signature = Sig64;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }

    fn sign(&self, signing_key: &NoSigningKey, _: &[u8]) -> Sig64 {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &Sig64, key: &Vec<u8>, message: &[u8]) -> bool {
        UnparsedPublicKey::new(self.algorithm, key)
            .verify(message, &signature.0)
            .is_ok()
    }
}

pub fn verifier(alg: Alg, key: &PublicKey, min_rsa_bits: usize) -> Option<Verifier> {
    match (alg, key) {
        (Alg::Rs256 | Alg::Ps256, PublicKey::Rsa { n, e }) => {
            if key.rsa_bits()? < min_rsa_bits {
                return None;
            }
            let (name, params) = if alg == Alg::Rs256 {
                ("RS256", &RSA_PKCS1_2048_8192_SHA256)
            } else {
                ("PS256", &RSA_PSS_2048_8192_SHA256)
            };
            let key = RsaPublicKeyComponents {
                n: n.to_vec(),
                e: e.to_vec(),
            };
            Some(Verifier::new(NAME, alg, RingRsa { name, params }, key))
        }
        (Alg::Es256, PublicKey::P256(point)) => {
            let algorithm = RingFixed {
                name: "ES256",
                algorithm: &ECDSA_P256_SHA256_FIXED,
            };
            Some(Verifier::new(NAME, alg, algorithm, point.to_vec()))
        }
        (Alg::EdDsa, PublicKey::Ed25519(point)) => {
            let algorithm = RingFixed {
                name: "EdDSA",
                algorithm: &ED25519,
            };
            Some(Verifier::new(NAME, alg, algorithm, point.to_vec()))
        }
        _ => None,
    }
}
