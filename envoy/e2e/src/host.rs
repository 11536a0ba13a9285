//! Envoy as a scenario host: one Envoy per suite, started with the module
//! and the suite's policy, in front of the echo upstream.
//!
//! A real Envoy reads its own clock, so the run uses the wall clock and the
//! scenario crate mints tokens relative to it. Connection properties cannot
//! be faked here: a suite that declares mTLS peers gets a TLS listener and
//! each case that names a peer connects with that peer's certificate, so
//! that Envoy reports the peer from a real handshake. Any other property
//! fails the case with an error that says so, rather than passing on a
//! request that lacks it.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use taskgate_scenario::{Host, Observed, Pki, PreparedRequest, Suite};

use crate::bootstrap::{self, Module, Tls};
use crate::client::{Client, SuiteTls};
use crate::envoy::{Envoy, EnvoyOptions};
use crate::upstream::EchoUpstream;

/// How far the clock a case was prepared for may be from the wall clock;
/// beyond it the tokens were minted for a time Envoy does not see.
const CLOCK_TOLERANCE_SECS: u64 = 60;
/// Properties a plain-HTTP request on 127.0.0.1 has anyway, with the value
/// it has: a case may state them.
const PLAIN_CONNECTION: &[(&str, &str)] = &[("connection.mtls", "false")];
/// Properties that Envoy takes from the TLS handshake of a case that names
/// a peer; the scenario crate states them from the same certificate.
const HANDSHAKE_PROPERTIES: &[&str] = &[
    "connection.mtls",
    "connection.uri_san_peer_certificate",
    "connection.sha256_peer_certificate_digest",
];
/// How much longer than the run an Envoy may live, to stop cleanly.
const LIFETIME_MARGIN: Duration = Duration::from_secs(30);

/// Runs suites in a real Envoy.
#[derive(Debug)]
pub struct EnvoyHost {
    options: EnvoyOptions,
    /// The module; `None` runs Envoy without the wasm filter.
    wasm: Option<PathBuf>,
    upstream: EchoUpstream,
    client: Client,
    envoy: Option<Envoy>,
    /// The running suite's certificates, when it declares peers.
    tls: Option<SuiteTls>,
    deadline: Instant,
}

impl EnvoyHost {
    /// A host whose every Envoy stops by `deadline` at the latest.
    pub fn new(
        options: EnvoyOptions,
        wasm: Option<PathBuf>,
        upstream: EchoUpstream,
        deadline: Instant,
    ) -> Self {
        Self {
            options,
            wasm,
            upstream,
            client: Client::new(),
            envoy: None,
            tls: None,
            deadline,
        }
    }

    /// Starts Envoy for a suite named `name` with plugin configuration
    /// `config`, behind TLS when the suite has a `pki`.
    pub fn start(&mut self, name: &str, config: &str, pki: Option<&Pki>) -> Result<(), String> {
        // The previous suite's Envoy stops first: one Envoy at a time.
        self.envoy = None;
        self.tls = pki.map(SuiteTls::from_pki).transpose()?;
        let remaining = self.remaining()?;
        let module = self.wasm.as_deref().map(|wasm| Module { wasm, config });
        let tls = pki.map(|pki| Tls {
            server_cert_pem: &pki.server_cert_pem,
            server_key_pem: &pki.server_key_pem,
            ca_cert_pem: &pki.ca_cert_pem,
        });
        let text = bootstrap::render(self.upstream.port(), module, tls)?;
        let options = EnvoyOptions {
            lifetime: remaining + LIFETIME_MARGIN,
            ready_timeout: self.options.ready_timeout.min(remaining),
            ..self.options.clone()
        };
        self.envoy = Some(Envoy::start(&options, name, &text)?);
        Ok(())
    }

    /// Sends `request` to the running Envoy.
    pub fn request(&mut self, request: &PreparedRequest) -> Result<Observed, String> {
        self.remaining()?;
        let envoy = self
            .envoy
            .as_mut()
            .ok_or("no envoy is running: no suite was loaded")?;
        self.client
            .send(envoy.listener(), request, self.tls.as_ref())
            .map_err(|error| envoy.explain(&error))
    }

    fn remaining(&self) -> Result<Duration, String> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err("the run's time is over".to_owned());
        }
        Ok(remaining)
    }
}

impl Host for EnvoyHost {
    fn name(&self) -> &str {
        "envoy"
    }

    fn load(&mut self, suite: &Suite) -> Result<(), String> {
        // The runner repeats a load error on every case of the suite: show
        // Envoy's log once here, and give the runner its first line only.
        self.start(&suite.name, &suite.config, suite.pki.as_ref())
            .map_err(|error| match error.split_once('\n') {
                Some((first, _)) => {
                    eprintln!("error: suite `{}`: {error}", suite.name);
                    format!("{first} (envoy log above)")
                }
                None => error,
            })
    }

    fn send(&mut self, request: &PreparedRequest, now_unix: u64) -> Result<Observed, String> {
        check_properties(request)?;
        check_clock(now_unix)?;
        self.request(request)
    }
}

/// Refuses a case whose properties its connection will not carry.
fn check_properties(request: &PreparedRequest) -> Result<(), String> {
    let from_handshake =
        |name: &str| request.peer.is_some() && HANDSHAKE_PROPERTIES.contains(&name);
    let unmet = request.properties.iter().find(|(name, value)| {
        !from_handshake(name) && !PLAIN_CONNECTION.contains(&(name.as_str(), value.as_str()))
    });
    match unmet {
        Some((name, value)) => Err(format!(
            "envoy host cannot give the request the property `{name}` = `{value}`: \
             it comes from a real connection"
        )),
        None => Ok(()),
    }
}

fn check_clock(now_unix: u64) -> Result<(), String> {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|error| format!("the wall clock is before 1970: {error}"))?
        .as_secs();
    if wall.abs_diff(now_unix) > CLOCK_TOLERANCE_SECS {
        return Err(format!(
            "the case was prepared for time {now_unix}, but envoy reads the wall clock ({wall})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(name: &str, value: &str) -> PreparedRequest {
        PreparedRequest {
            method: "GET".into(),
            host: "api".into(),
            path: "/".into(),
            headers: Vec::new(),
            properties: [(name.to_owned(), value.to_owned())].into(),
            peer: None,
        }
    }

    #[test]
    fn accepts_a_property_that_a_plain_connection_has() {
        assert!(check_properties(&request_with("connection.mtls", "false")).is_ok());
    }

    #[test]
    fn refuses_a_peer_identity_it_cannot_present() {
        let request = request_with("connection.uri_san_peer_certificate", "spiffe://a/b");
        let error = check_properties(&request).unwrap_err();
        assert!(error.contains("`connection.uri_san_peer_certificate` = `spiffe://a/b`"));
    }

    #[test]
    fn leaves_the_peer_identity_to_the_handshake_of_a_named_peer() {
        let mut request = request_with("connection.uri_san_peer_certificate", "spiffe://a/b");
        request.peer = Some("orders".into());
        assert!(check_properties(&request).is_ok());
    }

    #[test]
    fn refuses_a_case_prepared_for_a_fixed_clock() {
        assert!(check_clock(1_700_000_000).is_err());
    }

    #[test]
    fn accepts_a_case_prepared_for_the_wall_clock() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(check_clock(now).is_ok());
    }
}
