//! taskgate as a proxy-wasm module: hands each request to the decision library and acts on it.
//!
//! This layer owns only what the host gives and takes: the plugin configuration (compiled once in
//! `on_configure`; a bad one is refused, so the host keeps failing closed), request headers and
//! the host's clock in, header edits or a local deny response out, plus counters and log lines.
//! Host calls go through `proxy_wasm::hostcalls` so that each status is handled here instead of
//! unwrapped by the SDK's trait defaults.
//!
//! Remote keys ([`keys`]) add one path: a token naming a key a fetch might bring pauses its
//! stream; when the fetch ends (or its timeout passes), the root acts for the paused stream
//! (`set_effective_context`), decides it again and resumes or answers it.

mod keys;

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use taskgate::{Decision, Gate, Peer, Request, TokenCache, Verdict};

use crate::keys::{Keys, Step, Waiter};

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

/// What the root and every stream of a worker VM share.
#[derive(Clone, Default)]
struct Worker {
    counters: Rc<Counters>,
    /// One per worker VM, shared by its streams; it empties itself when a new gate uses it or
    /// the gate's keys change.
    cache: Rc<RefCell<TokenCache>>,
    keys: Rc<RefCell<Keys>>,
}

#[derive(Default)]
struct Root {
    gate: Option<Rc<Gate>>,
    worker: Worker,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body: usize,
        _trailers: usize,
    ) {
        self.worker.on_call_response(token, body);
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        self.worker.counters = Rc::new(Counters::define());
        true
    }

    fn on_tick(&mut self) {
        let now = keys::now_ms();
        let released = match self.worker.keys.try_borrow_mut() {
            Ok(mut keys) => keys.on_tick(now),
            Err(_) => Vec::new(),
        };
        self.worker.release(released, now);
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
                let gate = Rc::new(gate);
                let now = keys::now_ms();
                let released = match self.worker.keys.try_borrow_mut() {
                    Ok(mut keys) => {
                        let released = keys.configure(&gate, now);
                        if keys.has_sources() {
                            if let Err(status) = hostcalls::set_tick_period(keys::TICK) {
                                log(LogLevel::Error, &format!("taskgate: cannot set the timer that refreshes keys: host status {status:?}"));
                            }
                        }
                        released
                    }
                    Err(_) => Vec::new(),
                };
                self.worker.release(released, now);
                self.gate = Some(gate);
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

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            context_id,
            gate: self.gate.clone(),
            worker: self.worker.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    context_id: u32,
    gate: Option<Rc<Gate>>,
    worker: Worker,
}

impl Context for Filter {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body: usize,
        _trailers: usize,
    ) {
        // A fetch of keys this stream started; its answer serves every stream waiting on it.
        self.worker.on_call_response(token, body);
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(gate) = self.gate.clone() else {
            increment(self.worker.counters.unconfigured);
            return deny_raw(503, "not_configured", "taskgate has no valid configuration");
        };
        match self.worker.judge(&gate, Some(self.context_id)) {
            Judged::Paused => Action::Pause,
            Judged::Failed => deny_raw(503, "host_error", "taskgate could not read the request"),
            Judged::Decided(decision, present) => self.worker.act(*decision, &present),
        }
    }
}

/// The outcome of deciding the stream in the effective context.
enum Judged {
    /// With the names of the request's headers.
    Decided(Box<Decision>, Vec<String>),
    /// Waiting for keys.
    Paused,
    /// The host could not hand over the request.
    Failed,
}

impl Worker {
    /// Decides the request of the effective context. With `fetch` (the stream's context id), a
    /// token naming a key a fetch might bring may pause the stream instead.
    fn judge(&self, gate: &Rc<Gate>, fetch: Option<u32>) -> Judged {
        // Header values are bytes on the wire; the SDK's string accessor panics on one that is
        // not UTF-8, so they are read as bytes, kept as they are when they are UTF-8 (no copy)
        // and decoded lossily otherwise (a token never survives that).
        let headers: Vec<(String, String)> =
            match hostcalls::get_map_bytes(MapType::HttpRequestHeaders) {
                Ok(pairs) => pairs
                    .into_iter()
                    .map(|(name, value)| {
                        let value = String::from_utf8(value).unwrap_or_else(|invalid| {
                            String::from_utf8_lossy(invalid.as_bytes()).into_owned()
                        });
                        (name, value)
                    })
                    .collect(),
                Err(status) => {
                    log(
                        LogLevel::Error,
                        &format!("taskgate: cannot read request headers: host status {status:?}"),
                    );
                    return Judged::Failed;
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
        // Without the host's clock no expiry can be judged: refuse rather than read it as 1970.
        let Some(now_ms) = keys::clock_ms() else {
            log(LogLevel::Error, "taskgate: cannot read the host clock");
            return Judged::Failed;
        };
        let mut decision = self.decide(gate, &request, now_ms / 1000);
        if let (Some(missing), Some(context_id)) = (&decision.missing_key, fetch) {
            let step = match self.keys.try_borrow_mut() {
                Ok(mut keys) => keys.on_missing(gate, missing, now_ms, context_id),
                Err(_) => Step::Refuse,
            };
            match step {
                Step::Wait => return Judged::Paused,
                Step::Retry => {
                    decision = self.decide(gate, &request, now_ms / 1000);
                    // Streams that waited for the keys just picked up go on too; acting for
                    // them moves the effective context, so it comes back to this stream after.
                    let ready = match self.keys.try_borrow_mut() {
                        Ok(mut keys) => keys.take_ready(),
                        Err(_) => Vec::new(),
                    };
                    if !ready.is_empty() {
                        self.release(ready, now_ms);
                        let _ = hostcalls::set_effective_context(context_id);
                    }
                }
                Step::Refuse => {}
            }
        }
        let present = headers.into_iter().map(|(name, _)| name).collect();
        Judged::Decided(Box::new(decision), present)
    }

    fn decide(&self, gate: &Gate, request: &Request<'_>, now: u64) -> Decision {
        // Streams of one VM run one at a time, so the borrow is never contended.
        match self.cache.try_borrow_mut() {
            Ok(mut cache) => gate.decide_cached(request, now, &mut cache),
            Err(_) => gate.decide(request, now),
        }
    }

    /// Counts, logs and applies a decision to the stream of the effective context. `present`
    /// names the request's headers, read in the same callback: removing a header the request
    /// does not carry would only cost a host call.
    fn act(&self, decision: Decision, present: &[String]) -> Action {
        self.counters.count(&decision);
        // The host drops the line below its log level. Asking for the level first would save
        // formatting it, but the SDK reads the host's answer into an enum that lacks Envoy's
        // `off` (6), which Rust may not hold.
        log(
            LogLevel::Debug,
            &format!("taskgate: {}", decision.log_line()),
        );
        match decision.verdict {
            Verdict::Allow { remove, set } => {
                let carried = |name: &str| present.iter().any(|p| p.eq_ignore_ascii_case(name));
                for name in remove.iter().filter(|name| carried(name)) {
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

    fn on_call_response(&self, token: u32, body: usize) {
        let now = keys::now_ms();
        let released = match self.keys.try_borrow_mut() {
            Ok(mut keys) => keys.on_response(token, body, now),
            Err(_) => None,
        };
        self.release(released.unwrap_or_default(), now);
    }

    /// Decides each paused stream with the keys there are now, and resumes or answers it.
    fn release(&self, waiters: Vec<Waiter>, now: u64) {
        for waiter in waiters {
            if hostcalls::set_effective_context(waiter.context_id).is_err() {
                // The stream is gone: its client left while it waited.
                continue;
            }
            let (decision, present) = match self.judge(&waiter.gate, None) {
                Judged::Decided(decision, present) => (*decision, present),
                Judged::Paused | Judged::Failed => {
                    deny_raw(503, "host_error", "taskgate could not read the request");
                    continue;
                }
            };
            if let (Some(missing), Ok(mut keys)) =
                (&decision.missing_key, self.keys.try_borrow_mut())
            {
                keys.remember_absent(missing, now);
            }
            if self.act(decision, &present) == Action::Continue {
                if let Err(status) = hostcalls::resume_http_request() {
                    log(
                        LogLevel::Error,
                        &format!("taskgate: cannot resume a request: host status {status:?}"),
                    );
                }
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
