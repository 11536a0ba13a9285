//! `taskgate-mint`: make test keys, print their public JWKS, and mint tokens by hand.
//!
//! The keys it makes are for examples and tests only; a token it mints is signed by such a key and
//! is meant to be pasted into a `curl` against a local Envoy or the harness.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};
use taskgate_scenario::mint::Times;
use taskgate_scenario::{KeyRing, MintSpec, SignatureSpec, TestKey};

#[derive(Parser)]
#[command(
    name = "taskgate-mint",
    about = "Test keys and test tokens for taskgate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a new private test key (JWK with `kid` and `alg`) at PATH.
    Keygen {
        #[arg(long)]
        alg: String,
        #[arg(long)]
        kid: String,
        path: PathBuf,
    },
    /// Print the public JWKS of the keys in DIR (all, or those named).
    Jwks { dir: PathBuf, names: Vec<String> },
    /// Print a token signed by key NAME of DIR.
    Token {
        #[arg(long)]
        keys: PathBuf,
        #[arg(long)]
        key: String,
        /// Claims as a JSON object; `iat` and `exp` are added unless given.
        #[arg(long, default_value = "{}")]
        claims: String,
        /// Header members merged over `alg`, `typ` and `kid`, as a JSON object.
        #[arg(long, default_value = "{}")]
        header: String,
        /// Lifetime in seconds from now.
        #[arg(long, default_value_t = 300)]
        ttl: i64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("taskgate-mint: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<String, String> {
    match command {
        Command::Keygen { alg, kid, path } => {
            let jwk = TestKey::generate(&alg, &kid)?;
            let text = serde_json::to_string_pretty(&jwk).map_err(|e| e.to_string())?;
            std::fs::write(&path, format!("{text}\n"))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(format!("wrote {}", path.display()))
        }
        Command::Jwks { dir, names } => {
            let ring = KeyRing::load(&dir).map_err(|e| e.to_string())?;
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let jwks = ring.jwks(&names)?;
            serde_json::to_string_pretty(&jwks).map_err(|e| e.to_string())
        }
        Command::Token {
            keys,
            key,
            claims,
            header,
            ttl,
        } => {
            let ring = KeyRing::load(&keys).map_err(|e| e.to_string())?;
            let spec = MintSpec {
                key,
                alg: None,
                header: object(&header, "--header")?,
                claims: object(&claims, "--claims")?,
                times: Some(Times {
                    iat: Some(0),
                    nbf: None,
                    exp: Some(ttl),
                }),
                payload_text: None,
                nest_depth: None,
                signature: SignatureSpec::Valid,
                framing: Default::default(),
                cnf_peer: None,
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_secs();
            spec.mint(&ring, now).map_err(|e| e.to_string())
        }
    }
}

fn object(text: &str, flag: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("{flag} must be a JSON object")),
        Err(e) => Err(format!("{flag}: {e}")),
    }
}
