//! Golden scenarios: one file format, three hosts.
//!
//! A scenario file (`examples/<job>/scenarios.json`) names a plugin configuration, a fixed clock
//! and a list of cases; each case is a request, the tokens it carries (minted at run time from the
//! example's test keys, with times relative to the clock) and the decision expected of the gate.
//! This crate owns the format, the minting and the comparison; each host (the native library, the
//! wasmtime harness, a real Envoy) implements [`Host`] and is driven by [`run`], so that the same
//! expectations hold on all of them.

pub mod mint;
pub mod pki;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use mint::{KeyRing, MintSpec, SignatureSpec, TestKey};
pub use pki::{PeerCert, PeerSpec, Pki};

/// Why a scenario file could not be used.
#[derive(Debug)]
pub struct ScenarioError(String);

impl ScenarioError {
    fn at(path: &Path, message: impl fmt::Display) -> Self {
        Self(format!("{}: {message}", path.display()))
    }

    fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// One scenario file, loaded with its configuration and keys.
#[derive(Debug)]
pub struct Suite {
    /// The example folder's name, e.g. `k8s-payments`.
    pub name: String,
    /// The folder the file lives in; relative paths in the file are resolved against it.
    pub dir: PathBuf,
    /// What the example shows, in one sentence.
    pub description: String,
    /// The plugin configuration (JSON text), exactly as a proxy would receive it.
    pub config: String,
    /// The fixed clock (Unix seconds) used by hosts that control time.
    pub now: u64,
    /// The private test keys tokens are minted with.
    pub keys: KeyRing,
    /// Certificates made for the suite's `peers`, when it declares any.
    pub pki: Option<Pki>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    description: String,
    /// Path of the plugin configuration, relative to the scenario file.
    config: String,
    /// Folder of private test keys, relative to the scenario file.
    #[serde(default = "default_keys_dir")]
    keys: String,
    /// The clock for hosts that control time; the wall clock when the suite loads if absent.
    #[serde(default)]
    now: Option<u64>,
    /// mTLS clients, by name, that cases can connect as.
    #[serde(default)]
    peers: BTreeMap<String, PeerSpec>,
    cases: Vec<Case>,
}

fn default_keys_dir() -> String {
    "keys".to_owned()
}

/// A request, the tokens it carries and the decision it must get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub request: RequestSpec,
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
    pub expect: Expect,
}

/// The request line, headers and connection properties of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default = "default_method")]
    pub method: String,
    pub host: String,
    pub path: String,
    /// Extra headers, in order; a name may repeat.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Connection and request properties as a proxy would report them
    /// (`connection.uri_san_peer_certificate`, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Connect over mTLS as this peer of the suite's `peers`.
    #[serde(default)]
    pub peer: Option<String>,
}

fn default_method() -> String {
    "GET".to_owned()
}

/// Where a token goes and how it is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Header name the token is sent in.
    #[serde(default = "default_token_header")]
    pub header: String,
    /// Text before the token in the header value.
    #[serde(default = "default_token_prefix")]
    pub prefix: String,
    /// Mint a token from a test key.
    #[serde(default)]
    pub mint: Option<MintSpec>,
    /// Send this text as the token, as it is.
    #[serde(default)]
    pub raw: Option<String>,
    /// Send `text` repeated `count` times (for oversized inputs).
    #[serde(default)]
    pub repeat: Option<Repeat>,
}

fn default_token_header() -> String {
    "authorization".to_owned()
}

fn default_token_prefix() -> String {
    "Bearer ".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    pub text: String,
    pub count: usize,
}

/// The decision a case must get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: u16,
    /// `allowed` when the request reaches the upstream, else the deny's reason code.
    pub reason: String,
    /// Headers the upstream must see with these values; `null` means it must not see the header.
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, Option<String>>,
    /// The exact `WWW-Authenticate` value of the deny, when it matters.
    #[serde(default)]
    pub www_authenticate: Option<String>,
}

/// A case made concrete for one clock: tokens minted, headers in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    pub method: String,
    pub host: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Properties a proxy would report, including the peer's certificate when there is one.
    pub properties: BTreeMap<String, String>,
    /// The peer (of the suite's `pki`) to connect as, for hosts with a real mTLS listener.
    pub peer: Option<String>,
}

/// What a host saw happen to a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub status: u16,
    /// `allowed` when the request reached the upstream, else the deny's reason code.
    pub reason: String,
    /// Response headers of a deny (lower-case names).
    pub response_headers: Vec<(String, String)>,
    /// Request headers as the upstream received them (lower-case names); empty on a deny.
    pub upstream_headers: Vec<(String, String)>,
}

impl Observed {
    pub fn response_header(&self, name: &str) -> Option<&str> {
        lookup(&self.response_headers, name)
    }

    pub fn upstream_header(&self, name: &str) -> Option<&str> {
        lookup(&self.upstream_headers, name)
    }
}

fn lookup<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// A place a request can be decided: the native library, the wasmtime harness, a real Envoy.
pub trait Host {
    fn name(&self) -> &str;
    /// Prepares the host for a suite's configuration.
    fn load(&mut self, suite: &Suite) -> Result<(), String>;
    /// Decides one request at `now_unix` (hosts that cannot set their clock ignore it).
    fn send(&mut self, request: &PreparedRequest, now_unix: u64) -> Result<Observed, String>;
}

/// Whose clock a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Each suite's fixed `now`: for hosts that control time.
    Fixed,
    /// The wall clock: for a real proxy, which reads its own.
    Wall,
}

impl Clock {
    pub fn now(self, suite: &Suite) -> u64 {
        match self {
            Self::Fixed => suite.now,
            Self::Wall => self.now_unix(),
        }
    }

    fn now_unix(self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    }
}

/// Replaces `{{today}}` and `{{tomorrow}}` in a configuration with UTC weekday names (`mon`
/// ...) of `now`, so a time-window rule can be written open or closed whatever day a real proxy,
/// which reads its own clock, runs the suite on.
fn substitute_days(config: &str, now: u64) -> String {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    // 1970-01-01 was a Thursday.
    let today = usize::try_from((now / 86_400 + 3) % 7).unwrap_or(0);
    let name = |offset: usize| DAYS.get((today + offset) % 7).copied().unwrap_or("mon");
    config
        .replace("{{today}}", name(0))
        .replace("{{tomorrow}}", name(1))
}

/// The outcome of one case on one host.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub suite: String,
    pub case: String,
    pub request: String,
    pub expected: Expect,
    pub observed: Result<Observed, String>,
    /// Empty when the case passed; else what differed.
    pub mismatches: Vec<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.observed.is_ok() && self.mismatches.is_empty()
    }
}

/// Every case's outcome on one host.
#[derive(Debug, Default)]
pub struct Report {
    pub results: Vec<CaseResult>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|result| result.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// A readable table: request, expected and observed decision.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut suite = "";
        for result in &self.results {
            if result.suite != suite {
                suite = &result.suite;
                out.push_str(&format!("\n{suite}\n"));
            }
            let observed = match &result.observed {
                Ok(observed) => format!("{} {}", observed.status, observed.reason),
                Err(error) => format!("error: {error}"),
            };
            let verdict = if result.passed() { "ok" } else { "MISMATCH" };
            out.push_str(&format!(
                "  {verdict:<8} {:<52} {:<40} -> {observed}\n",
                clip(&result.case, 52),
                clip(&result.request, 40),
            ));
            for mismatch in &result.mismatches {
                out.push_str(&format!("           {mismatch}\n"));
            }
        }
        out.push_str(&format!(
            "\n{} passed, {} failed\n",
            self.passed(),
            self.failed()
        ));
        out
    }
}

/// Cuts `text` to `width` characters, marking the cut, for table columns.
pub fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(width.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Loads every `scenarios.json` one level below `examples_dir`, in name order.
pub fn load_examples(examples_dir: &Path) -> Result<Vec<Suite>, ScenarioError> {
    let entries =
        std::fs::read_dir(examples_dir).map_err(|e| ScenarioError::at(examples_dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ScenarioError::at(examples_dir, e))?;
        let file = entry.path().join("scenarios.json");
        if file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(ScenarioError::at(
            examples_dir,
            "no `*/scenarios.json` found",
        ));
    }
    files.iter().map(|file| load_suite(file)).collect()
}

/// Loads one scenario file with the configuration and keys it names.
pub fn load_suite(path: &Path) -> Result<Suite, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::at(path, e))?;
    let file: SuiteFile = serde_json::from_str(&text).map_err(|e| ScenarioError::at(path, e))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let config_path = dir.join(&file.config);
    let now = file.now.unwrap_or_else(|| Clock::Wall.now_unix());
    let config = std::fs::read_to_string(&config_path)
        .map(|text| substitute_days(&text, now))
        .map_err(|e| ScenarioError::at(&config_path, e))?;
    let keys = KeyRing::load(&dir.join(&file.keys))?;
    let pki = match file.peers.is_empty() {
        true => None,
        false => Some(Pki::generate(&file.peers).map_err(|e| ScenarioError::at(path, e))?),
    };
    let name = dir.file_name().map_or_else(
        || "scenarios".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Suite {
        name,
        description: file.description,
        config,
        now,
        keys,
        pki,
        cases: file.cases,
        dir,
    })
}

impl Case {
    /// Mints the case's tokens for `now` and lays out the request as it goes on the wire.
    pub fn prepare(&self, keys: &KeyRing, now: u64) -> Result<PreparedRequest, ScenarioError> {
        self.prepare_with(keys, None, now)
    }

    /// Like [`Case::prepare`], with the suite's certificates for cases that name a peer.
    pub fn prepare_with(
        &self,
        keys: &KeyRing,
        pki: Option<&Pki>,
        now: u64,
    ) -> Result<PreparedRequest, ScenarioError> {
        let in_case = |e: String| ScenarioError::new(format!("case `{}`: {e}", self.name));
        let mut headers = Vec::new();
        for token in &self.tokens {
            let text = token
                .text(keys, pki, now)
                .map_err(|e| in_case(e.to_string()))?;
            headers.push((token.header.clone(), format!("{}{text}", token.prefix)));
        }
        headers.extend(self.request.headers.iter().cloned());
        let mut properties = self.request.properties.clone();
        if let Some(name) = &self.request.peer {
            let pki = pki.ok_or_else(|| in_case("the suite declares no `peers`".to_owned()))?;
            let peer = pki.peer(name).map_err(in_case)?;
            properties.insert("connection.mtls".into(), "true".into());
            properties.insert(
                "connection.uri_san_peer_certificate".into(),
                peer.uri_san.clone(),
            );
            properties.insert(
                "connection.sha256_peer_certificate_digest".into(),
                peer.sha256_hex.clone(),
            );
        }
        Ok(PreparedRequest {
            method: self.request.method.clone(),
            host: self.request.host.clone(),
            path: self.request.path.clone(),
            headers,
            properties,
            peer: self.request.peer.clone(),
        })
    }

    /// What differs between the expected and the observed decision.
    pub fn mismatches(&self, observed: &Observed) -> Vec<String> {
        let expect = &self.expect;
        let mut out = Vec::new();
        if observed.status != expect.status || observed.reason != expect.reason {
            out.push(format!(
                "expected {} {}, observed {} {}",
                expect.status, expect.reason, observed.status, observed.reason
            ));
        }
        if let Some(wanted) = &expect.www_authenticate {
            let seen = observed.response_header("www-authenticate");
            if seen != Some(wanted.as_str()) {
                out.push(format!(
                    "www-authenticate: expected `{wanted}`, observed {seen:?}"
                ));
            }
        }
        for (name, wanted) in &expect.upstream_headers {
            let seen = observed.upstream_header(name);
            if seen != wanted.as_deref() {
                out.push(format!(
                    "upstream header `{name}`: expected {wanted:?}, observed {seen:?}"
                ));
            }
        }
        out
    }
}

impl TokenSpec {
    fn text(&self, keys: &KeyRing, pki: Option<&Pki>, now: u64) -> Result<String, ScenarioError> {
        match (&self.mint, &self.raw, &self.repeat) {
            (Some(spec), None, None) => spec.mint_with(keys, pki, now),
            (None, Some(raw), None) => Ok(raw.clone()),
            (None, None, Some(repeat)) => Ok(repeat.text.repeat(repeat.count)),
            _ => Err(ScenarioError::new(
                "a token needs exactly one of `mint`, `raw` and `repeat`",
            )),
        }
    }
}

impl PreparedRequest {
    /// `METHOD host/path`, for tables.
    pub fn summary(&self) -> String {
        format!("{} {}{}", self.method, self.host, self.path)
    }
}

/// Runs every case of every suite on `host` and compares each decision with its expectation.
pub fn run(host: &mut dyn Host, suites: &[Suite], clock: Clock) -> Report {
    let mut report = Report::default();
    for suite in suites {
        let loaded = host.load(suite);
        for case in &suite.cases {
            let now = clock.now(suite);
            let prepared = case.prepare_with(&suite.keys, suite.pki.as_ref(), now);
            let request = prepared
                .as_ref()
                .map_or_else(|_| case.request.path.clone(), PreparedRequest::summary);
            let observed = match (&loaded, prepared) {
                (Err(error), _) => {
                    Err(format!("{} could not load the suite: {error}", host.name()))
                }
                (Ok(()), Err(error)) => Err(error.to_string()),
                (Ok(()), Ok(prepared)) => host.send(&prepared, now),
            };
            let mismatches = match &observed {
                Ok(observed) => case.mismatches(observed),
                Err(error) => vec![error.clone()],
            };
            report.results.push(CaseResult {
                suite: suite.name.clone(),
                case: case.name.clone(),
                request,
                expected: case.expect.clone(),
                observed,
                mismatches,
            });
        }
    }
    report
}
