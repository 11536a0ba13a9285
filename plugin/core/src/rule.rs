//! Rules: which requests a rule is about (route), and what the verified token must show for the
//! rule to allow them.
//!
//! Requirements are checked in a fixed order and the first that fails is the rule's reason: the
//! provider, the time window, then what a fresh token or the right connection would fix (token
//! age, peer binding), then who is calling (subject, delegation chain), then what for (claims,
//! environment, scopes, bindings to the request, the transaction token). Values are compared
//! without type coercion: the string `"42"` never equals the number `42`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::decision::Reason;
use crate::provider::Verified;
use crate::request::{Peer, Request};
use crate::subject::{is_spiffe_id, Pattern};

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub route: Route,
    /// Indexes of the accepted providers.
    pub providers: Vec<usize>,
    pub subjects: Vec<SubjectMatcher>,
    pub claims: Vec<ClaimCondition>,
    pub scopes: Vec<String>,
    pub bindings: Vec<Binding>,
    pub transaction: Option<Transaction>,
    pub delegation: Option<Delegation>,
    pub peer_binding: Option<PeerBinding>,
    /// The claim that must equal the proxy's environment.
    pub environment_claim: Option<Vec<String>>,
    pub windows: Vec<TimeWindow>,
    pub max_token_age_seconds: Option<u64>,
}

/// What a rule requires of the transaction token that comes with the workload token.
#[derive(Debug)]
pub struct Transaction {
    /// Index of the provider of transaction tokens.
    pub provider: usize,
    pub same_subject: bool,
    pub scopes: Vec<String>,
    pub bindings: Vec<Binding>,
}

/// What a rule requires of the delegation chain (`act`).
#[derive(Debug)]
pub struct Delegation {
    pub required: bool,
    pub max_depth: usize,
    pub actors: Vec<SubjectMatcher>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerBinding {
    SpiffeId,
    Certificate,
}

/// A UTC window: on these weekdays (0 = Monday), from `start_hour` until `end_hour`.
#[derive(Debug)]
pub struct TimeWindow {
    pub days: Vec<u8>,
    pub start_hour: u8,
    pub end_hour: u8,
}

/// What a rule needs beyond the request and its tokens.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: u64,
    pub environment: Option<&'a str>,
}

#[derive(Debug)]
pub struct Route {
    /// Lower case; empty matches any host.
    pub hosts: Vec<String>,
    /// Empty matches any method.
    pub methods: Vec<String>,
    pub path: PathMatcher,
}

#[derive(Debug)]
pub enum PathMatcher {
    Exact(String),
    Prefix(String),
    Template(Vec<Segment>),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug)]
pub enum SubjectMatcher {
    Exact(String),
    Pattern(Pattern),
    SpiffeId(Pattern),
}

#[derive(Debug)]
pub struct ClaimCondition {
    pub claim: Vec<String>,
    pub test: ClaimTest,
}

#[derive(Debug)]
pub enum ClaimTest {
    Equals(Value),
    OneOf(Vec<Value>),
    Contains(Value),
}

#[derive(Debug)]
pub struct Binding {
    pub claim: Vec<String>,
    pub source: BindingSource,
}

#[derive(Debug)]
pub enum BindingSource {
    PathParam(String),
    /// Lower case.
    Header(String),
}

/// Path parameters bound by a template match, by name.
pub type Params<'a> = Vec<(&'a str, &'a str)>;

impl Route {
    /// The template's parameters when the route covers the request.
    pub fn matches<'a>(&'a self, request: &Request<'a>) -> Option<Params<'a>> {
        let host_ok = self.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|host| host.eq_ignore_ascii_case(request.host_without_port()));
        let method_ok = self.methods.is_empty() || self.methods.iter().any(|m| m == request.method);
        if !host_ok || !method_ok {
            return None;
        }
        let path = request.path_without_query();
        match &self.path {
            PathMatcher::Exact(exact) => (path == exact).then(Vec::new),
            PathMatcher::Prefix(prefix) => path.starts_with(prefix.as_str()).then(Vec::new),
            PathMatcher::Template(segments) => match_template(segments, path),
        }
    }
}

fn match_template<'a>(segments: &'a [Segment], path: &'a str) -> Option<Params<'a>> {
    let mut parts = path.strip_prefix('/')?.split('/');
    let mut params = Vec::new();
    for segment in segments {
        let part = parts.next()?;
        match segment {
            Segment::Literal(literal) if literal == part => {}
            Segment::Param(name) if !part.is_empty() => params.push((name.as_str(), part)),
            _ => return None,
        }
    }
    parts.next().is_none().then_some(params)
}

impl Rule {
    /// Index (into `tokens`) of the token that satisfies every requirement, or the first
    /// requirement that fails.
    pub fn evaluate(
        &self,
        tokens: &[Verified],
        request: &Request<'_>,
        params: &Params<'_>,
        context: Context<'_>,
    ) -> Result<usize, Reason> {
        let (index, token) = tokens
            .iter()
            .enumerate()
            .find(|(_, token)| self.providers.contains(&token.provider()))
            .ok_or_else(|| Reason::ProviderNotAccepted {
                rule: self.name.clone(),
            })?;
        if !self.windows.is_empty() && !self.windows.iter().any(|w| w.contains(context.now)) {
            return Err(Reason::OutsideTimeWindow {
                rule: self.name.clone(),
            });
        }
        self.check_age(token, context.now)?;
        if let Some(binding) = self.peer_binding {
            if !binding.holds(token, &request.peer) {
                return Err(Reason::PeerBindingMismatch {
                    rule: self.name.clone(),
                });
            }
        }
        self.check_subject(token)?;
        match &self.delegation {
            Some(delegation) => delegation.check(&self.name, token)?,
            // A rule written for a workload acting on its own does not admit one acting for
            // another: the current actor was never vetted.
            None if !token.actors().is_empty() => {
                return Err(Reason::ActorNotAllowed {
                    rule: self.name.clone(),
                })
            }
            None => {}
        }
        for condition in &self.claims {
            if !condition.holds(token) {
                return Err(Reason::ClaimMismatch {
                    rule: self.name.clone(),
                    claim: condition.claim.join("."),
                });
            }
        }
        if let Some(claim) = &self.environment_claim {
            let named = token.claim(claim).and_then(Value::as_str);
            if named.is_none() || named != context.environment {
                return Err(Reason::EnvironmentMismatch {
                    rule: self.name.clone(),
                    claim: claim.join("."),
                });
            }
        }
        if !self.scopes.iter().all(|scope| has_scope(token, scope)) {
            return Err(Reason::InsufficientScope {
                rule: self.name.clone(),
                scopes: self.scopes.clone(),
            });
        }
        if let Some(binding) = self
            .bindings
            .iter()
            .find(|b| !b.holds(token, request, params))
        {
            return Err(Reason::BindingMismatch {
                rule: self.name.clone(),
                claim: binding.claim.join("."),
                source: binding.source.describe(),
            });
        }
        if let Some(transaction) = &self.transaction {
            transaction.check(&self.name, token, tokens, request, params)?;
        }
        Ok(index)
    }

    fn check_age(&self, token: &Verified, now: u64) -> Result<(), Reason> {
        let Some(limit) = self.max_token_age_seconds else {
            return Ok(());
        };
        // Verification has already refused an `iat` that is not a number.
        let iat = token.claims().get("iat").and_then(Value::as_f64);
        match iat {
            Some(iat) if now as f64 - iat <= limit as f64 => Ok(()),
            _ => Err(Reason::TokenTooOld {
                rule: self.name.clone(),
            }),
        }
    }

    fn check_subject(&self, token: &Verified) -> Result<(), Reason> {
        if self.subjects.is_empty() {
            return Ok(());
        }
        let subject = token.subject().unwrap_or_default();
        let wants_spiffe = self
            .subjects
            .iter()
            .any(|m| matches!(m, SubjectMatcher::SpiffeId(_)));
        let matched = self.subjects.iter().any(|matcher| matcher.matches(subject));
        match matched {
            true => Ok(()),
            false if wants_spiffe && !is_spiffe_id(subject) => Err(Reason::SpiffeIdInvalid {
                rule: self.name.clone(),
            }),
            false => Err(Reason::SubjectNotAllowed {
                rule: self.name.clone(),
            }),
        }
    }
}

impl SubjectMatcher {
    pub fn matches(&self, subject: &str) -> bool {
        match self {
            Self::Exact(exact) => subject == exact,
            Self::Pattern(pattern) => pattern.matches(subject),
            Self::SpiffeId(pattern) => is_spiffe_id(subject) && pattern.matches(subject),
        }
    }
}

impl Delegation {
    /// RFC 8693: only the current actor (the outermost `act`) counts for access; the nested
    /// ones are history, checked here for depth alone.
    fn check(&self, rule: &str, token: &Verified) -> Result<(), Reason> {
        let chain = token.actors();
        let Some(current) = chain.first() else {
            return match self.required {
                true => Err(Reason::ActorMissing {
                    rule: rule.to_owned(),
                }),
                false => Ok(()),
            };
        };
        if chain.len() > self.max_depth {
            return Err(Reason::DelegationTooDeep {
                rule: rule.to_owned(),
            });
        }
        if !self.actors.is_empty() && !self.actors.iter().any(|m| m.matches(current)) {
            return Err(Reason::ActorNotAllowed {
                rule: rule.to_owned(),
            });
        }
        let may_act = token.claims().get("may_act").and_then(|m| m.get("sub"));
        if may_act.is_some_and(|allowed| allowed.as_str() != Some(current.as_str())) {
            return Err(Reason::MayActViolated {
                rule: rule.to_owned(),
            });
        }
        Ok(())
    }
}

impl PeerBinding {
    fn holds(self, token: &Verified, peer: &Peer<'_>) -> bool {
        match self {
            Self::SpiffeId => peer.uri_san.is_some() && peer.uri_san == token.subject(),
            Self::Certificate => {
                let bound = token
                    .claims()
                    .get("cnf")
                    .and_then(|cnf| cnf.get("x5t#S256"))
                    .and_then(Value::as_str);
                let presented = peer.certificate_sha256.and_then(hex_to_base64url);
                bound.is_some() && bound == presented.as_deref()
            }
        }
    }
}

/// The proxy reports the certificate digest in hex; `x5t#S256` is base64url of the same bytes.
fn hex_to_base64url(hex: &str) -> Option<String> {
    let digits: Vec<u8> = hex
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    if digits.len() != 64 {
        return None;
    }
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|pair| pair.iter().fold(0, |acc, d| acc * 16 + d))
        .collect();
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

impl TimeWindow {
    fn contains(&self, now: u64) -> bool {
        // 1970-01-01 was a Thursday: day 0 is weekday 3 when Monday is 0.
        let weekday = u8::try_from((now / 86_400 + 3) % 7).unwrap_or(0);
        let hour = u8::try_from(now % 86_400 / 3_600).unwrap_or(0);
        (self.days.is_empty() || self.days.contains(&weekday))
            && self.start_hour <= hour
            && hour < self.end_hour
    }
}

impl Transaction {
    fn check(
        &self,
        rule: &str,
        workload: &Verified,
        tokens: &[Verified],
        request: &Request<'_>,
        params: &Params<'_>,
    ) -> Result<(), Reason> {
        let rule = rule.to_owned();
        let txn = tokens
            .iter()
            .find(|token| token.provider() == self.provider)
            .ok_or_else(|| Reason::TxnTokenMissing { rule: rule.clone() })?;
        if self.same_subject && (txn.subject().is_none() || txn.subject() != workload.subject()) {
            return Err(Reason::TxnSubjectMismatch { rule });
        }
        if !self.scopes.iter().all(|scope| has_scope(txn, scope)) {
            return Err(Reason::TxnScopeInsufficient { rule });
        }
        if let Some(binding) = self
            .bindings
            .iter()
            .find(|b| !b.holds(txn, request, params))
        {
            return Err(Reason::TxnBindingMismatch {
                rule,
                claim: binding.claim.join("."),
                source: binding.source.describe(),
            });
        }
        Ok(())
    }
}

impl ClaimCondition {
    fn holds(&self, token: &Verified) -> bool {
        let Some(value) = token.claim(&self.claim) else {
            return false;
        };
        match &self.test {
            ClaimTest::Equals(expected) => same(value, expected),
            ClaimTest::OneOf(options) => options.iter().any(|option| same(value, option)),
            ClaimTest::Contains(expected) => value
                .as_array()
                .is_some_and(|items| items.iter().any(|item| same(item, expected))),
        }
    }
}

/// Equality of scalars of the same JSON type; numbers by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => match (integer(a), integer(b)) {
            (Some(a), Some(b)) => a == b,
            // An integer equals a float only when the float is that integer exactly.
            (Some(i), None) | (None, Some(i)) => {
                let float = if a.is_f64() { a.as_f64() } else { b.as_f64() };
                float.is_some_and(|f| f.fract() == 0.0 && f == i as f64 && (f as i128) == i)
            }
            (None, None) => a.as_f64() == b.as_f64(),
        },
        _ => false,
    }
}

fn integer(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// `scope` (space-delimited string, RFC 8693 and RFC 9068) or else `scp` (array of strings, or
/// a space-delimited string). Whole words only: `tickets:read` is not held by `tickets:readx`.
fn has_scope(token: &Verified, wanted: &str) -> bool {
    let claims = token.claims();
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(list)) => list.split(' ').any(|scope| scope == wanted),
        Some(Value::Array(items)) => items.iter().any(|item| item.as_str() == Some(wanted)),
        _ => false,
    }
}

impl Binding {
    fn holds(&self, token: &Verified, request: &Request<'_>, params: &Params<'_>) -> bool {
        let Some(Value::String(claimed)) = token.claim(&self.claim) else {
            return false;
        };
        let actual = match &self.source {
            BindingSource::PathParam(name) => params
                .iter()
                .find(|(param, _)| param == name)
                .map(|(_, value)| *value),
            BindingSource::Header(name) => request.single_header(name),
        };
        actual == Some(claimed.as_str())
    }
}

impl BindingSource {
    fn describe(&self) -> String {
        match self {
            Self::PathParam(name) => format!("path parameter `{name}`"),
            Self::Header(name) => format!("request header `{name}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Vec<Segment> {
        text.trim_start_matches('/')
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name.to_owned()),
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect()
    }

    #[test]
    fn a_template_binds_one_non_empty_segment_per_parameter() {
        let t = template("/tickets/{ticket}/comments");
        assert_eq!(
            match_template(&t, "/tickets/T-1/comments"),
            Some(vec![("ticket", "T-1")])
        );
        assert_eq!(match_template(&t, "/tickets//comments"), None);
        assert_eq!(match_template(&t, "/tickets/T-1/comments/x"), None);
        assert_eq!(match_template(&t, "/tickets/T-1"), None);
        assert_eq!(match_template(&t, "tickets/T-1/comments"), None);
    }

    #[test]
    fn a_window_knows_weekdays_and_hours_in_utc() {
        // 2026-12-04 is a Friday; 1796342400 is its midnight UTC.
        let friday_midnight = 1_796_342_400;
        let office = TimeWindow {
            days: vec![0, 1, 2, 3, 4],
            start_hour: 8,
            end_hour: 18,
        };
        assert!(!office.contains(friday_midnight));
        assert!(office.contains(friday_midnight + 9 * 3600));
        assert!(!office.contains(friday_midnight + 18 * 3600));
        assert!(!office.contains(friday_midnight + 86_400 + 9 * 3600));
    }

    #[test]
    fn a_hex_digest_becomes_the_thumbprint_form() {
        let hex = "a".repeat(64);
        assert_eq!(
            hex_to_base64url(&hex).unwrap(),
            URL_SAFE_NO_PAD.encode([0xaa; 32])
        );
        assert_eq!(hex_to_base64url("abc"), None);
        assert_eq!(hex_to_base64url(&"g".repeat(64)), None);
    }

    #[test]
    fn scalars_compare_without_coercion() {
        use serde_json::json;
        assert!(same(&json!(42), &json!(42)));
        assert!(same(&json!(42), &json!(42.0)));
        assert!(!same(&json!("42"), &json!(42)));
        assert!(!same(&json!(true), &json!("true")));
        assert!(!same(&json!(1), &json!(true)));
        assert!(!same(&json!(["a"]), &json!(["a"])));
        assert!(!same(
            &json!(9_007_199_254_740_993_i64),
            &json!(9_007_199_254_740_992.0)
        ));
        assert!(same(&json!(u64::MAX), &json!(u64::MAX)));
    }
}
