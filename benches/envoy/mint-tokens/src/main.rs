//! `mint-tokens KEY.jwk.json CLAIMS_JSON TTL COUNT`: prints COUNT distinct compact JWTs, one a
//! line, signed by the private test key (ES256 or EdDSA, chosen from the key's `alg`).
//!
//! Each token carries the claims given, `iat` = now, `exp` = now + TTL and a `jti` of its own
//! (`bench-<n>`), so that no two tokens are equal and a cache of verified tokens cannot answer
//! a rotation of them from memory.

use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

enum Signer {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

impl Signer {
    fn from_jwk(jwk: &Value) -> Result<(Self, &'static str), String> {
        let field = |name: &str| -> Result<Vec<u8>, String> {
            let text = jwk[name].as_str().ok_or(format!("key has no `{name}`"))?;
            URL_SAFE_NO_PAD.decode(text).map_err(|e| format!("key `{name}`: {e}"))
        };
        match jwk["alg"].as_str() {
            Some("ES256") => {
                let key = p256::ecdsa::SigningKey::from_slice(&field("d")?)
                    .map_err(|e| format!("key `d`: {e}"))?;
                Ok((Signer::Es256(key), "ES256"))
            }
            Some("EdDSA") => {
                let d: [u8; 32] = field("d")?
                    .try_into()
                    .map_err(|_| "key `d` is not 32 bytes".to_string())?;
                Ok((Signer::EdDsa(ed25519_dalek::SigningKey::from_bytes(&d)), "EdDSA"))
            }
            other => Err(format!("unsupported key alg `{other:?}`")),
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        match self {
            Signer::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            Signer::EdDsa(key) => key.sign(message).to_bytes().to_vec(),
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let [key_path, claims, ttl, count] = args else {
        return Err("usage: mint-tokens KEY.jwk.json CLAIMS_JSON TTL COUNT".into());
    };
    let jwk: Value = serde_json::from_str(
        &std::fs::read_to_string(key_path).map_err(|e| format!("`{key_path}`: {e}"))?,
    )
    .map_err(|e| format!("`{key_path}`: {e}"))?;
    let (signer, alg) = Signer::from_jwk(&jwk)?;
    let mut claims: Map<String, Value> =
        serde_json::from_str(claims).map_err(|e| format!("claims: {e}"))?;
    let ttl: u64 = ttl.parse().map_err(|e| format!("ttl `{ttl}`: {e}"))?;
    let count: u64 = count.parse().map_err(|e| format!("count `{count}`: {e}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let header = json!({"alg": alg, "typ": "JWT", "kid": jwk["kid"]});
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + ttl).into());

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for n in 0..count {
        claims.insert("jti".into(), format!("bench-{n}").into());
        let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
        let signing_input = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(signer.sign(signing_input.as_bytes()));
        writeln!(out, "{signing_input}.{signature}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mint-tokens: {error}");
            ExitCode::from(2)
        }
    }
}
