//! Test keys and the tokens minted from them, honest and hostile.
//!
//! Keys live in an example's `keys/` folder as private JWKs (`<name>.jwk.json`, with `kid` and
//! `alg`); they exist only to sign test tokens and protect nothing. Tokens are laid out by hand
//! (header, payload, signature) rather than through a JWT library's happy path, because the
//! hostile cases need what no well-behaved issuer produces: padding, two segments, a payload that
//! is not UTF-8, a DER signature, a zero ECDSA signature, an HMAC keyed with a public key. The
//! signatures themselves always come from the crypto crates.

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{Pki, ScenarioError};

/// The private half of a test key, by algorithm.
enum Signer {
    Rsa(Rsa, Box<RsaPrivateKey>),
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

/// One test key: its name, `kid`, algorithm and signing half.
pub struct TestKey {
    pub name: String,
    pub kid: String,
    pub alg: String,
    signer: Signer,
    /// The public JWK with `kid`, `alg` and `use`, as an issuer would publish it.
    pub public_jwk: Value,
}

impl std::fmt::Debug for TestKey {
    // The private half stays out of debug output, test key or not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("name", &self.name)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// Reads a private JWK carrying `kid` and `alg`.
    pub fn from_jwk(name: &str, jwk: &Value) -> Result<Self, String> {
        let field = |key: &str| {
            jwk.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("key `{name}` has no string `{key}`"))
        };
        let kid = field("kid")?;
        let alg = field("alg")?;
        let parsed: JsonWebKey<'_> =
            serde_json::from_value(jwk.clone()).map_err(|e| format!("key `{name}`: {e}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("key `{name}`: {e}");
        let signer = match alg.as_str() {
            "RS256" | "PS256" => {
                let algorithm: Rsa = alg.parse().map_err(|e| bad(&e))?;
                let key = RsaPrivateKey::try_from(&parsed).map_err(|e| bad(&e))?;
                Signer::Rsa(algorithm, Box::new(key))
            }
            "ES256" => {
                Signer::Es256(p256::ecdsa::SigningKey::try_from(&parsed).map_err(|e| bad(&e))?)
            }
            "EdDSA" => {
                Signer::EdDsa(ed25519_dalek::SigningKey::try_from(&parsed).map_err(|e| bad(&e))?)
            }
            other => return Err(format!("key `{name}`: unsupported `alg` `{other}`")),
        };
        let mut public_jwk =
            serde_json::to_value(parsed.to_verifying_key()).map_err(|e| bad(&e))?;
        if let Value::Object(map) = &mut public_jwk {
            map.insert("kid".into(), kid.clone().into());
            map.insert("alg".into(), alg.clone().into());
            map.insert("use".into(), "sig".into());
        }
        Ok(Self {
            name: name.to_owned(),
            kid,
            alg,
            signer,
            public_jwk,
        })
    }

    /// Makes a new key pair and returns its private JWK (with `kid` and `alg`).
    pub fn generate(alg: &str, kid: &str) -> Result<Value, String> {
        let mut rng = rand_core::OsRng;
        let mut jwk = match alg {
            "RS256" | "PS256" => {
                let (private, _) =
                    Rsa::generate(&mut rng, jwt_compact::alg::ModulusBits::TwoKibibytes)
                        .map_err(|e| e.to_string())?;
                serde_json::to_value(JsonWebKey::from(private.as_ref()))
            }
            "ES256" => {
                let key = p256::ecdsa::SigningKey::random(&mut rng);
                serde_json::to_value(JsonWebKey::from(&key))
            }
            "EdDSA" => {
                let key = ed25519_dalek::SigningKey::generate(&mut rng);
                serde_json::to_value(JsonWebKey::from(&key))
            }
            other => return Err(format!("cannot generate a key for `alg` `{other}`")),
        }
        .map_err(|e| e.to_string())?;
        if let Value::Object(map) = &mut jwk {
            map.insert("kid".into(), kid.into());
            map.insert("alg".into(), alg.into());
        }
        Ok(jwk)
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.signer {
            Signer::Rsa(alg, key) => alg.sign(key, message).as_bytes().into_owned(),
            Signer::Es256(key) => Es256.sign(key, message).to_bytes().to_vec(),
            Signer::EdDsa(key) => Ed25519.sign(key, message).as_bytes().into_owned(),
        }
    }

    fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        match &self.signer {
            Signer::Es256(key) => Ok(Es256.sign(key, message).to_der().as_bytes().to_vec()),
            _ => Err(format!("key `{}` is not an ECDSA key", self.name)),
        }
    }
}

/// The test keys of one example, by name.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: BTreeMap<String, TestKey>,
}

impl KeyRing {
    /// Loads every `*.jwk.json` of `dir`; a missing folder is an empty ring.
    pub fn load(dir: &Path) -> Result<Self, ScenarioError> {
        let mut ring = Self::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(ring);
        };
        for entry in entries {
            let path = entry.map_err(|e| ScenarioError::at(dir, e))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".jwk.json"))
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path).map_err(|e| ScenarioError::at(&path, e))?;
            let jwk: Value =
                serde_json::from_str(&text).map_err(|e| ScenarioError::at(&path, e))?;
            let key = TestKey::from_jwk(name, &jwk).map_err(|e| ScenarioError::at(&path, e))?;
            ring.keys.insert(name.to_owned(), key);
        }
        Ok(ring)
    }

    pub fn get(&self, name: &str) -> Result<&TestKey, String> {
        self.keys
            .get(name)
            .ok_or_else(|| format!("no test key named `{name}`"))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The public JWKS of the named keys (all keys when `names` is empty).
    pub fn jwks(&self, names: &[&str]) -> Result<Value, String> {
        let keys = if names.is_empty() {
            self.keys.values().map(|k| k.public_jwk.clone()).collect()
        } else {
            names
                .iter()
                .map(|name| self.get(name).map(|k| k.public_jwk.clone()))
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(serde_json::json!({ "keys": keys }))
    }
}

/// Seconds relative to the clock for the registered time claims.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Times {
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
}

/// How the signature segment is made.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SignatureSpec {
    /// Signed by the token's own key.
    #[default]
    Valid,
    /// No signature at all (`alg: none` style).
    Empty,
    /// HMAC-SHA256 keyed with the key's public JWK text: the classic algorithm confusion.
    HmacWithPublicKey,
    /// Signed by another test key while naming this key's `kid`.
    OtherKey(String),
    /// An ECDSA signature whose `r` and `s` are both zero.
    ZeroEcdsa,
    /// A valid ECDSA signature in ASN.1 DER instead of the JWS `r || s` form.
    DerEcdsa,
    /// The valid signature with its last bit flipped.
    Flipped,
}

/// How the three segments are put together.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Framing {
    #[default]
    Compact,
    /// Base64 `=` padding on the segments.
    Padded,
    /// Header and payload only.
    TwoSegments,
    /// A payload whose bytes are not UTF-8 (signed properly).
    NonUtf8Payload,
}

/// A token to mint: which key, which header and claims, and what to do wrong.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintSpec {
    /// Name of the test key that signs it (and whose `kid` the header names).
    pub key: String,
    /// `alg` written in the header; the key's own algorithm when absent.
    #[serde(default)]
    pub alg: Option<String>,
    /// Header members merged over `alg`, `typ: JWT` and the key's `kid`; `null` removes one.
    #[serde(default)]
    pub header: Map<String, Value>,
    #[serde(default)]
    pub claims: Map<String, Value>,
    /// Time claims relative to the clock; `{"iat": -5, "exp": 300}` when absent.
    #[serde(default)]
    pub times: Option<Times>,
    /// The payload as literal JSON text, with `{{now}}`, `{{now+N}}` and `{{now-N}}` replaced by
    /// the clock; used instead of `claims` for what serde cannot write (duplicate members,
    /// `1e309`).
    #[serde(default)]
    pub payload_text: Option<String>,
    /// Adds a claim `nested` holding this many nested arrays.
    #[serde(default)]
    pub nest_depth: Option<usize>,
    #[serde(default)]
    pub signature: SignatureSpec,
    #[serde(default)]
    pub framing: Framing,
    /// Binds the token to this peer's certificate: adds `cnf.x5t#S256` (RFC 8705).
    #[serde(default)]
    pub cnf_peer: Option<String>,
}

impl MintSpec {
    /// Builds the token text for the clock `now`.
    pub fn mint(&self, keys: &KeyRing, now: u64) -> Result<String, ScenarioError> {
        self.mint_with(keys, None, now)
    }

    /// Like [`MintSpec::mint`], with the certificates a `cnf_peer` refers to.
    pub fn mint_with(
        &self,
        keys: &KeyRing,
        pki: Option<&Pki>,
        now: u64,
    ) -> Result<String, ScenarioError> {
        self.build(keys, pki, now).map_err(ScenarioError::new)
    }

    fn build(&self, keys: &KeyRing, pki: Option<&Pki>, now: u64) -> Result<String, String> {
        let key = keys.get(&self.key)?;
        let header = self.header_json(key)?;
        let thumbprint = match &self.cnf_peer {
            None => None,
            Some(name) => {
                let pki = pki.ok_or("`cnf_peer` needs the suite to declare `peers`")?;
                Some(pki.peer(name)?.thumbprint.clone())
            }
        };
        let payload = self.payload_bytes(now, thumbprint)?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.as_bytes()),
            URL_SAFE_NO_PAD.encode(&payload)
        );
        let signature = match &self.signature {
            SignatureSpec::Valid => key.sign(signing_input.as_bytes()),
            SignatureSpec::Empty => Vec::new(),
            SignatureSpec::HmacWithPublicKey => {
                let secret = key.public_jwk.to_string();
                let hmac_key = Hs256Key::new(secret.as_bytes());
                Hs256
                    .sign(&hmac_key, signing_input.as_bytes())
                    .as_bytes()
                    .into_owned()
            }
            SignatureSpec::OtherKey(other) => keys.get(other)?.sign(signing_input.as_bytes()),
            SignatureSpec::ZeroEcdsa => vec![0; 64],
            SignatureSpec::DerEcdsa => key.sign_der(signing_input.as_bytes())?,
            SignatureSpec::Flipped => {
                let mut signature = key.sign(signing_input.as_bytes());
                if let Some(last) = signature.last_mut() {
                    *last ^= 1;
                }
                signature
            }
        };
        let signature = URL_SAFE_NO_PAD.encode(signature);
        Ok(match self.framing {
            Framing::Compact | Framing::NonUtf8Payload => format!("{signing_input}.{signature}"),
            Framing::TwoSegments => signing_input,
            Framing::Padded => signing_input
                .split('.')
                .chain([signature.as_str()])
                .map(pad)
                .collect::<Vec<_>>()
                .join("."),
        })
    }

    fn header_json(&self, key: &TestKey) -> Result<String, String> {
        let mut header = Map::new();
        let alg = self.alg.clone().unwrap_or_else(|| key.alg.clone());
        header.insert("alg".into(), alg.into());
        header.insert("typ".into(), "JWT".into());
        header.insert("kid".into(), key.kid.clone().into());
        for (name, value) in &self.header {
            if value.is_null() {
                header.remove(name);
            } else {
                header.insert(name.clone(), value.clone());
            }
        }
        serde_json::to_string(&header).map_err(|e| e.to_string())
    }

    fn payload_bytes(&self, now: u64, thumbprint: Option<String>) -> Result<Vec<u8>, String> {
        if matches!(self.framing, Framing::NonUtf8Payload) {
            return Ok(b"{\"sub\":\"\xff\xfe\xfd\"}".to_vec());
        }
        let mut text = match &self.payload_text {
            Some(text) => substitute_now(text, now)?,
            None => self.claims_json(now, thumbprint)?,
        };
        if let Some(depth) = self.nest_depth {
            if text.ends_with('}') {
                text.pop();
                let separator = if text.ends_with('{') { "" } else { "," };
                text.push_str(&format!(
                    "{separator}\"nested\":{}{}}}",
                    "[".repeat(depth),
                    "]".repeat(depth)
                ));
            }
        }
        Ok(text.into_bytes())
    }

    fn claims_json(&self, now: u64, thumbprint: Option<String>) -> Result<String, String> {
        let mut claims = Map::new();
        if let Some(thumbprint) = thumbprint {
            claims.insert("cnf".into(), serde_json::json!({ "x5t#S256": thumbprint }));
        }
        let times = self.times.clone().unwrap_or(Times {
            iat: Some(-5),
            nbf: None,
            exp: Some(300),
        });
        let at = |offset: i64| now.saturating_add_signed(offset);
        for (name, offset) in [("iat", times.iat), ("nbf", times.nbf), ("exp", times.exp)] {
            if let Some(offset) = offset {
                claims.insert(name.into(), at(offset).into());
            }
        }
        for (name, value) in &self.claims {
            claims.insert(name.clone(), value.clone());
        }
        serde_json::to_string(&claims).map_err(|e| e.to_string())
    }
}

fn pad(segment: &str) -> String {
    let missing = (4 - segment.len() % 4) % 4;
    let missing = if missing == 0 { 4 } else { missing };
    format!("{segment}{}", "=".repeat(missing.min(2)))
}

fn substitute_now(text: &str, now: u64) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let (before, tail) = rest.split_at(start);
        out.push_str(before);
        let end = tail
            .find("}}")
            .ok_or_else(|| "unclosed `{{` in `payload_text`".to_owned())?;
        let expr = tail.get(2..end).unwrap_or_default().trim();
        let offset: i64 = match expr.strip_prefix("now") {
            Some("") => 0,
            Some(sign_and_number) => sign_and_number
                .replace('+', "")
                .parse()
                .map_err(|_| format!("bad time expression `{expr}`"))?,
            None => return Err(format!("bad time expression `{expr}`")),
        };
        out.push_str(&now.saturating_add_signed(offset).to_string());
        rest = tail.get(end + 2..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_the_clock_in_payload_text() {
        let text = substitute_now(r#"{"iat":{{now-5}},"exp":{{now+60}},"t":{{now}}}"#, 1000);
        assert_eq!(text.unwrap(), r#"{"iat":995,"exp":1060,"t":1000}"#);
    }

    #[test]
    fn pads_every_segment() {
        assert_eq!(pad("abc"), "abc=");
        assert_eq!(pad("ab"), "ab==");
        assert_eq!(pad("abcd"), "abcd==");
    }
}
