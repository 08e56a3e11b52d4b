//! One trusted issuer's signing keys, cached: a state machine the
//! component drives with its own clock and HTTP client. [`JwksCache::lookup`]
//! says whether a key is at hand or a fetch of the issuer's `jwks_uri` is
//! due; the component fetches and hands the body to [`JwksCache::store`].
//!
//! Fetches are rate-limited as a whole: after any fetch the cache asks
//! for another only once `refetch_interval_secs` have passed, so neither
//! tokens with made-up `kid`s nor an unreachable issuer make the gateway
//! hammer the issuer. Until then an unknown `kid` is refused, and keys
//! past their TTL keep serving (the issuer may be down; its keys rarely
//! change by the minute).
//!
//! Tokens whose signature these keys verified are remembered by their
//! SHA-256 ([`JwksCache::verified`]): a client sends the same token with
//! every request, and an RS256 verification in the component costs a few
//! hundred microseconds. A remembered token is still decoded and its claims
//! checked against the clock on every request; the memory goes with the keys
//! (new keys stored, or keys past their TTL), so a key the issuer drops
//! stops serving its tokens when a held key would.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::jwks::{parse_jwks, Jwk, Jwks, JwksError};
use crate::jwt::{Alg, TokenError};

/// Tokens remembered at most; past it, expired ones go first, then all.
pub const MAX_VERIFIED_TOKENS: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachePolicy {
    /// How long fetched keys are used before they are fetched again.
    pub ttl_secs: u64,
    /// The least time between two fetches (an unknown `kid`, a failed fetch).
    pub refetch_interval_secs: u64,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy { ttl_secs: 900, refetch_interval_secs: 60 }
    }
}

/// What [`JwksCache::lookup`] found.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The key that may verify the token.
    Hit(&'a Jwk),
    /// No keys yet, or they are past their TTL: fetch the JWKS, store it
    /// and look up again.
    Fetch,
    /// The `kid` is not among the keys (the issuer may have rotated them):
    /// one fetch now, then look up again.
    Refetch,
    /// No key will do: an unknown `kid` soon after a fetch, a key of the
    /// wrong type for `alg`, or no `kid` and several keys that fit.
    Refused(TokenError),
    /// No keys at all, and the last fetch (which failed) was too recent to
    /// try again: the issuer is unreachable, not the token wrong.
    Unavailable,
}

/// Whether the clock went back from `then` to `now`. A few seconds do not
/// count: a lookup's time is taken before the fetch it asks for, and the
/// keys' store time after it, often a second later.
fn went_back(now: i64, then: i64) -> bool {
    then.saturating_sub(now) > CLOCK_SLACK_SECS
}

const CLOCK_SLACK_SECS: i64 = 5;

#[derive(Clone, Debug)]
pub struct JwksCache {
    policy: CachePolicy,
    keys: Option<Jwks>,
    stored_at: i64,
    last_fetch: Option<i64>,
    /// The `exp` of tokens verified with `keys`, by the token's SHA-256 (a
    /// BTreeMap: a HashMap's random seed would be one more import).
    verified: BTreeMap<[u8; 32], i64>,
}

impl JwksCache {
    pub fn new(policy: CachePolicy) -> JwksCache {
        JwksCache { policy, keys: None, stored_at: 0, last_fetch: None, verified: BTreeMap::new() }
    }

    pub fn keys(&self) -> Option<&Jwks> {
        self.keys.as_ref()
    }

    /// Whether a fetch was asked for within the refetch interval (a clock
    /// that went back counts as not recent, so it cannot block fetches).
    fn fetched_recently(&self, now: i64) -> bool {
        self.last_fetch.is_some_and(|last| !went_back(now, last) && now.abs_diff(last) < self.policy.refetch_interval_secs)
    }

    fn expired(&self, now: i64) -> bool {
        now.saturating_sub(self.stored_at) >= i64::try_from(self.policy.ttl_secs).unwrap_or(i64::MAX) || went_back(now, self.stored_at)
    }

    /// Records the fetch it asks for, so that the rate limit holds even
    /// when the fetch fails and nothing is stored.
    fn ask(&mut self, now: i64, lookup: Lookup<'static>) -> Lookup<'static> {
        self.last_fetch = Some(now);
        lookup
    }

    /// The key for a token's `kid` and `alg` at `now` (Unix seconds).
    pub fn lookup(&mut self, kid: Option<&str>, alg: Alg, now: i64) -> Lookup<'_> {
        let recent = self.fetched_recently(now);
        if self.keys.is_none() {
            return if recent { Lookup::Unavailable } else { self.ask(now, Lookup::Fetch) };
        }
        if self.expired(now) && !recent {
            return self.ask(now, Lookup::Fetch);
        }
        let keys = self.keys.as_ref().expect("checked above");
        match keys.find(kid, alg) {
            Ok(key) => Lookup::Hit(key),
            Err(TokenError::UnknownKey { .. }) if !recent => {
                self.last_fetch = Some(now);
                Lookup::Refetch
            }
            Err(e) => Lookup::Refused(e),
        }
    }

    /// Takes a fetched JWKS body. A document that cannot be used leaves
    /// the keys held before in place (and their age unchanged).
    pub fn store(&mut self, document: &[u8], now: i64) -> Result<&Jwks, JwksError> {
        self.last_fetch = Some(now);
        let jwks = parse_jwks(document)?;
        self.stored_at = now;
        self.verified.clear();
        Ok(self.keys.insert(jwks))
    }

    /// Whether these keys verified the token's signature, while they are
    /// within their TTL (past it, the token is verified again once new keys
    /// came).
    pub fn verified(&self, digest: &TokenDigest, now: i64) -> bool {
        !self.expired(now) && self.verified.contains_key(&digest.0)
    }

    /// Remembers a token, expiring at `exp`, whose signature the held keys
    /// verified.
    pub fn remember(&mut self, digest: TokenDigest, exp: i64, now: i64) {
        if self.verified.len() >= MAX_VERIFIED_TOKENS {
            self.verified.retain(|_, &mut e| e > now);
            if self.verified.len() >= MAX_VERIFIED_TOKENS {
                self.verified.clear();
            }
        }
        self.verified.insert(digest.0, exp);
    }
}

/// A token's SHA-256: what the cache keeps instead of the token.
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_A: &str = r#"{"kty":"OKP","kid":"a","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    const ED_B: &str = r#"{"kty":"OKP","kid":"b","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    fn doc(keys: &[&str]) -> Vec<u8> {
        format!(r#"{{"keys":[{}]}}"#, keys.join(",")).into_bytes()
    }

    fn step(cache: &mut JwksCache, kid: &str, now: i64) -> String {
        match cache.lookup(Some(kid), Alg::EdDSA, now) {
            Lookup::Hit(k) => format!("hit {}", k.kid.as_deref().unwrap()),
            Lookup::Fetch => "fetch".into(),
            Lookup::Refetch => "refetch".into(),
            Lookup::Refused(e) => format!("refused: {e}"),
            Lookup::Unavailable => "unavailable".into(),
        }
    }

    fn cache() -> JwksCache {
        JwksCache::new(CachePolicy { ttl_secs: 600, refetch_interval_secs: 60 })
    }

    #[test]
    fn fetches_first_then_hits_until_the_ttl() {
        let mut c = cache();
        assert_eq!(step(&mut c, "a", 1000), "fetch");
        c.store(&doc(&[ED_A]), 1001).unwrap();
        assert_eq!(step(&mut c, "a", 1001), "hit a");
        assert_eq!(step(&mut c, "a", 1600), "hit a");
        assert_eq!(step(&mut c, "a", 1601), "fetch");
        c.store(&doc(&[ED_A]), 1602).unwrap();
        assert_eq!(step(&mut c, "a", 1602), "hit a");
    }

    #[test]
    fn keys_stored_a_second_after_the_lookup_that_asked_serve_it() {
        // The lookup's clock is read before the fetch, the store's after.
        let mut c = cache();
        assert_eq!(step(&mut c, "a", 1000), "fetch");
        c.store(&doc(&[ED_A]), 1001).unwrap();
        assert_eq!(step(&mut c, "a", 1000), "hit a");
        // A clock that went back further still refetches.
        assert_eq!(step(&mut c, "a", 900), "fetch");
    }

    #[test]
    fn an_unknown_kid_gets_one_refetch_per_interval() {
        let mut c = cache();
        c.store(&doc(&[ED_A]), 1000).unwrap();
        // Just fetched: a kid not in a fresh document is refused outright.
        assert_eq!(step(&mut c, "b", 1059), "refused: no key of the issuer matches the token's kid 'b'");
        assert_eq!(step(&mut c, "b", 1060), "refetch");
        assert_eq!(step(&mut c, "zz", 1061), "refused: no key of the issuer matches the token's kid 'zz'");
        // The issuer rotated: the refetch brings kid b.
        c.store(&doc(&[ED_A, ED_B]), 1062).unwrap();
        assert_eq!(step(&mut c, "b", 1062), "hit b");
        assert_eq!(step(&mut c, "zz", 1121), "refused: no key of the issuer matches the token's kid 'zz'");
        assert_eq!(step(&mut c, "zz", 1122), "refetch");
        // The refetch failed (nothing stored): still rate-limited.
        assert_eq!(step(&mut c, "zz", 1150), "refused: no key of the issuer matches the token's kid 'zz'");
        assert_eq!(step(&mut c, "a", 1150), "hit a");
    }

    #[test]
    fn an_unreachable_issuer_is_not_hammered() {
        let mut c = cache();
        assert_eq!(step(&mut c, "a", 1000), "fetch");
        // That fetch failed: nothing to store, and no new fetch for a minute.
        assert_eq!(step(&mut c, "a", 1030), "unavailable");
        assert_eq!(step(&mut c, "a", 1060), "fetch");
        assert_eq!(c.store(b"<html>502</html>", 1061).unwrap_err(), JwksError::NotJson);
        assert_eq!(step(&mut c, "a", 1062), "unavailable");
        c.store(&doc(&[ED_A]), 1121).unwrap();
        // Past the TTL with the issuer down: the old keys keep serving between tries.
        assert_eq!(step(&mut c, "a", 1721), "fetch");
        assert_eq!(step(&mut c, "a", 1722), "hit a");
        assert!(c.store(br#"{"keys":[]}"#, 1723).is_err());
        assert_eq!(step(&mut c, "a", 1724), "hit a");
        assert_eq!(step(&mut c, "a", 1783), "fetch");
    }

    #[test]
    fn a_clock_that_goes_back_does_not_block_fetches() {
        let mut c = cache();
        c.store(&doc(&[ED_A]), 5000).unwrap();
        assert_eq!(step(&mut c, "b", 4000), "fetch");
        assert_eq!(step(&mut c, "b", 4001), "refused: no key of the issuer matches the token's kid 'b'");
    }

    #[test]
    fn wrong_key_types_are_refused_without_a_fetch() {
        let mut c = cache();
        c.store(&doc(&[ED_A]), 1000).unwrap();
        assert!(matches!(c.lookup(Some("a"), Alg::RS256, 1100), Lookup::Refused(TokenError::KeyMismatch { .. })));
        assert_eq!(c.keys().unwrap().keys.len(), 1);
    }
}
