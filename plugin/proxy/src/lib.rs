//! taskgate as a proxy-wasm module: hands each request to the decision library and acts on it.
//!
//! This layer owns only what the host gives and takes: the plugin configuration (compiled once in
//! `on_configure`; a bad one is refused, so the host keeps failing closed), request headers and
//! the host's clock in, header edits or a local deny response out, plus counters and log lines.
//! Host calls go through `proxy_wasm::hostcalls` so that each status is handled here instead of
//! unwrapped by the SDK's trait defaults.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use taskgate::{Decision, Gate, Peer, Request, TokenCache, Verdict};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Debug);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::<Root>::default() });
}}

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Counter ids, defined once per VM.
#[derive(Debug, Default)]
struct Counters {
    allowed: Option<u32>,
    denied: Vec<(&'static str, u32)>,
    unconfigured: Option<u32>,
}

impl Counters {
    fn define() -> Self {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        Self {
            allowed: counter("taskgate.allowed"),
            denied: taskgate::Reason::CODES
                .iter()
                .filter_map(|code| Some((*code, counter(&format!("taskgate.denied.{code}"))?)))
                .collect(),
            unconfigured: counter("taskgate.denied.not_configured"),
        }
    }

    fn count(&self, decision: &Decision) {
        let id = match &decision.verdict {
            Verdict::Allow { .. } => self.allowed,
            Verdict::Deny(reason) => self
                .denied
                .iter()
                .find(|(code, _)| *code == reason.code())
                .map(|(_, id)| *id),
        };
        increment(id);
    }
}

fn increment(id: Option<u32>) {
    if let Some(id) = id {
        // A counter that cannot be bumped must not change the decision.
        let _ = hostcalls::increment_metric(id, 1);
    }
}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

#[derive(Default)]
struct Root {
    gate: Option<Rc<Gate>>,
    counters: Rc<Counters>,
    /// One per worker VM, shared by its streams; it empties itself when a new gate uses it.
    cache: Rc<RefCell<TokenCache>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        self.counters = Rc::new(Counters::define());
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => Vec::new(),
            Err(status) => {
                log(LogLevel::Error, &format!("taskgate {VERSION}: cannot read the plugin configuration: host status {status:?}"));
                return false;
            }
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            log(
                LogLevel::Error,
                &format!("taskgate {VERSION}: configuration refused: it is not UTF-8"),
            );
            return false;
        };
        match Gate::new(text) {
            Ok((gate, warnings)) => {
                for warning in warnings {
                    log(
                        LogLevel::Warn,
                        &format!("taskgate: key left out: {warning}"),
                    );
                }
                let plan = gate.plan();
                log(
                    LogLevel::Info,
                    &format!(
                        "taskgate {VERSION} configured: config {} ({} providers, {} rules)",
                        taskgate::compile::fingerprint(text),
                        plan.providers.len(),
                        plan.rules.len()
                    ),
                );
                self.gate = Some(Rc::new(gate));
                true
            }
            Err(errors) => {
                // The previous configuration, if any, stays in force; a first one failing leaves
                // the host to refuse the plugin.
                for error in &errors {
                    log(
                        LogLevel::Error,
                        &format!("taskgate {VERSION}: configuration refused: {error}"),
                    );
                }
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            gate: self.gate.clone(),
            counters: Rc::clone(&self.counters),
            cache: Rc::clone(&self.cache),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    gate: Option<Rc<Gate>>,
    counters: Rc<Counters>,
    cache: Rc<RefCell<TokenCache>>,
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(gate) = self.gate.clone() else {
            increment(self.counters.unconfigured);
            return deny_raw(503, "not_configured", "taskgate has no valid configuration");
        };
        // Header values are bytes on the wire; the SDK's string accessor panics on one that is
        // not UTF-8, so they are read as bytes and decoded lossily (a token never survives that).
        let headers: Vec<(String, String)> =
            match hostcalls::get_map_bytes(MapType::HttpRequestHeaders) {
                Ok(pairs) => pairs
                    .into_iter()
                    .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                    .collect(),
                Err(status) => {
                    log(
                        LogLevel::Error,
                        &format!("taskgate: cannot read request headers: host status {status:?}"),
                    );
                    return deny_raw(503, "host_error", "taskgate could not read the request");
                }
            };
        let pseudo = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key == name)
                .map_or("", |(_, value)| value.as_str())
        };
        // Properties cost a host call each, so they are read only when a rule binds the peer.
        let (uri_san, digest) = if gate.plan().needs_peer {
            (
                property(&["connection", "uri_san_peer_certificate"]),
                property(&["connection", "sha256_peer_certificate_digest"]),
            )
        } else {
            (None, None)
        };
        let request = Request {
            method: pseudo(":method"),
            authority: pseudo(":authority"),
            path: pseudo(":path"),
            headers: &headers,
            peer: Peer {
                uri_san: uri_san.as_deref(),
                certificate_sha256: digest.as_deref(),
            },
        };
        let now = hostcalls::get_current_time()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |elapsed| elapsed.as_secs());
        // Streams of one VM run one at a time, so the borrow is never contended.
        let decision = match self.cache.try_borrow_mut() {
            Ok(mut cache) => gate.decide_cached(&request, now, &mut cache),
            Err(_) => gate.decide(&request, now),
        };
        self.counters.count(&decision);
        log(
            LogLevel::Debug,
            &format!("taskgate: {}", decision.log_line()),
        );
        match decision.verdict {
            Verdict::Allow { remove, set } => {
                for name in &remove {
                    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
                }
                for (name, value) in &set {
                    let _ =
                        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
                }
                Action::Continue
            }
            Verdict::Deny(reason) => {
                let challenge = reason.www_authenticate();
                let mut headers = vec![
                    ("content-type", "application/json"),
                    ("x-taskgate-reason", reason.code()),
                ];
                if let Some(challenge) = &challenge {
                    headers.push(("www-authenticate", challenge));
                }
                send(reason.status(), headers, &reason.body())
            }
        }
    }
}

/// A string property, or `None` when the host has none (a plain-text connection has no peer).
fn property(path: &[&str]) -> Option<String> {
    match hostcalls::get_property(path.to_vec()) {
        Ok(Some(bytes)) if !bytes.is_empty() => String::from_utf8(bytes).ok(),
        _ => None,
    }
}

fn deny_raw(status: u32, code: &str, message: &str) -> Action {
    let body = format!(r#"{{"decision":"deny","reason":"{code}","message":"{message}"}}"#);
    send(
        status as u16,
        vec![
            ("content-type", "application/json"),
            ("x-taskgate-reason", code),
        ],
        &body,
    )
}

fn send(status: u16, headers: Vec<(&str, &str)>, body: &str) -> Action {
    if let Err(status) =
        hostcalls::send_http_response(u32::from(status), headers, Some(body.as_bytes()))
    {
        log(
            LogLevel::Error,
            &format!("taskgate: cannot send the deny response: host status {status:?}"),
        );
    }
    Action::Pause
}
