//! `lakeport token login|get|status|logout|list`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use super::profile::{context, ProfileArgs};
use super::Output;
use crate::config::{Config, GrantKind};
use crate::instance::{CallError, ComponentError};
use crate::oidc::{DevicePoll, OidcError};
use crate::runtime::Runtime;
use crate::store::Store;
use crate::tokens::{explain, forget_cached, read_cached, rfc3339, TokenContext};

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Log in with the device flow and store the refresh token (encrypted).
    Login {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Do not draw a QR code of the login URL.
        #[arg(long)]
        no_qr: bool,
    },
    /// Print a valid access token (refreshing as needed).
    Get {
        #[command(flatten)]
        profile: ProfileArgs,
        /// The token must stay valid at least this long.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        min_valid: i64,
    },
    /// Access and refresh token expiry; non-zero exit when the refresh token
    /// is gone or expires within --warn-days.
    Status {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Warn (exit non-zero) when the refresh token expires within this many days.
        #[arg(long, value_name = "N", default_value_t = 7)]
        warn_days: u32,
        /// Ping this healthchecks.io-style URL: URL on success, URL/fail otherwise.
        #[arg(long, value_name = "URL")]
        ping: Option<String>,
    },
    /// Revoke the refresh token where the issuer allows it and forget it.
    Logout {
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// List the profiles and their token state.
    List {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(args: TokenArgs, output: Output) -> Result<()> {
    match args.command {
        TokenCommand::Login { profile, no_qr } => login(&profile, no_qr),
        TokenCommand::Get { profile, min_valid } => get(&profile, min_valid, output),
        TokenCommand::Status { profile, warn_days, ping } => status(&profile, warn_days, ping.as_deref(), output),
        TokenCommand::Logout { profile } => logout(&profile),
        TokenCommand::List { config } => list(config, output),
    }
}

fn get(args: &ProfileArgs, min_valid: i64, output: Output) -> Result<()> {
    if min_valid < 0 {
        bail!("--min-valid must not be negative");
    }
    let config = Config::load(args.config.as_deref())?;
    // Runtime creation is cheap; the component is only loaded on a cache miss.
    let runtime = Runtime::new()?;
    let ctx = context(&config, args, &runtime)?;
    let token = ctx.access_token(min_valid)?;
    match output {
        Output::Text => println!("{}", token.access_token),
        Output::Json => println!(
            "{}",
            json!({
                "access_token": token.access_token,
                "expires_at": token.expires_at.map(rfc3339),
                "issuer": token.issuer,
                "scope": token.scope,
                "audience": token.audience,
            })
        ),
    }
    Ok(())
}

fn show_login_prompt(uri: &str, code: &str, complete: Option<&str>, expires_in: u64, no_qr: bool) {
    eprintln!("To log in, open {}", crate::log::printable(uri));
    eprintln!("and enter the code: {}", crate::log::printable(code));
    if let Some(complete) = complete {
        eprintln!("(or open {})", crate::log::printable(complete));
        if !no_qr && std::io::stderr().is_terminal() {
            if let Ok(qr) = qrcode::QrCode::new(complete.as_bytes()) {
                eprintln!("{}", qr.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build());
            }
        }
    }
    eprintln!("Waiting for the approval (the code expires in {} min)...", expires_in.div_ceil(60));
}

fn login(args: &ProfileArgs, no_qr: bool) -> Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let runtime = Runtime::new()?;
    let ctx = context(&config, args, &runtime)?;
    match ctx.profile.grant.unwrap_or(GrantKind::Device) {
        GrantKind::OidcAgent => bail!(
            "profile '{}' takes its tokens from oidc-agent: log in there (oidc-gen / oidc-add); `lakeport token get` asks the agent",
            ctx.name
        ),
        kind @ (GrantKind::Token | GrantKind::GithubActions) => bail!(
            "profile '{}' (grant = \"{}\") uses the token its job is given: there is nothing to log in to; `lakeport token get` shows it",
            ctx.name,
            kind.name()
        ),
        GrantKind::ClientCredentials => {
            forget_cached(&ctx.name);
            let token = ctx.access_token(0)?;
            eprintln!(
                "profile '{}': client credentials accepted by {}; access token valid until {}",
                ctx.name,
                token.issuer,
                token.expires_at.map_or("(unknown)".into(), rfc3339)
            );
            Ok(())
        }
        GrantKind::Device => {
            // Ask first: nobody wants a passphrase prompt after the browser step.
            let passphrase = ctx.passphrase.get(&format!("the token store of profile '{}'", ctx.name))?;
            if ctx.store.exists(&ctx.name) {
                // Opening the existing store checks the passphrase before the user logs in.
                ctx.store.load(&ctx.name, &passphrase)?;
            }
            let mut oidc = ctx.oidc()?;
            let meta = ctx.discover(&mut oidc)?;
            let client = ctx.client(ctx.profile.client_secret.clone())?;
            let (flow, auth) = oidc.start_device_flow(&meta, &client)?;
            let auth = auth.map_err(|e| explain(e, &ctx.name, "starting the device flow"))?;
            show_login_prompt(&auth.verification_uri, &auth.user_code, auth.verification_uri_complete.as_deref(), auth.expires_in, no_qr);
            let tokens = loop {
                match oidc.poll_device_flow(&flow) {
                    Ok(DevicePoll::Complete(tokens)) => break tokens,
                    Ok(DevicePoll::Pending(secs)) => std::thread::sleep(Duration::from_secs(secs)),
                    Err(CallError::Stopped(e)) => return Err(e),
                    Err(e) => {
                        let _ = oidc.drop_device_flow(flow);
                        return Err(match e.refusal().and_then(OidcError::oauth_code) {
                            Some("access_denied") => anyhow!("the login was denied at the issuer: run `lakeport token login` to try again"),
                            Some("expired_token") => anyhow!("the code expired before it was approved: run `lakeport token login` again"),
                            _ => explain(e, &ctx.name, "the device flow"),
                        });
                    }
                }
            };
            oidc.drop_device_flow(flow)?;
            let token = ctx.save_login(&mut oidc, &tokens, &passphrase)?;
            let who = oidc.claims_if_readable(&token.access_token)?.and_then(|c| c.subject).unwrap_or_else(|| "(unknown)".into());
            eprintln!(
                "logged in to {} as {who}; refresh token stored in {}",
                token.issuer,
                ctx.store.path(&ctx.name).display()
            );
            Ok(())
        }
    }
}

fn in_days(at: i64) -> String {
    let left = at - crate::tokens::now();
    if left < 0 {
        "expired".into()
    } else if left < 86_400 {
        format!("in {} h", left / 3600)
    } else {
        format!("in {} days", left / 86_400)
    }
}

/// What `status` found: `problem` is why it exits non-zero.
struct Status {
    grant: &'static str,
    issuer: Option<String>,
    access_expires_at: Option<i64>,
    refresh_stored: bool,
    refresh_expires_at: Option<i64>,
    problem: Option<String>,
}

fn check_status(ctx: &TokenContext<'_>, warn_days: u32) -> Result<Status> {
    let cached = read_cached(&ctx.name).and_then(|t| t.expires_at).filter(|&e| e > crate::tokens::now());
    let mut status = Status { grant: "device", issuer: ctx.profile.issuer.clone(), access_expires_at: cached, refresh_stored: false, refresh_expires_at: None, problem: None };
    match ctx.profile.grant.unwrap_or(GrantKind::Device) {
        GrantKind::Device => {
            let info = ctx.store.info(&ctx.name)?;
            status.refresh_stored = info.is_some();
            status.refresh_expires_at = info.as_ref().and_then(|i| i.refresh_expires_at);
            let login = format!("run `lakeport token login --profile {}`", ctx.name);
            status.problem = match (&info, status.refresh_expires_at) {
                (None, _) => Some(format!("profile '{}' has no refresh token: {login}", ctx.name)),
                (Some(_), Some(exp)) if exp - crate::tokens::now() < i64::from(warn_days) * 86_400 => Some(format!(
                    "the refresh token of profile '{}' expires {} ({}): {login}",
                    ctx.name,
                    in_days(exp),
                    rfc3339(exp)
                )),
                _ => None,
            };
        }
        // No refresh token to expire: healthy when a token can be had now.
        kind => {
            status.grant = kind.name();
            match ctx.access_token(60) {
                Ok(token) => {
                    status.access_expires_at = token.expires_at;
                    status.issuer = Some(token.issuer);
                }
                Err(e) => status.problem = Some(format!("{e:#}")),
            }
        }
    }
    Ok(status)
}

fn status(args: &ProfileArgs, warn_days: u32, ping: Option<&str>, output: Output) -> Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let runtime = Runtime::new()?;
    let ctx = context(&config, args, &runtime)?;
    let checked = check_status(&ctx, warn_days);
    if let Some(url) = ping {
        let healthy = matches!(&checked, Ok(s) if s.problem.is_none());
        let target = if healthy { url.to_string() } else { format!("{}/fail", url.trim_end_matches('/')) };
        let ca = ctx.ca_file();
        // Ping URLs carry the check's key (healthchecks.io: a UUID): only
        // the host goes into messages.
        let host = target.parse::<http::Uri>().ok().and_then(|u| u.authority().map(|a| a.to_string())).unwrap_or_default();
        let kind = if healthy { "success" } else { "failure" };
        match crate::egress::ping(&target, ca.as_deref()) {
            Ok(code) if (200..300).contains(&code) => crate::log::verbose(format_args!("sent the {kind} ping to {host}: HTTP {code}")),
            Ok(code) => eprintln!("lakeport: warning: the {kind} ping to {host} answered HTTP {code}"),
            Err(e) => eprintln!("lakeport: warning: {e:#}"),
        }
    }
    let status = checked?;
    match output {
        Output::Json => println!(
            "{}",
            json!({
                "profile": ctx.name,
                "grant": status.grant,
                "issuer": status.issuer,
                "access_token_expires_at": status.access_expires_at.map(rfc3339),
                "refresh_token_stored": status.refresh_stored,
                "refresh_token_expires_at": status.refresh_expires_at.map(rfc3339),
                "ok": status.problem.is_none(),
                "problem": status.problem,
            })
        ),
        Output::Text => {
            println!("profile:        {} ({})", ctx.name, status.grant);
            println!("issuer:         {}", status.issuer.as_deref().unwrap_or("-"));
            let access = status.access_expires_at.map_or("none cached".into(), |e| format!("valid until {} ({})", rfc3339(e), in_days(e)));
            println!("access token:   {access}");
            if status.grant == "device" {
                let refresh = match (status.refresh_stored, status.refresh_expires_at) {
                    (false, _) => "none stored".to_string(),
                    (true, Some(e)) => format!("expires {} ({})", rfc3339(e), in_days(e)),
                    (true, None) => "stored; expiry unknown (set refresh_token_days in the profile)".to_string(),
                };
                println!("refresh token:  {refresh}");
            }
        }
    }
    match status.problem {
        Some(problem) => Err(anyhow!(problem)),
        None => Ok(()),
    }
}

fn logout(args: &ProfileArgs) -> Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let runtime = Runtime::new()?;
    let ctx = context(&config, args, &runtime)?;
    let mut revoked = "no refresh token stored";
    if ctx.store.exists(&ctx.name) {
        revoked = "not revoked (no passphrase given)";
        let pass = ctx.passphrase.get(&format!("the token store of profile '{}'", ctx.name));
        // No refresh may store a rotated token between revocation and removal.
        let _lock = ctx.lock_tokens()?;
        if let Ok(pass) = pass {
            let secrets = ctx.store.load(&ctx.name, &pass)?;
            if let Some(refresh) = secrets.as_ref().and_then(|s| s.refresh_token.clone()) {
                let mut oidc = ctx.oidc()?;
                let meta = ctx.discover(&mut oidc)?;
                let client = ctx.client(secrets.and_then(|s| s.client_secret).or_else(|| ctx.profile.client_secret.clone()))?;
                revoked = match oidc.revoke(&meta, &client, &refresh, "refresh_token") {
                    Ok(true) => "revoked at the issuer",
                    Ok(false) => "the issuer offers no revocation",
                    Err(CallError::Stopped(e)) => return Err(e),
                    Err(CallError::Refused(e)) => {
                        eprintln!("lakeport: warning: revocation failed: {}", e.message());
                        "revocation failed"
                    }
                };
            }
        }
        ctx.store.remove(&ctx.name)?;
    }
    // Nothing obtained with the login outlives it: access token, S3 keys.
    forget_cached(&ctx.name);
    crate::creds::forget_cached(&ctx.name);
    eprintln!("profile '{}' logged out; refresh token: {revoked}", ctx.name);
    Ok(())
}

fn list(config_path: Option<PathBuf>, output: Output) -> Result<()> {
    let config = Config::load(config_path.as_deref())?;
    let store = Store::open_default()?;
    let mut rows = Vec::new();
    for name in config.profile_names() {
        let (_, profile) = config.profile(Some(name))?;
        let grant = profile.grant.unwrap_or(GrantKind::Device).name();
        let cached = read_cached(name).and_then(|t| t.expires_at).filter(|&e| e > crate::tokens::now());
        rows.push((name.to_string(), grant, profile.issuer.clone().unwrap_or_default(), store.exists(name), cached));
    }
    match output {
        Output::Json => {
            let doc: Vec<_> = rows
                .iter()
                .map(|(n, g, i, stored, cached)| json!({"profile": n, "grant": g, "issuer": i, "refresh_token_stored": stored, "access_token_expires_at": cached.map(rfc3339)}))
                .collect();
            println!("{}", serde_json::Value::Array(doc));
        }
        Output::Text => {
            println!("{:<16} {:<19} {:<8} {:<22} issuer", "profile", "grant", "stored", "access token until");
            for (n, g, i, stored, cached) in &rows {
                println!("{n:<16} {g:<19} {:<8} {:<22} {i}", if *stored { "yes" } else { "no" }, cached.map_or("-".into(), rfc3339));
            }
        }
    }
    Ok(())
}
