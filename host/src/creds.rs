//! Temporary S3 credentials for a profile: static keys from the profile, or
//! the sts component's `AssumeRoleWithWebIdentity` with the profile's OIDC
//! token. Results are cached (0600) and reused while more than
//! [`RENEW_BEFORE`] remain; a file lock makes concurrent invocations on an
//! empty cache share one STS call (rclone and restic start several at once).

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

use crate::egress::{AllowedHost, EgressPolicy};
use crate::instance::ComponentError;
use crate::sts::{AssumeRoleRequest, Sts, StsError};
use crate::tokens::{now, TokenContext};

/// botocore refreshes `credential_process` credentials 15 minutes before
/// they expire; handing out shorter-lived ones would make every call fetch.
pub const RENEW_BEFORE: i64 = 15 * 60;

/// Default `DurationSeconds`.
pub const DEFAULT_DURATION: u32 = 3600;

/// S3 credentials as cached and as `lakeport creds` prints them.
#[derive(Clone, Serialize, Deserialize)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Unix seconds; none for static keys.
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A cache entry: the credentials and the settings they were made with, so
/// that editing the profile (another role, endpoint or policy) is honoured.
#[derive(Serialize, Deserialize)]
struct CacheEntry {
    settings: String,
    credentials: S3Credentials,
}

/// Where a profile's credentials come from.
enum Source<'p> {
    Static { access_key_id: &'p str, secret_access_key: &'p str },
    Sts { endpoint: &'p str, role_arn: &'p str },
}

fn cache_path(profile: &str) -> Result<PathBuf> {
    crate::paths::cache_dir().map(|d| d.join("creds").join(format!("{profile}.json"))).ok_or_else(|| anyhow!("cannot find the cache directory: set XDG_CACHE_HOME or HOME"))
}

impl<'a> TokenContext<'a> {
    fn credential_source(&self) -> Result<Source<'a>> {
        let p = self.profile;
        match (&p.access_key_id, &p.secret_access_key, &p.sts_endpoint) {
            (Some(id), Some(secret), None) => Ok(Source::Static { access_key_id: id, secret_access_key: secret }),
            (Some(_), None, _) | (None, Some(_), _) => {
                Err(anyhow!("profile '{}': set both access_key_id and secret_access_key, or neither and use sts_endpoint", self.name))
            }
            (Some(_), Some(_), Some(_)) => Err(anyhow!("profile '{}': has both static keys and sts_endpoint; keep one", self.name)),
            (None, None, Some(endpoint)) => Ok(Source::Sts { endpoint, role_arn: p.require("role_arn", &p.role_arn, &self.name)? }),
            (None, None, None) => Err(anyhow!(
                "profile '{}' has no S3 credentials: set sts_endpoint and role_arn (temporary keys from the OIDC token) or access_key_id and secret_access_key",
                self.name
            )),
        }
    }

    /// What the cached credentials depend on besides the profile name.
    fn sts_settings(&self) -> String {
        let p = self.profile;
        serde_json::json!([p.sts_endpoint, p.role_arn, p.duration_seconds, p.session_name, p.policy, p.issuer, p.client_id, p.oidc_agent_account, p.grant.map(|g| g.name()), p.token_env, p.token_file])
            .to_string()
    }

    /// Credentials valid for more than [`RENEW_BEFORE`]: cached, or from STS.
    pub fn s3_credentials(&self) -> Result<S3Credentials> {
        self.credentials_other_than(None)
    }

    /// Credentials to replace those a server refused mid-transfer (expired
    /// early, or revoked): newer ones a concurrent run cached, else new
    /// ones from STS; never the refused ones.
    pub fn renewed_s3_credentials(&self, refused_access_key_id: &str) -> Result<S3Credentials> {
        crate::log::verbose(format_args!("{}: the server refused the access key {refused_access_key_id}: renewing", self.name));
        self.credentials_other_than(Some(refused_access_key_id))
    }

    fn credentials_other_than(&self, refused_access_key_id: Option<&str>) -> Result<S3Credentials> {
        let (endpoint, role_arn) = match self.credential_source()? {
            Source::Static { .. } if refused_access_key_id.is_some() => {
                return Err(anyhow!("profile '{}' has static keys, which cannot be renewed: check them", self.name))
            }
            Source::Static { access_key_id, secret_access_key } => {
                return Ok(S3Credentials {
                    access_key_id: access_key_id.into(),
                    secret_access_key: secret_access_key.into(),
                    session_token: None,
                    expires_at: None,
                })
            }
            Source::Sts { endpoint, role_arn } => (endpoint, role_arn),
        };
        let settings = self.sts_settings();
        let cache = cache_path(&self.name)?;
        let cached = || read_fresh(&cache, &settings).filter(|c| Some(c.access_key_id.as_str()) != refused_access_key_id);
        if let Some(hit) = cached() {
            crate::log::verbose(format_args!("{}: using the cached S3 credentials", self.name));
            return Ok(hit);
        }
        // One STS call among concurrent invocations: the first takes the lock
        // and fills the cache; the others wait, then find it filled. The lock
        // is held while the OIDC token is got, a passphrase prompt included:
        // concurrent runs wait for one prompt rather than each asking.
        let lock = crate::paths::profile_lock("creds", &self.name)?;
        if let Some(hit) = cached() {
            crate::log::verbose(format_args!("{}: S3 credentials made by a concurrent run", self.name));
            return Ok(hit);
        }
        let fresh = self.assume_role(endpoint, role_arn)?;
        let entry = CacheEntry { settings, credentials: fresh.clone() };
        crate::paths::write_private(&cache, &serde_json::to_vec(&entry)?).with_context(|| format!("cannot write {}", cache.display()))?;
        drop(lock);
        Ok(fresh)
    }

    fn assume_role(&self, endpoint: &str, role_arn: &str) -> Result<S3Credentials> {
        let duration = self.profile.duration_seconds.unwrap_or(DEFAULT_DURATION);
        // The token must outlive the STS call, not the credentials.
        let token = self.access_token(60).context("getting the OIDC token for STS")?;
        let host = AllowedHost::from_url(endpoint).with_context(|| format!("profile '{}': bad sts_endpoint", self.name))?;
        let policy = EgressPolicy::for_secrets(vec![host], self.ca_file(), self.profile.allow_insecure_http).with_context(|| format!("profile '{}'", self.name))?;
        let mut sts = Sts::new(self.runtime, policy)?;
        let request = AssumeRoleRequest {
            endpoint: endpoint.into(),
            role_arn: role_arn.into(),
            web_identity_token: token.access_token,
            session_name: self.profile.session_name.clone(),
            subject: token.subject,
            duration_seconds: Some(duration),
            policy: self.profile.policy.clone(),
            provider_id: None,
        };
        crate::log::verbose(format_args!("{}: AssumeRoleWithWebIdentity at {endpoint} for {role_arn}", self.name));
        let creds = sts.assume_role_with_web_identity(&request).map_err(|e| e.explained(|e| sts_failure(&self.name, &e)))?;
        if creds.expiration - now() <= RENEW_BEFORE {
            crate::log::verbose(format_args!(
                "{}: STS credentials live {} s, under the 15 minute renewal margin: each call will ask STS again",
                self.name,
                creds.expiration - now()
            ));
        }
        Ok(S3Credentials {
            access_key_id: creds.access_key_id,
            secret_access_key: creds.secret_access_key,
            session_token: Some(creds.session_token),
            expires_at: Some(creds.expiration),
        })
    }
}

/// What a transfer needs to renew its profile's credentials by itself, in
/// the middle of a component call: owned copies of the profile's context
/// and a runtime of its own for the sts and oidc components (its engine is
/// made on the first renewal, and kept for the next).
pub struct Renewal {
    name: String,
    profile: crate::config::Profile,
    store: crate::store::Store,
    passphrase: crate::tokens::PassphraseSource,
    ca_file: Option<PathBuf>,
    runtime: crate::runtime::Runtime,
}

impl Renewal {
    pub fn of(ctx: &TokenContext<'_>) -> Result<Self> {
        Ok(Renewal {
            name: ctx.name.clone(),
            profile: ctx.profile.clone(),
            store: ctx.store.clone(),
            passphrase: ctx.passphrase.clone(),
            ca_file: ctx.ca_file.clone(),
            runtime: crate::runtime::Runtime::new()?,
        })
    }

    pub fn renew(&self, refused_access_key_id: &str) -> Result<S3Credentials> {
        let ctx = TokenContext {
            name: self.name.clone(),
            profile: &self.profile,
            runtime: &self.runtime,
            store: self.store.clone(),
            passphrase: self.passphrase.clone(),
            ca_file: self.ca_file.clone(),
        };
        ctx.renewed_s3_credentials(refused_access_key_id)
    }
}

fn read_fresh(cache: &std::path::Path, settings: &str) -> Option<S3Credentials> {
    let entry: CacheEntry = serde_json::from_slice(&crate::paths::read_cache(cache)?).ok()?;
    let fresh = entry.settings == settings && entry.credentials.expires_at.is_some_and(|e| e - now() > RENEW_BEFORE);
    fresh.then_some(entry.credentials)
}

/// Removes a profile's cached credentials (e.g. on logout).
pub fn forget_cached(profile: &str) {
    if let Ok(cache) = cache_path(profile) {
        let _ = std::fs::remove_file(cache);
    }
}

fn sts_failure(profile: &str, e: &StsError) -> anyhow::Error {
    anyhow!("profile '{profile}': {}", e.message())
}
