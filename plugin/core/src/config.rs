//! The configuration as written: serde types for the JSON in the filter's plugin configuration.
//!
//! These types only mirror the text; [`crate::compile`] turns them into a validated plan. Names
//! follow Envoy's `jwt_authn` (`providers`, `issuer`, `audiences`, `local_jwks`, `from_headers`,
//! `value_prefix`, `from_cookies`, `forward`, `claim_to_headers`, `clock_skew_seconds`) and
//! `rbac` (`exact`/`prefix` string matchers) where they overlap. Every struct refuses unknown
//! fields, so a misspelt requirement fails the configuration instead of silently matching more.
//! Choices between forms are externally tagged enums (`{"exact": "..."}`), the shape Envoy's own
//! string matchers use, so serde names the unknown variant instead of a vague "no variant matched".

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The whole plugin configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Token issuers by name; a rule names the providers it accepts.
    pub providers: BTreeMap<String, RawProvider>,
    /// Rules in order; the first whose match and requirements hold allows the request. A request
    /// that no rule allows is denied.
    pub rules: Vec<RawRule>,
    /// Headers that carry the verified identity upstream.
    #[serde(default)]
    pub forward: RawForward,
    /// Longest token accepted, in bytes. Default [`default_max_token_bytes`].
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// The environment this proxy serves (`production`, `staging`, ...), for rules that require
    /// a token minted for it. Default: none.
    #[serde(default)]
    pub environment: Option<String>,
}

/// 8 KiB: several times the size of real workload tokens, small enough to bound the work.
pub fn default_max_token_bytes() -> usize {
    8192
}

/// One token issuer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// The `iss` value, compared byte for byte (no trailing-slash or case folding).
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one. Empty: `aud` is not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The issuer's public keys, written into the configuration. With `remote_jwks` they are
    /// bootstrap keys, used until the first fetch succeeds. Default: none.
    #[serde(default)]
    pub local_jwks: Option<RawJwksSource>,
    /// Keys fetched from the issuer through the proxy, refreshed and rotated. Default: none.
    #[serde(default)]
    pub remote_jwks: Option<RawRemoteJwks>,
    /// A SPIFFE trust domain (`example.org`): keys published for JWT-SVIDs (`use: jwt-svid`)
    /// verify only tokens whose `sub` is a SPIFFE ID in it. Default: none, and such keys are
    /// left out.
    #[serde(default)]
    pub trust_domain: Option<String>,
    /// Signature algorithms accepted from this issuer. Default [`default_algorithms`].
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Headers to look in. Default (when `from_cookies` is empty too): `Authorization` with
    /// `value_prefix` `Bearer `.
    #[serde(default)]
    pub from_headers: Vec<RawHeaderLocation>,
    /// Cookie names to look in.
    #[serde(default)]
    pub from_cookies: Vec<String>,
    /// Tolerance for `exp`, `nbf` and `iat`. Default [`default_clock_skew_seconds`].
    #[serde(default = "default_clock_skew_seconds")]
    pub clock_skew_seconds: u64,
    /// Refuse tokens without `exp`. Default `true`.
    #[serde(default = "default_true")]
    pub require_expiration: bool,
    /// Longest issued lifetime (`exp - iat`) accepted; when set, `iat` is required. Default: none.
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    /// Accepted header `typ` values (`application/` prefix and case ignored). Empty: any.
    #[serde(default)]
    pub allowed_types: Vec<String>,
    /// Keep the token in the request sent upstream. Default `false`: the token is removed.
    #[serde(default)]
    pub forward: bool,
    /// Claims copied into request headers when this provider's token allows the request.
    #[serde(default)]
    pub claim_to_headers: Vec<RawClaimToHeader>,
    /// Top-level claims every token of this provider must carry (for example `txn`, `req_wl`
    /// for transaction tokens). Default: none beyond the time claims above.
    #[serde(default)]
    pub required_claims: Vec<String>,
}

/// `RS256`, `PS256`, `ES256`, `EdDSA`.
pub fn default_algorithms() -> Vec<String> {
    ["RS256", "PS256", "ES256", "EdDSA"]
        .map(str::to_owned)
        .to_vec()
}

/// 60 seconds, as in Envoy's `jwt_authn`.
pub fn default_clock_skew_seconds() -> u64 {
    60
}

fn default_true() -> bool {
    true
}

/// Where a JWKS comes from: `{"inline_string": "<JWKS JSON text>"}` as in `jwt_authn`, or
/// `{"inline": {"keys": [...]}}` to write it as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwksSource {
    #[serde(default)]
    pub inline_string: Option<String>,
    #[serde(default)]
    pub inline: Option<Value>,
}

/// Keys fetched with `proxy_http_call` through an Envoy cluster, in the words of `jwt_authn`'s
/// `remote_jwks`. Durations are written as Envoy writes them in JSON: `"5s"`, `"0.5s"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteJwks {
    /// Where the JWKS is. Exactly one of `http_uri` and `discovery`.
    #[serde(default)]
    pub http_uri: Option<RawHttpUri>,
    /// Where the OpenID Connect discovery document is; its `jwks_uri` is fetched through the same
    /// cluster and its `issuer` must equal the provider's.
    #[serde(default)]
    pub discovery: Option<RawDiscovery>,
    /// How long a fetched set is fresh; it is refreshed before then. Default
    /// [`default_cache_duration`]. A failed refresh keeps the last good set in use.
    #[serde(default = "default_cache_duration")]
    pub cache_duration: String,
    /// Shortest time between two fetches caused by a token naming an unknown `kid`, for the
    /// whole proxy. Default [`default_kid_refetch_interval`].
    #[serde(default = "default_kid_refetch_interval")]
    pub kid_refetch_interval: String,
    /// Time after a failed fetch before the next attempt; once keys came from the source, twice
    /// that after each further failure in a row, up to 8 × it. Default [`default_retry_interval`].
    #[serde(default = "default_retry_interval")]
    pub retry_interval: String,
    /// Largest response body accepted, in bytes. Default [`default_max_response_bytes`].
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

/// `600s`, as in `jwt_authn`.
pub fn default_cache_duration() -> String {
    "600s".to_owned()
}

/// `30s`: a rotation is picked up at once; a flood of made-up `kid`s costs one fetch a half-minute.
pub fn default_kid_refetch_interval() -> String {
    "30s".to_owned()
}

/// `15s`.
pub fn default_retry_interval() -> String {
    "15s".to_owned()
}

/// 256 KiB: far above any real key set, far below what could hurt a worker.
pub fn default_max_response_bytes() -> usize {
    262_144
}

/// An HTTP URI fetched through an Envoy cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpUri {
    /// `https://host[:port]/path`: the `:authority` and `:path` of the request.
    pub uri: String,
    /// The Envoy cluster the request goes to.
    pub cluster: String,
    /// How long one fetch may take. Default [`default_fetch_timeout`].
    #[serde(default = "default_fetch_timeout")]
    pub timeout: String,
}

/// `5s`; also the longest a request waits for a fetch of keys.
pub fn default_fetch_timeout() -> String {
    "5s".to_owned()
}

/// OpenID Connect discovery.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    /// Default: the provider's `issuer` followed by `/.well-known/openid-configuration`.
    #[serde(default)]
    pub uri: Option<String>,
    pub cluster: String,
    /// Default [`default_fetch_timeout`].
    #[serde(default = "default_fetch_timeout")]
    pub timeout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderLocation {
    /// Header name, matched without regard to case.
    pub name: String,
    /// Text before the token, matched without regard to case (`Bearer ` equals `bearer `).
    #[serde(default)]
    pub value_prefix: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClaimToHeader {
    pub header_name: String,
    /// A top-level claim name; strings, numbers and booleans are copied, other types are not.
    pub claim_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForward {
    /// Header that carries the verified `sub`. Default [`default_subject_header`].
    #[serde(default = "default_subject_header")]
    pub subject_header: String,
    /// Header that carries the name of the rule that allowed the request.
    /// Default [`default_rule_header`].
    #[serde(default = "default_rule_header")]
    pub rule_header: String,
}

impl Default for RawForward {
    fn default() -> Self {
        Self {
            subject_header: default_subject_header(),
            rule_header: default_rule_header(),
        }
    }
}

pub fn default_subject_header() -> String {
    "x-taskgate-subject".to_owned()
}

pub fn default_rule_header() -> String {
    "x-taskgate-rule".to_owned()
}

/// One rule: which requests it is about, and what their token must show.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique; named in decisions, logs and the rule header.
    pub name: String,
    #[serde(rename = "match")]
    pub route: RawRoute,
    /// Providers whose tokens this rule accepts (at least one).
    pub providers: Vec<String>,
    /// The token's `sub` must match one of these. Empty: any subject.
    #[serde(default)]
    pub subjects: Vec<RawSubject>,
    /// Conditions on claims, all of which must hold.
    #[serde(default)]
    pub claims: Vec<RawClaimCondition>,
    /// Scopes the token must hold, all of them (`scope` string or `scp` array).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claims that must equal a value of the request, such as a task id in the path.
    #[serde(default)]
    pub bindings: Vec<RawBinding>,
    /// A transaction token that must come with the request, and what it must show.
    #[serde(default)]
    pub transaction_token: Option<RawTransaction>,
    /// What the token's delegation chain (`act`, RFC 8693) must look like.
    #[serde(default)]
    pub delegation: Option<RawDelegation>,
    /// Binds the token to the mTLS connection it arrives on.
    #[serde(default)]
    pub peer_binding: Option<RawPeerBinding>,
    /// The claim at this path must equal the top-level `environment`.
    #[serde(default)]
    pub environment_claim: Option<Vec<String>>,
    /// UTC windows the rule is open in; empty: always.
    #[serde(default)]
    pub time_windows: Vec<RawTimeWindow>,
    /// Longest time since the token's `iat` this rule accepts, in seconds. Default: none.
    #[serde(default)]
    pub max_token_age_seconds: Option<u64>,
}

/// A transaction token requirement (IETF OAuth Transaction Tokens).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransaction {
    /// The provider whose tokens are transaction tokens.
    pub provider: String,
    /// The transaction token's `sub` must equal the workload token's `sub`. Default `true`.
    #[serde(default = "default_true")]
    pub same_subject: bool,
    /// Scopes the transaction token's `scope` must hold.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claims of the transaction token (`txn`, `tctx`/`rctx` fields) bound to the request.
    #[serde(default)]
    pub bindings: Vec<RawBinding>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelegation {
    /// The token must carry `act`. Default `true`.
    #[serde(default = "default_true")]
    pub required: bool,
    /// Deepest chain of nested `act` accepted. Default [`default_max_delegation_depth`].
    #[serde(default = "default_max_delegation_depth")]
    pub max_depth: usize,
    /// The current actor (the outermost `act.sub`) must match one of these. Empty: any.
    #[serde(default)]
    pub actors: Vec<RawSubject>,
}

/// 1: one actor acting for the subject, no further hops.
pub fn default_max_delegation_depth() -> usize {
    1
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawPeerBinding {
    /// The token's `sub` equals the peer certificate's URI SAN (its SPIFFE ID).
    SpiffeId,
    /// The token's `cnf.x5t#S256` equals the peer certificate's SHA-256 (RFC 8705).
    Certificate,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeWindow {
    /// `mon` .. `sun`; empty: every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// First hour (UTC, 0-23) the window is open.
    pub start_hour: u8,
    /// Hour (UTC, 1-24) the window closes.
    pub end_hour: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// `:authority` values without port, case-insensitive. Empty: any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Upper-case methods. Empty: any method.
    #[serde(default)]
    pub methods: Vec<String>,
    pub path: RawPath,
}

/// Path matchers; the query string is never part of the match.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawPath {
    Exact(String),
    Prefix(String),
    /// Segments, each literal or `{name}` (one non-empty segment, bound to `name`).
    Template(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawSubject {
    Exact(String),
    /// Whole-string match where `*` stands for one or more characters other than `/` and `:`;
    /// every other character is literal.
    Pattern(String),
    /// Like `pattern`, and the subject must also be a well-formed SPIFFE ID.
    SpiffeId(String),
}

/// `{"claim": ["path", "to", "claim"], "<op>": value}` with exactly one operator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClaimCondition {
    /// Path of member names from the top of the claim set.
    pub claim: Vec<String>,
    /// The claim equals this string, number or boolean, with no type coercion.
    #[serde(default)]
    pub equals: Option<Value>,
    /// The claim equals one of these.
    #[serde(default)]
    pub one_of: Option<Vec<Value>>,
    /// The claim is an array holding this value.
    #[serde(default)]
    pub contains: Option<Value>,
}

/// `{"claim": [...], "path_param": "ticket"}` or `{"claim": [...], "header": "x-task-id"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinding {
    pub claim: Vec<String>,
    #[serde(default)]
    pub path_param: Option<String>,
    #[serde(default)]
    pub header: Option<String>,
}
