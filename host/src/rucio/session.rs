//! A command's Rucio session: where and how a profile logs in to Rucio (its
//! `rucio_*` keys merged over the `[client]` section of its rucio.cfg), the
//! session token cached between commands, and a login done again when
//! Rucio refuses a cached token.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::{AccountInfo, Answer, Auth, ClientConfig, Did, Rucio, SessionToken, UserpassLogin};
use crate::egress::{AllowedHost, EgressPolicy};
use crate::tokens::TokenContext;

/// Where lakeport talks to Rucio, as whom, and how it logs in.
struct Target {
    host: String,
    auth_host: Option<String>,
    account: String,
    login: Login,
}

enum Login {
    /// The password when given (command line, environment, configuration);
    /// none: the encrypted store's, opened only when a login is needed (a
    /// cached session token needs no passphrase).
    Userpass { username: String, password: Option<String> },
    /// The profile's OIDC access token, which Rucio accepts from its issuer.
    Oidc,
}

/// A profile's Rucio side: where and how to log in, and one rucio
/// component instance (which also parses DIDs and lifetimes). The session
/// opens on the first call.
pub struct Session<'a> {
    pub ctx: TokenContext<'a>,
    target: Target,
    rucio: Rucio,
    open: bool,
}

fn no_password(profile: &str) -> String {
    format!("profile '{profile}': no Rucio password: run `lakeport rucio login`, or set rucio_password or LAKEPORT_RUCIO_PASSWORD")
}

impl<'a> Session<'a> {
    /// The session of the profile of `ctx`; `password`, when given, is used
    /// in place of any the profile has.
    pub fn new(ctx: TokenContext<'a>, password: Option<String>) -> Result<Self> {
        let p = ctx.profile;
        // The profile's rucio_* keys, else the [client] section of its rucio_cfg.
        let cfg = match &p.rucio_cfg {
            Some(path) => crate::config::rucio_client_section(path)?,
            None => Default::default(),
        };
        let from_cfg = |key: &str| cfg.get(key).filter(|v| !v.is_empty()).cloned();
        let setting = |own: &Option<String>, cfg_key: &str| own.clone().filter(|v| !v.is_empty()).or_else(|| from_cfg(cfg_key));
        let missing = |key: &str| anyhow!("profile '{}' has no '{key}': add it to the configuration (or to the [client] section of its rucio_cfg)", ctx.name);
        let host = setting(&p.rucio_host, "rucio_host").ok_or_else(|| missing("rucio_host"))?;
        let auth_host = setting(&p.rucio_auth_host, "auth_host");
        let account = setting(&p.rucio_account, "account").ok_or_else(|| missing("rucio_account"))?;
        let username = setting(&p.rucio_username, "username");
        let mut allowed = vec![AllowedHost::from_url(&host).with_context(|| format!("profile '{}': bad rucio_host", ctx.name))?];
        if let Some(auth) = &auth_host {
            allowed.push(AllowedHost::from_url(auth).with_context(|| format!("profile '{}': bad rucio_auth_host", ctx.name))?);
        }
        let method = setting(&p.rucio_auth, "auth_type").unwrap_or_else(|| if username.is_some() { "userpass".into() } else { "oidc".into() });
        let login = match method.as_str() {
            "userpass" => {
                let username = username.ok_or_else(|| missing("rucio_username"))?;
                let password = password
                    .or_else(|| std::env::var("LAKEPORT_RUCIO_PASSWORD").ok().filter(|v| !v.is_empty()))
                    .or_else(|| setting(&p.rucio_password, "password"));
                if password.is_none() && !ctx.store.exists(&ctx.name) {
                    bail!("{}", no_password(&ctx.name));
                }
                Login::Userpass { username, password }
            }
            "oidc" => Login::Oidc,
            other => bail!("profile '{}': Rucio authentication '{other}' is not one lakeport does: use userpass or oidc", ctx.name),
        };
        let ca = ctx.ca_file().or_else(|| from_cfg("ca_cert").map(PathBuf::from));
        let policy = EgressPolicy::for_secrets(allowed, ca, p.allow_insecure_http).with_context(|| format!("profile '{}'", ctx.name))?;
        let rucio = Rucio::new(ctx.runtime, policy)?;
        Ok(Session { target: Target { host, auth_host, account, login }, rucio, open: false, ctx })
    }

    /// The account the session acts as.
    pub fn account(&self) -> &str {
        &self.target.account
    }

    pub fn did(&mut self, text: &str) -> Result<Did> {
        Ok(self.rucio.did(text)?)
    }

    /// Seconds; `never` is none.
    pub fn lifetime(&mut self, text: &str) -> Result<Option<u64>> {
        Ok(self.rucio.lifetime(text)?)
    }

    /// Opens the session: the cached Rucio token when there is one (and
    /// `use_cache`), else a login.
    fn open(&mut self, use_cache: bool) -> Result<()> {
        let name = self.ctx.name.clone();
        let t = &self.target;
        let auth = match &t.login {
            Login::Oidc => Auth::Token(self.ctx.access_token(60)?.access_token),
            Login::Userpass { username, password } => match use_cache.then(|| cached_token(&name, &t.host, &t.account, username)).flatten() {
                Some(token) => {
                    crate::log::verbose(format_args!("{name}: using the cached Rucio token"));
                    Auth::Token(token)
                }
                None => {
                    let password = match password {
                        Some(p) => p.clone(),
                        None => {
                            let pass = self.ctx.passphrase.get(&format!("the token store of profile '{name}'"))?;
                            self.ctx.store.load(&name, &pass)?.and_then(|s| s.rucio_password).ok_or_else(|| anyhow!("{}", no_password(&name)))?
                        }
                    };
                    Auth::Userpass(UserpassLogin { username: username.clone(), password })
                }
            },
        };
        let fresh_login = matches!(auth, Auth::Userpass(_));
        let config = ClientConfig { host: t.host.clone(), auth_host: t.auth_host.clone(), account: t.account.clone(), vo: None, auth, max_attempts: None };
        self.rucio.login(&config)?;
        self.open = true;
        if let (true, Login::Userpass { username, .. }) = (fresh_login, &self.target.login) {
            if let Some(session) = self.rucio.session()? {
                cache_token(&name, &self.target.host, &self.target.account, username, &session);
            }
        }
        Ok(())
    }

    /// Runs `work` in the session; a cached token Rucio no longer accepts
    /// is dropped, the login done again, and `work` alone run again, once.
    /// So that nothing else is repeated, each step that must not be (an S3
    /// transfer between two Rucio calls) stays outside `work`.
    pub fn call<T>(&mut self, mut work: impl FnMut(&mut Rucio) -> Answer<T>) -> Result<T> {
        if !self.open {
            self.open(true)?;
        }
        match work(&mut self.rucio) {
            Err(e) if e.refusal().and_then(|e| e.class()) == Some("CannotAuthenticate") && matches!(self.target.login, Login::Userpass { .. }) => {
                crate::log::verbose(format_args!("Rucio refused the cached token; logging in again"));
                forget_token(&self.ctx.name);
                self.open(false)?;
                Ok(work(&mut self.rucio)?)
            }
            other => Ok(other?),
        }
    }

    /// Checks `password` (the one this session was made with) by logging
    /// in with it, and keeps it in the profile's encrypted token store.
    /// Returns the username and the account Rucio accepted it for.
    pub fn store_password(&mut self, password: String) -> Result<(String, AccountInfo)> {
        let Login::Userpass { username, .. } = &self.target.login else { bail!("profile '{}' does not log in to Rucio with userpass", self.ctx.name) };
        let username = username.clone();
        // Only a password Rucio accepts is kept.
        forget_token(&self.ctx.name);
        self.open(false)?;
        let who = self.rucio.whoami()?;
        let ctx = &self.ctx;
        let passphrase = ctx.passphrase.get(&format!("the token store of profile '{}'", ctx.name))?;
        // A refresh between the load and the save would lose its rotated token.
        let lock = ctx.lock_tokens()?;
        let mut secrets = ctx.store.load(&ctx.name, &passphrase)?.unwrap_or_default();
        secrets.rucio_password = Some(password);
        ctx.store.save(&ctx.name, &passphrase, &secrets)?;
        drop(lock);
        Ok((username, who))
    }
}

/// A cached Rucio session token, and whose it is.
#[derive(Serialize, Deserialize)]
struct CachedToken {
    host: String,
    account: String,
    username: String,
    token: String,
    expires_at: i64,
}

fn token_cache(profile: &str) -> Option<PathBuf> {
    crate::paths::cache_dir().map(|d| d.join("rucio").join(format!("{profile}.json")))
}

/// A cached token of `profile` for this host, account and user, valid for
/// at least another minute.
fn cached_token(profile: &str, host: &str, account: &str, username: &str) -> Option<String> {
    let cached: CachedToken = serde_json::from_slice(&crate::paths::read_cache(&token_cache(profile)?)?).ok()?;
    let fresh = cached.expires_at - crate::tokens::now() > 60;
    (fresh && cached.host == host && cached.account == account && cached.username == username).then_some(cached.token)
}

fn cache_token(profile: &str, host: &str, account: &str, username: &str, session: &SessionToken) {
    let (Some(path), Some(expires_at)) = (token_cache(profile), session.expires_at) else { return };
    let entry = CachedToken { host: host.into(), account: account.into(), username: username.into(), token: session.token.clone(), expires_at };
    let written = serde_json::to_vec(&entry).map_err(std::io::Error::other).and_then(|bytes| crate::paths::write_private(&path, &bytes));
    if let Err(e) = written {
        crate::log::verbose(format_args!("not caching the Rucio token: {e}"));
    }
}

/// Drops the profile's cached Rucio token (a password change, a logout).
pub fn forget_token(profile: &str) {
    if let Some(path) = token_cache(profile) {
        let _ = std::fs::remove_file(path);
    }
}
