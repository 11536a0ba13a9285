//! Signature checks: `ring` behind jwt-compact's `Algorithm` trait, verify-only.
//!
//! Inside a proxy's VM the signature check is nearly the whole cost of a token seen for the first
//! time. Of the libraries compared for this (`benches/crypto/README.md`), `ring`'s portable code
//! compiled to WebAssembly verifies RS256 and PS256 in about half the time of the pure-Rust `rsa`
//! crate, ES256 faster than `p256`, and EdDSA as fast as `ed25519-dalek`, in a smaller module.
//! ring keeps no parsed public key for these algorithms, so each check parses the key's bytes
//! again; that parse is part of every measured figure. A key ring would refuse fails every check
//! exactly as a bad signature does, so keys are validated here, once, at configuration, and a bad
//! one is reported with its reason: RSA keys against ring's limits, P-256 and Ed25519 points on
//! their curves (the latter with `curve25519-dalek`, since ring has no call that decodes an
//! Edwards point alone).

use std::borrow::Cow;
use std::num::NonZeroUsize;

use jwt_compact::{Algorithm, AlgorithmSignature};
use ring::signature::{
    RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm,
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
};

/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3 requires 2048).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus ring verifies, in bits.
pub const RSA_MAX_BITS: usize = 8192;
/// Largest RSA public exponent ring verifies: 2^33 - 1, which bounds the cost of one check.
const RSA_MAX_EXPONENT: u64 = (1 << 33) - 1;

/// No signing key exists: taskgate only verifies.
#[derive(Debug)]
pub enum NoSigningKey {}

/// An RSA signature, as long as the key's modulus (ring checks the length).
#[derive(Debug)]
pub struct RsaSignature(Vec<u8>);

impl AlgorithmSignature for RsaSignature {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(Self(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// A 64-byte signature: `r || s` for ES256 (JWS never uses DER), `R || S` for EdDSA.
#[derive(Debug)]
pub struct FixedSignature([u8; 64]);

impl AlgorithmSignature for FixedSignature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(64);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(Self(<[u8; 64]>::try_from(slice)?))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// RS256 or PS256.
#[derive(Debug, Clone, Copy)]
pub struct RsaAlgorithm {
    name: &'static str,
    parameters: &'static RsaParameters,
}

impl RsaAlgorithm {
    pub const RS256: Self = Self {
        name: "RS256",
        parameters: &RSA_PKCS1_2048_8192_SHA256,
    };
    pub const PS256: Self = Self {
        name: "PS256",
        parameters: &RSA_PSS_2048_8192_SHA256,
    };
}

/// An RSA public key whose modulus and exponent are within ring's limits, without leading zeros.
#[derive(Debug)]
pub struct RsaKey(RsaPublicKeyComponents<Vec<u8>>);

impl RsaKey {
    /// Checks `n` and `e` (big-endian, as a JWK carries them) once, so that every later check
    /// with this key fails only for the signature's sake.
    pub fn new(n: &[u8], e: &[u8]) -> Result<Self, RsaKeyError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_length(n);
        if bits == 0 {
            return Err(RsaKeyError::EmptyModulus);
        }
        if bits < RSA_MIN_BITS {
            return Err(RsaKeyError::TooShort(bits));
        }
        if bits > RSA_MAX_BITS {
            return Err(RsaKeyError::TooLong(bits));
        }
        if n.last().is_none_or(|low| low & 1 == 0) {
            return Err(RsaKeyError::EvenModulus);
        }
        let exponent = match e.len() {
            1..=5 => e.iter().fold(0u64, |value, &b| (value << 8) | u64::from(b)),
            _ => return Err(RsaKeyError::Exponent),
        };
        if !(3..=RSA_MAX_EXPONENT).contains(&exponent) || exponent & 1 == 0 {
            return Err(RsaKeyError::Exponent);
        }
        Ok(Self(RsaPublicKeyComponents {
            n: n.to_vec(),
            e: e.to_vec(),
        }))
    }
}

/// Why an RSA key cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaKeyError {
    /// Shorter than [`RSA_MIN_BITS`]: dangerous, so the configuration fails.
    TooShort(usize),
    TooLong(usize),
    EmptyModulus,
    EvenModulus,
    Exponent,
}

impl std::fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort(bits) => {
                write!(
                    f,
                    "RSA key of {bits} bits is shorter than {RSA_MIN_BITS} bits"
                )
            }
            Self::TooLong(bits) => write!(
                f,
                "RSA key of {bits} bits is longer than {RSA_MAX_BITS} bits"
            ),
            Self::EmptyModulus => f.write_str("RSA modulus `n` is zero"),
            Self::EvenModulus => f.write_str("RSA modulus `n` is even"),
            Self::Exponent => {
                f.write_str("RSA exponent `e` must be odd, at least 3 and below 2^33")
            }
        }
    }
}

impl Algorithm for RsaAlgorithm {
    type SigningKey = NoSigningKey;
    type VerifyingKey = RsaKey;
    type Signature = RsaSignature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }

    fn sign(&self, signing_key: &NoSigningKey, _: &[u8]) -> RsaSignature {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &RsaSignature, key: &RsaKey, message: &[u8]) -> bool {
        key.0.verify(self.parameters, message, &signature.0).is_ok()
    }
}

/// ES256 or EdDSA: a public point and a 64-byte signature.
#[derive(Debug, Clone, Copy)]
pub struct PointAlgorithm {
    name: &'static str,
    algorithm: &'static dyn VerificationAlgorithm,
}

impl PointAlgorithm {
    pub const ES256: Self = Self {
        name: "ES256",
        algorithm: &ECDSA_P256_SHA256_FIXED,
    };
    pub const EDDSA: Self = Self {
        name: "EdDSA",
        algorithm: &ED25519,
    };
}

/// A public point: SEC1 uncompressed (`04 || x || y`, 65 bytes) for P-256, 32 bytes for Ed25519.
#[derive(Debug)]
pub struct PointKey(Vec<u8>);

impl PointKey {
    /// The P-256 point of a JWK's `x` and `y`, 32 bytes each, once it is known to be on the
    /// curve.
    pub fn p256(x: &[u8], y: &[u8]) -> Result<Self, &'static str> {
        if x.len() != 32 || y.len() != 32 {
            return Err("`x` and `y` must be 32 bytes each");
        }
        let mut sec1 = Vec::with_capacity(65);
        sec1.push(4);
        sec1.extend_from_slice(x);
        sec1.extend_from_slice(y);
        if p256_point_refused(&sec1) {
            return Err("`x` and `y` are not a point on P-256");
        }
        Ok(Self(sec1))
    }

    /// The Ed25519 point of a JWK's `x`, 32 bytes, once it is known to decode to a point.
    pub fn ed25519(x: &[u8]) -> Result<Self, &'static str> {
        let bytes = <[u8; 32]>::try_from(x).map_err(|_| "`x` must be 32 bytes")?;
        let point = curve25519_dalek::edwards::CompressedEdwardsY(bytes)
            .decompress()
            .ok_or("`x` is not a point on Ed25519")?;
        // A point of small order (the identity, say) verifies signatures anyone can make.
        if point.is_small_order() {
            return Err("`x` is a point of small order, which anyone can sign for");
        }
        Ok(Self(bytes.to_vec()))
    }
}

impl Algorithm for PointAlgorithm {
    type SigningKey = NoSigningKey;
    type VerifyingKey = PointKey;
    type Signature = FixedSignature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }

    fn sign(&self, signing_key: &NoSigningKey, _: &[u8]) -> FixedSignature {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &FixedSignature, key: &PointKey, message: &[u8]) -> bool {
        UnparsedPublicKey::new(self.algorithm, &key.0)
            .verify(message, &signature.0)
            .is_ok()
    }
}

/// Whether ring refuses `sec1` as a P-256 public key. ring has no call that only validates an
/// ECDSA public key, and a key it refuses would fail every signature check the same way a bad
/// signature does, so the point goes through the validation ring's ECDH applies to a peer's key
/// (on the curve, coordinates below the field prime), against a throwaway key. Without a source of
/// randomness for that key (a host that offers none) the point is kept unchecked: a bad one then
/// refuses its tokens as bad signatures.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn p256_point_refused(sec1: &[u8]) -> bool {
    use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
    let Ok(ours) = EphemeralPrivateKey::generate(&ECDH_P256, &ring::rand::SystemRandom::new())
    else {
        return false;
    };
    agree_ephemeral(ours, &UnparsedPublicKey::new(&ECDH_P256, sec1), |_| ()).is_err()
}

/// On `wasm32-unknown-unknown` ring has no source of randomness (it would need JavaScript's), so
/// the point is kept unchecked, as on a host without randomness.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn p256_point_refused(_sec1: &[u8]) -> bool {
    false
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

fn bit_length(n: &[u8]) -> usize {
    match n.first() {
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modulus(bits: usize) -> Vec<u8> {
        let mut n = vec![0xff; bits.div_ceil(8)];
        n[0] = 0xff >> (n.len() * 8 - bits);
        n
    }

    #[test]
    fn measures_rsa_keys_without_their_leading_zeros() {
        let mut padded = vec![0, 0];
        padded.extend(modulus(2047));
        assert_eq!(
            RsaKey::new(&padded, &[1, 0, 1]).unwrap_err(),
            RsaKeyError::TooShort(2047)
        );
        assert!(RsaKey::new(&modulus(2048), &[0, 1, 0, 1]).is_ok());
        assert_eq!(
            RsaKey::new(&[0, 0], &[3]).unwrap_err(),
            RsaKeyError::EmptyModulus,
            "skipped as malformed, not refused as short"
        );
        assert_eq!(
            RsaKey::new(&modulus(8193), &[3]).unwrap_err(),
            RsaKeyError::TooLong(8193)
        );
    }

    #[test]
    fn refuses_exponents_and_moduli_ring_would_refuse_at_every_check() {
        let n = modulus(2048);
        for e in [
            &[][..],
            &[1],
            &[2],
            &[1, 0, 0],
            &[2, 0, 0, 0, 1],
            &[1, 0, 0, 0, 0, 1],
        ] {
            assert_eq!(
                RsaKey::new(&n, e).unwrap_err(),
                RsaKeyError::Exponent,
                "{e:?}"
            );
        }
        assert!(RsaKey::new(&n, &[1, 0xff, 0xff, 0xff, 0xff]).is_ok());
        let mut even = n.clone();
        *even.last_mut().unwrap() = 0xfe;
        assert_eq!(
            RsaKey::new(&even, &[3]).unwrap_err(),
            RsaKeyError::EvenModulus
        );
    }

    /// The P-256 base point.
    const GX: &str = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
    const GY: &str = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn p256_keys_are_points_on_the_curve() {
        assert!(PointKey::p256(&hex(GX), &hex(GY)).is_ok());
        let mut y = hex(GY);
        y[31] ^= 1;
        assert_eq!(
            PointKey::p256(&hex(GX), &y).unwrap_err(),
            "`x` and `y` are not a point on P-256"
        );
        assert_eq!(
            PointKey::p256(&[1; 31], &[2; 32]).unwrap_err(),
            "`x` and `y` must be 32 bytes each"
        );
    }

    #[test]
    fn ed25519_keys_are_points_on_the_curve() {
        // RFC 8032 §7.1, test 1.
        let key = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert!(PointKey::ed25519(&key).is_ok());
        // y = 2 has no x on the curve: 2^2 - 1 over 1 + d * 2^2 is not a square mod p.
        let mut not_a_point = [0; 32];
        not_a_point[0] = 2;
        assert_eq!(
            PointKey::ed25519(&not_a_point).unwrap_err(),
            "`x` is not a point on Ed25519"
        );
        let mut identity = [0; 32];
        identity[0] = 1;
        assert_eq!(
            PointKey::ed25519(&identity).unwrap_err(),
            "`x` is a point of small order, which anyone can sign for"
        );
        assert_eq!(
            PointKey::ed25519(&key[..31]).unwrap_err(),
            "`x` must be 32 bytes"
        );
    }

    #[test]
    fn hashes_with_sha256() {
        assert_eq!(
            sha256(b"abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "FIPS 180-2 appendix B.1"
        );
    }
}
