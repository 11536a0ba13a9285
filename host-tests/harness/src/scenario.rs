//! The harness as a host of the golden scenarios: `taskgate_scenario::Host` implemented on the
//! real module, so the same cases that run on the native library and on Envoy run here. Each
//! suite gets a fresh instance (fresh shared data and metrics) at the suite's clock; each case
//! sets the clock to its own `now` before the request.

use taskgate_scenario::{Host, Observed, PreparedRequest, Suite};

use crate::exchange::{Outcome, Request, Response};
use crate::harness::Harness;
use crate::module::Plugin;

/// The response header that carries a deny's reason code.
pub const REASON_HEADER: &str = "x-taskgate-reason";

/// What `Observed::reason` holds when the request reached the upstream.
pub const ALLOWED: &str = "allowed";

/// A scenario host running the module in wasmtime.
#[derive(Debug)]
pub struct WasmtimeHost {
    plugin: Plugin,
    harness: Option<Harness>,
    /// Suites whose configuration could not be loaded, with the reason.
    load_failures: Vec<(String, String)>,
}

impl WasmtimeHost {
    pub fn new(plugin: Plugin) -> Self {
        Self {
            plugin,
            harness: None,
            load_failures: Vec::new(),
        }
    }

    /// Suites whose configuration the module rejected or could not start with.
    pub fn load_failures(&self) -> &[(String, String)] {
        &self.load_failures
    }

    /// The harness of the suite loaded last, to inspect its logs or metrics.
    pub fn harness(&self) -> Option<&Harness> {
        self.harness.as_ref()
    }
}

impl Host for WasmtimeHost {
    fn name(&self) -> &str {
        "wasmtime"
    }

    fn load(&mut self, suite: &Suite) -> Result<(), String> {
        let mut harness = Harness::with_plugin(self.plugin.clone());
        let started = harness
            .set_time(suite.now)
            .and_then(|()| harness.configure(suite.config.as_bytes()));
        self.harness = Some(harness);
        started.map_err(|error| {
            let message = error.to_string();
            self.load_failures
                .push((suite.name.clone(), message.clone()));
            message
        })
    }

    fn send(&mut self, request: &PreparedRequest, now_unix: u64) -> Result<Observed, String> {
        let harness = self
            .harness
            .as_mut()
            .ok_or_else(|| "no suite is loaded".to_string())?;
        harness.set_time(now_unix).map_err(|e| e.to_string())?;
        let exchange = harness
            .send(&to_request(request))
            .map_err(|e| e.to_string())?;
        Ok(observe(&exchange.outcome))
    }
}

/// The harness request for a prepared scenario request.
pub fn to_request(prepared: &PreparedRequest) -> Request {
    let mut request = Request::get(&prepared.host, &prepared.path);
    request.method = prepared.method.clone();
    request.headers = prepared.headers.clone();
    request.properties = prepared.properties.clone();
    request
}

/// What the scenario runner compares: status, reason, response and upstream headers.
pub fn observe(outcome: &Outcome) -> Observed {
    match outcome {
        Outcome::Forwarded {
            upstream_headers,
            response,
        } => Observed {
            status: response.status,
            reason: ALLOWED.to_string(),
            response_headers: lowercase(response),
            upstream_headers: upstream_headers.clone(),
        },
        Outcome::Local(local) => Observed {
            status: local.response.status,
            // A deny without a reason header is itself a finding; the empty reason shows it.
            reason: local
                .response
                .header(REASON_HEADER)
                .unwrap_or_default()
                .to_string(),
            response_headers: lowercase(&local.response),
            upstream_headers: Vec::new(),
        },
    }
}

fn lowercase(response: &Response) -> Vec<(String, String)> {
    response
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect()
}
