//! Envoy as a scenario host: one Envoy per suite, started with the module
//! and the suite's policy, in front of the echo upstream.
//!
//! A real Envoy reads its own clock, so the run uses the wall clock and the
//! scenario crate mints tokens relative to it. What a real connection would
//! have to carry (an mTLS peer certificate, for instance) cannot be faked
//! here: a case that sets connection properties fails with an error that
//! says so, rather than passing on a request that lacks them.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use taskgate_scenario::{Host, Observed, PreparedRequest, Suite};

use crate::bootstrap::{self, Module};
use crate::client::Client;
use crate::envoy::{Envoy, EnvoyOptions};
use crate::upstream::EchoUpstream;

/// How far the clock a case was prepared for may be from the wall clock;
/// beyond it the tokens were minted for a time Envoy does not see.
const CLOCK_TOLERANCE_SECS: u64 = 60;
/// Properties a plain-HTTP request on 127.0.0.1 has anyway, with the value
/// it has: a case may state them.
const PLAIN_CONNECTION: &[(&str, &str)] = &[("connection.mtls", "false")];
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
            deadline,
        }
    }

    /// Starts Envoy for a suite named `name` with plugin configuration `config`.
    pub fn start(&mut self, name: &str, config: &str) -> Result<(), String> {
        // The previous suite's Envoy stops first: one Envoy at a time.
        self.envoy = None;
        let remaining = self.remaining()?;
        let module = self.wasm.as_deref().map(|wasm| Module { wasm, config });
        let text = bootstrap::render(self.upstream.port(), module)?;
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
            .send(envoy.listener(), request)
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
        self.start(&suite.name, &suite.config).map_err(|error| {
            eprintln!("error: suite `{}`: {error}", suite.name);
            let first = error.lines().next().unwrap_or_default();
            format!("{first} (envoy log above)")
        })
    }

    fn send(&mut self, request: &PreparedRequest, now_unix: u64) -> Result<Observed, String> {
        check_properties(request)?;
        check_clock(now_unix)?;
        self.request(request)
    }
}

/// Refuses a case whose properties a plain-HTTP request cannot carry.
fn check_properties(request: &PreparedRequest) -> Result<(), String> {
    let unmet = request
        .properties
        .iter()
        .find(|(name, value)| !PLAIN_CONNECTION.contains(&(name.as_str(), value.as_str())));
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
