//! Each caller's own temporary S3 keys, cached: under STS the gateway
//! signs a caller's requests with the keys `AssumeRoleWithWebIdentity`
//! gave for that caller's token, so the backend's own policies decide.
//! Keys are kept per (issuer, subject) — the role is the gateway's one
//! configured role — until [`RENEW_BEFORE_SECS`] before they expire, so a
//! request never starts with keys that could expire under it.

// A BTreeMap, not a HashMap: std's hasher seeds itself from
// wasi:random/insecure-seed, one more import for a host to grant.
use std::collections::BTreeMap;

use lakeport_sigv4::Credentials as S3Keys;

/// Keys are not used once they have less than this left (15 minutes: a
/// large transfer signed now must not outlive them).
pub const RENEW_BEFORE_SECS: i64 = 15 * 60;

/// Callers whose keys are kept at once; beyond it the keys that expire
/// soonest make room.
pub const MAX_CALLERS: usize = 4096;

struct Entry {
    keys: S3Keys,
    /// Unix seconds.
    expiration: i64,
}

#[derive(Default)]
pub struct KeyCache {
    entries: BTreeMap<(String, String), Entry>,
}

impl KeyCache {
    pub fn new() -> KeyCache {
        KeyCache::default()
    }

    /// The caller's keys if they are good for [`RENEW_BEFORE_SECS`] more.
    pub fn get(&self, issuer: &str, subject: &str, now: i64) -> Option<S3Keys> {
        let entry = self.entries.get(&(issuer.to_string(), subject.to_string()))?;
        (entry.expiration.saturating_sub(now) > RENEW_BEFORE_SECS).then(|| entry.keys.clone())
    }

    /// Keeps keys that expire at `expiration` (Unix seconds) for the caller.
    pub fn store(&mut self, issuer: &str, subject: &str, keys: S3Keys, expiration: i64, now: i64) {
        self.entries.retain(|_, e| e.expiration.saturating_sub(now) > RENEW_BEFORE_SECS);
        let key = (issuer.to_string(), subject.to_string());
        if self.entries.len() >= MAX_CALLERS && !self.entries.contains_key(&key) {
            if let Some(soonest) = self.entries.iter().min_by_key(|(_, e)| e.expiration).map(|(k, _)| k.clone()) {
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(key, Entry { keys, expiration });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(id: &str) -> S3Keys {
        S3Keys { access_key_id: id.into(), secret_access_key: "s".into(), session_token: Some("t".into()) }
    }

    #[test]
    fn keys_are_per_caller_and_renewed_fifteen_minutes_before_expiry() {
        let mut cache = KeyCache::new();
        let now = 1_000_000;
        cache.store("iss", "alice", keys("A"), now + 3600, now);
        cache.store("iss", "bob", keys("B"), now + 3600, now);
        assert_eq!(cache.get("iss", "alice", now).unwrap().access_key_id, "A");
        assert_eq!(cache.get("iss", "bob", now).unwrap().access_key_id, "B");
        // Same subject from another issuer is another caller.
        assert!(cache.get("other", "alice", now).is_none());
        assert!(cache.get("iss", "alice", now + 3600 - RENEW_BEFORE_SECS - 1).is_some());
        assert!(cache.get("iss", "alice", now + 3600 - RENEW_BEFORE_SECS).is_none());
        // Keys too short-lived to reuse are not handed out again.
        cache.store("iss", "carol", keys("C"), now + 600, now);
        assert!(cache.get("iss", "carol", now).is_none());
    }

    #[test]
    fn stale_keys_go_and_a_full_cache_drops_the_soonest_to_expire() {
        let mut cache = KeyCache::new();
        let now = 1_000_000;
        for i in 0..MAX_CALLERS {
            cache.store("iss", &format!("u{i}"), keys("K"), now + 3600 + i as i64, now);
        }
        assert_eq!(cache.len(), MAX_CALLERS);
        cache.store("iss", "new", keys("N"), now + 7200, now);
        assert_eq!(cache.len(), MAX_CALLERS);
        assert!(cache.get("iss", "u0", now).is_none(), "the soonest to expire made room");
        assert!(cache.get("iss", "new", now).is_some() && cache.get("iss", "u1", now).is_some());
        // Past their renewal time, all are dropped on the next store.
        cache.store("iss", "late", keys("L"), now + 20_000, now + 9000);
        assert_eq!(cache.len(), 1);
    }
}
