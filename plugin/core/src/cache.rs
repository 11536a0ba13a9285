//! The verified-token cache: a token seen before skips framing and signature checks until it
//! expires.
//!
//! Inside a proxy's VM a signature check costs far more than everything else on the request path,
//! and workloads send the same token many times. An entry holds what verification proved (the
//! provider and the claims) and lives no longer than the token's `exp` (or a short default for
//! tokens without one). Everything that depends on the request (rules, scopes, bindings, peer,
//! age, time windows) still runs on every request. A cache belongs to one [`crate::Gate`]: used
//! with another (a new configuration), or once the gate's keys have changed, it empties itself
//! first, so a token is never served under a configuration or a key set that did not verify it.
//! Only successes are kept; a refused token is checked again each time.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use crate::provider::Verified;

/// Entries kept by default: a worker rarely sees more live workload tokens than this at once.
pub const DEFAULT_CAPACITY: usize = 1024;

/// How long a token without `exp` may be served from the cache, in seconds.
const TTL_WITHOUT_EXP: u64 = 60;

/// Verified tokens by where they were found and their text, and the same keys in the order they
/// expire, so that a full cache drops expired entries and then the soonest to expire without
/// scanning: a worker that sees a new token on every request pays a logarithm per insertion, not
/// the cache's size.
pub struct TokenCache {
    entries: HashMap<Key, Entry>,
    by_expiry: BTreeMap<(u64, u64), Key>,
    /// Tells apart entries that expire in the same second.
    serial: u64,
    capacity: usize,
    /// The gate whose verifications these are, and its key generation.
    gate: (u64, u64),
    hits: u64,
    misses: u64,
}

/// A token and where in the request it was found: another location may belong to other
/// providers, so it is another entry.
#[derive(Clone, PartialEq, Eq)]
struct Key {
    location: usize,
    token: Rc<str>,
}

/// The fields of a [`Key`], borrowed, so that a lookup with the request's `&str` allocates
/// nothing.
trait KeyView {
    fn location(&self) -> usize;
    fn token(&self) -> &str;
}

impl KeyView for Key {
    fn location(&self) -> usize {
        self.location
    }

    fn token(&self) -> &str {
        &self.token
    }
}

impl KeyView for (usize, &str) {
    fn location(&self) -> usize {
        self.0
    }

    fn token(&self) -> &str {
        self.1
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for Key {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

// `Key` and its borrowed view must hash and compare alike, so both go through the view.
impl Hash for dyn KeyView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.location().hash(state);
        self.token().hash(state);
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.location() == other.location() && self.token() == other.token()
    }
}

impl Eq for dyn KeyView + '_ {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn KeyView).hash(state);
    }
}

#[derive(Debug)]
struct Entry {
    verified: Verified,
    /// Served while `now < expires_at`; with `serial`, the entry's key in `by_expiry`.
    expires_at: u64,
    serial: u64,
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
            by_expiry: BTreeMap::new(),
            serial: 0,
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
            self.by_expiry.clear();
            self.gate = gate;
        }
    }

    pub(crate) fn get(&mut self, location: usize, token: &str, now: u64) -> Option<Verified> {
        let key = (location, token);
        let found = match self.entries.get(&key as &dyn KeyView) {
            Some(entry) if now < entry.expires_at => Some(entry.verified.clone()),
            Some(_) => {
                self.remove(&key);
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
        if expires_at <= now {
            return;
        }
        let key = (location, token);
        match self.entries.get(&key as &dyn KeyView) {
            Some(entry) if now < entry.expires_at => return,
            Some(_) => self.remove(&key),
            None => {}
        }
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now && self.entries.len() < self.capacity {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
        }
        self.serial += 1;
        let key = Key {
            location,
            token: Rc::from(token),
        };
        self.by_expiry
            .insert((expires_at, self.serial), key.clone());
        self.entries.insert(
            key,
            Entry {
                verified: verified.clone(),
                expires_at,
                serial: self.serial,
            },
        );
    }

    fn remove(&mut self, key: &dyn KeyView) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_expiry.remove(&(entry.expires_at, entry.serial));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn verified(exp: Option<u64>) -> Verified {
        let mut claims = Map::new();
        if let Some(exp) = exp {
            claims.insert("exp".into(), json!(exp));
        }
        Verified::for_tests(claims)
    }

    #[test]
    fn serves_a_token_until_its_expiry_and_only_where_it_was_found() {
        let mut cache = TokenCache::with_capacity(4);
        cache.put(0, "t", &verified(Some(100)), 10);
        assert!(cache.get(0, "t", 99).is_some());
        assert!(cache.get(1, "t", 50).is_none(), "another location");
        assert!(cache.get(0, "t", 100).is_none(), "expired");
        assert!(cache.is_empty(), "the expired entry is dropped when seen");
        assert_eq!(cache.stats(), (1, 2));
    }

    #[test]
    fn keeps_tokens_without_exp_for_a_short_while_and_never_expired_ones() {
        let mut cache = TokenCache::with_capacity(4);
        cache.put(0, "no-exp", &verified(None), 10);
        cache.put(0, "expired", &verified(Some(10)), 10);
        assert!(cache.get(0, "no-exp", 10 + TTL_WITHOUT_EXP - 1).is_some());
        assert!(cache.get(0, "no-exp", 10 + TTL_WITHOUT_EXP).is_none());
        assert!(cache.get(0, "expired", 5).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_then_the_soonest_to_expire() {
        let mut cache = TokenCache::with_capacity(3);
        cache.put(0, "a", &verified(Some(50)), 10);
        cache.put(0, "b", &verified(Some(30)), 10);
        cache.put(0, "c", &verified(Some(40)), 10);
        cache.put(0, "d", &verified(Some(60)), 10);
        assert_eq!(cache.len(), 3);
        assert!(cache.get(0, "b", 11).is_none(), "b expired soonest");
        for token in ["a", "c", "d"] {
            assert!(cache.get(0, token, 11).is_some(), "{token}");
        }
        // At 45, c has expired: it goes, and nothing live is dropped for e.
        cache.put(0, "e", &verified(Some(70)), 45);
        assert_eq!(cache.len(), 3);
        for token in ["a", "d", "e"] {
            assert!(cache.get(0, token, 45).is_some(), "{token}");
        }
    }

    #[test]
    fn a_token_found_in_two_places_has_an_entry_for_each_and_the_order_stays_consistent() {
        let mut cache = TokenCache::with_capacity(2);
        cache.put(0, "t", &verified(Some(20)), 10);
        cache.put(1, "t", &verified(Some(20)), 10);
        assert_eq!((cache.len(), cache.by_expiry.len()), (2, 2));
        assert!(cache.get(1, "t", 11).is_some());
        assert!(cache.get(0, "t", 11).is_some());
        assert!(cache.get(2, "t", 11).is_none());
        for i in 0..100u64 {
            cache.put(0, &i.to_string(), &verified(Some(20 + i % 7)), 10);
            assert_eq!(cache.entries.len(), cache.by_expiry.len());
            assert!(cache.len() <= 2);
        }
    }

    #[test]
    fn another_gate_or_key_generation_empties_it() {
        let mut cache = TokenCache::with_capacity(2);
        cache.bind(1, 0);
        cache.put(0, "t", &verified(Some(20)), 10);
        cache.bind(1, 0);
        assert_eq!(cache.len(), 1);
        cache.bind(1, 1);
        assert!(cache.is_empty() && cache.by_expiry.is_empty());
        cache.put(0, "t", &verified(Some(20)), 10);
        cache.bind(2, 1);
        assert!(cache.is_empty());
    }

    #[test]
    fn its_debug_form_holds_no_token() {
        let mut cache = TokenCache::default();
        cache.put(0, "secret-token", &verified(Some(20)), 10);
        assert!(!format!("{cache:?}").contains("secret-token"));
    }
}
