//! Decisions: allow with the headers to forward, or deny with a status, a stable reason code and
//! one fixed sentence.
//!
//! Reason codes are an interface: they appear in the deny body, in the `x-taskgate-reason`
//! response header, in counters and in decision logs, and they do not change meaning. A sentence
//! names the claim, provider or rule involved and never a token, a key or a claim's value.

use std::fmt;

use crate::framing::Malformed;

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    TokenMissing,
    /// The same token location carries two values.
    TokenAmbiguous {
        location: String,
    },
    TokenMalformed(Malformed),
    IssuerUnknown,
    AlgNotAllowed {
        provider: String,
    },
    /// `jku`, `x5u` or `jwk`: a token naming its own key is never believed.
    HeaderNotAllowed {
        provider: String,
        member: &'static str,
    },
    CritUnsupported {
        provider: String,
    },
    TypNotAllowed {
        provider: String,
    },
    KidUnknown {
        provider: String,
    },
    /// The provider has no keys yet: its remote keys were never fetched and it has no
    /// bootstrap keys.
    KeysUnavailable {
        provider: String,
    },
    /// A token of a provider confined to a SPIFFE trust domain names a `sub` outside it.
    TrustDomainMismatch {
        provider: String,
    },
    SignatureInvalid {
        provider: String,
    },
    ClaimMissing {
        provider: String,
        claim: String,
    },
    ClaimInvalid {
        provider: String,
        claim: String,
    },
    AudienceMismatch {
        provider: String,
    },
    TokenExpired {
        provider: String,
    },
    TokenNotYetValid {
        provider: String,
    },
    TokenIssuedInFuture {
        provider: String,
    },
    LifetimeExceeded {
        provider: String,
    },
    NoRuleMatched,
    ProviderNotAccepted {
        rule: String,
    },
    SubjectNotAllowed {
        rule: String,
    },
    SpiffeIdInvalid {
        rule: String,
    },
    ClaimMismatch {
        rule: String,
        claim: String,
    },
    InsufficientScope {
        rule: String,
        scopes: Vec<String>,
    },
    BindingMismatch {
        rule: String,
        claim: String,
        source: String,
    },
    TxnTokenMissing {
        rule: String,
    },
    TxnSubjectMismatch {
        rule: String,
    },
    TxnScopeInsufficient {
        rule: String,
    },
    TxnBindingMismatch {
        rule: String,
        claim: String,
        source: String,
    },
    ActorMissing {
        rule: String,
    },
    ActorNotAllowed {
        rule: String,
    },
    DelegationTooDeep {
        rule: String,
    },
    MayActViolated {
        rule: String,
    },
    PeerBindingMismatch {
        rule: String,
    },
    EnvironmentMismatch {
        rule: String,
        claim: String,
    },
    OutsideTimeWindow {
        rule: String,
    },
    TokenTooOld {
        rule: String,
    },
}

impl Reason {
    /// Every reason code, for defining one counter each up front.
    pub const CODES: [&'static str; 38] = [
        "token_missing",
        "token_ambiguous",
        "token_malformed",
        "issuer_unknown",
        "alg_not_allowed",
        "header_not_allowed",
        "crit_unsupported",
        "typ_not_allowed",
        "kid_unknown",
        "keys_unavailable",
        "trust_domain_mismatch",
        "signature_invalid",
        "claim_missing",
        "claim_invalid",
        "audience_mismatch",
        "token_expired",
        "token_not_yet_valid",
        "token_issued_in_future",
        "lifetime_exceeded",
        "no_rule_matched",
        "provider_not_accepted",
        "subject_not_allowed",
        "spiffe_id_invalid",
        "claim_mismatch",
        "insufficient_scope",
        "binding_mismatch",
        "txn_token_missing",
        "txn_subject_mismatch",
        "txn_scope_insufficient",
        "txn_binding_mismatch",
        "actor_missing",
        "actor_not_allowed",
        "delegation_too_deep",
        "may_act_violated",
        "peer_binding_mismatch",
        "environment_mismatch",
        "outside_time_window",
        "token_too_old",
    ];

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TokenMissing => "token_missing",
            Self::TokenAmbiguous { .. } => "token_ambiguous",
            Self::TokenMalformed(_) => "token_malformed",
            Self::IssuerUnknown => "issuer_unknown",
            Self::AlgNotAllowed { .. } => "alg_not_allowed",
            Self::HeaderNotAllowed { .. } => "header_not_allowed",
            Self::CritUnsupported { .. } => "crit_unsupported",
            Self::TypNotAllowed { .. } => "typ_not_allowed",
            Self::KidUnknown { .. } => "kid_unknown",
            Self::KeysUnavailable { .. } => "keys_unavailable",
            Self::TrustDomainMismatch { .. } => "trust_domain_mismatch",
            Self::SignatureInvalid { .. } => "signature_invalid",
            Self::ClaimMissing { .. } => "claim_missing",
            Self::ClaimInvalid { .. } => "claim_invalid",
            Self::AudienceMismatch { .. } => "audience_mismatch",
            Self::TokenExpired { .. } => "token_expired",
            Self::TokenNotYetValid { .. } => "token_not_yet_valid",
            Self::TokenIssuedInFuture { .. } => "token_issued_in_future",
            Self::LifetimeExceeded { .. } => "lifetime_exceeded",
            Self::NoRuleMatched => "no_rule_matched",
            Self::ProviderNotAccepted { .. } => "provider_not_accepted",
            Self::SubjectNotAllowed { .. } => "subject_not_allowed",
            Self::SpiffeIdInvalid { .. } => "spiffe_id_invalid",
            Self::ClaimMismatch { .. } => "claim_mismatch",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::BindingMismatch { .. } => "binding_mismatch",
            Self::TxnTokenMissing { .. } => "txn_token_missing",
            Self::TxnSubjectMismatch { .. } => "txn_subject_mismatch",
            Self::TxnScopeInsufficient { .. } => "txn_scope_insufficient",
            Self::TxnBindingMismatch { .. } => "txn_binding_mismatch",
            Self::ActorMissing { .. } => "actor_missing",
            Self::ActorNotAllowed { .. } => "actor_not_allowed",
            Self::DelegationTooDeep { .. } => "delegation_too_deep",
            Self::MayActViolated { .. } => "may_act_violated",
            Self::PeerBindingMismatch { .. } => "peer_binding_mismatch",
            Self::EnvironmentMismatch { .. } => "environment_mismatch",
            Self::OutsideTimeWindow { .. } => "outside_time_window",
            Self::TokenTooOld { .. } => "token_too_old",
        }
    }

    /// 401 when the request did not authenticate: no usable token, or a token that is not good
    /// for this connection or no longer fresh enough (a new token would fix it). 403 when it did
    /// authenticate and is still not allowed.
    ///
    /// 503 when the gate itself cannot judge the token (no keys yet): the token may be good, so
    /// a client must not be told to discard it; it should retry.
    pub fn status(&self) -> u16 {
        match self {
            Self::KeysUnavailable { .. } => 503,
            Self::NoRuleMatched
            | Self::ProviderNotAccepted { .. }
            | Self::SubjectNotAllowed { .. }
            | Self::SpiffeIdInvalid { .. }
            | Self::ClaimMismatch { .. }
            | Self::InsufficientScope { .. }
            | Self::BindingMismatch { .. }
            | Self::TxnSubjectMismatch { .. }
            | Self::TxnScopeInsufficient { .. }
            | Self::TxnBindingMismatch { .. }
            | Self::ActorMissing { .. }
            | Self::ActorNotAllowed { .. }
            | Self::DelegationTooDeep { .. }
            | Self::MayActViolated { .. }
            | Self::EnvironmentMismatch { .. }
            | Self::OutsideTimeWindow { .. } => 403,
            _ => 401,
        }
    }

    /// The RFC 6750 challenge: plain `Bearer` when no token came, `invalid_token` when one came
    /// and failed, `insufficient_scope` with the scopes when they were what was missing.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Self::TokenMissing | Self::TxnTokenMissing { .. } => Some("Bearer".to_owned()),
            Self::InsufficientScope { scopes, .. } => Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                scopes.join(" ")
            )),
            _ if self.status() == 401 => Some("Bearer error=\"invalid_token\"".to_owned()),
            _ => None,
        }
    }

    /// The deny body: `{"decision":"deny","reason":"<code>","message":"<sentence>"}`.
    pub fn body(&self) -> String {
        serde_json::json!({
            "decision": "deny",
            "reason": self.code(),
            "message": self.to_string(),
        })
        .to_string()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TokenMissing => write!(f, "no token was found in the request"),
            Self::TokenAmbiguous { location } => {
                write!(f, "more than one token was found in `{location}`")
            }
            Self::TokenMalformed(why) => f.write_str(why.sentence()),
            Self::IssuerUnknown => write!(f, "token `iss` names no configured provider"),
            Self::AlgNotAllowed { provider } => {
                write!(f, "token `alg` is not accepted by provider `{provider}`")
            }
            Self::HeaderNotAllowed { provider, member } => write!(
                f,
                "token header member `{member}` is not accepted by provider `{provider}`"
            ),
            Self::CritUnsupported { provider } => write!(
                f,
                "token header `crit` names an extension provider `{provider}` does not support"
            ),
            Self::TypNotAllowed { provider } => {
                write!(f, "token `typ` is not accepted by provider `{provider}`")
            }
            Self::KidUnknown { provider } => write!(
                f,
                "no key of provider `{provider}` has the token's `kid` and `alg`"
            ),
            Self::KeysUnavailable { provider } => write!(
                f,
                "provider `{provider}` has no keys yet: they could not be fetched"
            ),
            Self::TrustDomainMismatch { provider } => write!(
                f,
                "token `sub` is not in the SPIFFE trust domain of provider `{provider}`"
            ),
            Self::SignatureInvalid { provider } => write!(
                f,
                "token signature does not verify with the keys of provider `{provider}`"
            ),
            Self::ClaimMissing { provider, claim } => write!(
                f,
                "token has no `{claim}` claim, which provider `{provider}` requires"
            ),
            Self::ClaimInvalid { provider, claim } => write!(
                f,
                "token claim `{claim}` has a type provider `{provider}` does not accept"
            ),
            Self::AudienceMismatch { provider } => write!(
                f,
                "token `aud` names none of the audiences of provider `{provider}`"
            ),
            Self::TokenExpired { provider } => {
                write!(f, "token `exp` has passed (provider `{provider}`)")
            }
            Self::TokenNotYetValid { provider } => {
                write!(
                    f,
                    "token `nbf` has not been reached (provider `{provider}`)"
                )
            }
            Self::TokenIssuedInFuture { provider } => {
                write!(f, "token `iat` is in the future (provider `{provider}`)")
            }
            Self::LifetimeExceeded { provider } => write!(
                f,
                "token lifetime `exp - iat` exceeds the limit of provider `{provider}`"
            ),
            Self::NoRuleMatched => write!(f, "no rule matches this request"),
            Self::ProviderNotAccepted { rule } => write!(
                f,
                "rule `{rule}` accepts no token of the providers that were presented"
            ),
            Self::SubjectNotAllowed { rule } => {
                write!(f, "token `sub` is not allowed by rule `{rule}`")
            }
            Self::SpiffeIdInvalid { rule } => write!(
                f,
                "token `sub` is not a well-formed SPIFFE ID, which rule `{rule}` requires"
            ),
            Self::ClaimMismatch { rule, claim } => {
                write!(f, "token claim `{claim}` does not satisfy rule `{rule}`")
            }
            Self::InsufficientScope { rule, .. } => {
                write!(f, "token lacks a scope that rule `{rule}` requires")
            }
            Self::BindingMismatch {
                rule,
                claim,
                source,
            } => write!(
                f,
                "token claim `{claim}` does not equal {source}, as rule `{rule}` requires"
            ),
            Self::TxnTokenMissing { rule } => {
                write!(f, "rule `{rule}` requires a transaction token and none was presented")
            }
            Self::TxnSubjectMismatch { rule } => write!(
                f,
                "transaction token `sub` differs from the workload token's, which rule `{rule}` forbids"
            ),
            Self::TxnScopeInsufficient { rule } => write!(
                f,
                "transaction token `scope` lacks an operation that rule `{rule}` requires"
            ),
            Self::TxnBindingMismatch {
                rule,
                claim,
                source,
            } => write!(
                f,
                "transaction token claim `{claim}` does not equal {source}, as rule `{rule}` requires"
            ),
            Self::ActorMissing { rule } => {
                write!(f, "rule `{rule}` requires a delegated token and it has no `act`")
            }
            Self::ActorNotAllowed { rule } => {
                write!(f, "the current actor `act.sub` is not allowed by rule `{rule}`")
            }
            Self::DelegationTooDeep { rule } => write!(
                f,
                "the delegation chain `act` is deeper than rule `{rule}` allows"
            ),
            Self::MayActViolated { rule } => write!(
                f,
                "the current actor is not the one the token's `may_act` names (rule `{rule}`)"
            ),
            Self::PeerBindingMismatch { rule } => write!(
                f,
                "the token is not bound to this connection's peer certificate, as rule `{rule}` requires"
            ),
            Self::EnvironmentMismatch { rule, claim } => write!(
                f,
                "token claim `{claim}` does not name this proxy's environment, as rule `{rule}` requires"
            ),
            Self::OutsideTimeWindow { rule } => {
                write!(f, "rule `{rule}` is closed at this time")
            }
            Self::TokenTooOld { rule } => {
                write!(f, "token `iat` is older than rule `{rule}` accepts")
            }
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow {
        /// Request headers to remove before forwarding (tokens not forwarded, identity headers
        /// a client may have sent).
        remove: Vec<String>,
        /// Request headers to set (after removal).
        set: Vec<(String, String)>,
    },
    Deny(Reason),
}

/// A decision and what it rests on, for the response, the counters and the decision log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The rule that allowed, or the first matching rule that refused.
    pub rule: Option<String>,
    /// The provider of the token the decision rests on.
    pub provider: Option<String>,
    /// The verified `sub` of that token.
    pub subject: Option<String>,
    /// Its delegation chain: the current actor first, then earlier ones (`act.act.sub`, ...).
    pub actors: Vec<String>,
    /// Set when the deny is `kid_unknown` or `keys_unavailable` for a provider whose keys are
    /// fetched: a fetch might bring the key, so the host may fetch and decide again.
    pub missing_key: Option<MissingKey>,
}

/// The key a token needed and no key set in use had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingKey {
    /// Index of the provider in the plan.
    pub provider: usize,
    /// The token's `kid`; a key id is public, but it is still never logged (it is the token's
    /// text, not the issuer's).
    pub kid: Option<String>,
}

impl Decision {
    pub fn deny(reason: Reason) -> Self {
        Self {
            verdict: Verdict::Deny(reason),
            rule: None,
            provider: None,
            subject: None,
            actors: Vec::new(),
            missing_key: None,
        }
    }

    pub fn is_allow(&self) -> bool {
        matches!(self.verdict, Verdict::Allow { .. })
    }

    /// `allowed`, or the deny's reason code.
    pub fn code(&self) -> &'static str {
        match &self.verdict {
            Verdict::Allow { .. } => "allowed",
            Verdict::Deny(reason) => reason.code(),
        }
    }

    /// One line for a decision log: codes, names and the verified subject; never a token.
    /// Written straight into the caller's buffer: it is formatted on every request.
    pub fn log_line(&self) -> LogLine<'_> {
        LogLine(self)
    }
}

/// A decision as one log line; see [`Decision::log_line`].
#[derive(Debug)]
pub struct LogLine<'d>(&'d Decision);

impl std::fmt::Display for LogLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names from the configuration are plain; subjects and actors come from tokens and are
        // quoted, so a `sub` holding spaces or newlines cannot forge a field or a line.
        let decision = self.0;
        let verdict = if decision.is_allow() { "allow" } else { "deny" };
        write!(
            f,
            "decision={verdict} reason={} rule={} provider={} subject=",
            decision.code(),
            decision.rule.as_deref().unwrap_or("-"),
            decision.provider.as_deref().unwrap_or("-"),
        )?;
        match &decision.subject {
            Some(subject) => write!(f, "{subject:?}")?,
            None => f.write_str("-")?,
        }
        if decision.actors.is_empty() {
            f.write_str(" actors=-")
        } else {
            write!(f, " actors={:?}", decision.actors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_quote_what_tokens_said() {
        let mut allowed = Decision {
            verdict: Verdict::Allow {
                remove: Vec::new(),
                set: Vec::new(),
            },
            rule: Some("payments-read".to_owned()),
            provider: Some("authz".to_owned()),
            subject: Some("user 7731\nrule=x".to_owned()),
            actors: vec!["agent".to_owned(), "planner".to_owned()],
            missing_key: None,
        };
        assert_eq!(
            allowed.log_line().to_string(),
            r#"decision=allow reason=allowed rule=payments-read provider=authz subject="user 7731\nrule=x" actors=["agent", "planner"]"#
        );
        allowed.actors.clear();
        allowed.subject = None;
        assert!(allowed
            .log_line()
            .to_string()
            .ends_with(" subject=- actors=-"));
        assert_eq!(
            Decision::deny(Reason::TokenMissing).log_line().to_string(),
            "decision=deny reason=token_missing rule=- provider=- subject=- actors=-"
        );
    }

    #[test]
    fn every_reason_code_is_listed_once() {
        let mut codes = Reason::CODES.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Reason::CODES.len());
        assert!(Reason::CODES.contains(&Reason::NoRuleMatched.code()));
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(Reason::TokenMissing.www_authenticate().unwrap(), "Bearer");
        let expired = Reason::TokenExpired {
            provider: "k".into(),
        };
        assert_eq!(
            expired.www_authenticate().unwrap(),
            "Bearer error=\"invalid_token\""
        );
        let scope = Reason::InsufficientScope {
            rule: "r".into(),
            scopes: vec!["a:read".into(), "a:write".into()],
        };
        assert_eq!(
            scope.www_authenticate().unwrap(),
            "Bearer error=\"insufficient_scope\", scope=\"a:read a:write\""
        );
        assert_eq!(Reason::NoRuleMatched.www_authenticate(), None);
    }

    #[test]
    fn deny_body_carries_code_and_sentence() {
        let body: serde_json::Value =
            serde_json::from_str(&Reason::SubjectNotAllowed { rule: "r".into() }.body()).unwrap();
        assert_eq!(body["reason"], "subject_not_allowed");
        assert_eq!(body["message"], "token `sub` is not allowed by rule `r`");
    }
}
