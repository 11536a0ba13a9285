//! The gate: a compiled plan and the decision for one request.
//!
//! The order is fixed: find every token, verify every token found (any failure denies, with 401,
//! or 503 when the provider has no keys yet, since a request that presents a bad credential is
//! not treated as one that presents none),
//! then walk the rules whose route covers the request. The first rule whose requirements hold
//! allows; otherwise the first refusing rule's reason denies with 403, and a request that no rule
//! covers is denied too.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::TokenCache;
use crate::compile::{compile, Compiled, ConfigError, Plan};
use crate::decision::{Decision, MissingKey, Reason, Verdict};
use crate::framing::frame;
use crate::jwks::KeySet;
use crate::provider::Verified;
use crate::request::Request;
use crate::rule::Context;

/// A compiled configuration, ready to decide requests.
#[derive(Debug)]
pub struct Gate {
    plan: Plan,
    /// Tells caches which gate verified their entries.
    id: u64,
    /// Counts key set replacements, so that caches drop what older keys verified.
    generation: Cell<u64>,
}

/// Gate identities, unique within the process (a VM, in a proxy).
static NEXT_GATE_ID: AtomicU64 = AtomicU64::new(1);

/// A token found at a location, and that location's index.
struct Found<'r> {
    location: usize,
    token: &'r str,
}

impl Gate {
    /// Compiles a configuration; warnings name keys that were left out.
    pub fn new(config: &str) -> Result<(Self, Vec<ConfigError>), Vec<ConfigError>> {
        let Compiled { plan, warnings } = compile(config)?;
        let id = NEXT_GATE_ID.fetch_add(1, Ordering::Relaxed);
        let generation = Cell::new(0);
        Ok((
            Self {
                plan,
                id,
                generation,
            },
            warnings,
        ))
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Puts `keys` in use for provider `provider` (an index in the plan). Tokens verified with
    /// the keys they replace are no longer served from any cache.
    pub fn install_keys(&self, provider: usize, keys: KeySet) -> bool {
        let Some(provider) = self.plan.providers.get(provider) else {
            return false;
        };
        provider.keys.replace(keys);
        self.generation.set(self.generation.get().wrapping_add(1));
        true
    }

    /// How many times keys were replaced.
    pub fn key_generation(&self) -> u64 {
        self.generation.get()
    }

    /// Decides `request` at `now` (Unix seconds), verifying every token from scratch.
    pub fn decide(&self, request: &Request<'_>, now: u64) -> Decision {
        self.decide_inner(request, now, None)
    }

    /// Decides `request` at `now`, taking tokens verified earlier from `cache` and adding the
    /// ones verified now.
    pub fn decide_cached(
        &self,
        request: &Request<'_>,
        now: u64,
        cache: &mut TokenCache,
    ) -> Decision {
        cache.bind(self.id, self.generation.get());
        self.decide_inner(request, now, Some(cache))
    }

    fn decide_inner(
        &self,
        request: &Request<'_>,
        now: u64,
        mut cache: Option<&mut TokenCache>,
    ) -> Decision {
        let found = match self.find_tokens(request) {
            Ok(found) if found.is_empty() => return Decision::deny(Reason::TokenMissing),
            Ok(found) => found,
            Err(reason) => return Decision::deny(reason),
        };
        let mut verified = Vec::with_capacity(found.len());
        for item in &found {
            let cached = cache
                .as_deref_mut()
                .and_then(|cache| cache.get(item.location, item.token, now));
            let token = match cached {
                Some(token) => token,
                None => match self.verify(item, now) {
                    Ok(token) => {
                        if let Some(cache) = cache.as_deref_mut() {
                            cache.put(item.location, item.token, &token, now);
                        }
                        token
                    }
                    Err((reason, missing_key)) => {
                        let mut decision = Decision::deny(reason);
                        decision.missing_key = missing_key;
                        return decision;
                    }
                },
            };
            verified.push(token);
        }
        self.apply_rules(request, &found, &verified, now)
    }

    fn apply_rules(
        &self,
        request: &Request<'_>,
        found: &[Found<'_>],
        verified: &[Verified],
        now: u64,
    ) -> Decision {
        let mut refusal: Option<Decision> = None;
        let candidates = self.plan.index.candidates(request.path_without_query());
        for rule in candidates.iter().filter_map(|&i| self.plan.rules.get(i)) {
            let Some(params) = rule.route.matches(request) else {
                continue;
            };
            let context = Context {
                now,
                environment: self.plan.environment.as_deref(),
            };
            match rule.evaluate(verified, request, &params, context) {
                Ok(index) => {
                    if let Some(token) = verified.get(index) {
                        return self.allow(&rule.name, token, found, verified, request);
                    }
                }
                Err(reason) => {
                    refusal.get_or_insert_with(|| {
                        let mut decision = Decision::deny(reason);
                        decision.rule = Some(rule.name.clone());
                        decision
                    });
                }
            }
        }
        let mut decision = refusal.unwrap_or_else(|| Decision::deny(Reason::NoRuleMatched));
        if let Some(first) = verified.first() {
            self.describe(&mut decision, first);
        }
        decision
    }

    fn find_tokens<'r>(&self, request: &Request<'r>) -> Result<Vec<Found<'r>>, Reason> {
        let mut found = Vec::new();
        for (location, place) in self.plan.locations.iter().enumerate() {
            if let Some(token) = place.source.find(request)? {
                found.push(Found { location, token });
            }
        }
        Ok(found)
    }

    fn verify(
        &self,
        found: &Found<'_>,
        now: u64,
    ) -> Result<Verified, (Reason, Option<MissingKey>)> {
        let framed = frame(found.token, self.plan.max_token_bytes)
            .map_err(|why| (Reason::TokenMalformed(why), None))?;
        let issuer = framed.claims.get("iss").and_then(|iss| iss.as_str());
        let location = self
            .plan
            .locations
            .get(found.location)
            .ok_or((Reason::IssuerUnknown, None))?;
        let (index, provider) = location
            .providers
            .iter()
            .filter_map(|&index| self.plan.providers.get(index).map(|p| (index, p)))
            .find(|(_, provider)| Some(provider.issuer.as_str()) == issuer)
            .ok_or((Reason::IssuerUnknown, None))?;
        // Only a provider whose keys are fetched can be helped by another look for the key.
        let kid = provider.remote.as_ref().map(|_| {
            framed
                .header
                .get("kid")
                .and_then(|kid| kid.as_str())
                .map(str::to_owned)
        });
        provider.verify(index, framed, now).map_err(|reason| {
            let missing = match (&reason, kid) {
                (Reason::KidUnknown { .. } | Reason::KeysUnavailable { .. }, Some(kid)) => {
                    Some(MissingKey {
                        provider: index,
                        kid,
                    })
                }
                _ => None,
            };
            (reason, missing)
        })
    }

    fn describe(&self, decision: &mut Decision, token: &Verified) {
        decision.provider = self
            .plan
            .providers
            .get(token.provider())
            .map(|p| p.name.clone());
        decision.subject = token.subject().map(str::to_owned);
        decision.actors = token.actors();
    }

    fn allow(
        &self,
        rule: &str,
        token: &Verified,
        found: &[Found<'_>],
        verified: &[Verified],
        request: &Request<'_>,
    ) -> Decision {
        let plan = &self.plan;
        let mut remove = plan.identity_headers.clone();
        // Servers that read headers through CGI-style names take `x_taskgate-subject` for
        // `x-taskgate-subject` too: a client's copy under any mix of `-` and `_` goes.
        for (name, _) in request.headers {
            let spelled = |identity: &String| {
                identity.len() == name.len()
                    && identity.bytes().zip(name.bytes()).all(|(a, b)| {
                        a.eq_ignore_ascii_case(&b)
                            || (matches!(a, b'-' | b'_') && matches!(b, b'-' | b'_'))
                    })
            };
            if plan.identity_headers.iter().any(spelled) {
                remove.push(name.to_ascii_lowercase());
            }
        }
        let mut set = Vec::new();
        for (item, verified) in found.iter().zip(verified) {
            let forwarded = plan
                .providers
                .get(verified.provider())
                .is_some_and(|p| p.forward);
            if let (false, Some(location)) = (forwarded, plan.locations.get(item.location)) {
                let (header, replacement) = location.source.removal(request);
                remove.push(header);
                set.extend(replacement);
            }
        }
        if let Some(subject) = token.subject() {
            set.push((plan.subject_header.clone(), subject.to_owned()));
        }
        set.push((plan.rule_header.clone(), rule.to_owned()));
        if let Some(provider) = plan.providers.get(token.provider()) {
            for (header, claim) in &provider.claim_to_headers {
                let value = match token.claims().get(claim) {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                        Some(v.to_string())
                    }
                    _ => None,
                };
                set.extend(value.map(|value| (header.clone(), value)));
            }
        }
        remove.sort();
        remove.dedup();
        let mut decision = Decision {
            verdict: Verdict::Allow { remove, set },
            rule: Some(rule.to_owned()),
            provider: None,
            subject: None,
            actors: Vec::new(),
            missing_key: None,
        };
        self.describe(&mut decision, token);
        decision
    }
}
