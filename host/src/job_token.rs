//! Tokens handed to a job instead of obtained by lakeport: `grant = "token"`
//! (a variable, a file, or WLCG bearer-token discovery: GitLab CI
//! `id_tokens`, Kubernetes projected tokens, HTCondor jobs) and
//! `grant = "github-actions"` (the job's token service). No client, no
//! store, no passphrase and no token cache: the job's token is read each
//! time, so a file its scheduler renews is always read fresh.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use crate::config::Profile;
use crate::egress::{AllowedHost, EgressPolicy};
use crate::instance::ComponentError;
use crate::oidc::Oidc;
use crate::runtime::Runtime;
use crate::tokens::{now, rfc3339, AccessToken};

/// A token and where it was found (for messages; never the token).
pub struct HandedToken {
    pub token: String,
    pub source: String,
}

/// `grant = "token"`: `token_env`, else `token_file`, else WLCG bearer-token
/// discovery (`BEARER_TOKEN`, `BEARER_TOKEN_FILE`, `$XDG_RUNTIME_DIR/bt_u$UID`,
/// `/tmp/bt_u$UID`, in that order).
pub fn given_token(profile_name: &str, profile: &Profile) -> Result<HandedToken> {
    let what = |e: anyhow::Error| anyhow!("profile '{profile_name}': {e:#}");
    if let Some(name) = profile.token_env.as_deref() {
        return from_variable(name, "token_env").map_err(what);
    }
    if let Some(path) = &profile.token_file {
        return from_file(path, "token_file").map_err(what);
    }
    discover().map_err(what)
}

fn from_variable(name: &str, key: &str) -> Result<HandedToken> {
    let value = match std::env::var(name) {
        Ok(v) => v,
        Err(std::env::VarError::NotPresent) => bail!("{key} names the variable {name}, which is not set in this environment (in GitLab CI, declare it under `id_tokens:`)"),
        Err(std::env::VarError::NotUnicode(_)) => bail!("the variable {name} ({key}) does not hold a token: it is not text"),
    };
    let source = format!("the variable {name}");
    Ok(HandedToken { token: checked(&value, &source)?, source })
}

fn from_file(path: &Path, key: &str) -> Result<HandedToken> {
    let source = format!("the file {}", path.display());
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| anyhow!("{source} ({key}) does not hold a token: it is not text"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{source} ({key}) does not exist: check the path, or that the job's token is written there"),
        Err(e) => bail!("cannot read {source} ({key}): {e}"),
    };
    let token = checked(&text, &source)?;
    warn_if_others_can_read(path);
    Ok(HandedToken { token, source })
}

/// A token file others can read: used, with a warning. The token has been
/// exposed already and refusing would not take that back; Kubernetes
/// projects service-account tokens 0644 by default, inside a container
/// nobody else shares. Elsewhere (HTCondor writes 0600) it is worth fixing.
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            eprintln!(
                "lakeport: warning: the token file {} is readable by other users (mode {mode:04o}): anyone who can read it can use the token until it expires; `chmod 600` it",
                path.display()
            );
        }
    }
}

/// WLCG Bearer Token Discovery (version 1.0), first match wins. A variable
/// that is set but wrong is an error, not a reason to look further: a job
/// must not silently use another token than the one it was given.
fn discover() -> Result<HandedToken> {
    if std::env::var_os("BEARER_TOKEN").is_some() {
        return from_variable("BEARER_TOKEN", "WLCG discovery");
    }
    if let Some(file) = std::env::var_os("BEARER_TOKEN_FILE") {
        return from_file(Path::new(&file), "BEARER_TOKEN_FILE");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut places: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        places.push(Path::new(&dir).join(format!("bt_u{uid}")));
    }
    places.push(PathBuf::from(format!("/tmp/bt_u{uid}")));
    for place in &places {
        if place.exists() {
            return from_file(place, "WLCG discovery");
        }
    }
    let looked: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "no token: set token_env or token_file in the profile, or hand the job a token by WLCG bearer-token discovery (BEARER_TOKEN, BEARER_TOKEN_FILE, {})",
        looked.join(", ")
    )
}

/// The token in `text`: one line of token characters, surrounding
/// whitespace (a file's final newline) aside.
fn checked(text: &str, source: &str) -> Result<String> {
    let token = text.trim();
    if token.is_empty() {
        bail!("{source} is empty: the job was given no token");
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{source} does not hold a token: expected one line without spaces");
    }
    Ok(token.to_string())
}

/// `grant = "github-actions"`: the job's token for the profile's `audience`
/// from `ACTIONS_ID_TOKEN_REQUEST_URL`, asked by the oidc component, which
/// may reach that URL's host only.
pub fn github_actions_token(profile_name: &str, profile: &Profile, runtime: &Runtime, ca_file: Option<PathBuf>) -> Result<HandedToken> {
    let variable = |name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
            anyhow!("profile '{profile_name}' takes the GitHub Actions job's token, but {name} is not set: give the job `permissions: id-token: write` (and run lakeport inside the job)")
        })
    };
    let url = variable("ACTIONS_ID_TOKEN_REQUEST_URL")?;
    let request_token = variable("ACTIONS_ID_TOKEN_REQUEST_TOKEN")?;
    let host = AllowedHost::from_url(&url).map_err(|e| anyhow!("profile '{profile_name}': ACTIONS_ID_TOKEN_REQUEST_URL: {e:#}"))?;
    let policy = EgressPolicy::for_secrets(vec![host], ca_file, profile.allow_insecure_http).map_err(|e| anyhow!("profile '{profile_name}': {e:#}"))?;
    let mut oidc = Oidc::new(runtime, policy)?;
    let token = oidc
        .github_actions_token(&url, &request_token, profile.audience.as_deref())
        .map_err(|e| e.explained(|e| anyhow!("profile '{profile_name}': getting the GitHub Actions token failed: {}", e.message())))?;
    Ok(HandedToken { token, source: "GitHub Actions' token service".into() })
}

/// The handed token as lakeport passes tokens on, with what its claims say
/// (read by the oidc component; not verified: STS does that). An expired
/// token is refused here, before STS refuses it with a vaguer message.
pub fn describe(profile_name: &str, handed: HandedToken, runtime: &Runtime) -> Result<AccessToken> {
    // Decoding needs no network: an instance that may reach nothing.
    let mut oidc = Oidc::new(runtime, EgressPolicy::new(Vec::new(), None))?;
    let claims = oidc.claims_if_readable(&handed.token)?;
    let expires_at = claims.as_ref().and_then(|c| c.expires_at);
    if let Some(exp) = expires_at.filter(|&exp| exp <= now()) {
        bail!(
            "profile '{profile_name}': the token from {} expired at {} ({} s ago): the job needs a fresh token",
            handed.source,
            rfc3339(exp),
            now() - exp
        );
    }
    crate::log::verbose(format_args!("{profile_name}: using the token from {}", handed.source));
    Ok(AccessToken {
        access_token: handed.token,
        expires_at,
        issuer: claims.as_ref().and_then(|c| c.issuer.clone()).unwrap_or_default(),
        scope: claims.as_ref().and_then(|c| c.scope.clone()),
        subject: claims.as_ref().and_then(|c| c.subject.clone()),
        audience: claims.map(|c| c.audience).unwrap_or_default(),
        client_id: handed.source,
    })
}
