//! Test certificates for connection binding, made fresh each time a suite loads.
//!
//! A suite that declares `peers` gets a throw-away CA, a server certificate for 127.0.0.1 (for a
//! real proxy's mTLS listener) and one client certificate per peer, whose URI SAN is the peer's
//! SPIFFE ID. Hosts that fake the connection report each peer's URI SAN and SHA-256 digest as the
//! proxy would; a proxy with a real listener sees the same values from the handshake.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A peer as a scenario file declares it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSpec {
    /// The URI SAN of the client certificate, usually a SPIFFE ID.
    pub uri_san: String,
}

/// A client certificate and what a proxy reports about it.
#[derive(Debug, Clone)]
pub struct PeerCert {
    pub uri_san: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// Lower-case hex SHA-256 of the DER certificate (`connection.sha256_peer_certificate_digest`).
    pub sha256_hex: String,
    /// Base64url SHA-256 of the DER certificate (`cnf.x5t#S256`, RFC 8705).
    pub thumbprint: String,
}

/// A CA, a server certificate for 127.0.0.1 and the peers' client certificates.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub peers: BTreeMap<String, PeerCert>,
}

impl Pki {
    pub fn generate(peers: &BTreeMap<String, PeerSpec>) -> Result<Self, String> {
        let err = |e: rcgen::Error| format!("cannot make test certificates: {e}");
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "taskgate test CA");
        let ca = ca_params.self_signed(&ca_key).map_err(err)?;

        let server_key = KeyPair::generate().map_err(err)?;
        let server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(err)?;
        let server = server_params
            .signed_by(&server_key, &ca, &ca_key)
            .map_err(err)?;

        let mut made = BTreeMap::new();
        for (name, spec) in peers {
            let key = KeyPair::generate().map_err(err)?;
            let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
            let uri = spec.uri_san.clone().try_into().map_err(err)?;
            params.subject_alt_names.push(SanType::URI(uri));
            params
                .distinguished_name
                .push(DnType::CommonName, name.as_str());
            let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
            let digest = Sha256::digest(cert.der());
            made.insert(
                name.clone(),
                PeerCert {
                    uri_san: spec.uri_san.clone(),
                    cert_pem: cert.pem(),
                    key_pem: key.serialize_pem(),
                    sha256_hex: digest.iter().map(|b| format!("{b:02x}")).collect(),
                    thumbprint: URL_SAFE_NO_PAD.encode(digest),
                },
            );
        }
        Ok(Self {
            ca_cert_pem: ca.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            peers: made,
        })
    }

    pub fn peer(&self, name: &str) -> Result<&PeerCert, String> {
        self.peers
            .get(name)
            .ok_or_else(|| format!("no peer named `{name}` in the suite's `peers`"))
    }
}
