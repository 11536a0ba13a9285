//! Sends one scenario request through Envoy and reads what came back.
//!
//! The answer is sorted three ways: a deny by the module carries the
//! `x-taskgate-reason` header; an allowed request reaches the echo upstream,
//! whose body lists the headers it received; anything else (an Envoy error,
//! a deny without a reason) is `unexpected`, so that it can never pass for
//! either of the other two. For a suite with test certificates the request
//! goes over TLS, with the client certificate of the peer the case names.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use taskgate_scenario::{Observed, Pki, PreparedRequest};
use ureq::http;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use crate::upstream::parse_echo;

/// The header by which the module names the reason of a deny.
pub const REASON_HEADER: &str = "x-taskgate-reason";
/// The reason recorded for a request that reached the upstream.
pub const ALLOWED: &str = "allowed";
/// The reason recorded for an answer that is neither a deny nor an echo.
pub const UNEXPECTED: &str = "unexpected";

/// The longest one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest body read back; an echo of 256 KB of headers fits.
const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// Sends requests to one Envoy listener.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Self {
        let agent = ureq::Agent::config_builder()
            // Never through a proxy named in the environment: traffic stays
            // on 127.0.0.1.
            .proxy(None)
            .max_redirects(0)
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Self { agent }
    }

    /// Sends `request` to `listener`, with the case's host as `Host`; over
    /// TLS when `tls` is given.
    pub fn send(
        &self,
        listener: SocketAddr,
        request: &PreparedRequest,
        tls: Option<&SuiteTls>,
    ) -> Result<Observed, String> {
        let described = format!("{} {}{}", request.method, request.host, request.path);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let outgoing = build(scheme, listener, request)
            .map_err(|error| format!("cannot build the request `{described}`: {error}"))?;
        let outgoing = match tls {
            Some(tls) => self
                .agent
                .configure_request(outgoing)
                .tls_config(tls.config(request.peer.as_deref())?)
                .build(),
            None => outgoing,
        };
        let mut response = self
            .agent
            .run(outgoing)
            .map_err(|error| format!("request `{described}` failed: {error}"))?;
        let status = response.status().as_u16();
        let headers = lowercase_headers(response.headers());
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .unwrap_or_default();
        Ok(observe(status, headers, &body))
    }
}

/// The response headers with lower-case names, in the order they came.
fn lowercase_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_ascii_lowercase(), value)
        })
        .collect()
}

/// The CA that Envoy's certificate chains to, and the client certificate of
/// each peer of a suite.
#[derive(Debug)]
pub struct SuiteTls {
    roots: RootCerts,
    peers: BTreeMap<String, ClientCert>,
}

impl SuiteTls {
    pub fn from_pki(pki: &Pki) -> Result<Self, String> {
        let ca = Certificate::from_pem(pki.ca_cert_pem.as_bytes())
            .map_err(|error| format!("cannot read the test ca certificate: {error}"))?;
        let mut peers = BTreeMap::new();
        for (name, peer) in &pki.peers {
            let unreadable = |error: ureq::Error| format!("cannot read peer `{name}`: {error}");
            let cert = Certificate::from_pem(peer.cert_pem.as_bytes()).map_err(unreadable)?;
            let key = PrivateKey::from_pem(peer.key_pem.as_bytes()).map_err(unreadable)?;
            peers.insert(name.clone(), ClientCert::new_with_certs(&[cert], key));
        }
        Ok(Self {
            roots: RootCerts::new_with_certs(&[ca]),
            peers,
        })
    }

    /// Trusts the suite's CA only, and presents `peer`'s certificate if any.
    fn config(&self, peer: Option<&str>) -> Result<TlsConfig, String> {
        let client_cert = match peer {
            Some(name) => Some(
                self.peers
                    .get(name)
                    .ok_or_else(|| format!("the suite declares no peer `{name}`"))?
                    .clone(),
            ),
            None => None,
        };
        Ok(TlsConfig::builder()
            .root_certs(self.roots.clone())
            .client_cert(client_cert)
            .build())
    }
}

fn build(
    scheme: &str,
    listener: SocketAddr,
    request: &PreparedRequest,
) -> Result<http::Request<()>, String> {
    let uri = format!("{scheme}://{listener}{}", request.path);
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(uri)
        .header(http::header::HOST, request.host.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(()).map_err(|error| error.to_string())
}

/// Sorts an answer into a deny, an allow or something unexpected.
fn observe(status: u16, response_headers: Vec<(String, String)>, body: &str) -> Observed {
    let reason = response_headers
        .iter()
        .find(|(name, _)| name == REASON_HEADER)
        .map(|(_, value)| value.clone());
    if let Some(reason) = reason {
        return Observed {
            status,
            reason,
            response_headers,
            upstream_headers: Vec::new(),
        };
    }
    match parse_echo(body) {
        Some(upstream_headers) if status == 200 => Observed {
            status,
            reason: ALLOWED.to_owned(),
            response_headers,
            upstream_headers,
        },
        _ => Observed {
            status,
            reason: UNEXPECTED.to_owned(),
            response_headers,
            upstream_headers: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: &str = r#"{"taskgate_echo": true, "headers": [["x-sub", "a"]]}"#;

    #[test]
    fn takes_the_reason_header_as_a_deny() {
        let headers = vec![
            (REASON_HEADER.into(), "scope_missing".into()),
            (
                "www-authenticate".into(),
                "Bearer error=\"insufficient_scope\"".into(),
            ),
        ];
        let observed = observe(403, headers, "");
        assert_eq!(observed.reason, "scope_missing");
        assert_eq!(observed.status, 403);
        assert!(observed.response_header("www-authenticate").is_some());
    }

    #[test]
    fn takes_an_echo_as_allowed_with_its_headers() {
        let observed = observe(200, Vec::new(), ECHO);
        assert_eq!(observed.reason, ALLOWED);
        assert_eq!(
            observed.upstream_headers,
            vec![("x-sub".into(), "a".into())]
        );
    }

    #[test]
    fn takes_an_envoy_error_as_unexpected() {
        let observed = observe(503, Vec::new(), "upstream connect error");
        assert_eq!(observed.reason, UNEXPECTED);
        assert_eq!(observed.status, 503);
    }

    #[test]
    fn takes_a_200_that_is_no_echo_as_unexpected() {
        assert_eq!(observe(200, Vec::new(), "hello\n").reason, UNEXPECTED);
    }

    #[test]
    fn sets_the_case_host_and_keeps_repeated_headers() {
        let request = PreparedRequest {
            method: "POST".into(),
            host: "api.internal".into(),
            path: "/v1/jobs?x=1".into(),
            headers: vec![("x-a".into(), "1".into()), ("x-a".into(), "2".into())],
            properties: Default::default(),
            peer: None,
        };
        let built = build("http", "127.0.0.1:9".parse().unwrap(), &request).unwrap();
        assert_eq!(built.headers()["host"], "api.internal");
        assert_eq!(built.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(built.uri(), "http://127.0.0.1:9/v1/jobs?x=1");
    }
}
