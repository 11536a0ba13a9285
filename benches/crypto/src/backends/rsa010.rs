//! `rsa` 0.10 (crypto-bigint, Montgomery form precomputed with the key) behind `Algorithm`.

use std::borrow::Cow;

use jwt_compact::Algorithm;
use rsa010::sha2::{Digest, Sha256};
use rsa010::{BoxedUint, Pkcs1v15Sign, Pss, PublicKey as RsaPublicKey};

use crate::{Alg, NoSigningKey, PublicKey, VarSig, Verifier};

pub const NAME: &str = "rsa 0.10";

/// RS256 or PS256 on `rsa` 0.10.
#[derive(Debug, Clone, Copy)]
pub struct Rsa010 {
    pss: bool,
}

impl Algorithm for Rsa010 {
    type SigningKey = NoSigningKey;
    type VerifyingKey = RsaPublicKey;
    type Signature = VarSig;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(if self.pss { "PS256" } else { "RS256" })
    }

    fn sign(&self, signing_key: &NoSigningKey, _: &[u8]) -> VarSig {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &VarSig, key: &RsaPublicKey, message: &[u8]) -> bool {
        let digest = Sha256::digest(message);
        if self.pss {
            // RFC 7518 § 3.5: the salt is as long as the hash.
            key.verify(Pss::<Sha256>::new_with_salt(32), &digest, &signature.0)
                .is_ok()
        } else {
            key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature.0)
                .is_ok()
        }
    }
}

pub fn verifier(alg: Alg, key: &PublicKey, min_rsa_bits: usize) -> Option<Verifier> {
    let PublicKey::Rsa { n, e } = key else {
        return None;
    };
    let pss = match alg {
        Alg::Rs256 => false,
        Alg::Ps256 => true,
        _ => return None,
    };
    let n = BoxedUint::from_be_slice_vartime(n);
    let e = BoxedUint::from_be_slice_vartime(e);
    let key =
        RsaPublicKey::new_with_size_limits(n, e, min_rsa_bits..=RsaPublicKey::MAX_SIZE).ok()?;
    Some(Verifier::new(NAME, alg, Rsa010 { pss }, key))
}
