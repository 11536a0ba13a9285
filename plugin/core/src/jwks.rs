//! JWKS: an issuer's published keys, each bound to one algorithm and one provider.
//!
//! A key's algorithm comes from the key (its `alg`, or the only algorithm its type allows), never
//! from a token, so a token cannot choose how it is checked. Keys that cannot be used (another
//! `use`, an unknown `kty`, `crv` or `alg`, an algorithm the provider does not accept) are skipped
//! and reported; keys that are dangerous (RSA under 2048 bits) fail the configuration.

use std::fmt;

use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use serde_json::{Map, Value};

use crate::signature::{PointAlgorithm, PointKey, RsaAlgorithm, RsaKey, RsaKeyError};

/// The signature algorithms taskgate verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Ps256,
    Es256,
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Alg::Rs256, Alg::Ps256, Alg::Es256, Alg::EdDsa];

    /// The JOSE name, compared case-sensitively as RFC 7515 requires.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Public key material, checked for its one algorithm.
enum Material {
    Rsa(RsaAlgorithm, RsaKey),
    Point(PointAlgorithm, PointKey),
}

/// One usable key.
pub struct Key {
    pub kid: Option<String>,
    pub alg: Alg,
    /// Published for JWT-SVIDs (`use: jwt-svid`) in a SPIFFE bundle.
    pub spiffe: bool,
    material: Material,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("spiffe", &self.spiffe)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// Checks `signature` over `message` with this key's own algorithm.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Rsa(alg, key) => check(alg, key, message, signature),
            Material::Point(alg, key) => check(alg, key, message, signature),
        }
    }
}

fn check<A: Algorithm>(alg: &A, key: &A::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    // A fixed-length signature of another length (a DER-encoded ECDSA signature, say) is refused
    // before it is parsed.
    if let Some(expected) = A::Signature::LENGTH {
        if signature.len() != expected.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(signature) => alg.verify_signature(&signature, key, message),
        Err(_) => false,
    }
}

/// A provider's usable keys.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

impl KeySet {
    /// Keys that may check a token with this `kid` (any key when the token has none) and `alg`.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Alg,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys
            .iter()
            .filter(move |key| key.alg == alg && (kid.is_none() || key.kid.as_deref() == kid))
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }
}

/// Why one key of a JWKS was left out or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIssue {
    /// Index of the key in `keys`.
    pub index: usize,
    pub message: String,
    /// Skipped keys are reported; fatal ones fail the configuration.
    pub fatal: bool,
}

/// Parses a JWKS document, keeping the keys usable with `accepted` algorithms.
pub fn parse(jwks: &Value, accepted: &[Alg]) -> Result<(KeySet, Vec<KeyIssue>), String> {
    parse_with(jwks, accepted, false)
}

/// Like [`parse`]; with `spiffe`, keys of a SPIFFE bundle (`use: jwt-svid`) are kept too.
pub fn parse_with(
    jwks: &Value,
    accepted: &[Alg],
    spiffe: bool,
) -> Result<(KeySet, Vec<KeyIssue>), String> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "a JWKS must be an object with a `keys` array".to_owned())?;
    let mut set = KeySet::default();
    let mut issues = Vec::new();
    for (index, entry) in keys.iter().enumerate() {
        match parse_key(entry, accepted, spiffe) {
            Ok(key) => set.keys.push(key),
            Err((message, fatal)) => issues.push(KeyIssue {
                index,
                message,
                fatal,
            }),
        }
    }
    Ok((set, issues))
}

type KeyError = (String, bool);

fn skip(message: String) -> KeyError {
    (message, false)
}

fn parse_key(entry: &Value, accepted: &[Alg], spiffe: bool) -> Result<Key, KeyError> {
    let Some(fields) = entry.as_object() else {
        return Err(skip("key is not a JSON object".to_owned()));
    };
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    let svid = match text("use") {
        None | Some("sig") => false,
        Some("jwt-svid") if spiffe => true,
        Some("jwt-svid") => {
            return Err(skip(
                "key `use` is `jwt-svid`, which needs the provider's `trust_domain`".to_owned(),
            ))
        }
        Some(usage) => return Err(skip(format!("key `use` is `{usage}`, not `sig`"))),
    };
    let kty = text("kty").unwrap_or_default();
    let alg = key_alg(fields, kty)?;
    if !accepted.contains(&alg) {
        return Err(skip(format!(
            "key algorithm `{alg}` is not accepted by the provider"
        )));
    }
    let jwk: JsonWebKey<'_> = serde_json::from_value(entry.clone())
        .map_err(|e| skip(format!("key cannot be read: {e}")))?;
    let unusable = |e: &dyn fmt::Display| skip(format!("key cannot be used for `{alg}`: {e}"));
    let material = match (alg, &jwk) {
        (
            Alg::Rs256 | Alg::Ps256,
            JsonWebKey::Rsa {
                modulus,
                public_exponent,
                ..
            },
        ) => {
            let key = RsaKey::new(modulus, public_exponent).map_err(|e| match e {
                RsaKeyError::TooShort(_) => (e.to_string(), true),
                _ => unusable(&e),
            })?;
            let rsa = if alg == Alg::Rs256 {
                RsaAlgorithm::RS256
            } else {
                RsaAlgorithm::PS256
            };
            Material::Rsa(rsa, key)
        }
        (Alg::Es256, JsonWebKey::EllipticCurve { curve, x, y, .. }) if curve == "P-256" => {
            let key = PointKey::p256(x, y).map_err(|e| unusable(&e))?;
            Material::Point(PointAlgorithm::ES256, key)
        }
        (Alg::EdDsa, JsonWebKey::KeyPair { curve, x, .. }) if curve == "Ed25519" => {
            let key = PointKey::ed25519(x).map_err(|e| unusable(&e))?;
            Material::Point(PointAlgorithm::EDDSA, key)
        }
        _ => return Err(unusable(&"the key's type does not fit its algorithm")),
    };
    Ok(Key {
        kid: text("kid").map(str::to_owned),
        alg,
        spiffe: svid,
        material,
    })
}

/// The algorithm a key is for: its `alg` when present, else the one its type and curve imply
/// (RSA without `alg` is taken as `RS256`, which is what issuers that omit it use).
fn key_alg(fields: &Map<String, Value>, kty: &str) -> Result<Alg, KeyError> {
    let crv = fields.get("crv").and_then(Value::as_str);
    let implied = match (kty, crv) {
        ("RSA", _) => Alg::Rs256,
        ("EC", Some("P-256")) => Alg::Es256,
        ("OKP", Some("Ed25519")) => Alg::EdDsa,
        ("EC" | "OKP", Some(crv)) => {
            return Err(skip(format!("key curve `{crv}` is not supported")))
        }
        ("EC" | "OKP", None) => return Err(skip("key has no `crv`".to_owned())),
        (kty, _) => return Err(skip(format!("key type `{kty}` is not supported"))),
    };
    let Some(named) = fields.get("alg") else {
        return Ok(implied);
    };
    let name = named.as_str().unwrap_or_default();
    let alg = Alg::from_name(name)
        .ok_or_else(|| skip(format!("key algorithm `{name}` is not supported")))?;
    let fits = match alg {
        Alg::Rs256 | Alg::Ps256 => implied == Alg::Rs256,
        other => other == implied,
    };
    if !fits {
        return Err(skip(format!(
            "key algorithm `{name}` does not fit key type `{kty}`"
        )));
    }
    Ok(alg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ec_key(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": kid,
               "x": "BGrQPIWhB55ft4_QrqmZyinsCxCN6Wlu7y1P9CAVIm8",
               "y": "Ny8yAdyxXr1K-xD94FfAtl_ffKOrxSX4Rgfp1J5ykGs"})
    }

    #[test]
    fn skips_keys_of_unknown_type_curve_algorithm_or_use_and_keeps_the_rest() {
        let jwks = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "EC", "crv": "P-256", "alg": "ES384", "x": "AA", "y": "AA"},
            {"kty": "EC", "crv": "P-256", "use": "enc", "x": "AA", "y": "AA"},
            ec_key("good"),
        ]});
        let (set, issues) = parse(&jwks, &Alg::ALL).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].kid.as_deref(), Some("good"));
        assert_eq!(set.keys[0].alg, Alg::Es256);
        assert_eq!(
            issues.iter().map(|i| i.index).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert!(issues.iter().all(|i| !i.fatal));
    }

    #[test]
    fn skips_a_key_whose_algorithm_the_provider_does_not_accept() {
        let (set, issues) = parse(&json!({"keys": [ec_key("a")]}), &[Alg::Rs256]).unwrap();
        assert!(set.keys.is_empty());
        assert_eq!(
            issues[0].message,
            "key algorithm `ES256` is not accepted by the provider"
        );
    }

    #[test]
    fn refuses_a_jwks_without_keys() {
        assert!(parse(&json!({"key": []}), &Alg::ALL).is_err());
    }

    #[test]
    fn rejects_signatures_of_the_wrong_length_before_parsing_them() {
        let (set, _) = parse(&json!({"keys": [ec_key("a")]}), &Alg::ALL).unwrap();
        assert!(!set.keys[0].verifies(b"message", &[0; 70]));
        assert!(!set.keys[0].verifies(b"message", &[0; 64]));
    }
}
