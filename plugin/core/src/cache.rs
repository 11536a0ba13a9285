//! The verified-token cache: a token seen before skips framing and signature checks until it
//! expires.
//!
//! Inside a proxy's VM a signature check costs far more than everything else on the request path,
//! and workloads send the same token many times. An entry holds what verification proved (the
//! provider and the claims) and lives no longer than the token's `exp` (or a short default for
//! tokens without one). Everything that depends on the request (rules, scopes, bindings, peer,
//! age, time windows) still runs on every request. A cache belongs to one [`crate::Gate`]: used
//! with another (a new configuration), or once the gate's keys have changed, it empties itself
//! first, so a token is never served under a configuration or a key set that did not verify it. Only successes are kept; a refused token is checked
//! again each time.

use std::collections::HashMap;

use crate::provider::Verified;

/// Entries kept by default: a worker rarely sees more live workload tokens than this at once.
pub const DEFAULT_CAPACITY: usize = 1024;

/// How long a token without `exp` may be served from the cache, in seconds.
const TTL_WITHOUT_EXP: u64 = 60;

pub struct TokenCache {
    entries: HashMap<(usize, String), Entry>,
    capacity: usize,
    /// The gate whose verifications these are, and its key generation.
    gate: (u64, u64),
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
struct Entry {
    verified: Verified,
    /// Served while `now < expires_at`.
    expires_at: u64,
}

impl std::fmt::Debug for TokenCache {
    // The keys are tokens: only counts are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.entries.len())
            .field("capacity", &self.capacity)
            .field("hits", &self.hits)
            .field("misses", &self.misses)
            .finish_non_exhaustive()
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl TokenCache {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            gate: (0, 0),
            hits: 0,
            misses: 0,
        }
    }

    /// Forgets everything when `gate` is not the gate the entries came from, or its keys have
    /// changed since (a key removed in a rotation must stop vouching for its tokens).
    pub(crate) fn bind(&mut self, gate: u64, generation: u64) {
        let gate = (gate, generation);
        if self.gate != gate {
            self.entries.clear();
            self.gate = gate;
        }
    }

    pub(crate) fn get(&mut self, location: usize, token: &str, now: u64) -> Option<Verified> {
        let key = (location, token.to_owned());
        let found = match self.entries.get(&key) {
            Some(entry) if now < entry.expires_at => Some(entry.verified.clone()),
            Some(_) => {
                self.entries.remove(&key);
                None
            }
            None => None,
        };
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    pub(crate) fn put(&mut self, location: usize, token: &str, verified: &Verified, now: u64) {
        let expires_at = verified
            .expiry()
            .unwrap_or_else(|| now.saturating_add(TTL_WITHOUT_EXP));
        let key = (location, token.to_owned());
        if expires_at <= now || self.entries.contains_key(&key) {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, entry| now < entry.expires_at);
        }
        if self.entries.len() >= self.capacity {
            let soonest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.expires_at)
                .map(|(key, _)| key.clone());
            if let Some(key) = soonest {
                self.entries.remove(&key);
            }
        }
        self.entries.insert(
            key,
            Entry {
                verified: verified.clone(),
                expires_at,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(hits, misses)` since the cache was made.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}
