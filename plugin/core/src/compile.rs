//! Compiling a configuration: JSON text to a validated [`Plan`], or every error with its path.
//!
//! This runs once, when a proxy loads or updates the module; a configuration with any error is
//! refused whole, so a bad update never opens the gate. Errors say where (`rules[2].providers[0]`)
//! and what (the offending value in backticks); keys that are merely unusable are reported as
//! warnings and left out.

use std::fmt;

use serde_json::Value;

use crate::config::{
    RawBinding, RawClaimCondition, RawConfig, RawDelegation, RawJwksSource, RawPath,
    RawPeerBinding, RawProvider, RawRemoteJwks, RawRule, RawSubject, RawTimeWindow, RawTransaction,
};
use crate::extract::{Location, Source};
use crate::index::RuleIndex;
use crate::json;
use crate::jwks::{self, Alg};
use crate::provider::{normalize_type, KeySlot, Provider};
use crate::remote::{self, HttpUri, RemoteJwks};
use crate::rule::{
    Binding, BindingSource, ClaimCondition, ClaimTest, Delegation, PathMatcher, PeerBinding, Route,
    Rule, Segment, SubjectMatcher, TimeWindow, Transaction,
};
use crate::subject::{is_spiffe_id, Pattern};

/// Deepest nesting accepted in a configuration document.
const MAX_CONFIG_DEPTH: usize = 64;

/// Largest token cap a configuration may set; Envoy's default header limit is 60 KiB.
const MAX_TOKEN_BYTES_LIMIT: usize = 65536;

/// Largest response cap a configuration may set for fetched keys.
const MAX_RESPONSE_BYTES_LIMIT: usize = 4 * 1024 * 1024;

/// Longest fetch timeout: a request waiting on keys waits at most this long.
const MAX_FETCH_TIMEOUT_MS: u64 = 60_000;

/// One configuration error: where, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path such as `providers.cluster.algorithms[1]`; empty for the document itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

/// Everything a request decision needs, validated.
#[derive(Debug)]
pub struct Plan {
    pub providers: Vec<Provider>,
    pub locations: Vec<Location>,
    pub rules: Vec<Rule>,
    pub subject_header: String,
    pub rule_header: String,
    pub max_token_bytes: usize,
    /// Every header the gate sets upstream; a client's copies are always removed.
    pub identity_headers: Vec<String>,
    pub environment: Option<String>,
    /// Some rule reads the mTLS peer, so the host must report it.
    pub needs_peer: bool,
    pub index: RuleIndex,
}

/// A compiled plan and what was left out of it.
#[derive(Debug)]
pub struct Compiled {
    pub plan: Plan,
    pub warnings: Vec<ConfigError>,
}

/// Compiles configuration text.
pub fn compile(text: &str) -> Result<Compiled, Vec<ConfigError>> {
    let value = json::parse_with_path(text, MAX_CONFIG_DEPTH).map_err(|(why, path)| {
        let message = match why {
            json::JsonError::Syntax => match serde_json::from_str::<Value>(text) {
                Err(e) => format!("configuration is not valid JSON: {e}"),
                Ok(_) => "configuration holds a number out of range".to_owned(),
            },
            other => format!("configuration {other}"),
        };
        vec![ConfigError { path, message }]
    })?;
    let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        vec![ConfigError {
            path: e.path().to_string().trim_start_matches('.').to_owned(),
            message: e.inner().to_string(),
        }]
    })?;
    Compiler::default().run(raw)
}

#[derive(Default)]
struct Compiler {
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl Compiler {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn run(mut self, raw: RawConfig) -> Result<Compiled, Vec<ConfigError>> {
        if raw.providers.is_empty() {
            self.error("providers", "at least one provider is required");
        }
        if raw.max_token_bytes == 0 || raw.max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
            self.error(
                "max_token_bytes",
                format!(
                    "`{}` is outside 1..={MAX_TOKEN_BYTES_LIMIT}",
                    raw.max_token_bytes
                ),
            );
        }
        let mut providers = Vec::new();
        let mut locations: Vec<Location> = Vec::new();
        for (name, provider) in &raw.providers {
            let index = providers.len();
            let sources = self.sources(name, provider);
            for source in sources {
                self.place(
                    &mut locations,
                    source,
                    index,
                    name,
                    &provider.issuer,
                    &providers,
                );
            }
            providers.push(self.provider(name, provider));
        }
        let subject_header =
            self.header_name("forward.subject_header", &raw.forward.subject_header);
        let rule_header = self.header_name("forward.rule_header", &raw.forward.rule_header);
        let mut identity_headers = vec![subject_header.clone(), rule_header.clone()];
        for provider in &providers {
            identity_headers.extend(provider.claim_to_headers.iter().map(|(h, _)| h.clone()));
        }
        // Servers that read headers through CGI-style names see `x_taskgate_subject` as
        // `x-taskgate-subject`; a client's copy under either spelling is removed.
        let underscored: Vec<String> = identity_headers
            .iter()
            .map(|h| h.replace('-', "_"))
            .collect();
        identity_headers.extend(underscored);
        identity_headers.sort();
        identity_headers.dedup();
        let names: Vec<&String> = raw.providers.keys().collect();
        let mut rules: Vec<Rule> = Vec::new();
        // A set, not a scan of the rules so far: that would make configuring grow with the
        // square of the number of rules.
        let mut seen = std::collections::HashSet::new();
        for (index, rule) in raw.rules.iter().enumerate() {
            let path = format!("rules[{index}]");
            if !seen.insert(rule.name.as_str()) {
                self.error(
                    format!("{path}.name"),
                    format!("rule name `{}` is used twice", rule.name),
                );
            }
            if rule.environment_claim.is_some() && raw.environment.is_none() {
                self.error(
                    format!("{path}.environment_claim"),
                    "the rule names an environment claim but the top-level `environment` is not set",
                );
            }
            rules.push(self.rule(&path, rule, &names));
        }
        let needs_peer = rules.iter().any(|r| r.peer_binding.is_some());
        if raw.rules.is_empty() {
            self.error(
                "rules",
                "at least one rule is required; without one every request is denied",
            );
        }
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        let index = RuleIndex::new(&rules);
        Ok(Compiled {
            plan: Plan {
                providers,
                locations,
                rules,
                subject_header,
                rule_header,
                max_token_bytes: raw.max_token_bytes,
                identity_headers,
                environment: raw.environment,
                needs_peer,
                index,
            },
            warnings: self.warnings,
        })
    }

    fn provider(&mut self, name: &str, raw: &RawProvider) -> Provider {
        let at = format!("providers.{name}");
        if raw.issuer.is_empty() {
            self.error(format!("{at}.issuer"), "issuer cannot be empty");
        }
        if raw.audiences.is_empty() {
            self.warnings.push(ConfigError {
                path: format!("{at}.audiences"),
                message: "empty: tokens this issuer minted for any audience are accepted"
                    .to_owned(),
            });
        }
        let mut algorithms = Vec::new();
        for (i, alg) in raw.algorithms.iter().enumerate() {
            match Alg::from_name(alg) {
                Some(alg) => algorithms.push(alg),
                None => self.error(
                    format!("{at}.algorithms[{i}]"),
                    format!(
                        "algorithm `{alg}` is not supported (one of RS256, PS256, ES256, EdDSA)"
                    ),
                ),
            }
        }
        if raw.algorithms.is_empty() {
            self.error(
                format!("{at}.algorithms"),
                "at least one algorithm is required",
            );
        }
        let trust_domain = raw.trust_domain.as_ref().map(|domain| {
            let valid = !domain.is_empty()
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
            if !valid {
                self.error(
                    format!("{at}.trust_domain"),
                    format!("`{domain}` is not a SPIFFE trust domain name"),
                );
            }
            domain.clone()
        });
        let spiffe = trust_domain.is_some();
        let remote = raw
            .remote_jwks
            .as_ref()
            .and_then(|r| self.remote(&format!("{at}.remote_jwks"), name, raw, r));
        let keys = match &raw.local_jwks {
            Some(source) => self.keys(&format!("{at}.local_jwks"), source, &algorithms, spiffe),
            None if raw.remote_jwks.is_none() => {
                self.error(
                    at.as_str(),
                    "one of `local_jwks` and `remote_jwks` is required",
                );
                jwks::KeySet::default()
            }
            None => jwks::KeySet::default(),
        };
        let mut claim_to_headers = Vec::new();
        for (i, entry) in raw.claim_to_headers.iter().enumerate() {
            let header = self.header_name(
                &format!("{at}.claim_to_headers[{i}].header_name"),
                &entry.header_name,
            );
            if entry.claim_name.is_empty() {
                self.error(
                    format!("{at}.claim_to_headers[{i}].claim_name"),
                    "claim name cannot be empty",
                );
            }
            claim_to_headers.push((header, entry.claim_name.clone()));
        }
        Provider {
            name: name.to_owned(),
            issuer: raw.issuer.clone(),
            audiences: raw.audiences.clone(),
            keys: KeySlot::new(keys),
            remote,
            trust_domain,
            algorithms,
            clock_skew_seconds: raw.clock_skew_seconds,
            require_expiration: raw.require_expiration,
            max_lifetime_seconds: raw.max_lifetime_seconds,
            allowed_types: raw
                .allowed_types
                .iter()
                .map(|t| normalize_type(t))
                .collect(),
            forward: raw.forward,
            claim_to_headers,
            required_claims: raw.required_claims.clone(),
        }
    }

    fn keys(
        &mut self,
        at: &str,
        source: &RawJwksSource,
        algorithms: &[Alg],
        spiffe: bool,
    ) -> jwks::KeySet {
        let document = match (&source.inline_string, &source.inline) {
            (Some(text), None) => match json::parse_value(text, MAX_CONFIG_DEPTH) {
                Ok(value) => value,
                Err(why) => {
                    self.error(format!("{at}.inline_string"), format!("JWKS text {why}"));
                    return jwks::KeySet::default();
                }
            },
            (None, Some(value)) => value.clone(),
            _ => {
                self.error(
                    at,
                    "exactly one of `inline_string` and `inline` is required",
                );
                return jwks::KeySet::default();
            }
        };
        let (set, issues) = match jwks::parse_with(&document, algorithms, spiffe) {
            Ok(parsed) => parsed,
            Err(message) => {
                self.error(at, message);
                return jwks::KeySet::default();
            }
        };
        for issue in issues {
            let entry = ConfigError {
                path: format!("{at}.keys[{}]", issue.index),
                message: issue.message,
            };
            if issue.fatal {
                self.errors.push(entry);
            } else {
                self.warnings.push(entry);
            }
        }
        if set.keys.is_empty() {
            self.error(at, "no usable key: every provider needs at least one");
        }
        set
    }

    fn remote(
        &mut self,
        at: &str,
        name: &str,
        provider: &RawProvider,
        raw: &RawRemoteJwks,
    ) -> Option<RemoteJwks> {
        // Every field is checked even when an earlier one failed, so that one reading names
        // every problem.
        let source = match (&raw.http_uri, &raw.discovery) {
            (Some(uri), None) => self
                .http_uri(
                    &format!("{at}.http_uri"),
                    &uri.uri,
                    &uri.cluster,
                    &uri.timeout,
                )
                .map(remote::Source::Jwks),
            (None, Some(discovery)) => {
                let uri = discovery.uri.clone().unwrap_or_else(|| {
                    format!(
                        "{}/.well-known/openid-configuration",
                        provider.issuer.trim_end_matches('/')
                    )
                });
                self.http_uri(
                    &format!("{at}.discovery"),
                    &uri,
                    &discovery.cluster,
                    &discovery.timeout,
                )
                .map(remote::Source::Discovery)
            }
            _ => {
                self.error(at, "exactly one of `http_uri` and `discovery` is required");
                None
            }
        };
        let cache_duration_ms = self.duration(&format!("{at}.cache_duration"), &raw.cache_duration);
        let kid_refetch_interval_ms = self.duration(
            &format!("{at}.kid_refetch_interval"),
            &raw.kid_refetch_interval,
        );
        let retry_interval_ms = self.duration(&format!("{at}.retry_interval"), &raw.retry_interval);
        if raw.max_response_bytes == 0 || raw.max_response_bytes > MAX_RESPONSE_BYTES_LIMIT {
            self.error(
                format!("{at}.max_response_bytes"),
                format!(
                    "`{}` is outside 1..={MAX_RESPONSE_BYTES_LIMIT}",
                    raw.max_response_bytes
                ),
            );
        }
        let source = source?;
        let identity = fingerprint(&format!("{name}\n{source:?}"));
        Some(RemoteJwks {
            source,
            cache_duration_ms: cache_duration_ms?,
            kid_refetch_interval_ms: kid_refetch_interval_ms?,
            retry_interval_ms: retry_interval_ms?,
            max_response_bytes: raw.max_response_bytes,
            identity,
        })
    }

    fn http_uri(&mut self, at: &str, uri: &str, cluster: &str, timeout: &str) -> Option<HttpUri> {
        let split = remote::split_uri(uri).map_err(|why| self.error(format!("{at}.uri"), why));
        if cluster.is_empty() {
            self.error(format!("{at}.cluster"), "cluster cannot be empty");
        }
        let timeout_ms = self.duration(&format!("{at}.timeout"), timeout);
        if timeout_ms.is_some_and(|ms| ms > MAX_FETCH_TIMEOUT_MS) {
            self.error(
                format!("{at}.timeout"),
                format!("`{timeout}` is longer than `60s`"),
            );
        }
        let (authority, path) = split.ok()?;
        Some(HttpUri {
            uri: uri.to_owned(),
            authority,
            path,
            cluster: cluster.to_owned(),
            timeout_ms: timeout_ms?,
        })
    }

    /// A duration written like `"5s"` or `"1.5s"`, of one second or more.
    fn duration(&mut self, at: &str, text: &str) -> Option<u64> {
        match remote::parse_duration_ms(text) {
            Some(ms) if ms >= 1000 => Some(ms),
            Some(_) => {
                self.error(at, format!("`{text}` is shorter than `1s`"));
                None
            }
            None => {
                self.error(at, format!("`{text}` is not a duration such as `5s`"));
                None
            }
        }
    }

    fn sources(&mut self, name: &str, raw: &RawProvider) -> Vec<Source> {
        let at = format!("providers.{name}");
        let mut sources = Vec::new();
        for (i, header) in raw.from_headers.iter().enumerate() {
            let header_name =
                self.header_name(&format!("{at}.from_headers[{i}].name"), &header.name);
            sources.push(Source::Header {
                name: header_name,
                prefix: header.value_prefix.clone(),
            });
        }
        for (i, cookie) in raw.from_cookies.iter().enumerate() {
            if cookie.is_empty() || cookie.contains([';', '=', ' ']) {
                self.error(
                    format!("{at}.from_cookies[{i}]"),
                    format!("`{cookie}` is not a cookie name"),
                );
            }
            sources.push(Source::Cookie(cookie.clone()));
        }
        if sources.is_empty() {
            sources.push(Source::Header {
                name: "authorization".to_owned(),
                prefix: "Bearer ".to_owned(),
            });
        }
        sources
    }

    /// Adds provider `index` to the location for `source`, refusing two providers with one issuer
    /// at one place (nothing could tell their tokens apart).
    fn place(
        &mut self,
        locations: &mut Vec<Location>,
        source: Source,
        index: usize,
        name: &str,
        issuer: &str,
        providers: &[Provider],
    ) {
        match locations.iter_mut().find(|l| l.source == source) {
            Some(location) => {
                let clash = location
                    .providers
                    .iter()
                    .filter_map(|&p| providers.get(p))
                    .find(|p| p.issuer == issuer);
                if let Some(other) = clash {
                    self.error(
                        format!("providers.{name}.issuer"),
                        format!(
                            "issuer `{issuer}` is also the issuer of provider `{}` at {}",
                            other.name,
                            source.describe()
                        ),
                    );
                }
                location.providers.push(index);
            }
            None => locations.push(Location {
                source,
                providers: vec![index],
            }),
        }
    }

    fn header_name(&mut self, path: &str, name: &str) -> String {
        let lower = name.to_ascii_lowercase();
        let valid = !lower.is_empty()
            && lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            self.error(path, format!("`{name}` is not a header name"));
        }
        lower
    }

    fn provider_index(&mut self, at: &str, name: &str, providers: &[&String]) -> Option<usize> {
        let index = providers.iter().position(|p| *p == name);
        if index.is_none() {
            self.error(at, format!("unknown provider `{name}`"));
        }
        index
    }

    fn rule(&mut self, at: &str, raw: &RawRule, providers: &[&String]) -> Rule {
        if raw.name.is_empty() {
            self.error(format!("{at}.name"), "rule name cannot be empty");
        }
        let mut accepted = Vec::new();
        for (i, name) in raw.providers.iter().enumerate() {
            accepted.extend(self.provider_index(&format!("{at}.providers[{i}]"), name, providers));
        }
        if raw.providers.is_empty() {
            self.error(
                format!("{at}.providers"),
                "at least one provider is required",
            );
        }
        let route = self.route(at, raw);
        let params: Vec<&str> = match &route.path {
            PathMatcher::Template(segments) => segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(name) => Some(name.as_str()),
                    Segment::Literal(_) => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let subjects = raw
            .subjects
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.subject(&format!("{at}.subjects[{i}]"), s))
            .collect();
        let claims = raw
            .claims
            .iter()
            .enumerate()
            .filter_map(|(i, c)| self.condition(&format!("{at}.claims[{i}]"), c))
            .collect();
        self.scopes(&format!("{at}.scopes"), &raw.scopes);
        let bindings = self.bindings(&format!("{at}.bindings"), &raw.bindings, &params);
        let transaction = raw.transaction_token.as_ref().and_then(|t| {
            if raw.providers.contains(&t.provider) {
                self.error(
                    format!("{at}.transaction_token.provider"),
                    format!(
                        "`{}` is also one of the rule's `providers`: one token would serve as both",
                        t.provider
                    ),
                );
            }
            self.transaction(&format!("{at}.transaction_token"), t, &params, providers)
        });
        let delegation = raw
            .delegation
            .as_ref()
            .map(|d| self.delegation(&format!("{at}.delegation"), d));
        let windows = raw
            .time_windows
            .iter()
            .enumerate()
            .filter_map(|(i, w)| self.window(&format!("{at}.time_windows[{i}]"), w))
            .collect();
        if let Some(claim) = &raw.environment_claim {
            self.claim_path(&format!("{at}.environment_claim"), claim);
        }
        Rule {
            name: raw.name.clone(),
            route,
            providers: accepted,
            subjects,
            claims,
            scopes: raw.scopes.clone(),
            bindings,
            transaction,
            delegation,
            peer_binding: raw.peer_binding.as_ref().map(|p| match p {
                RawPeerBinding::SpiffeId => PeerBinding::SpiffeId,
                RawPeerBinding::Certificate => PeerBinding::Certificate,
            }),
            environment_claim: raw.environment_claim.clone(),
            windows,
            max_token_age_seconds: raw.max_token_age_seconds,
        }
    }

    fn scopes(&mut self, at: &str, scopes: &[String]) {
        for (i, scope) in scopes.iter().enumerate() {
            if scope.is_empty() || scope.contains(' ') {
                self.error(
                    format!("{at}[{i}]"),
                    format!("`{scope}` is not a single scope"),
                );
            }
        }
    }

    fn bindings(&mut self, at: &str, raw: &[RawBinding], params: &[&str]) -> Vec<Binding> {
        raw.iter()
            .enumerate()
            .filter_map(|(i, b)| self.binding(&format!("{at}[{i}]"), b, params))
            .collect()
    }

    fn claim_path(&mut self, at: &str, claim: &[String]) {
        if claim.is_empty() || claim.iter().any(String::is_empty) {
            self.error(at, "a claim path needs at least one non-empty name");
        }
    }

    fn transaction(
        &mut self,
        at: &str,
        raw: &RawTransaction,
        params: &[&str],
        providers: &[&String],
    ) -> Option<Transaction> {
        let provider = self.provider_index(&format!("{at}.provider"), &raw.provider, providers);
        self.scopes(&format!("{at}.scopes"), &raw.scopes);
        let bindings = self.bindings(&format!("{at}.bindings"), &raw.bindings, params);
        Some(Transaction {
            provider: provider?,
            same_subject: raw.same_subject,
            scopes: raw.scopes.clone(),
            bindings,
        })
    }

    fn delegation(&mut self, at: &str, raw: &RawDelegation) -> Delegation {
        if raw.max_depth == 0 {
            self.error(
                format!("{at}.max_depth"),
                "`0` allows no actor; omit `delegation` or set `required: false`",
            );
        }
        let actors = raw
            .actors
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.subject(&format!("{at}.actors[{i}]"), s))
            .collect();
        Delegation {
            required: raw.required,
            max_depth: raw.max_depth,
            actors,
        }
    }

    fn window(&mut self, at: &str, raw: &RawTimeWindow) -> Option<TimeWindow> {
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let mut days = Vec::new();
        for (i, day) in raw.days.iter().enumerate() {
            match DAYS.iter().position(|d| d == day) {
                Some(index) => days.extend(u8::try_from(index).ok()),
                None => self.error(
                    format!("{at}.days[{i}]"),
                    format!("`{day}` is not one of mon, tue, wed, thu, fri, sat, sun"),
                ),
            }
        }
        if raw.start_hour >= raw.end_hour || raw.end_hour > 24 {
            self.error(
                at,
                format!(
                    "hours `{}` to `{}` are not a window within 0..=24",
                    raw.start_hour, raw.end_hour
                ),
            );
            return None;
        }
        Some(TimeWindow {
            days,
            start_hour: raw.start_hour,
            end_hour: raw.end_hour,
        })
    }

    fn route(&mut self, at: &str, raw: &RawRule) -> Route {
        for (i, method) in raw.route.methods.iter().enumerate() {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                self.error(
                    format!("{at}.match.methods[{i}]"),
                    format!("`{method}` is not an upper-case method"),
                );
            }
        }
        let path_at = format!("{at}.match.path");
        let path = match &raw.route.path {
            RawPath::Exact(p) | RawPath::Prefix(p) if !p.starts_with('/') => {
                self.error(&path_at, format!("`{p}` does not start with `/`"));
                PathMatcher::Exact(p.clone())
            }
            RawPath::Exact(p) => PathMatcher::Exact(p.clone()),
            RawPath::Prefix(p) => PathMatcher::Prefix(p.clone()),
            RawPath::Template(t) => match parse_template(t) {
                Ok(segments) => PathMatcher::Template(segments),
                Err(message) => {
                    self.error(format!("{path_at}.template"), message);
                    PathMatcher::Exact(t.clone())
                }
            },
        };
        Route {
            hosts: raw
                .route
                .hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            methods: raw.route.methods.clone(),
            path,
        }
    }

    fn subject(&mut self, at: &str, raw: &RawSubject) -> Option<SubjectMatcher> {
        let compiled = match raw {
            RawSubject::Exact(exact) if !exact.is_empty() => {
                return Some(SubjectMatcher::Exact(exact.clone()))
            }
            RawSubject::Exact(_) => Err("an exact subject cannot be empty"),
            RawSubject::Pattern(text) => Pattern::new(text).map(SubjectMatcher::Pattern),
            RawSubject::SpiffeId(text) => {
                if is_spiffe_id(&text.replace('*', "x")) {
                    Pattern::new(text).map(SubjectMatcher::SpiffeId)
                } else {
                    Err("not a well-formed SPIFFE ID pattern")
                }
            }
        };
        let text = match raw {
            RawSubject::Exact(t) | RawSubject::Pattern(t) | RawSubject::SpiffeId(t) => t,
        };
        compiled
            .map_err(|why| self.error(at, format!("`{text}`: {why}")))
            .ok()
    }

    fn condition(&mut self, at: &str, raw: &RawClaimCondition) -> Option<ClaimCondition> {
        self.claim_path(&format!("{at}.claim"), &raw.claim);
        let test = match (&raw.equals, &raw.one_of, &raw.contains) {
            (Some(v), None, None) => ClaimTest::Equals(v.clone()),
            (None, Some(vs), None) => ClaimTest::OneOf(vs.clone()),
            (None, None, Some(v)) => ClaimTest::Contains(v.clone()),
            _ => {
                self.error(
                    at,
                    "exactly one of `equals`, `one_of` and `contains` is required",
                );
                return None;
            }
        };
        let values: Vec<&Value> = match &test {
            ClaimTest::Equals(v) | ClaimTest::Contains(v) => vec![v],
            ClaimTest::OneOf(vs) => vs.iter().collect(),
        };
        for value in values {
            if !(value.is_string() || value.is_number() || value.is_boolean()) {
                self.error(at, format!("`{value}` is not a string, number or boolean"));
            }
        }
        Some(ClaimCondition {
            claim: raw.claim.clone(),
            test,
        })
    }

    fn binding(&mut self, at: &str, raw: &RawBinding, params: &[&str]) -> Option<Binding> {
        self.claim_path(&format!("{at}.claim"), &raw.claim);
        let source = match (&raw.path_param, &raw.header) {
            (Some(param), None) => {
                if !params.contains(&param.as_str()) {
                    self.error(
                        format!("{at}.path_param"),
                        format!("`{param}` is not a parameter of the rule's path template"),
                    );
                }
                BindingSource::PathParam(param.clone())
            }
            (None, Some(header)) => {
                BindingSource::Header(self.header_name(&format!("{at}.header"), header))
            }
            _ => {
                self.error(at, "exactly one of `path_param` and `header` is required");
                return None;
            }
        };
        Some(Binding {
            claim: raw.claim.clone(),
            source,
        })
    }
}

fn parse_template(template: &str) -> Result<Vec<Segment>, String> {
    let rest = template
        .strip_prefix('/')
        .ok_or_else(|| format!("`{template}` does not start with `/`"))?;
    let mut segments = Vec::new();
    for part in rest.split('/') {
        if part.is_empty() {
            return Err(format!("`{template}` has an empty segment"));
        }
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => {
                let valid = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid {
                    return Err(format!("`{{{name}}}` is not a parameter name"));
                }
                if segments.contains(&Segment::Param(name.to_owned())) {
                    return Err(format!("parameter `{name}` appears twice"));
                }
                Segment::Param(name.to_owned())
            }
            None if part.contains(['{', '}']) => {
                return Err(format!("segment `{part}` mixes text and a parameter"))
            }
            None => Segment::Literal(part.to_owned()),
        };
        segments.push(segment);
    }
    Ok(segments)
}

/// A short identity of a configuration text (the first 12 hex digits of its SHA-256), so logs
/// and stats can say which configuration is in force without printing it.
pub fn fingerprint(text: &str) -> String {
    crate::signature::sha256(text.as_bytes())
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
