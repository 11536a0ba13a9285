//! The host's event loop, in the order Envoy drives a proxy-wasm plugin: start an instance
//! (`_initialize`, root context, `proxy_on_vm_start`, `proxy_on_configure`), then for each
//! request create a stream context, run the request and response callbacks, answer the
//! callouts the module waits on, and tear the context down. A rejected configuration leaves
//! the previous instance serving; a trap marks the instance crashed until the next
//! successful `configure`, as Envoy stops using a VM that failed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use wasmtime::{Store, TypedFunc, WasmParams, WasmResults};

use crate::abi::{Action, LogLevel};
use crate::callout::{CallResponse, CalloutRecord, CalloutReply, CalloutScript, PendingCallout};
use crate::clock::{seconds_to_nanos, Clock};
use crate::error::HarnessError;
use crate::exchange::{Exchange, LocalResponse, Outcome, Request, Response};
use crate::headers::HeaderMap;
use crate::imports::wasi::ProcExit;
use crate::logs::{LogBook, LogLine, LogSource};
use crate::metrics::Metrics;
use crate::module::{Exports, Plugin};
use crate::shared::SharedData;
use crate::state::{Environment, HostState, Stream, VmState};

/// The context id of the root context. Envoy numbers root and stream contexts from one
/// counter; starting the root at 1 and streams after it keeps that shape.
const ROOT_CONTEXT: u32 = 1;

/// Beyond this many due ticks in one clock move, the rest are fired as one, as a timer that
/// missed its deadlines while the process slept would fire once on waking.
const MAX_TICKS_PER_MOVE: u64 = 10_000;

/// How the host presents itself to the module: the names Envoy would pass and the VM
/// configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostOptions {
    /// `root_id` of the plugin; the `plugin_root_id` property.
    pub root_id: String,
    /// `name` of the plugin; the `plugin_name` property.
    pub plugin_name: String,
    /// `vm_id`; the `plugin_vm_id` property.
    pub vm_id: String,
    /// Bytes handed to `proxy_on_vm_start`.
    pub vm_configuration: Vec<u8>,
}

/// A running module instance and the exports the host calls.
struct Vm {
    store: Store<HostState>,
    exports: Exports,
    next_context: u32,
}

/// A proxy-wasm host running one module on wasmtime.
pub struct Harness {
    plugin: Plugin,
    options: HostOptions,
    vm: Option<Vm>,
    /// The environment while no instance holds it (before the first `configure`).
    idle_env: Environment,
    /// The callback that trapped, while the instance is unusable.
    crashed: Option<&'static str>,
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("plugin", &self.plugin)
            .field("options", &self.options)
            .field("configured", &self.vm.is_some())
            .field("crashed", &self.crashed)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// Compiles the module at `wasm_path`; call `configure` before sending requests.
    pub fn new(wasm_path: impl AsRef<Path>) -> Result<Self, HarnessError> {
        Ok(Self::with_plugin(Plugin::from_file(wasm_path)?))
    }

    /// A harness for an already compiled module (compile once, run many harnesses).
    pub fn with_plugin(plugin: Plugin) -> Self {
        Self {
            plugin,
            options: HostOptions::default(),
            vm: None,
            idle_env: Environment::default(),
            crashed: None,
        }
    }

    /// Sets the names and VM configuration used by the next `configure`.
    pub fn set_options(&mut self, options: HostOptions) {
        self.options = options;
    }

    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Whether an instance has accepted a configuration and is serving.
    pub fn is_configured(&self) -> bool {
        self.vm.is_some() && self.crashed.is_none()
    }

    /// Starts a new instance with `plugin_configuration` and, once the module accepts it,
    /// swaps it in for the current one, as Envoy applies a plugin update. When the module
    /// rejects it (or traps), the error says why and the previous instance, if any, keeps
    /// serving. Callouts the module made while configuring are answered before this returns.
    pub fn configure(
        &mut self,
        plugin_configuration: impl AsRef<[u8]>,
    ) -> Result<(), HarnessError> {
        let plugin_configuration = plugin_configuration.as_ref();
        let env = match self.vm.as_mut() {
            Some(vm) => std::mem::take(&mut vm.store.data_mut().env),
            None => std::mem::take(&mut self.idle_env),
        };
        match self.start(env, plugin_configuration) {
            Ok(vm) => {
                self.vm = Some(vm);
                self.crashed = None;
                Ok(())
            }
            Err(Failed { env, error }) => {
                match self.vm.as_mut() {
                    Some(vm) => vm.store.data_mut().env = *env,
                    None => self.idle_env = *env,
                }
                Err(error)
            }
        }
    }

    /// Starts an instance; on failure hands the environment back so nothing it held is lost.
    fn start(&self, env: Environment, config: &[u8]) -> Result<Vm, Failed> {
        let state = HostState::new(env, self.vm_state(config));
        let mut store = self.plugin.new_store(state);
        let exports = match self.plugin.instantiate(&mut store) {
            Ok(exports) => exports,
            Err(error) => return Err(Failed::new(store, error)),
        };
        let mut vm = Vm {
            store,
            exports,
            next_context: ROOT_CONTEXT,
        };
        match vm.boot(config) {
            Ok(()) => Ok(vm),
            Err(error) => Err(Failed::new(vm.store, error)),
        }
    }

    fn vm_state(&self, config: &[u8]) -> VmState {
        let mut plugin_properties = BTreeMap::new();
        plugin_properties.insert("plugin_root_id".to_string(), self.options.root_id.clone());
        plugin_properties.insert("plugin_name".to_string(), self.options.plugin_name.clone());
        plugin_properties.insert("plugin_vm_id".to_string(), self.options.vm_id.clone());
        VmState {
            root_id: ROOT_CONTEXT,
            vm_configuration: self.options.vm_configuration.clone(),
            plugin_configuration: config.to_vec(),
            plugin_properties,
            effective_context: ROOT_CONTEXT,
            ..VmState::default()
        }
    }

    /// Runs one request through the module and reports what it decided.
    pub fn send(&mut self, request: &Request) -> Result<Exchange, HarnessError> {
        if let Some(callback) = self.crashed {
            return Err(HarnessError::Crashed { callback });
        }
        let vm = self.vm.as_mut().ok_or(HarnessError::NotConfigured)?;
        let log_start = vm.store.data().env.logs.len();
        let result = vm.exchange(request);
        if let Err(HarnessError::Trap { callback, .. } | HarnessError::Exit { callback, .. }) =
            &result
        {
            self.crashed = Some(callback);
        }
        let outcome = result?;
        let logs = vm.store.data().env.logs.since(log_start).to_vec();
        Ok(Exchange { outcome, logs })
    }

    /// Sets wall-clock time to `unix_seconds`. Moving forward fires the ticks that fall due
    /// on the way; moving back changes only what the module reads as the time.
    pub fn set_time(&mut self, unix_seconds: u64) -> Result<(), HarnessError> {
        let target = seconds_to_nanos(unix_seconds);
        let forward = target.saturating_sub(self.env().clock.unix_nanos());
        if forward > 0 {
            self.advance_nanos(forward)
        } else {
            self.env_mut().clock.set_unix_nanos(target);
            Ok(())
        }
    }

    /// Moves the clock forward by `millis`, firing `proxy_on_tick` at every tick deadline
    /// passed and answering the callouts those ticks make.
    pub fn advance(&mut self, millis: u64) -> Result<(), HarnessError> {
        self.advance_nanos(crate::clock::millis_to_nanos(millis))
    }

    fn advance_nanos(&mut self, nanos: u64) -> Result<(), HarnessError> {
        let crashed = self.crashed;
        let Some(vm) = self.vm.as_mut().filter(|_| crashed.is_none()) else {
            self.env_mut().clock.advance_nanos(nanos);
            return Ok(());
        };
        let result = vm.run_ticks_until(nanos);
        if let Err(HarnessError::Trap { callback, .. } | HarnessError::Exit { callback, .. }) =
            &result
        {
            self.crashed = Some(callback);
        }
        result
    }

    /// The state that outlives instances: clock, logs, metrics, shared data, callouts.
    pub fn env(&self) -> &Environment {
        match &self.vm {
            Some(vm) => &vm.store.data().env,
            None => &self.idle_env,
        }
    }

    pub fn env_mut(&mut self) -> &mut Environment {
        match &mut self.vm {
            Some(vm) => &mut vm.store.data_mut().env,
            None => &mut self.idle_env,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.env().clock
    }

    /// Everything the module logged since the harness was created (or the log was cleared).
    pub fn logs(&self) -> &[LogLine] {
        self.env().logs.lines()
    }

    pub fn clear_logs(&mut self) {
        self.env_mut().logs = LogBook::default();
    }

    /// Drops module log lines below `level`, as Envoy's log level does.
    pub fn set_log_level(&mut self, level: LogLevel) {
        self.env_mut().log_level = level;
    }

    pub fn metrics(&self) -> &Metrics {
        &self.env().metrics
    }

    /// A copy of the shared data as it stands.
    pub fn shared_data(&self) -> SharedData {
        self.env().shared_data.snapshot()
    }

    /// Gives this harness the shared data of `other`, as two worker VMs of one proxy share
    /// theirs: what one instance stores, the other reads, with the same compare-and-swap.
    pub fn share_data_with(&mut self, other: &Harness) {
        let store = other.env().shared_data.clone();
        self.env_mut().shared_data = store;
    }

    /// The scripted upstreams answering `proxy_http_call`.
    pub fn callouts_mut(&mut self) -> &mut CalloutScript {
        &mut self.env_mut().callouts
    }

    /// Shorthand for a standing reply from `upstream`.
    pub fn script_callout(&mut self, upstream: &str, reply: CalloutReply) {
        self.callouts_mut().respond_always(upstream, reply);
    }

    /// Every callout the module made, in order.
    pub fn callout_log(&self) -> &[CalloutRecord] {
        &self.env().callout_log
    }

    /// Sets a property every request has unless it names its own value.
    pub fn set_default_property(&mut self, name: &str, value: &str) {
        self.env_mut()
            .default_properties
            .insert(name.to_string(), value.to_string());
    }
}

impl Vm {
    /// Envoy's start sequence for a new VM and its root context.
    fn boot(&mut self, config: &[u8]) -> Result<(), HarnessError> {
        if let Some(initialize) = self.exports.initialize.clone() {
            self.call("_initialize", &initialize, ())?;
        }
        if let Some(start) = self.exports.start.clone() {
            self.call("_start", &start, ())?;
        }
        if let Some(main) = self.exports.main.clone() {
            self.call("main", &main, (0, 0))?;
        }
        let create = self.exports.context_create.clone();
        self.call("proxy_on_context_create", &create, (ROOT_CONTEXT, 0))?;
        self.next_context = ROOT_CONTEXT + 1;
        let log_start = self.store.data().env.logs.len();
        if let Some(vm_start) = self.exports.vm_start.clone() {
            let size = len_u32(self.store.data().vm.vm_configuration.len());
            if self.call("proxy_on_vm_start", &vm_start, (ROOT_CONTEXT, size))? == 0 {
                let errors = self.errors_since(log_start);
                return Err(HarnessError::VmStartRejected { errors });
            }
        }
        if let Some(configure) = self.exports.configure.clone() {
            let size = len_u32(config.len());
            if self.call("proxy_on_configure", &configure, (ROOT_CONTEXT, size))? == 0 {
                let errors = self.errors_since(log_start);
                return Err(HarnessError::ConfigRejected { errors });
            }
        }
        self.answer_root_callouts()
    }

    fn errors_since(&self, start: usize) -> Vec<String> {
        self.store
            .data()
            .env
            .logs
            .since(start)
            .iter()
            .filter(|line| line.level >= LogLevel::Error)
            .map(|line| line.message.clone())
            .collect()
    }

    /// Calls an export with `context` as the effective context, turning a trap into an error
    /// that carries the module's panic message if it logged one.
    fn call<P, R>(
        &mut self,
        callback: &'static str,
        func: &TypedFunc<P, R>,
        params: P,
    ) -> Result<R, HarnessError>
    where
        P: WasmParams,
        R: WasmResults,
    {
        let log_start = self.store.data().env.logs.len();
        func.call(&mut self.store, params).map_err(|error| {
            if let Some(ProcExit(code)) = error.downcast_ref::<ProcExit>() {
                return HarnessError::Exit {
                    callback,
                    code: *code,
                };
            }
            let message = match error.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => trap.to_string(),
                None => format!("{error:#}"),
            };
            let panic = self
                .store
                .data()
                .env
                .logs
                .since(log_start)
                .iter()
                .rev()
                .find(|line| line.level == LogLevel::Critical && line.source == LogSource::Proxy)
                .map(|line| line.message.clone());
            HarnessError::Trap {
                callback,
                message,
                panic,
            }
        })
    }

    fn enter(&mut self, context: u32) {
        self.store.data_mut().vm.effective_context = context;
    }

    fn stream(&self, context: u32) -> Option<&Stream> {
        self.store.data().vm.streams.get(&context)
    }

    fn stream_mut(&mut self, context: u32) -> Option<&mut Stream> {
        self.store.data_mut().vm.streams.get_mut(&context)
    }

    /// One request, from context creation to deletion.
    fn exchange(&mut self, request: &Request) -> Result<Outcome, HarnessError> {
        let context = self.next_context;
        self.next_context = self.next_context.wrapping_add(1).max(ROOT_CONTEXT + 1);
        self.store
            .data_mut()
            .vm
            .streams
            .insert(context, Stream::for_request(request));
        let outcome = self.run_stream(context, request);
        // After a trap the instance is not called again, not even to clean up.
        if !matches!(
            outcome,
            Err(HarnessError::Trap { .. } | HarnessError::Exit { .. })
        ) {
            self.finish_stream(context)?;
        }
        self.store.data_mut().vm.streams.remove(&context);
        outcome
    }

    fn run_stream(&mut self, context: u32, request: &Request) -> Result<Outcome, HarnessError> {
        let create = self.exports.context_create.clone();
        self.enter(context);
        self.call("proxy_on_context_create", &create, (context, ROOT_CONTEXT))?;

        let headers = len_u32(self.stream(context).map_or(0, |s| s.request_headers.len()));
        let body_len = len_u32(request.body.len());
        let callback = "proxy_on_request_headers";
        let step =
            self.stream_callback(context, callback, Phase::Request, headers, body_len == 0)?;
        if let Step::Answered(local) = step {
            return Ok(Outcome::Local(local));
        }
        if body_len > 0 {
            let callback = "proxy_on_request_body";
            if let Step::Answered(local) =
                self.stream_callback(context, callback, Phase::RequestBody, body_len, true)?
            {
                return Ok(Outcome::Local(local));
            }
        }
        let upstream_headers = self
            .stream(context)
            .map(|s| s.request_headers.clone().into_pairs())
            .unwrap_or_default();

        let upstream = &request.upstream_response;
        if let Some(stream) = self.stream_mut(context) {
            let mut headers = HeaderMap::new();
            headers.add(":status", upstream.status.to_string());
            for (name, value) in &upstream.headers {
                headers.add(name, value.clone());
            }
            stream.response_headers = headers;
            stream.response_body = upstream.body.clone();
        }
        let headers = len_u32(self.stream(context).map_or(0, |s| s.response_headers.len()));
        let body_len = len_u32(upstream.body.len());
        let callback = "proxy_on_response_headers";
        let step =
            self.stream_callback(context, callback, Phase::Response, headers, body_len == 0)?;
        if let Step::Answered(local) = step {
            return Ok(Outcome::Local(local));
        }
        if body_len > 0 {
            let callback = "proxy_on_response_body";
            if let Step::Answered(local) =
                self.stream_callback(context, callback, Phase::ResponseBody, body_len, true)?
            {
                return Ok(Outcome::Local(local));
            }
        }
        let response = self.client_response(context);
        Ok(Outcome::Forwarded {
            upstream_headers,
            response,
        })
    }

    /// The response as the client receives it, after the module's changes.
    fn client_response(&self, context: u32) -> Response {
        let Some(stream) = self.stream(context) else {
            return Response::ok();
        };
        let status = stream
            .response_headers
            .get(":status")
            .and_then(|status| status.parse().ok())
            .unwrap_or(200);
        let headers = stream
            .response_headers
            .pairs()
            .iter()
            .filter(|(name, _)| name != ":status")
            .cloned()
            .collect();
        Response {
            status,
            headers,
            body: stream.response_body.clone(),
        }
    }

    /// Calls one stream callback, then waits (answering callouts) until the module has let the
    /// stream go on or answered it.
    fn stream_callback(
        &mut self,
        context: u32,
        callback: &'static str,
        phase: Phase,
        size: u32,
        end_of_stream: bool,
    ) -> Result<Step, HarnessError> {
        let func = match phase {
            Phase::Request => self.exports.request_headers.clone(),
            Phase::RequestBody => self.exports.request_body.clone(),
            Phase::Response => self.exports.response_headers.clone(),
            Phase::ResponseBody => self.exports.response_body.clone(),
        };
        let action = match func {
            Some(func) => {
                self.enter(context);
                let eos = u32::from(end_of_stream);
                Action::from_code(self.call(callback, &func, (context, size, eos))?)
            }
            None => Action::Continue,
        };
        self.settle(context, callback, action)
    }

    fn settle(
        &mut self,
        context: u32,
        callback: &'static str,
        action: Action,
    ) -> Result<Step, HarnessError> {
        let mut action = action;
        loop {
            let stream = self
                .stream_mut(context)
                .ok_or(HarnessError::Stalled { callback })?;
            if let Some(local) = stream.local_response.take() {
                return Ok(Step::Answered(local));
            }
            if stream.closed {
                return Err(HarnessError::StreamReset { callback });
            }
            if std::mem::take(&mut stream.request_resumed) {
                action = Action::Continue;
            }
            if action == Action::Continue {
                return Ok(Step::Continue);
            }
            let pending = self.store.data_mut().vm.pending_callouts.pop_front();
            match pending {
                Some(call) => self.answer(call)?,
                None => return Err(HarnessError::Stalled { callback }),
            }
        }
    }

    /// Delivers one scripted callout answer through `proxy_on_http_call_response`.
    fn answer(&mut self, call: PendingCallout) -> Result<(), HarnessError> {
        let state = self.store.data_mut();
        let alive =
            call.context_id == ROOT_CONTEXT || state.vm.streams.contains_key(&call.context_id);
        if !alive {
            // Envoy cancels the calls of a context it destroyed; nobody hears the answer.
            return Ok(());
        }
        let (headers, body_len) = match call.reply {
            CalloutReply::Respond {
                status,
                headers,
                body,
            } => {
                let mut map = HeaderMap::new();
                map.add(":status", status.to_string());
                for (name, value) in &headers {
                    map.add(name, value.clone());
                }
                let counts = (len_u32(map.len()), len_u32(body.len()));
                state.vm.call_response = Some(CallResponse {
                    headers: map,
                    body,
                    trailers: HeaderMap::new(),
                });
                counts
            }
            CalloutReply::Timeout => {
                state.env.clock.advance_millis(u64::from(call.timeout_ms));
                state.vm.call_response = None;
                (0, 0)
            }
            CalloutReply::Reset => {
                state.vm.call_response = None;
                (0, 0)
            }
        };
        let Some(func) = self.exports.http_call_response.clone() else {
            return Ok(());
        };
        self.enter(call.context_id);
        let params = (call.context_id, call.token, headers, body_len, 0);
        let result = self.call("proxy_on_http_call_response", &func, params);
        self.store.data_mut().vm.call_response = None;
        result
    }

    /// Answers every callout the root context is waiting on (the stream's own calls are
    /// answered while it waits, or cancelled with it).
    fn answer_root_callouts(&mut self) -> Result<(), HarnessError> {
        while let Some(call) = self.store.data_mut().vm.pending_callouts.pop_front() {
            self.answer(call)?;
        }
        Ok(())
    }

    /// Envoy's end of a stream: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`, then the
    /// root's callouts that were made meanwhile.
    fn finish_stream(&mut self, context: u32) -> Result<(), HarnessError> {
        self.enter(context);
        if let Some(done) = self.exports.done.clone() {
            self.call("proxy_on_done", &done, context)?;
        }
        if let Some(log) = self.exports.log.clone() {
            self.call("proxy_on_log", &log, context)?;
        }
        if let Some(delete) = self.exports.delete.clone() {
            self.call("proxy_on_delete", &delete, context)?;
        }
        let state = self.store.data_mut();
        state.vm.streams.remove(&context);
        state
            .vm
            .pending_callouts
            .retain(|call| call.context_id != context);
        state.vm.effective_context = ROOT_CONTEXT;
        self.answer_root_callouts()
    }

    /// Moves the clock forward by `nanos`, firing each tick that falls due on the way.
    fn run_ticks_until(&mut self, nanos: u64) -> Result<(), HarnessError> {
        let target = self
            .store
            .data()
            .env
            .clock
            .monotonic_nanos()
            .saturating_add(nanos);
        let mut fired: u64 = 0;
        loop {
            let state = self.store.data_mut();
            let Some(tick) = state.vm.tick.filter(|tick| tick.due_nanos <= target) else {
                break;
            };
            let mut due = tick.due_nanos;
            fired += 1;
            if fired >= MAX_TICKS_PER_MOVE {
                let missed = (target - due) / tick.period_nanos;
                due = due.saturating_add(missed.saturating_mul(tick.period_nanos));
            }
            let now = state.env.clock.monotonic_nanos();
            state.env.clock.advance_nanos(due.saturating_sub(now));
            // Re-armed before the callback, so a module that changes its period wins.
            state.vm.tick = Some(crate::state::Tick {
                period_nanos: tick.period_nanos,
                due_nanos: due.saturating_add(tick.period_nanos),
            });
            if let Some(on_tick) = self.exports.tick.clone() {
                self.enter(ROOT_CONTEXT);
                self.call("proxy_on_tick", &on_tick, ROOT_CONTEXT)?;
            }
            self.answer_root_callouts()?;
        }
        let clock = &mut self.store.data_mut().env.clock;
        let now = clock.monotonic_nanos();
        clock.advance_nanos(target.saturating_sub(now));
        Ok(())
    }
}

/// A failed start: the error, and the environment taken back from the discarded store.
struct Failed {
    env: Box<Environment>,
    error: HarnessError,
}

impl Failed {
    fn new(store: Store<HostState>, error: HarnessError) -> Self {
        Self {
            env: Box::new(store.into_data().env),
            error,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    RequestBody,
    Response,
    ResponseBody,
}

enum Step {
    Continue,
    Answered(LocalResponse),
}

/// Sizes passed to the module are wasm32 `usize`; nothing this host hands over comes near
/// 4 GiB, so saturation is only a guard.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
