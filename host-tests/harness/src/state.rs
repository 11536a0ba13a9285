//! The host's side of the world, as the import functions read and change it. `Environment` is
//! what outlives a module instance (clock, shared data, metrics, logs, the scripted upstreams);
//! `VmState` belongs to one instance (its configuration, contexts, streams, pending callouts,
//! timer); `HostState` joins them as the data of a wasmtime `Store`.

use std::collections::{BTreeMap, VecDeque};

use wasmtime::{Memory, TypedFunc};

use crate::abi::LogLevel;
use crate::callout::{CallResponse, CalloutRecord, CalloutScript, PendingCallout};
use crate::clock::Clock;
use crate::exchange::{LocalResponse, Request};
use crate::headers::HeaderMap;
use crate::logs::LogBook;
use crate::metrics::Metrics;
use crate::shared::{SharedQueues, SharedStore};

/// What survives a reload of the module.
#[derive(Debug, Clone)]
pub struct Environment {
    pub clock: Clock,
    pub shared_data: SharedStore,
    pub queues: SharedQueues,
    pub metrics: Metrics,
    pub logs: LogBook,
    /// The level `proxy_get_log_level` reports; lines below it are dropped as Envoy drops them.
    pub log_level: LogLevel,
    pub callouts: CalloutScript,
    /// Every callout a module made, in order.
    pub callout_log: Vec<CalloutRecord>,
    /// Properties every request has unless the request says otherwise.
    pub default_properties: BTreeMap<String, String>,
    /// State of the deterministic `random_get` source.
    pub random_state: u64,
}

impl Default for Environment {
    fn default() -> Self {
        let mut default_properties = BTreeMap::new();
        // Envoy always knows the peer address; a loopback peer without TLS is the plain case.
        default_properties.insert("source.address".into(), "127.0.0.1:40000".into());
        default_properties.insert("source.port".into(), "40000".into());
        default_properties.insert("destination.address".into(), "127.0.0.1:10000".into());
        default_properties.insert("destination.port".into(), "10000".into());
        default_properties.insert("connection.mtls".into(), "false".into());
        Self {
            clock: Clock::default(),
            shared_data: SharedStore::default(),
            queues: SharedQueues::default(),
            metrics: Metrics::default(),
            logs: LogBook::default(),
            log_level: LogLevel::Debug,
            callouts: CalloutScript::default(),
            callout_log: Vec::new(),
            default_properties,
            random_state: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

/// One HTTP stream (a request and its response) as the module sees it.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    pub request_headers: HeaderMap,
    pub request_body: Vec<u8>,
    pub request_trailers: HeaderMap,
    pub response_headers: HeaderMap,
    pub response_body: Vec<u8>,
    pub response_trailers: HeaderMap,
    pub properties: BTreeMap<String, String>,
    pub set_properties: BTreeMap<String, Vec<u8>>,
    pub local_response: Option<LocalResponse>,
    /// Set by `proxy_continue_stream` on the request after a pause.
    pub request_resumed: bool,
    /// Set by `proxy_close_stream`: Envoy resets the stream.
    pub closed: bool,
}

impl Stream {
    pub fn for_request(request: &Request) -> Self {
        Self {
            request_headers: request.header_map(),
            request_body: request.body.clone(),
            properties: request.properties.clone(),
            ..Self::default()
        }
    }
}

/// A periodic timer set with `proxy_set_tick_period_milliseconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub period_nanos: u64,
    /// Monotonic time of the next tick.
    pub due_nanos: u64,
}

/// State of one module instance.
#[derive(Debug, Clone, Default)]
pub struct VmState {
    pub root_id: u32,
    pub vm_configuration: Vec<u8>,
    pub plugin_configuration: Vec<u8>,
    /// `plugin_root_id`, `plugin_name`, `plugin_vm_id`.
    pub plugin_properties: BTreeMap<String, String>,
    /// Properties the module set outside any stream.
    pub set_properties: BTreeMap<String, Vec<u8>>,
    /// The context whose callback is running, or the one `proxy_set_effective_context` chose.
    pub effective_context: u32,
    pub streams: BTreeMap<u32, Stream>,
    pub pending_callouts: VecDeque<PendingCallout>,
    pub next_token: u32,
    pub call_response: Option<CallResponse>,
    pub tick: Option<Tick>,
}

/// Handles into the instance the imports need: its memory and its allocator.
#[derive(Clone)]
pub struct GuestHandles {
    pub memory: Memory,
    pub allocate: TypedFunc<u32, u32>,
}

impl std::fmt::Debug for GuestHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestHandles")
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

/// The data of a wasmtime `Store` running the module.
#[derive(Debug)]
pub struct HostState {
    pub env: Environment,
    pub vm: VmState,
    pub guest: Option<GuestHandles>,
}

impl HostState {
    pub fn new(env: Environment, vm: VmState) -> Self {
        Self {
            env,
            vm,
            guest: None,
        }
    }

    /// The stream of the effective context, if that context is a stream.
    pub fn stream(&self) -> Option<&Stream> {
        self.vm.streams.get(&self.vm.effective_context)
    }

    pub fn stream_mut(&mut self) -> Option<&mut Stream> {
        self.vm.streams.get_mut(&self.vm.effective_context)
    }

    /// Next deterministic pseudo-random byte source (xorshift64*). Determinism matters more
    /// than quality here: a rerun must see the same hash seeds and the same nonces.
    pub fn next_random(&mut self) -> u64 {
        let mut x = self.env.random_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.env.random_state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
