//! Getting a valid access token for a profile: from the access-token cache,
//! else by refresh (device-flow profiles), client credentials, or a running
//! oidc-agent. The protocol steps run in the oidc component; this module
//! keeps the files (cache 0600, encrypted store) and asks for the passphrase.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::{ClientAuthKind, GrantKind, Profile};
use crate::egress::{AllowedHost, EgressPolicy};
use crate::instance::{CallError, ComponentError};
use crate::oidc::{Client, ClientAuth, Oidc, OidcError, ProviderMetadata, TokenSet};
use crate::runtime::Runtime;
use crate::store::{Secrets, Store};

pub use lakeport_http::unix_now as now;

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
/// A time as RFC 3339 for people and for tools such as botocore: a time a
/// server put beyond year 9999 (or before 1970) is written as the nearest
/// one the format and its readers take.
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = lakeport_calendar::civil_from_unix(secs.clamp(0, lakeport_calendar::MAX_RFC3339_SECONDS));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// An access token as cached (0600) and as `token get --output json` shows it.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccessToken {
    pub access_token: String,
    /// Unix seconds; none when the issuer did not say.
    pub expires_at: Option<i64>,
    pub issuer: String,
    pub scope: Option<String>,
    pub audience: Vec<String>,
    /// Who asked for it: a cache entry is only used for the same client.
    pub client_id: String,
    /// The token's `sub` (for STS session names).
    #[serde(default)]
    pub subject: Option<String>,
}

impl AccessToken {
    pub fn valid_for(&self, seconds: i64) -> bool {
        self.expires_at.is_some_and(|exp| exp - now() >= seconds)
    }
}

/// Where the passphrase of the token store comes from.
#[derive(Clone, Debug, Default)]
pub struct PassphraseSource {
    pub file: Option<PathBuf>,
}

impl PassphraseSource {
    /// `LAKEPORT_PASSPHRASE`, the passphrase file, or a prompt on the terminal.
    pub fn get(&self, purpose: &str) -> Result<String> {
        if let Some(file) = &self.file {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read the passphrase file {}", file.display()))?;
            let pass = text.lines().next().unwrap_or_default().to_string();
            if pass.is_empty() {
                bail!("the passphrase file {} is empty", file.display());
            }
            return Ok(pass);
        }
        if let Some(pass) = std::env::var("LAKEPORT_PASSPHRASE").ok().filter(|p| !p.is_empty()) {
            return Ok(pass);
        }
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            let pass = rpassword::prompt_password(format!("lakeport: passphrase for {purpose}: ")).context("reading the passphrase")?;
            if pass.is_empty() {
                bail!("an empty passphrase is not allowed");
            }
            return Ok(pass);
        }
        bail!("the token store needs a passphrase: set LAKEPORT_PASSPHRASE or pass --passphrase-file")
    }
}

/// Everything a token operation needs for one profile.
pub struct TokenContext<'a> {
    pub name: String,
    pub profile: &'a Profile,
    pub runtime: &'a Runtime,
    pub store: Store,
    pub passphrase: PassphraseSource,
    pub ca_file: Option<PathBuf>,
}

fn cache_path(profile: &str) -> Result<PathBuf> {
    crate::paths::cache_dir().map(|d| d.join("tokens").join(format!("{profile}.json"))).ok_or_else(|| anyhow!("cannot find the cache directory: set XDG_CACHE_HOME or HOME"))
}

pub fn read_cached(profile: &str) -> Option<AccessToken> {
    let text = crate::paths::read_cache(&cache_path(profile).ok()?)?;
    serde_json::from_slice(&text).ok()
}

fn write_cache(profile: &str, token: &AccessToken) -> Result<()> {
    let path = cache_path(profile)?;
    crate::paths::write_private(&path, &serde_json::to_vec(token)?).with_context(|| format!("cannot write {}", path.display()))
}

/// Removes the cached access token and any mark of a spent refresh token.
pub fn forget_cached(profile: &str) {
    for path in [cache_path(profile), spent_mark_path(profile)].into_iter().flatten() {
        let _ = std::fs::remove_file(path);
    }
}

/// Marks a profile's stored refresh token as spent when the store cannot
/// take its successor: the SHA-256 of the spent token, in the cache (which is
/// writable when the store is not).
fn spent_mark_path(profile: &str) -> Result<PathBuf> {
    cache_path(profile).map(|p| p.with_extension("spent"))
}

fn fingerprint(refresh_token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(refresh_token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn is_marked_spent(profile: &str, refresh_token: &str) -> bool {
    spent_mark_path(profile).ok().and_then(|p| std::fs::read_to_string(p).ok()).is_some_and(|mark| mark.trim() == fingerprint(refresh_token))
}

impl<'a> TokenContext<'a> {
    pub fn issuer(&self) -> Result<&str> {
        self.profile.require("issuer", &self.profile.issuer, &self.name)
    }

    fn grant(&self) -> GrantKind {
        self.profile.grant.unwrap_or(GrantKind::Device)
    }

    pub fn client(&self, secret: Option<String>) -> Result<Client> {
        let client_id = self.profile.require("client_id", &self.profile.client_id, &self.name)?.to_string();
        let auth = match self.profile.client_auth {
            Some(ClientAuthKind::Basic) => ClientAuth::Basic,
            Some(ClientAuthKind::Post) => ClientAuth::Post,
            Some(ClientAuthKind::None) => ClientAuth::None,
            None if secret.is_some() => ClientAuth::Basic,
            None => ClientAuth::None,
        };
        Ok(Client {
            issuer: self.issuer()?.to_string(),
            client_id,
            client_secret: secret,
            auth,
            scopes: self.profile.scopes.clone(),
            audience: self.profile.audience.clone(),
            resource: self.profile.resource.clone(),
        })
    }

    /// An oidc instance that may reach the issuer and the profile's extra hosts.
    /// Extra CA certificates to trust: `--ca-file`, else the profile's.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca_file.clone().or_else(|| self.profile.ca_file.clone())
    }

    pub fn oidc(&self) -> Result<Oidc> {
        let mut hosts = vec![AllowedHost::from_url(self.issuer()?).with_context(|| format!("profile '{}': bad issuer", self.name))?];
        for url in &self.profile.allowed_hosts {
            hosts.push(AllowedHost::from_url(url).with_context(|| format!("profile '{}': bad allowed_hosts entry", self.name))?);
        }
        let policy = EgressPolicy::for_secrets(hosts, self.ca_file(), self.profile.allow_insecure_http).with_context(|| format!("profile '{}'", self.name))?;
        Oidc::new(self.runtime, policy)
    }

    /// The issuer's metadata, from the discovery cache (a day) or fetched
    /// and checked by the component.
    pub fn discover(&self, oidc: &mut Oidc) -> Result<ProviderMetadata> {
        let issuer = self.issuer()?;
        let path = discovery_cache_path(issuer);
        if let Some(cached) = path.as_deref().and_then(crate::paths::read_cache).and_then(|b| serde_json::from_slice::<CachedDiscovery>(&b).ok()) {
            if cached.issuer == issuer && now() - cached.fetched_at < DISCOVERY_TTL {
                crate::log::verbose(format_args!("issuer metadata from the discovery cache"));
                return Ok(cached.metadata);
            }
        }
        let meta = oidc.discover(issuer).map_err(|e| explain(e, &self.name, "discovery"))?;
        if let Some(path) = path {
            let entry = CachedDiscovery { issuer: issuer.into(), fetched_at: now(), metadata: meta.clone() };
            if let Err(e) = crate::paths::write_private(&path, &serde_json::to_vec(&entry)?) {
                crate::log::verbose(format_args!("not caching the discovery document: {e}"));
            }
        }
        Ok(meta)
    }

    /// A valid access token, valid for at least `min_valid` seconds.
    ///
    /// Getting one from the issuer is serialized per profile by the token
    /// lock, and the cache is read again once the lock is held: with
    /// refresh-token rotation two concurrent refreshes would present the same
    /// refresh token, the second would be refused and, on issuers that detect
    /// reuse, the whole login revoked.
    pub fn access_token(&self, min_valid: i64) -> Result<AccessToken> {
        match self.grant() {
            GrantKind::Token => {
                let handed = crate::job_token::given_token(&self.name, self.profile)?;
                return crate::job_token::describe(&self.name, handed, self.runtime);
            }
            GrantKind::GithubActions => {
                let handed = crate::job_token::github_actions_token(&self.name, self.profile, self.runtime, self.ca_file())?;
                return crate::job_token::describe(&self.name, handed, self.runtime);
            }
            _ => {}
        }
        if self.grant() != GrantKind::OidcAgent {
            self.issuer()?;
            self.profile.require("client_id", &self.profile.client_id, &self.name)?;
        }
        if let Some(cached) = self.cached(min_valid) {
            crate::log::verbose(format_args!("{}: using the cached access token", self.name));
            return Ok(cached);
        }
        if self.grant() == GrantKind::OidcAgent {
            // The agent keeps and rotates its own refresh token, and may wait
            // for its user to confirm: no lock of ours around it.
            let token = self.from_oidc_agent(min_valid)?;
            return self.keep(token, min_valid);
        }
        // The passphrase before the lock: no other run waits while a person
        // types it.
        let passphrase = if self.grant() == GrantKind::Device { Some(self.store_passphrase()?) } else { None };
        let _lock = self.lock_tokens()?;
        if let Some(cached) = self.cached(min_valid) {
            crate::log::verbose(format_args!("{}: using the access token of a concurrent run", self.name));
            return Ok(cached);
        }
        let token = match passphrase {
            Some(passphrase) => self.refresh(&passphrase)?,
            None => self.client_credentials()?,
        };
        // Cached before the lock is released, for the runs waiting on it.
        self.keep(token, min_valid)
    }

    /// The cached access token, if it is this profile's and valid long enough.
    fn cached(&self, min_valid: i64) -> Option<AccessToken> {
        let cached = read_cached(&self.name)?;
        let same_issuer = self.grant() == GrantKind::OidcAgent || Some(cached.issuer.as_str()) == self.profile.issuer.as_deref();
        (cached.valid_for(min_valid) && cached.client_id == self.cache_owner() && same_issuer).then_some(cached)
    }

    /// Caches a token just obtained, if it lives as long as asked.
    fn keep(&self, token: AccessToken, min_valid: i64) -> Result<AccessToken> {
        if !token.valid_for(min_valid) && token.expires_at.is_some() {
            bail!("the issuer returned a token valid for less than the {min_valid} s asked for");
        }
        write_cache(&self.name, &token)?;
        Ok(token)
    }

    /// Held by whatever reads and writes the profile's token store or access
    /// token (refresh, login, logout, `rucio login`): see
    /// [`crate::paths::profile_lock`] for the order with the S3 keys' lock.
    pub fn lock_tokens(&self) -> Result<std::fs::File> {
        crate::paths::profile_lock("tokens", &self.name)
    }

    /// The passphrase of a logged-in profile's token store.
    fn store_passphrase(&self) -> Result<String> {
        if !self.store.exists(&self.name) {
            bail!("profile '{}' is not logged in: run `lakeport token login --profile {}`", self.name, self.name);
        }
        self.passphrase.get(&format!("the token store of profile '{}'", self.name))
    }

    /// Who a cached token belongs to: the client, or the oidc-agent account.
    fn cache_owner(&self) -> String {
        match self.grant() {
            GrantKind::OidcAgent => format!("oidc-agent:{}", self.profile.oidc_agent_account.clone().unwrap_or_default()),
            GrantKind::Token | GrantKind::GithubActions => format!("job:{}", self.grant().name()),
            _ => self.profile.client_id.clone().unwrap_or_default(),
        }
    }

    /// Asks a running oidc-agent over `$OIDC_SOCK`.
    fn from_oidc_agent(&self, min_valid: i64) -> Result<AccessToken> {
        use std::io::{Read, Write};
        let account = self.profile.require("oidc_agent_account", &self.profile.oidc_agent_account, &self.name)?;
        let socket = std::env::var_os("OIDC_SOCK")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow!("oidc-agent is not running here (OIDC_SOCK is not set): start it, e.g. `eval $(oidc-agent-service use)`"))?;
        // The agent needs no network from us: an instance that may reach nothing.
        let mut oidc = Oidc::new(self.runtime, EgressPolicy::new(Vec::new(), None))?;
        let request = oidc.oidc_agent_request(account, min_valid.max(0) as u64, self.profile.audience.as_deref(), self.profile.scopes.as_deref())?;
        let socket = PathBuf::from(socket);
        let mut stream = std::os::unix::net::UnixStream::connect(&socket)
            .with_context(|| format!("cannot reach oidc-agent at {} (is it running? check OIDC_SOCK)", socket.display()))?;
        // One request per connection; the agent answers and closes.
        let timeout = Some(std::time::Duration::from_secs(60));
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        stream.write_all(request.as_bytes()).context("sending the request to oidc-agent")?;
        let mut answer = Vec::new();
        stream.take(1 << 20).read_to_end(&mut answer).context("reading oidc-agent's answer")?;
        let agent = oidc.parse_oidc_agent_response(&answer).map_err(|e| {
            e.explained(|e| {
                let hint = match &e {
                    OidcError::Agent(m) if m.contains("No account configured") => {
                        format!(" (load the account with `oidc-add {account}` or fix oidc_agent_account)")
                    }
                    _ => String::new(),
                };
                anyhow!("profile '{}': {}{hint}", self.name, e.message())
            })
        })?;
        let claims = oidc.claims_if_readable(&agent.token.access_token)?;
        Ok(AccessToken {
            access_token: agent.token.access_token,
            expires_at: agent.token.expires_at,
            issuer: agent.issuer,
            scope: claims.as_ref().and_then(|c| c.scope.clone()),
            subject: claims.as_ref().and_then(|c| c.subject.clone()),
            audience: claims.map(|c| c.audience).unwrap_or_default(),
            client_id: self.cache_owner(),
        })
    }

    fn client_credentials(&self) -> Result<AccessToken> {
        let secret = self
            .profile
            .client_secret
            .clone()
            .or_else(|| std::env::var("LAKEPORT_CLIENT_SECRET").ok().filter(|s| !s.is_empty()))
            .ok_or_else(|| anyhow!("profile '{}' uses client credentials but has no client secret: set client_secret or LAKEPORT_CLIENT_SECRET", self.name))?;
        let mut oidc = self.oidc()?;
        let meta = self.discover(&mut oidc)?;
        let tokens = oidc.client_credentials(&meta, &self.client(Some(secret))?).map_err(|e| explain(e, &self.name, "client credentials"))?;
        self.describe(&mut oidc, &tokens)
    }

    /// Refreshes with the stored refresh token, keeping a rotated one. The
    /// caller holds the token lock.
    fn refresh(&self, passphrase: &str) -> Result<AccessToken> {
        let login = format!("run `lakeport token login --profile {}`", self.name);
        let mut secrets = self.store.load(&self.name, passphrase)?.unwrap_or_default();
        let refresh_token = secrets.refresh_token.clone().ok_or_else(|| anyhow!("profile '{}' has no refresh token: {login}", self.name))?;
        if is_marked_spent(&self.name, &refresh_token) {
            bail!("the stored refresh token of profile '{}' was spent by a refresh whose new token could not be saved: {login}", self.name);
        }
        let mut oidc = self.oidc()?;
        let meta = self.discover(&mut oidc)?;
        let client = self.client(secrets.client_secret.clone().or_else(|| self.profile.client_secret.clone()))?;
        let tokens = oidc.refresh(&meta, &client, &refresh_token).map_err(|e| {
            if e.refusal().and_then(OidcError::oauth_code) == Some("invalid_grant") {
                anyhow!("the refresh token of profile '{}' was rejected (expired or revoked): {login}", self.name)
            } else {
                explain(e, &self.name, "refresh")
            }
        })?;
        if let Some(rotated) = &tokens.refresh_token {
            // Keep the rotated token: the old one is now spent.
            secrets.refresh_token = Some(rotated.clone());
            secrets.refresh_expires_at = self.refresh_expiry(&mut oidc, rotated, now())?;
            secrets.obtained_at = Some(now());
            match self.store.save(&self.name, passphrase, &secrets) {
                Err(e) if *rotated != refresh_token => return Err(self.spent(&refresh_token, e)),
                saved => saved?,
            }
        }
        self.describe(&mut oidc, &tokens)
    }

    /// The issuer rotated the refresh token and the store could not take the
    /// new one. What is stale then: the refresh token left in the store is
    /// spent (presenting it again is refused, and issuers that detect reuse
    /// revoke the login for it), and a cached access token would hide that
    /// until it expires. So the cached token goes, the fresh one is not
    /// cached, and the spent one is marked so that the next refresh asks for
    /// a login instead of presenting it.
    fn spent(&self, refresh_token: &str, cause: anyhow::Error) -> anyhow::Error {
        forget_cached(&self.name);
        let marked = spent_mark_path(&self.name).and_then(|p| Ok(crate::paths::write_private(&p, fingerprint(refresh_token).as_bytes())?));
        if let Err(e) = marked {
            crate::log::verbose(format_args!("cannot mark the spent refresh token: {e:#}"));
        }
        anyhow!(
            "profile '{}': the issuer replaced the refresh token but the new one could not be saved ({cause:#}), and the stored one is spent: make the token store writable and run `lakeport token login --profile {}`",
            self.name,
            self.name
        )
    }

    /// When a refresh token expires: its JWT `exp`, else the profile's
    /// `refresh_token_days` after it was issued, else unknown.
    fn refresh_expiry(&self, oidc: &mut Oidc, refresh_token: &str, issued: i64) -> Result<Option<i64>> {
        let exp = oidc.claims_if_readable(refresh_token)?.and_then(|c| c.expires_at);
        Ok(exp.or_else(|| self.profile.refresh_token_days.map(|d| issued + i64::from(d) * 86_400)))
    }

    /// The cached form of a token response, with the claims of the JWT.
    pub fn describe(&self, oidc: &mut Oidc, tokens: &TokenSet) -> Result<AccessToken> {
        let claims = oidc.claims_if_readable(&tokens.access_token)?;
        Ok(AccessToken {
            access_token: tokens.access_token.clone(),
            expires_at: tokens.expires_at,
            issuer: self.issuer()?.to_string(),
            scope: tokens.scope.clone().or_else(|| claims.as_ref().and_then(|c| c.scope.clone())),
            subject: claims.as_ref().and_then(|c| c.subject.clone()),
            audience: claims.map(|c| c.audience).unwrap_or_default(),
            client_id: self.profile.client_id.clone().unwrap_or_default(),
        })
    }

    /// Stores what a login produced (refresh token) and caches the access token.
    pub fn save_login(&self, oidc: &mut Oidc, tokens: &TokenSet, passphrase: &str) -> Result<AccessToken> {
        let refresh_token = tokens
            .refresh_token
            .clone()
            .ok_or_else(|| anyhow!("the issuer returned no refresh token: add offline_access to the profile's scopes"))?;
        let refresh_expires_at = self.refresh_expiry(oidc, &refresh_token, now())?;
        let token = self.describe(oidc, tokens)?;
        // No refresh may save the old login's rotated token over this one.
        let _lock = self.lock_tokens()?;
        let secrets = Secrets {
            issuer: self.profile.issuer.clone(),
            client_id: self.profile.client_id.clone(),
            refresh_token: Some(refresh_token),
            client_secret: self.profile.client_secret.clone(),
            refresh_expires_at,
            obtained_at: Some(now()),
            // A Rucio password kept by `lakeport rucio login` stays.
            rucio_password: self.store.load(&self.name, passphrase).ok().flatten().and_then(|s| s.rucio_password),
        };
        self.store.save(&self.name, passphrase, &secrets)?;
        // A spent-token mark belongs to the login this one replaces.
        forget_cached(&self.name);
        write_cache(&self.name, &token)?;
        Ok(token)
    }
}

/// Discovery documents are cached this long (seconds).
const DISCOVERY_TTL: i64 = 24 * 3600;

#[derive(Serialize, Deserialize)]
struct CachedDiscovery {
    issuer: String,
    fetched_at: i64,
    metadata: ProviderMetadata,
}

/// One file per issuer, named by a hash of its URL (stable across builds).
fn discovery_cache_path(issuer: &str) -> Option<PathBuf> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(issuer.as_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    crate::paths::cache_dir().map(|d| d.join("discovery").join(format!("{name}.json")))
}

/// One line that says what failed and what to do (a stopped component
/// says so itself).
pub fn explain(e: CallError<OidcError>, profile: &str, step: &str) -> anyhow::Error {
    let e = match e {
        CallError::Refused(e) => e,
        CallError::Stopped(e) => return e,
    };
    let hint = match &e {
        OidcError::HostDenied(_) => " (add the host to the profile's allowed_hosts if it is right)",
        OidcError::Oauth(o) if o.code == "invalid_client" => " (check client_id and client_secret)",
        OidcError::Oauth(o) if o.code == "invalid_scope" => " (check the profile's scopes)",
        OidcError::Oauth(o) if o.code == "invalid_target" => " (check the profile's audience/resource)",
        _ => "",
    };
    anyhow!("profile '{profile}': {step} failed: {}{hint}", e.message())
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn any_time_a_server_gives_is_written_as_rfc3339() {
        assert_eq!(rfc3339(1_369_353_600), "2013-05-24T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
    }
}
