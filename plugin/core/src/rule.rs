//! Rules: which requests a rule is about (route), and what the verified token must show for the
//! rule to allow them (provider, subject, claims, scopes, bindings to the request).
//!
//! Requirements are checked in that order, and the first that fails is the rule's reason. Values
//! are compared without type coercion: the string `"42"` never equals the number `42`.

use serde_json::Value;

use crate::decision::Reason;
use crate::provider::Verified;
use crate::request::Request;
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
    ) -> Result<usize, Reason> {
        let (index, token) = tokens
            .iter()
            .enumerate()
            .find(|(_, token)| self.providers.contains(&token.provider()))
            .ok_or_else(|| Reason::ProviderNotAccepted {
                rule: self.name.clone(),
            })?;
        self.check_subject(token)?;
        for condition in &self.claims {
            if !condition.holds(token) {
                return Err(Reason::ClaimMismatch {
                    rule: self.name.clone(),
                    claim: condition.claim.join("."),
                });
            }
        }
        if !self.scopes.iter().all(|scope| has_scope(token, scope)) {
            return Err(Reason::InsufficientScope {
                rule: self.name.clone(),
                scopes: self.scopes.clone(),
            });
        }
        for binding in &self.bindings {
            if !binding.holds(token, request, params) {
                return Err(Reason::BindingMismatch {
                    rule: self.name.clone(),
                    claim: binding.claim.join("."),
                    source: binding.source.describe(),
                });
            }
        }
        Ok(index)
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
        let matched = self.subjects.iter().any(|matcher| match matcher {
            SubjectMatcher::Exact(exact) => subject == exact,
            SubjectMatcher::Pattern(pattern) => pattern.matches(subject),
            SubjectMatcher::SpiffeId(pattern) => is_spiffe_id(subject) && pattern.matches(subject),
        });
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
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => match (a.as_u64(), b.as_u64()) {
                (Some(a), Some(b)) => a == b,
                _ => a.as_f64() == b.as_f64(),
            },
        },
        _ => false,
    }
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
    fn scalars_compare_without_coercion() {
        use serde_json::json;
        assert!(same(&json!(42), &json!(42)));
        assert!(same(&json!(42), &json!(42.0)));
        assert!(!same(&json!("42"), &json!(42)));
        assert!(!same(&json!(true), &json!("true")));
        assert!(!same(&json!(1), &json!(true)));
        assert!(!same(&json!(["a"]), &json!(["a"])));
    }
}
