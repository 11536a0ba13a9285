//! Remote JWKS: when a provider's keys are fetched, and what a fetched answer must be before its
//! keys are used.
//!
//! Everything here is a plain function of the time (milliseconds) and of bytes; the host adapter
//! makes the calls. Four pieces:
//!
//! - [`FetchRecord`]: the proxy-wide schedule of one key source, kept in shared data and updated
//!   by compare-and-swap, so that one fetch is made per interval for the whole proxy rather than
//!   one per worker. [`RemoteJwks::plan`] says whether a fetch may start now and returns the
//!   record that claims it (a lease that ends with the fetch's timeout).
//! - [`KidMemory`]: a worker's negative cache of `kid`s that a fetch did not bring, so that a
//!   token naming a made-up `kid` is refused without asking again.
//! - [`RemoteJwks::first_call`]: a `jwks_uri` found by discovery ([`Discovered`]) is fetched
//!   directly by refreshes for a day, until any fetch fails, instead of asking discovery before
//!   every key fetch; [`RemoteJwks::retry_delay_ms`]: the wait after failures in a row grows.
//! - [`read_jwks`], [`read_discovery`], [`check_response`]: an answer is used only when it is a
//!   `200` (a redirect is a failure and is never followed), within the size cap, strict JSON,
//!   and holds at least one usable key. Anything else leaves the last good keys in use.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Value};

use crate::json;
use crate::jwks::{self, Alg, KeyIssue, KeySet};

/// How many times the wait after failed fetches doubles: at most 8 × `retry_interval`.
pub const MAX_BACKOFF_DOUBLINGS: u32 = 3;
/// Deepest nesting accepted in a fetched document.
const MAX_DEPTH: usize = 32;
/// Longest `kid` remembered; a longer one is refused without a fetch.
pub const MAX_KID_BYTES: usize = 256;
/// `kid`s remembered per worker; beyond it the rate limit alone bounds the fetches.
const MAX_REMEMBERED_KIDS: usize = 1024;
/// A lease outlives the fetch's timeout by this much, so that a worker that vanished mid-fetch
/// frees the source soon after.
const LEASE_MARGIN_MS: u64 = 1000;

/// An HTTP URI reached through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUri {
    pub uri: String,
    /// `:authority` of the request.
    pub authority: String,
    /// `:path` of the request.
    pub path: String,
    pub cluster: String,
    pub timeout_ms: u64,
}

impl HttpUri {
    /// The same cluster and timeout, for another URI (a discovered `jwks_uri`).
    pub fn with_uri(&self, uri: &str) -> Result<Self, String> {
        let (authority, path) = split_uri(uri)?;
        Ok(Self {
            uri: uri.to_owned(),
            authority,
            path,
            ..self.clone()
        })
    }

    /// The request headers of a `GET` for this URI.
    pub fn request_headers(&self) -> [(&str, &str); 4] {
        [
            (":method", "GET"),
            (":path", self.path.as_str()),
            (":authority", self.authority.as_str()),
            ("accept", "application/json"),
        ]
    }
}

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Jwks(HttpUri),
    /// An OpenID Connect discovery document whose `jwks_uri` names the keys.
    Discovery(HttpUri),
}

/// How long a `jwks_uri` found by discovery is fetched directly before discovery is asked again.
/// Any failed fetch in the proxy, and any fetch for an unknown `kid`, asks discovery again, so an
/// issuer that moves its keys is followed on the next attempt.
pub const DISCOVERY_REUSE_MS: u64 = 24 * 60 * 60 * 1000;

/// The keys' URI found by discovery: when, and until when it is used without asking again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub keys: HttpUri,
    pub found_at: u64,
    pub until: u64,
}

impl Discovered {
    pub fn new(keys: HttpUri, now: u64) -> Self {
        Self {
            keys,
            found_at: now,
            until: now.saturating_add(DISCOVERY_REUSE_MS),
        }
    }
}

/// The first call of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstCall {
    /// The discovery document, whose `jwks_uri` a second call fetches.
    Discovery(HttpUri),
    Keys(HttpUri),
}

/// A provider's compiled `remote_jwks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub source: Source,
    pub cache_duration_ms: u64,
    pub kid_refetch_interval_ms: u64,
    pub retry_interval_ms: u64,
    pub max_response_bytes: usize,
    /// Names this source in shared data: a hash of the provider name and the source, so that
    /// a configuration pointing elsewhere never picks up another source's keys.
    pub identity: String,
}

/// Splits `https://host[:port]/path?query` into `:authority` and `:path`.
pub fn split_uri(uri: &str) -> Result<(String, String), String> {
    let bad = || format!("`{uri}` is not an http or https URI with a host");
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let valid = !authority.is_empty()
        && !authority.contains('@')
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    if !valid || path.contains(['#', ' ']) {
        return Err(bad());
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Ok((authority.to_owned(), path))
}

/// Reads a duration written as Envoy writes one in JSON (`"5s"`, `"0.25s"`), in milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 3 {
        return None;
    }
    let millis: u64 = format!("{fraction:0<3}").parse().ok()?;
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(millis)
}

/// Why a fetch brought no keys. Each has a stable code for counters and log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The host could not send the request (an unknown cluster, say).
    Dispatch,
    /// No answer within the timeout, or the connection failed.
    NoResponse,
    /// A 3xx: redirects are never followed.
    Redirect(u16),
    /// Any other status than 200.
    Status(u16),
    TooLarge {
        limit: usize,
    },
    NotJson,
    /// JSON, but no `keys` array.
    NotJwks,
    /// A `keys` array with nothing in it.
    NoKeys,
    /// Keys, none of them usable by this provider.
    NoUsableKeys,
    /// A SPIFFE bundle whose `spiffe_sequence` is lower than the one in use.
    SequenceBackwards,
    /// The discovery document's `issuer` is not the provider's.
    IssuerMismatch,
    /// The discovery document has no usable `jwks_uri`.
    NoJwksUri,
}

impl FetchError {
    pub const CODES: [&'static str; 12] = [
        "dispatch_failed",
        "no_response",
        "redirect",
        "bad_status",
        "too_large",
        "not_json",
        "not_jwks",
        "no_keys",
        "no_usable_keys",
        "sequence_backwards",
        "issuer_mismatch",
        "no_jwks_uri",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Self::Dispatch => "dispatch_failed",
            Self::NoResponse => "no_response",
            Self::Redirect(_) => "redirect",
            Self::Status(_) => "bad_status",
            Self::TooLarge { .. } => "too_large",
            Self::NotJson => "not_json",
            Self::NotJwks => "not_jwks",
            Self::NoKeys => "no_keys",
            Self::NoUsableKeys => "no_usable_keys",
            Self::SequenceBackwards => "sequence_backwards",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::NoJwksUri => "no_jwks_uri",
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dispatch => write!(f, "the proxy refused to send the request"),
            Self::NoResponse => write!(f, "no response within the timeout"),
            Self::Redirect(status) => {
                write!(f, "status `{status}`: redirects are not followed")
            }
            Self::Status(status) => write!(f, "status `{status}` instead of `200`"),
            Self::TooLarge { limit } => {
                write!(f, "the response is larger than `{limit}` bytes")
            }
            Self::NotJson => write!(f, "the response is not strict JSON"),
            Self::NotJwks => write!(f, "the response has no `keys` array"),
            Self::NoKeys => write!(f, "the response holds no key"),
            Self::NoUsableKeys => write!(f, "no key of the response is usable"),
            Self::SequenceBackwards => {
                write!(f, "`spiffe_sequence` is lower than the one in use")
            }
            Self::IssuerMismatch => write!(
                f,
                "the discovery document's `issuer` is not the provider's issuer"
            ),
            Self::NoJwksUri => write!(f, "the discovery document has no http or https `jwks_uri`"),
        }
    }
}

/// The status and size checks every answer passes before its body is read. `status` is `None`
/// when the call failed without an answer.
pub fn check_response(
    status: Option<u16>,
    body_len: usize,
    limit: usize,
) -> Result<(), FetchError> {
    match status {
        None => Err(FetchError::NoResponse),
        Some(status @ 300..=399) => Err(FetchError::Redirect(status)),
        Some(200) if body_len > limit => Err(FetchError::TooLarge { limit }),
        Some(200) => Ok(()),
        Some(status) => Err(FetchError::Status(status)),
    }
}

/// The `jwks_uri` of a discovery document whose `issuer` is `issuer`, byte for byte.
pub fn read_discovery(body: &[u8], issuer: &str) -> Result<String, FetchError> {
    let document = json::parse_object(body, MAX_DEPTH).map_err(|_| FetchError::NotJson)?;
    if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(FetchError::IssuerMismatch);
    }
    let uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or(FetchError::NoJwksUri)?;
    split_uri(uri).map_err(|_| FetchError::NoJwksUri)?;
    Ok(uri.to_owned())
}

/// The keys of a fetched JWKS or SPIFFE bundle.
#[derive(Debug)]
pub struct Fetched {
    pub keys: KeySet,
    /// Keys left out, and why.
    pub issues: Vec<KeyIssue>,
    /// `spiffe_sequence` of a SPIFFE bundle.
    pub sequence: Option<u64>,
    /// `spiffe_refresh_hint`, in milliseconds.
    pub refresh_hint_ms: Option<u64>,
}

/// Reads a JWKS (or SPIFFE bundle) answer. `spiffe` admits `use: jwt-svid` keys; `installed`
/// is the `spiffe_sequence` in use, which a new bundle may not go below.
pub fn read_jwks(
    body: &[u8],
    accepted: &[Alg],
    spiffe: bool,
    installed: Option<u64>,
) -> Result<Fetched, FetchError> {
    let document = json::parse_object(body, MAX_DEPTH).map_err(|_| FetchError::NotJson)?;
    let count = document
        .get("keys")
        .and_then(Value::as_array)
        .map(Vec::len)
        .ok_or(FetchError::NotJwks)?;
    if count == 0 {
        return Err(FetchError::NoKeys);
    }
    let sequence = document.get("spiffe_sequence").and_then(Value::as_u64);
    if let (Some(new), Some(old)) = (sequence, installed) {
        if new < old {
            return Err(FetchError::SequenceBackwards);
        }
    }
    let refresh_hint_ms = document
        .get("spiffe_refresh_hint")
        .and_then(Value::as_u64)
        .map(|seconds| seconds.saturating_mul(1000));
    let (keys, issues) = jwks::parse_with(&Value::Object(document), accepted, spiffe)
        .map_err(|_| FetchError::NotJwks)?;
    // A dangerous key (RSA under 2048 bits) in a fetched set is left out like any unusable one:
    // the set's other keys stay good, and the configuration is not the one at fault.
    if keys.keys.is_empty() {
        return Err(FetchError::NoUsableKeys);
    }
    Ok(Fetched {
        keys,
        issues,
        sequence,
        refresh_hint_ms,
    })
}

/// What a fetch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The first keys, or fresh ones before the set in use grows old.
    Refresh,
    /// A token names a `kid` no key in use has.
    Kid,
}

/// The proxy-wide schedule of one key source, in milliseconds since the epoch (0: never).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchRecord {
    /// A fetch is under way until then.
    pub lease_until: u64,
    /// When the last fetch for an unknown `kid` started.
    pub last_kid_fetch: u64,
    pub last_success: u64,
    pub last_failure: u64,
    /// Failed fetches since the last success.
    pub failures: u64,
    /// The last failed fetch, kept across successes: a `jwks_uri` any worker discovered before
    /// then is not used again without asking discovery.
    pub doubted_at: u64,
    /// When the keys of the last success should be refreshed.
    pub refresh_at: u64,
}

/// Whether a fetch may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Start it, after storing this record (which claims the lease).
    Start(FetchRecord),
    /// A fetch is under way until then; its keys will do.
    Busy { until: u64 },
    /// Not before then (retry interval, refetch interval, or keys still fresh).
    NotBefore(u64),
}

impl FetchRecord {
    /// Parses a record written by [`FetchRecord::encode`]; anything else reads as no record.
    pub fn decode(bytes: &[u8]) -> Self {
        let field = |value: &Value, name: &str| value.get(name).and_then(Value::as_u64);
        let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
            return Self::default();
        };
        Self {
            lease_until: field(&value, "lease_until").unwrap_or(0),
            last_kid_fetch: field(&value, "last_kid_fetch").unwrap_or(0),
            last_success: field(&value, "last_success").unwrap_or(0),
            last_failure: field(&value, "last_failure").unwrap_or(0),
            failures: field(&value, "failures").unwrap_or(0),
            // An older module does not keep it: its last failure is the best reading.
            doubted_at: field(&value, "doubted_at")
                .or_else(|| field(&value, "last_failure"))
                .unwrap_or(0),
            refresh_at: field(&value, "refresh_at").unwrap_or(0),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        json!({
            "lease_until": self.lease_until,
            "last_kid_fetch": self.last_kid_fetch,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
            "failures": self.failures,
            "doubted_at": self.doubted_at,
            "refresh_at": self.refresh_at,
        })
        .to_string()
        .into_bytes()
    }

    /// The record after a fetch that brought keys, fresh for `fresh_ms`.
    pub fn succeeded(self, now: u64, fresh_ms: u64) -> Self {
        Self {
            lease_until: 0,
            last_success: now,
            last_failure: 0,
            failures: 0,
            refresh_at: now.saturating_add(fresh_ms),
            ..self
        }
    }

    /// The record after a fetch that failed.
    pub fn failed(self, now: u64) -> Self {
        Self {
            lease_until: 0,
            last_failure: now,
            failures: self.failures.saturating_add(1),
            // Never backwards: a worker that read its clock a moment earlier must not make
            // a URI discovered before a later failure look sound again.
            doubted_at: self.doubted_at.max(now),
            ..self
        }
    }

    /// The record after a fetch whose answer never came because the host cancelled the call
    /// with the stream that made it, noticed once its lease had ended: a failure like any other
    /// (it was slower than the stream could wait), but the lease, by then perhaps another
    /// worker's, stays.
    pub fn abandoned(self, now: u64) -> Self {
        Self {
            lease_until: self.lease_until,
            ..self.failed(now)
        }
    }
}

impl RemoteJwks {
    /// The one fetch timeout of this source (discovery and keys use the same cluster settings).
    pub fn timeout_ms(&self) -> u64 {
        match &self.source {
            Source::Jwks(uri) | Source::Discovery(uri) => uri.timeout_ms,
        }
    }

    /// How long keys just fetched stay fresh: four fifths of `cache_duration` (or of a SPIFFE
    /// bundle's refresh hint, when shorter), so the refresh lands before they are stale.
    pub fn freshness_ms(&self, refresh_hint_ms: Option<u64>) -> u64 {
        let period = refresh_hint_ms.map_or(self.cache_duration_ms, |hint| {
            hint.clamp(1000, self.cache_duration_ms)
        });
        period / 5 * 4
    }

    /// What a fetch for `want` starting at `now` asks first: the keys when their URI is
    /// configured, or was discovered within the day and since the last failed fetch (`record`);
    /// the discovery document otherwise, and always for an unknown `kid`, which may be the sign
    /// that the keys moved.
    pub fn first_call(
        &self,
        discovered: Option<&Discovered>,
        record: &FetchRecord,
        want: Want,
        now: u64,
    ) -> FirstCall {
        match (&self.source, discovered, want) {
            (Source::Jwks(keys), _, _) => FirstCall::Keys(keys.clone()),
            (Source::Discovery(_), Some(found), Want::Refresh)
                if now < found.until && found.found_at > record.doubted_at =>
            {
                FirstCall::Keys(found.keys.clone())
            }
            (Source::Discovery(document), _, _) => FirstCall::Discovery(document.clone()),
        }
    }

    /// The longest a fetch may take: one call, or two in a row for a discovery document and the
    /// keys it names. A stream waiting on a fetch waits this long at most.
    pub fn fetch_budget_ms(&self) -> u64 {
        match &self.source {
            Source::Jwks(uri) => uri.timeout_ms,
            Source::Discovery(uri) => uri.timeout_ms.saturating_mul(2),
        }
    }

    /// How long after a failed fetch the next may start: `retry_interval`, and once the proxy
    /// has had keys from this source, twice that for each further failure in a row, up to 8 ×
    /// (three doublings), so that an issuer that went down is not asked at a fixed pace for as
    /// long as it stays down. Before any fetch succeeded the pace stays fixed: tokens may be
    /// waiting on those first keys.
    pub fn retry_delay_ms(&self, record: &FetchRecord) -> u64 {
        if record.last_success == 0 {
            return self.retry_interval_ms;
        }
        let doublings = record
            .failures
            .saturating_sub(1)
            .min(u64::from(MAX_BACKOFF_DOUBLINGS));
        self.retry_interval_ms.saturating_mul(1 << doublings)
    }

    /// Whether a fetch for `want` may start at `now`, given the shared `record`.
    pub fn plan(&self, now: u64, record: &FetchRecord, want: Want) -> Schedule {
        if record.lease_until > now {
            return Schedule::Busy {
                until: record.lease_until,
            };
        }
        let retry_at = match record.last_failure {
            0 => 0,
            failed => failed.saturating_add(self.retry_delay_ms(record)),
        };
        let due_at = match want {
            Want::Refresh if record.last_success == 0 => retry_at,
            Want::Refresh => record.refresh_at.max(retry_at),
            Want::Kid => match record.last_kid_fetch {
                0 => retry_at,
                last => last
                    .saturating_add(self.kid_refetch_interval_ms)
                    .max(retry_at),
            },
        };
        if due_at > now {
            return Schedule::NotBefore(due_at);
        }
        let lease_until = now
            .saturating_add(self.timeout_ms().saturating_mul(2))
            .saturating_add(LEASE_MARGIN_MS);
        let last_kid_fetch = match want {
            Want::Kid => now,
            Want::Refresh => record.last_kid_fetch,
        };
        Schedule::Start(FetchRecord {
            lease_until,
            last_kid_fetch,
            ..*record
        })
    }
}

/// A worker's memory of `kid`s that a fetch did not bring, each until a fetch may be tried for
/// it again.
#[derive(Debug, Default)]
pub struct KidMemory {
    absent: BTreeMap<String, u64>,
}

impl KidMemory {
    /// Whether `kid` is known to be absent at `now`.
    pub fn is_absent(&self, kid: &str, now: u64) -> bool {
        kid.len() > MAX_KID_BYTES || self.absent.get(kid).is_some_and(|until| *until > now)
    }

    /// Remembers that a fetch at `now` did not bring `kid`.
    pub fn remember(&mut self, kid: &str, now: u64, interval_ms: u64) {
        if kid.len() > MAX_KID_BYTES {
            return;
        }
        if self.absent.len() >= MAX_REMEMBERED_KIDS {
            self.absent.retain(|_, until| *until > now);
        }
        if self.absent.len() < MAX_REMEMBERED_KIDS {
            self.absent
                .insert(kid.to_owned(), now.saturating_add(interval_ms));
        }
    }

    /// Forgets everything, when a new key set arrives.
    pub fn clear(&mut self) {
        self.absent.clear();
    }

    pub fn len(&self) -> usize {
        self.absent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.absent.is_empty()
    }
}

/// A key set as one worker shares it with the others: the JWKS text exactly as fetched, and
/// when. Every worker reads and checks the text itself before using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSet {
    pub fetched_at: u64,
    pub jwks: String,
}

impl SharedSet {
    pub fn encode(&self) -> Vec<u8> {
        json!({"fetched_at": self.fetched_at, "jwks": self.jwks})
            .to_string()
            .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        Some(Self {
            fetched_at: value.get("fetched_at")?.as_u64()?,
            jwks: value.get("jwks")?.as_str()?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> RemoteJwks {
        RemoteJwks {
            source: Source::Jwks(HttpUri {
                uri: "https://issuer.test/jwks.json".into(),
                authority: "issuer.test".into(),
                path: "/jwks.json".into(),
                cluster: "issuer".into(),
                timeout_ms: 5000,
            }),
            cache_duration_ms: 600_000,
            kid_refetch_interval_ms: 30_000,
            retry_interval_ms: 15_000,
            max_response_bytes: 1000,
            identity: "x".into(),
        }
    }

    const T: u64 = 1_767_225_600_000;

    fn start(schedule: Schedule) -> FetchRecord {
        match schedule {
            Schedule::Start(record) => record,
            other => panic!("expected a start, got {other:?}"),
        }
    }

    #[test]
    fn reads_envoy_durations_in_milliseconds() {
        assert_eq!(parse_duration_ms("5s"), Some(5000));
        assert_eq!(parse_duration_ms("0.25s"), Some(250));
        assert_eq!(parse_duration_ms("600s"), Some(600_000));
        for bad in ["5", "s", "5m", "-1s", "1.2345s", ".5s", "1e3s"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn splits_a_uri_into_authority_and_path() {
        assert_eq!(
            split_uri("https://issuer.test:8443/keys?x=1").unwrap(),
            ("issuer.test:8443".into(), "/keys?x=1".into())
        );
        assert_eq!(
            split_uri("http://issuer.test").unwrap(),
            ("issuer.test".into(), "/".into())
        );
        assert!(split_uri("ftp://issuer.test/k").is_err());
        assert!(split_uri("https:///k").is_err());
        assert!(split_uri("https://user@issuer.test/k").is_err());
    }

    #[test]
    fn a_redirect_is_a_failure_and_a_large_body_too() {
        assert_eq!(
            check_response(Some(302), 0, 10),
            Err(FetchError::Redirect(302))
        );
        assert_eq!(
            check_response(Some(500), 0, 10),
            Err(FetchError::Status(500))
        );
        assert_eq!(check_response(None, 0, 10), Err(FetchError::NoResponse));
        assert_eq!(
            check_response(Some(200), 11, 10),
            Err(FetchError::TooLarge { limit: 10 })
        );
        assert_eq!(check_response(Some(200), 10, 10), Ok(()));
    }

    #[test]
    fn the_first_fetch_starts_at_once_and_takes_a_lease() {
        let record = start(remote().plan(T, &FetchRecord::default(), Want::Refresh));
        assert_eq!(record.lease_until, T + 11_000);
        assert_eq!(
            remote().plan(T + 1, &record, Want::Kid),
            Schedule::Busy { until: T + 11_000 }
        );
    }

    #[test]
    fn a_refresh_is_due_only_when_the_keys_grow_old() {
        let record = FetchRecord::default().succeeded(T, remote().freshness_ms(None));
        assert_eq!(record.refresh_at, T + 480_000);
        assert_eq!(
            remote().plan(T + 1000, &record, Want::Refresh),
            Schedule::NotBefore(T + 480_000)
        );
        start(remote().plan(T + 480_000, &record, Want::Refresh));
    }

    #[test]
    fn unknown_kids_cause_one_fetch_per_interval() {
        let r = remote();
        let mut record = FetchRecord::default().succeeded(T, r.freshness_ms(None));
        let mut fetches = 0;
        for second in 0..120 {
            let now = T + second * 1000;
            if let Schedule::Start(claimed) = r.plan(now, &record, Want::Kid) {
                fetches += 1;
                record = claimed.succeeded(now + 10, r.freshness_ms(None));
            }
        }
        assert_eq!(fetches, 4);
    }

    #[test]
    fn a_discovered_jwks_uri_serves_refreshes_until_it_ages_out_or_a_fetch_fails() {
        let Source::Jwks(document) = remote().source else {
            unreachable!()
        };
        let discovery = RemoteJwks {
            source: Source::Discovery(document.clone()),
            ..remote()
        };
        let keys = document
            .with_uri("https://keys.issuer.test/v1/keys")
            .unwrap();
        let found = Discovered::new(keys.clone(), T);
        let fine = FetchRecord::default().succeeded(T, 480_000);
        let first = |found, record, want, now| discovery.first_call(found, record, want, now);
        let ask = FirstCall::Discovery(document.clone());
        assert_eq!(first(None, &fine, Want::Refresh, T), ask);
        let last_ms = T + DISCOVERY_REUSE_MS - 1;
        assert_eq!(
            first(Some(&found), &fine, Want::Refresh, last_ms),
            FirstCall::Keys(keys)
        );
        assert_eq!(first(Some(&found), &fine, Want::Refresh, last_ms + 1), ask);
        // An unknown `kid` may mean the keys moved.
        assert_eq!(first(Some(&found), &fine, Want::Kid, T + 1), ask);
        // A failed fetch anywhere in the proxy, even one a success followed, makes every worker
        // ask again.
        let doubted = fine.failed(T).succeeded(T + 1, 480_000);
        assert_eq!(first(Some(&found), &doubted, Want::Refresh, T + 2), ask);
        // Discovered again after the failure, the URI serves refreshes again.
        let again = Discovered::new(found.keys.clone(), T + 2);
        assert_eq!(
            first(Some(&again), &doubted, Want::Refresh, T + 3),
            FirstCall::Keys(found.keys.clone())
        );
        // The doubt never moves back, whichever worker's clock read earlier.
        assert_eq!(doubted.failed(T - 5).doubted_at, T);
        // A configured URI is always the keys', whatever was discovered.
        assert_eq!(
            remote().first_call(Some(&found), &doubted, Want::Kid, T + 2),
            FirstCall::Keys(document)
        );
    }

    #[test]
    fn a_failure_waits_the_retry_interval_whatever_is_wanted() {
        let record = FetchRecord::default().failed(T);
        assert_eq!(
            remote().plan(T + 1, &record, Want::Kid),
            Schedule::NotBefore(T + 15_000)
        );
        assert_eq!(
            remote().plan(T + 1, &record, Want::Refresh),
            Schedule::NotBefore(T + 15_000)
        );
        start(remote().plan(T + 15_000, &record, Want::Refresh));
    }

    #[test]
    fn failures_in_a_row_double_the_wait_up_to_eight_retry_intervals_and_a_success_resets_it() {
        let mut record = FetchRecord::default().succeeded(T, 480_000);
        let mut waits = Vec::new();
        for failure in 1..=6 {
            let at = T + failure * 1_000_000;
            record = record.failed(at);
            let Schedule::NotBefore(due) = remote().plan(at + 1, &record, Want::Kid) else {
                panic!("a fetch right after a failure");
            };
            waits.push((due - at) / 1000);
        }
        assert_eq!(waits, [15, 30, 60, 120, 120, 120]);
        let recovered = record
            .succeeded(T + 9_000_000, 480_000)
            .failed(T + 9_500_000);
        assert_eq!(
            remote().plan(T + 9_500_001, &recovered, Want::Kid),
            Schedule::NotBefore(T + 9_515_000)
        );
    }

    #[test]
    fn before_any_keys_came_failures_are_retried_at_the_plain_interval() {
        let mut record = FetchRecord::default();
        for failure in 1..=5 {
            let at = T + failure * 1_000_000;
            record = record.failed(at);
            assert_eq!(
                remote().plan(at + 1, &record, Want::Refresh),
                Schedule::NotBefore(at + 15_000)
            );
        }
    }

    #[test]
    fn a_cancelled_fetch_counts_as_failed_but_leaves_another_workers_lease() {
        let held = FetchRecord {
            lease_until: T + 7_000,
            ..FetchRecord::default()
        };
        let record = held.abandoned(T);
        assert_eq!(
            (record.lease_until, record.failures, record.last_failure),
            (T + 7_000, 1, T)
        );
        assert_eq!(held.failed(T).lease_until, 0);
    }

    #[test]
    fn a_discovery_source_gives_a_fetch_two_timeouts() {
        let Source::Jwks(document) = remote().source else {
            unreachable!()
        };
        let discovery = RemoteJwks {
            source: Source::Discovery(document),
            ..remote()
        };
        assert_eq!(
            (remote().fetch_budget_ms(), discovery.fetch_budget_ms()),
            (5_000, 10_000)
        );
    }

    #[test]
    fn an_abandoned_lease_frees_the_source_after_it_ends() {
        let record = start(remote().plan(T, &FetchRecord::default(), Want::Refresh));
        start(remote().plan(record.lease_until, &record, Want::Refresh));
    }

    #[test]
    fn a_record_survives_its_encoding_and_garbage_reads_as_none() {
        let record = FetchRecord {
            lease_until: 1,
            last_kid_fetch: 2,
            last_success: 3,
            last_failure: 4,
            failures: 6,
            doubted_at: 7,
            refresh_at: 5,
        };
        assert_eq!(FetchRecord::decode(&record.encode()), record);
        // A record of an older module, without the count, still reads.
        let older = br#"{"lease_until":1,"last_kid_fetch":2,"last_success":3,"last_failure":4,"refresh_at":5}"#;
        assert_eq!(
            FetchRecord::decode(older),
            FetchRecord {
                failures: 0,
                doubted_at: 4,
                ..record
            }
        );
        assert_eq!(FetchRecord::decode(b"\xff"), FetchRecord::default());
    }

    #[test]
    fn a_spiffe_refresh_hint_shortens_the_freshness_but_never_below_a_second() {
        assert_eq!(remote().freshness_ms(Some(60_000)), 48_000);
        assert_eq!(remote().freshness_ms(Some(0)), 800);
        assert_eq!(remote().freshness_ms(Some(9_999_000)), 480_000);
    }

    #[test]
    fn remembers_absent_kids_until_the_interval_ends() {
        let mut memory = KidMemory::default();
        memory.remember("k", T, 30_000);
        assert!(memory.is_absent("k", T + 29_999));
        assert!(!memory.is_absent("k", T + 30_000));
        assert!(memory.is_absent(&"x".repeat(MAX_KID_BYTES + 1), T));
    }

    #[test]
    fn reads_a_discovery_document_only_for_the_same_issuer() {
        let body = br#"{"issuer":"https://issuer.test","jwks_uri":"https://issuer.test/k"}"#;
        assert_eq!(
            read_discovery(body, "https://issuer.test").unwrap(),
            "https://issuer.test/k"
        );
        assert_eq!(
            read_discovery(body, "https://issuer.test/"),
            Err(FetchError::IssuerMismatch)
        );
        let no_uri = br#"{"issuer":"https://issuer.test","jwks_uri":"file:///k"}"#;
        assert_eq!(
            read_discovery(no_uri, "https://issuer.test"),
            Err(FetchError::NoJwksUri)
        );
    }

    #[test]
    fn refuses_answers_without_usable_keys() {
        let read = |body: &[u8]| read_jwks(body, &Alg::ALL, false, None).map(|_| ());
        assert_eq!(read(b"<html>"), Err(FetchError::NotJson));
        assert_eq!(read(br#"{"keys":[]}"#), Err(FetchError::NoKeys));
        assert_eq!(read(br#"{"key":[]}"#), Err(FetchError::NotJwks));
        assert_eq!(
            read(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#),
            Err(FetchError::NoUsableKeys)
        );
    }

    #[test]
    fn a_spiffe_bundle_may_not_go_back_in_sequence() {
        let body = br#"{"spiffe_sequence": 3, "keys": [{"kty":"oct","k":"AA"}]}"#;
        assert_eq!(
            read_jwks(body, &Alg::ALL, true, Some(4)).map(|_| ()),
            Err(FetchError::SequenceBackwards)
        );
    }
}
