//! Providers: one issuer's keys and rules for its tokens, and the verification of a framed token
//! against them.
//!
//! Checks run in a fixed order, each an early return with its own reason: header (`alg`
//! allow-list, members that would let a token pick its own key, `crit`, `typ`), key (`kid` and
//! `alg` of this provider only), signature, then claims (`exp`, `nbf`, `iat`, issued lifetime,
//! `aud`, `sub`). Claims are judged only once the signature holds, so nothing a forger writes is
//! acted upon. A token that passes is [`Verified`], which no other module can construct.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::decision::Reason;
use crate::framing::Framed;
use crate::jwks::{Alg, KeySet};
use crate::remote::RemoteJwks;

/// A compiled provider.
#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub keys: KeySlot,
    /// Where fresh keys are fetched from, when they are.
    pub remote: Option<RemoteJwks>,
    /// Tokens must have a `sub` in this SPIFFE trust domain.
    pub trust_domain: Option<String>,
    pub algorithms: Vec<Alg>,
    pub clock_skew_seconds: u64,
    pub require_expiration: bool,
    pub max_lifetime_seconds: Option<u64>,
    /// Lower case, without an `application/` prefix.
    pub allowed_types: Vec<String>,
    pub forward: bool,
    /// `(header, claim)` pairs.
    pub claim_to_headers: Vec<(String, String)>,
    pub required_claims: Vec<String>,
}

/// The key set a provider verifies with now. Remote keys replace it while the plan stays the
/// same; a verification holds its own reference, so a replacement never changes a set in use.
#[derive(Debug, Default)]
pub struct KeySlot {
    set: RefCell<Rc<KeySet>>,
}

impl KeySlot {
    pub fn new(set: KeySet) -> Self {
        Self {
            set: RefCell::new(Rc::new(set)),
        }
    }

    pub fn current(&self) -> Rc<KeySet> {
        Rc::clone(&self.set.borrow())
    }

    pub fn replace(&self, set: KeySet) {
        *self.set.borrow_mut() = Rc::new(set);
    }
}

/// A token whose signature, issuer, times and audience have been checked.
#[derive(Clone)]
pub struct Verified {
    provider: usize,
    /// Shared, so that serving a token from the cache does not copy its claims.
    claims: Rc<Map<String, Value>>,
}

impl std::fmt::Debug for Verified {
    // A full claim set is not for logs: the provider and the claim names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.claims.keys().collect();
        f.debug_struct("Verified")
            .field("provider", &self.provider)
            .field("claims", &names)
            .finish_non_exhaustive()
    }
}

impl Verified {
    /// Index of the provider in the plan.
    pub fn provider(&self) -> usize {
        self.provider
    }

    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    #[cfg(test)]
    pub(crate) fn for_tests(claims: Map<String, Value>) -> Self {
        Self {
            provider: 0,
            claims: Rc::new(claims),
        }
    }

    /// `exp` in whole seconds, rounded down, when the token has one.
    pub fn expiry(&self) -> Option<u64> {
        let exp = self.claims.get("exp")?.as_f64()?;
        // Saturating float-to-int conversion: a negative `exp` gives 0, a huge one `u64::MAX`.
        Some(exp as u64)
    }

    /// The `sub` claim; verification guarantees it is a string when present.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// The delegation chain: the current actor (`act.sub`) first, then each earlier one.
    /// Verification guarantees every `act` is an object.
    pub fn actors(&self) -> Vec<String> {
        let mut chain = Vec::new();
        let mut act = self.claims.get("act");
        while let Some(Value::Object(actor)) = act {
            chain.push(
                actor
                    .get("sub")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            );
            act = actor.get("act");
        }
        chain
    }

    /// The claim at `path` (member names from the top).
    pub fn claim(&self, path: &[String]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        rest.iter()
            .try_fold(self.claims.get(first)?, |value, name| value.get(name))
    }
}

/// Header members that carry or point at a key; a token never chooses its own key.
const KEY_BEARING_MEMBERS: [&str; 3] = ["jku", "x5u", "jwk"];

impl Provider {
    /// Verifies a framed token whose `iss` named this provider (index `index` in the plan).
    pub fn verify(&self, index: usize, framed: Framed<'_>, now: u64) -> Result<Verified, Reason> {
        let alg = self.check_header(&framed.header)?;
        self.check_signature(&framed, alg)?;
        self.check_times(&framed.claims, now)?;
        self.check_audience(&framed.claims)?;
        if framed.claims.get("sub").is_some_and(|sub| !sub.is_string()) {
            return Err(self.claim_invalid("sub"));
        }
        if let Some(domain) = &self.trust_domain {
            let sub = framed.claims.get("sub").and_then(Value::as_str);
            if !sub.is_some_and(|sub| in_trust_domain(sub, domain)) {
                return Err(Reason::TrustDomainMismatch {
                    provider: self.name.clone(),
                });
            }
        }
        if let Some(claim) = self
            .required_claims
            .iter()
            .find(|c| !framed.claims.contains_key(*c))
        {
            return Err(self.claim_missing(claim));
        }
        check_actor_claims(&framed.claims).map_err(|claim| self.claim_invalid(claim))?;
        Ok(Verified {
            provider: index,
            claims: Rc::new(framed.claims),
        })
    }

    fn check_header(&self, header: &Map<String, Value>) -> Result<Alg, Reason> {
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Alg::from_name)
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or_else(|| Reason::AlgNotAllowed {
                provider: self.name.clone(),
            })?;
        if let Some(member) = KEY_BEARING_MEMBERS
            .into_iter()
            .find(|m| header.contains_key(*m))
        {
            return Err(Reason::HeaderNotAllowed {
                provider: self.name.clone(),
                member,
            });
        }
        // No JWS extension is understood, so any `crit` (even an empty one, which RFC 7515
        // forbids) is refused.
        if header.contains_key("crit") {
            return Err(Reason::CritUnsupported {
                provider: self.name.clone(),
            });
        }
        if !self.allowed_types.is_empty() {
            let typ = header
                .get("typ")
                .and_then(Value::as_str)
                .map(normalize_type);
            if !typ.is_some_and(|typ| self.allowed_types.contains(&typ)) {
                return Err(Reason::TypNotAllowed {
                    provider: self.name.clone(),
                });
            }
        }
        Ok(alg)
    }

    fn check_signature(&self, framed: &Framed<'_>, alg: Alg) -> Result<(), Reason> {
        let kid = match framed.header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => {
                return Err(Reason::KidUnknown {
                    provider: self.name.clone(),
                })
            }
        };
        let keys = self.keys.current();
        if keys.keys.is_empty() {
            return Err(Reason::KeysUnavailable {
                provider: self.name.clone(),
            });
        }
        let mut candidates = keys.candidates(kid, alg).peekable();
        if candidates.peek().is_none() {
            return Err(Reason::KidUnknown {
                provider: self.name.clone(),
            });
        }
        let message = framed.signing_input.as_bytes();
        if candidates.any(|key| key.verifies(message, &framed.signature)) {
            Ok(())
        } else {
            Err(Reason::SignatureInvalid {
                provider: self.name.clone(),
            })
        }
    }

    fn check_times(&self, claims: &Map<String, Value>, now: u64) -> Result<(), Reason> {
        let exp = self.numeric_date(claims, "exp")?;
        let nbf = self.numeric_date(claims, "nbf")?;
        let iat = self.numeric_date(claims, "iat")?;
        let skew = self.clock_skew_seconds as f64;
        let now = now as f64;
        let name = || self.name.clone();
        match exp {
            None if self.require_expiration || self.max_lifetime_seconds.is_some() => {
                return Err(self.claim_missing("exp"))
            }
            Some(exp) if now > exp + skew => return Err(Reason::TokenExpired { provider: name() }),
            _ => {}
        }
        if nbf.is_some_and(|nbf| nbf > now + skew) {
            return Err(Reason::TokenNotYetValid { provider: name() });
        }
        if iat.is_some_and(|iat| iat > now + skew) {
            return Err(Reason::TokenIssuedInFuture { provider: name() });
        }
        if let Some(cap) = self.max_lifetime_seconds {
            let iat = iat.ok_or_else(|| self.claim_missing("iat"))?;
            if exp.is_some_and(|exp| exp - iat > cap as f64) {
                return Err(Reason::LifetimeExceeded { provider: name() });
            }
        }
        Ok(())
    }

    /// A NumericDate claim: absent, or a JSON number (never a string holding one).
    fn numeric_date(
        &self,
        claims: &Map<String, Value>,
        claim: &str,
    ) -> Result<Option<f64>, Reason> {
        match claims.get(claim) {
            None => Ok(None),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.claim_invalid(claim)),
        }
    }

    /// `aud` may be a string or an array of strings; the two are treated alike.
    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), Reason> {
        if self.audiences.is_empty() {
            return Ok(());
        }
        let named: Vec<&str> = match claims.get("aud") {
            None => return Err(self.claim_missing("aud")),
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().ok_or_else(|| self.claim_invalid("aud")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(self.claim_invalid("aud")),
        };
        if named
            .iter()
            .any(|aud| self.audiences.iter().any(|a| a == aud))
        {
            Ok(())
        } else {
            Err(Reason::AudienceMismatch {
                provider: self.name.clone(),
            })
        }
    }

    fn claim_missing(&self, claim: &str) -> Reason {
        Reason::ClaimMissing {
            provider: self.name.clone(),
            claim: claim.to_owned(),
        }
    }

    fn claim_invalid(&self, claim: &str) -> Reason {
        Reason::ClaimInvalid {
            provider: self.name.clone(),
            claim: claim.to_owned(),
        }
    }
}

/// Every `act` (and `may_act`) must be an object whose `sub`, if any, is a string: a chain that
/// is something else cannot be read, so the token is refused instead of read as undelegated.
fn check_actor_claims(claims: &Map<String, Value>) -> Result<(), &'static str> {
    if let Some(may_act) = claims.get("may_act") {
        if !may_act.is_object() || may_act.get("sub").is_some_and(|s| !s.is_string()) {
            return Err("may_act");
        }
    }
    let mut act = claims.get("act");
    while let Some(actor) = act {
        let Value::Object(fields) = actor else {
            return Err("act");
        };
        if !fields.get("sub").is_some_and(Value::is_string) {
            return Err("act");
        }
        act = fields.get("act");
    }
    Ok(())
}

/// `spiffe://<domain>/<path>`: the trust domain compared exactly, with a non-empty path.
fn in_trust_domain(sub: &str, domain: &str) -> bool {
    crate::subject::is_spiffe_id(sub)
        && sub
            .strip_prefix("spiffe://")
            .and_then(|rest| rest.strip_prefix(domain))
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|path| !path.is_empty())
}

/// `application/at+JWT` and `at+jwt` name the same type (RFC 7515, section 4.1.9).
pub fn normalize_type(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    lower
        .strip_prefix("application/")
        .map_or_else(|| lower.clone(), str::to_owned)
}
