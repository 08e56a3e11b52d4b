//! Each caller's own temporary S3 keys, cached: under STS the gateway
//! signs a caller's requests with the keys `AssumeRoleWithWebIdentity`
//! gave for that caller's token, so the backend's own policies decide.
//! Keys are kept per (issuer, subject) — the role is the gateway's one
//! configured role — until [`RENEW_BEFORE_SECS`] before they expire, so a
//! request never starts with keys that could expire under it.
//!
//! Where the host offers a `wasi:keyvalue` store shared between instances
//! (lakeport serve does), keys are also kept there ([`SharedEntry`]), and
//! one instance at a time asks STS for a caller ([`Lease`]); the cache in
//! the instance stays in front of it.

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

    /// The caller's keys, and when they expire, if they are good for
    /// [`RENEW_BEFORE_SECS`] more.
    pub fn get(&self, issuer: &str, subject: &str, now: i64) -> Option<(S3Keys, i64)> {
        let entry = self.entries.get(&(issuer.to_string(), subject.to_string()))?;
        (entry.expiration.saturating_sub(now) > RENEW_BEFORE_SECS).then(|| (entry.keys.clone(), entry.expiration))
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

/// The name of a caller's keys in a shared store: a hash, so that the
/// store (which may be another service) never learns who the callers are.
/// The role is part of it: gateways sharing a store may assume other roles.
pub fn shared_name(issuer: &str, subject: &str, role_arn: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [issuer, subject, role_arn] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("lakeport-gateway/sts-keys/{hex}")
}

/// The name of the lease on fetching keys for `shared_name`.
pub fn lease_name(shared_name: &str) -> String {
    format!("{shared_name}/lease")
}

/// A caller's keys as kept in a shared store.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SharedEntry {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    /// Unix seconds.
    expiration: i64,
}

impl SharedEntry {
    pub fn new(keys: &S3Keys, expiration: i64) -> SharedEntry {
        SharedEntry {
            access_key_id: keys.access_key_id.clone(),
            secret_access_key: keys.secret_access_key.clone(),
            session_token: keys.session_token.clone(),
            expiration,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The keys in a stored value and when they expire, if they are good for
    /// [`RENEW_BEFORE_SECS`] more; anything unreadable counts as absent.
    pub fn fresh(bytes: &[u8], now: i64) -> Option<(S3Keys, i64)> {
        let e: SharedEntry = serde_json::from_slice(bytes).ok()?;
        (e.expiration.saturating_sub(now) > RENEW_BEFORE_SECS).then(|| {
            (S3Keys { access_key_id: e.access_key_id, secret_access_key: e.secret_access_key, session_token: e.session_token }, e.expiration)
        })
    }
}

/// Who asks STS when a caller's keys are missing: the instance whose
/// increment of the lease counter gave 1 leads, and deletes the lease when
/// done, keys stored or not. The others wait for the leader's keys to
/// appear, polling every [`Lease::POLL_MS`]; when the lease is gone without
/// keys (STS refused the leader) or after [`Lease::WAIT_MS`] (the leader
/// died), they ask STS themselves: a lease is a hint, never a lock that
/// could hold callers out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    Lead,
    Wait,
}

impl Lease {
    /// An STS call takes well under this; a waiting request is held no longer.
    pub const WAIT_MS: u64 = 10_000;
    pub const POLL_MS: u64 = 20;

    /// From the lease counter after this instance's increment.
    pub fn from_count(count: u64) -> Lease {
        if count == 1 {
            Lease::Lead
        } else {
            Lease::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_entries_name_callers_by_hash_and_are_fresh_until_renewal_time() {
        let a = shared_name("https://iss/", "alice", "arn:role/A");
        assert!(a.starts_with("lakeport-gateway/sts-keys/") && !a.contains("alice"), "{a}");
        assert_ne!(a, shared_name("https://iss/", "alice", "arn:role/B"), "the role is part of the name");
        assert_ne!(a, shared_name("https://iss/", "bob", "arn:role/A"));
        // Lengths are hashed too: moving a character across fields changes the name.
        assert_ne!(shared_name("ab", "c", "r"), shared_name("a", "bc", "r"));
        assert_eq!(lease_name(&a), format!("{a}/lease"));

        let now = 1_000_000;
        let bytes = SharedEntry::new(&keys("A"), now + 3600).to_bytes();
        let (k, exp) = SharedEntry::fresh(&bytes, now).unwrap();
        assert_eq!((k.access_key_id.as_str(), k.session_token.as_deref(), exp), ("A", Some("t"), now + 3600));
        assert!(SharedEntry::fresh(&bytes, now + 3600 - RENEW_BEFORE_SECS).is_none());
        assert!(SharedEntry::fresh(b"{not json", now).is_none());
        assert!(SharedEntry::fresh(b"", now).is_none());
    }

    #[test]
    fn only_the_first_increment_leads() {
        assert_eq!(Lease::from_count(1), Lease::Lead);
        assert_eq!(Lease::from_count(2), Lease::Wait);
        assert_eq!(Lease::from_count(17), Lease::Wait);
    }

    fn keys(id: &str) -> S3Keys {
        S3Keys { access_key_id: id.into(), secret_access_key: "s".into(), session_token: Some("t".into()) }
    }

    #[test]
    fn keys_are_per_caller_and_renewed_fifteen_minutes_before_expiry() {
        let mut cache = KeyCache::new();
        let now = 1_000_000;
        cache.store("iss", "alice", keys("A"), now + 3600, now);
        cache.store("iss", "bob", keys("B"), now + 3600, now);
        assert_eq!(cache.get("iss", "alice", now).unwrap().0.access_key_id, "A");
        assert_eq!(cache.get("iss", "bob", now).unwrap().0.access_key_id, "B");
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
