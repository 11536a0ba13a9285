//! Remote keys through the proxy: turns the schedule of `taskgate::remote` into host calls.
//!
//! Per provider with `remote_jwks`, this worker keeps the state the host needs: the fetch under
//! way (its callout token), the streams paused until it ends, the `kid`s a fetch did not bring.
//! What is proxy-wide lives in shared data, so that worker VMs act as one: the fetch record
//! (`taskgate.jwks.<id>.record`, claimed by compare-and-swap before a fetch, so one worker
//! fetches per interval) and the last good key set (`taskgate.jwks.<id>.set`, the JWKS text, which
//! every worker reads and checks itself before using). A failed fetch of any kind leaves the keys
//! in use as they were.

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};
use taskgate::decision::MissingKey;
use taskgate::remote::{
    self, Discovered, FetchError, FetchRecord, FirstCall, HttpUri, KidMemory, RemoteJwks, Schedule,
    SharedSet, Source, Want,
};
use taskgate::Gate;

use crate::log;

/// How often a worker looks at its key sources: shared sets to pick up, refreshes due, paused
/// streams whose wait is over.
pub const TICK: Duration = Duration::from_millis(1000);

/// Attempts at updating the shared record when another worker writes it at the same moment.
const CAS_ATTEMPTS: usize = 4;

/// What a stream whose token named a missing key should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Keys changed (picked up from another worker): decide again now.
    Retry,
    /// A fetch is under way; the stream is paused and will be decided when it ends.
    Wait,
    /// No fetch now (rate limit, retry interval, `kid` known to be absent): decide as is.
    Refuse,
}

/// A paused stream.
#[derive(Debug)]
pub struct Waiter {
    pub context_id: u32,
    /// Unix milliseconds after which it is decided with the keys there are.
    pub deadline: u64,
    pub gate: Rc<Gate>,
}

/// A fetch this worker made and has not heard back from.
#[derive(Debug)]
struct InFlight {
    token: u32,
    /// The URI asked: a discovery document or the keys.
    stage: Stage,
    started: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Discovery,
    Jwks,
}

/// Metric ids of one source.
#[derive(Debug, Default)]
struct Metrics {
    success: Option<u32>,
    failure: Option<u32>,
    keys: Option<u32>,
    age: Option<u32>,
}

impl Metrics {
    fn define(provider: &str) -> Self {
        let metric = |kind, name: &str| {
            hostcalls::define_metric(kind, &format!("taskgate.jwks.{provider}.{name}")).ok()
        };
        Self {
            success: metric(MetricType::Counter, "fetch_success"),
            failure: metric(MetricType::Counter, "fetch_failure"),
            keys: metric(MetricType::Gauge, "keys_in_use"),
            age: metric(MetricType::Gauge, "key_set_age_seconds"),
        }
    }
}

/// One provider's remote key source, as this worker sees it.
#[derive(Debug)]
struct SourceState {
    provider: usize,
    name: String,
    issuer: String,
    remote: RemoteJwks,
    spiffe: bool,
    /// `fetched_at` of the set in use (0: bootstrap keys or none).
    installed_at: u64,
    /// When the keys in use came: fetch or configuration.
    in_use_since: u64,
    sequence: Option<u64>,
    memory: KidMemory,
    /// The keys' URI a discovery document named to this worker, fetched directly by its
    /// refreshes for a day or until a fetch anywhere in the proxy fails.
    discovered: Option<Discovered>,
    in_flight: Option<InFlight>,
    waiters: Vec<Waiter>,
    metrics: Metrics,
}

impl SourceState {
    fn record_key(&self) -> String {
        format!("taskgate.jwks.{}.record", self.remote.identity)
    }

    fn set_key(&self) -> String {
        format!("taskgate.jwks.{}.set", self.remote.identity)
    }
}

/// Every remote key source of the gate in force.
#[derive(Debug, Default)]
pub struct Keys {
    gate: Option<Rc<Gate>>,
    sources: Vec<SourceState>,
    /// Streams whose keys arrived from another worker, to be decided now.
    ready: Vec<Waiter>,
}

/// Unix milliseconds by the host's clock, 0 when it cannot tell: for scheduling fetches only.
pub fn now_ms() -> u64 {
    clock_ms().unwrap_or(0)
}

/// The host's clock in milliseconds, or `None` when the host cannot tell; decisions need it.
pub fn clock_ms() -> Option<u64> {
    hostcalls::get_current_time()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

impl Keys {
    /// Keys for a newly configured gate; streams paused under the previous one are handed back
    /// to be decided now.
    pub fn configure(&mut self, gate: &Rc<Gate>, now: u64) -> Vec<Waiter> {
        let mut released = std::mem::take(&mut self.ready);
        released.extend(self.sources.iter_mut().flat_map(|s| s.waiters.drain(..)));
        self.gate = Some(Rc::clone(gate));
        self.sources = gate
            .plan()
            .providers
            .iter()
            .enumerate()
            .filter_map(|(provider, p)| {
                let remote = p.remote.clone()?;
                Some(SourceState {
                    provider,
                    name: p.name.clone(),
                    issuer: p.issuer.clone(),
                    remote,
                    spiffe: p.trust_domain.is_some(),
                    installed_at: 0,
                    in_use_since: now,
                    sequence: None,
                    memory: KidMemory::default(),
                    discovered: None,
                    in_flight: None,
                    waiters: Vec::new(),
                    metrics: Metrics::define(&p.name),
                })
            })
            .collect();
        for index in 0..self.sources.len() {
            self.pick_up(index, now);
            self.gauge(index, now);
        }
        released
    }

    pub fn has_sources(&self) -> bool {
        !self.sources.is_empty()
    }

    /// Streams that were waiting on keys another worker fetched, now in use here.
    pub fn take_ready(&mut self) -> Vec<Waiter> {
        std::mem::take(&mut self.ready)
    }

    /// A token of stream `context_id` named a key the provider does not have.
    pub fn on_missing(
        &mut self,
        gate: &Rc<Gate>,
        missing: &MissingKey,
        now: u64,
        context_id: u32,
    ) -> Step {
        let same_gate = self.gate.as_ref().is_some_and(|g| Rc::ptr_eq(g, gate));
        let Some(index) = self
            .sources
            .iter()
            .position(|s| s.provider == missing.provider)
            .filter(|_| same_gate)
        else {
            return Step::Refuse;
        };
        if self.pick_up(index, now) {
            return Step::Retry;
        }
        let Some(source) = self.sources.get_mut(index) else {
            return Step::Refuse;
        };
        if let Some(kid) = &missing.kid {
            if source.memory.is_absent(kid, now) {
                return Step::Refuse;
            }
        }
        let deadline = now.saturating_add(source.remote.fetch_budget_ms());
        let wait = |source: &mut SourceState| {
            source.waiters.push(Waiter {
                context_id,
                deadline,
                gate: Rc::clone(gate),
            });
            Step::Wait
        };
        if source.in_flight.is_some() {
            return wait(source);
        }
        let want = if gate
            .plan()
            .providers
            .get(missing.provider)
            .is_some_and(|p| p.keys.current().keys.is_empty())
        {
            Want::Refresh
        } else {
            Want::Kid
        };
        match self.start(index, want, now) {
            Schedule::Start(_) | Schedule::Busy { .. } => match self.sources.get_mut(index) {
                Some(source) => wait(source),
                None => Step::Refuse,
            },
            Schedule::NotBefore(_) => Step::Refuse,
        }
    }

    /// The timer: picks up keys other workers fetched, starts refreshes that are due, and
    /// returns the paused streams whose wait is over.
    pub fn on_tick(&mut self, now: u64) -> Vec<Waiter> {
        let mut released = Vec::new();
        for index in 0..self.sources.len() {
            self.pick_up(index, now);
            let Some(source) = self.sources.get_mut(index) else {
                continue;
            };
            let abandoned = source.in_flight.as_ref().is_some_and(|f| {
                now > f
                    .started
                    .saturating_add(source.remote.timeout_ms().saturating_mul(2) + 1000)
            });
            if abandoned {
                // The stream that made the call went away (decided when its wait ran out, or
                // its client left) and the host cancelled the call. The lease it held has
                // ended and may be another worker's by now, so it is left in place.
                source.in_flight = None;
                self.fail_as(index, &FetchError::NoResponse, now, FetchRecord::abandoned);
            }
            let Some(source) = self.sources.get_mut(index) else {
                continue;
            };
            let (due, waiting): (Vec<_>, Vec<_>) =
                source.waiters.drain(..).partition(|w| w.deadline <= now);
            source.waiters = waiting;
            released.extend(due);
            if source.in_flight.is_none() {
                self.start(index, Want::Refresh, now);
            }
            self.gauge(index, now);
        }
        released.append(&mut self.ready);
        released
    }

    /// Remembers that a fetch did not bring `kid`.
    pub fn remember_absent(&mut self, missing: &MissingKey, now: u64) {
        let Some(kid) = &missing.kid else {
            return;
        };
        if let Some(source) = self
            .sources
            .iter_mut()
            .find(|s| s.provider == missing.provider)
        {
            source
                .memory
                .remember(kid, now, source.remote.kid_refetch_interval_ms);
        }
    }

    /// A callout answered (or failed: no status). Returns the streams to decide now, if the
    /// answer ended a fetch. `None` when the token is not one of this worker's fetches.
    pub fn on_response(&mut self, token: u32, body_size: usize, now: u64) -> Option<Vec<Waiter>> {
        let index = self
            .sources
            .iter()
            .position(|s| s.in_flight.as_ref().is_some_and(|f| f.token == token))?;
        let (stage, limit, issuer) = {
            let source = self.sources.get_mut(index)?;
            let stage = source.in_flight.take()?.stage;
            (
                stage,
                source.remote.max_response_bytes,
                source.issuer.clone(),
            )
        };
        let outcome = match read_body(body_size, limit) {
            Err(error) => Err(Some(error)),
            Ok(body) => match stage {
                Stage::Discovery => match remote::read_discovery(&body, &issuer) {
                    Err(error) => Err(Some(error)),
                    Ok(uri) => Err(self.fetch_discovered(index, &uri, now)),
                },
                Stage::Jwks => self.accept(index, &body, now),
            },
        };
        match outcome {
            Ok(()) => {}
            // The discovery step led to a second call, under way.
            Err(None) => return None,
            Err(Some(error)) => self.fail(index, &error, now),
        }
        let source = self.sources.get_mut(index)?;
        Some(std::mem::take(&mut source.waiters))
    }

    /// Asks for the keys at a discovered `jwks_uri`; `None` when the call is under way.
    fn fetch_discovered(&mut self, index: usize, uri: &str, now: u64) -> Option<FetchError> {
        let source = self.sources.get_mut(index)?;
        let Source::Discovery(discovery) = &source.remote.source else {
            return Some(FetchError::NoJwksUri);
        };
        let target = match discovery.with_uri(uri) {
            Ok(target) => target,
            Err(_) => return Some(FetchError::NoJwksUri),
        };
        match dispatch(&target) {
            Ok(token) => {
                source.in_flight = Some(InFlight {
                    token,
                    stage: Stage::Jwks,
                    started: now,
                });
                source.discovered = Some(Discovered::new(target, now));
                None
            }
            Err(error) => Some(error),
        }
    }

    /// Checks and installs a fetched JWKS, shares it and records the success.
    fn accept(&mut self, index: usize, body: &[u8], now: u64) -> Result<(), Option<FetchError>> {
        let gate = self.gate.clone().ok_or(None)?;
        let source = self.sources.get_mut(index).ok_or(None)?;
        let text = String::from_utf8(body.to_vec()).map_err(|_| Some(FetchError::NotJson))?;
        // Strictly later than the set in use, so that every worker sees a new set as new.
        let stamp = now.max(source.installed_at.saturating_add(1));
        let hint = install(&gate, source, &text, stamp, now).map_err(Some)?;
        let shared = SharedSet {
            fetched_at: stamp,
            jwks: text,
        };
        if hostcalls::set_shared_data(&source.set_key(), Some(&shared.encode()), None).is_err() {
            log(
                LogLevel::Warn,
                &format!(
                    "taskgate: provider `{}`: cannot share its keys with other workers",
                    source.name
                ),
            );
        }
        let fresh = source.remote.freshness_ms(hint);
        update_record(&source.record_key(), |record| record.succeeded(now, fresh));
        increment(source.metrics.success);
        Ok(())
    }

    /// Records a failed fetch; the keys in use stay.
    fn fail(&mut self, index: usize, error: &FetchError, now: u64) {
        self.fail_as(index, error, now, FetchRecord::failed);
    }

    /// Records a failed fetch with `change` to the shared record.
    fn fail_as(
        &mut self,
        index: usize,
        error: &FetchError,
        now: u64,
        change: fn(FetchRecord, u64) -> FetchRecord,
    ) {
        let Some(source) = self.sources.get_mut(index) else {
            return;
        };
        update_record(&source.record_key(), |record| change(record, now));
        // The issuer may have moved its keys: the next attempt asks discovery again.
        source.discovered = None;
        increment(source.metrics.failure);
        log(
            LogLevel::Warn,
            &format!(
                "taskgate: keys of provider `{}` not fetched ({}): {error}; the keys in use stay",
                source.name,
                error.code()
            ),
        );
    }

    /// Starts a fetch if the shared record allows one and this worker wins the lease.
    fn start(&mut self, index: usize, want: Want, now: u64) -> Schedule {
        let Some(source) = self.sources.get_mut(index) else {
            return Schedule::NotBefore(u64::MAX);
        };
        let key = source.record_key();
        let (mut bytes, mut cas) = read_shared(&key);
        if cas.is_none() {
            // A write without a CAS token cannot lose a race, so the first write is an empty
            // record and the claim below is a compare-and-swap like every later one. Two
            // workers can still both fetch once, if one creates the record just after the
            // other claimed it; after that the record exists and claims are exclusive.
            let _ = hostcalls::set_shared_data(&key, Some(&FetchRecord::default().encode()), None);
            (bytes, cas) = read_shared(&key);
        }
        let record = FetchRecord::decode(&bytes);
        let schedule = source.remote.plan(now, &record, want);
        let Schedule::Start(claimed) = schedule else {
            return schedule;
        };
        if hostcalls::set_shared_data(&key, Some(&claimed.encode()), cas).is_err() {
            // Another worker claimed it a moment ago.
            return Schedule::Busy {
                until: now.saturating_add(source.remote.timeout_ms()),
            };
        }
        let first = source
            .remote
            .first_call(source.discovered.as_ref(), &record, want, now);
        let (target, stage) = match first {
            FirstCall::Keys(uri) => (uri, Stage::Jwks),
            FirstCall::Discovery(uri) => (uri, Stage::Discovery),
        };
        match dispatch(&target) {
            Ok(token) => {
                source.in_flight = Some(InFlight {
                    token,
                    stage,
                    started: now,
                });
                schedule
            }
            Err(error) => {
                self.fail(index, &error, now);
                Schedule::NotBefore(now)
            }
        }
    }

    /// Installs the shared set when it is newer than the one in use; true when keys changed.
    fn pick_up(&mut self, index: usize, now: u64) -> bool {
        let Some(gate) = self.gate.clone() else {
            return false;
        };
        let Some(source) = self.sources.get_mut(index) else {
            return false;
        };
        let (bytes, _) = read_shared(&source.set_key());
        let Some(shared) = SharedSet::decode(&bytes) else {
            return false;
        };
        if shared.fetched_at <= source.installed_at {
            return false;
        }
        match install(&gate, source, &shared.jwks, shared.fetched_at, now) {
            Ok(_) => {
                self.ready.append(&mut source.waiters);
                true
            }
            Err(error) => {
                // Never used: the set in use stays, and this worker stops re-reading this one.
                source.installed_at = shared.fetched_at;
                log(
                    LogLevel::Warn,
                    &format!(
                        "taskgate: provider `{}`: shared keys refused: {error}",
                        source.name
                    ),
                );
                false
            }
        }
    }

    fn gauge(&self, index: usize, now: u64) {
        let Some(source) = self.sources.get(index) else {
            return;
        };
        let Some(gate) = &self.gate else {
            return;
        };
        let count = gate
            .plan()
            .providers
            .get(source.provider)
            .map_or(0, |p| p.keys.current().keys.len());
        record(
            source.metrics.keys,
            u64::try_from(count).unwrap_or(u64::MAX),
        );
        let age = now.saturating_sub(source.in_use_since) / 1000;
        record(source.metrics.age, age);
    }
}

/// Reads a JWKS text, and puts its keys in use. Returns the SPIFFE refresh hint.
fn install(
    gate: &Gate,
    source: &mut SourceState,
    text: &str,
    fetched_at: u64,
    now: u64,
) -> Result<Option<u64>, FetchError> {
    let algorithms = gate
        .plan()
        .providers
        .get(source.provider)
        .map(|p| p.algorithms.clone())
        .unwrap_or_default();
    let fetched = remote::read_jwks(text.as_bytes(), &algorithms, source.spiffe, source.sequence)?;
    for issue in &fetched.issues {
        log(
            LogLevel::Warn,
            &format!(
                "taskgate: provider `{}`: fetched key `keys[{}]` left out: {}",
                source.name, issue.index, issue.message
            ),
        );
    }
    let count = fetched.keys.keys.len();
    gate.install_keys(source.provider, fetched.keys);
    source.installed_at = fetched_at;
    source.in_use_since = fetched_at.min(now);
    source.sequence = fetched.sequence.or(source.sequence);
    source.memory.clear();
    log(
        LogLevel::Info,
        &format!(
            "taskgate: provider `{}`: {count} fetched keys in use",
            source.name
        ),
    );
    if let Some(id) = source.metrics.keys {
        let _ = hostcalls::record_metric(id, u64::try_from(count).unwrap_or(u64::MAX));
    }
    Ok(fetched.refresh_hint_ms)
}

/// The body of the callout answer being delivered, once its status and size pass.
fn read_body(body_size: usize, limit: usize) -> Result<Vec<u8>, FetchError> {
    let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse::<u16>().ok());
    remote::check_response(status, body_size, limit)?;
    match hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size) {
        Ok(body) => Ok(body.unwrap_or_default()),
        Err(_) => Err(FetchError::NoResponse),
    }
}

fn dispatch(target: &HttpUri) -> Result<u32, FetchError> {
    let headers = target.request_headers().to_vec();
    hostcalls::dispatch_http_call(
        &target.cluster,
        headers,
        None,
        Vec::new(),
        Duration::from_millis(target.timeout_ms),
    )
    .map_err(|status| {
        log(
            LogLevel::Error,
            &format!(
                "taskgate: cannot call cluster `{}`: host status {status:?}",
                target.cluster
            ),
        );
        FetchError::Dispatch
    })
}

fn read_shared(key: &str) -> (Vec<u8>, Option<u32>) {
    match hostcalls::get_shared_data(key) {
        Ok((bytes, cas)) => (bytes.unwrap_or_default(), cas),
        Err(_) => (Vec::new(), None),
    }
}

/// Rewrites the shared record with `change`, retrying when another worker wrote it meanwhile.
fn update_record(key: &str, change: impl Fn(FetchRecord) -> FetchRecord) {
    for _ in 0..CAS_ATTEMPTS {
        let (bytes, cas) = read_shared(key);
        let record = change(FetchRecord::decode(&bytes));
        match hostcalls::set_shared_data(key, Some(&record.encode()), cas) {
            Err(Status::CasMismatch) => continue,
            _ => return,
        }
    }
}

fn increment(id: Option<u32>) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

fn record(id: Option<u32>, value: u64) {
    if let Some(id) = id {
        let _ = hostcalls::record_metric(id, value);
    }
}
