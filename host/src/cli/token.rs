//! `lakeport token login|get|logout|list`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use super::Output;
use crate::config::{Config, GrantKind};
use crate::oidc::DevicePoll;
use crate::runtime::Runtime;
use crate::store::Store;
use crate::tokens::{explain, forget_cached, read_cached, PassphraseSource, TokenContext};

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// Profile in the configuration (else $LAKEPORT_PROFILE or the only one).
    #[arg(long, short = 'p')]
    pub profile: Option<String>,
    /// Configuration file (else $LAKEPORT_CONFIG or ~/.config/lakeport/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust besides the system store.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Read the token store passphrase from this file (else $LAKEPORT_PASSPHRASE or a prompt).
    #[arg(long, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
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

fn rfc3339(secs: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)).to_string()
}

fn context<'a>(config: &'a Config, args: &ProfileArgs, runtime: &'a Runtime) -> Result<TokenContext<'a>> {
    let (name, profile) = config.profile(args.profile.as_deref())?;
    Ok(TokenContext {
        name,
        profile,
        runtime,
        store: Store::open_default()?,
        passphrase: PassphraseSource { file: args.passphrase_file.clone() },
        ca_file: args.ca_file.clone(),
    })
}

pub fn run(args: TokenArgs, output: Output) -> Result<()> {
    match args.command {
        TokenCommand::Login { profile, no_qr } => login(&profile, no_qr),
        TokenCommand::Get { profile, min_valid } => get(&profile, min_valid, output),
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
    eprintln!("To log in, open {uri}");
    eprintln!("and enter the code: {code}");
    if let Some(complete) = complete {
        eprintln!("(or open {complete})");
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
                match oidc.poll_device_flow(&flow)? {
                    Ok(DevicePoll::Complete(tokens)) => break tokens,
                    Ok(DevicePoll::Pending(secs)) => std::thread::sleep(Duration::from_secs(secs)),
                    Err(e) => {
                        let _ = oidc.drop_device_flow(flow);
                        return Err(match e.oauth_code() {
                            Some("access_denied") => anyhow!("the login was denied at the issuer: run `lakeport token login` to try again"),
                            Some("expired_token") => anyhow!("the code expired before it was approved: run `lakeport token login` again"),
                            _ => explain(e, &ctx.name, "the device flow"),
                        });
                    }
                }
            };
            oidc.drop_device_flow(flow)?;
            let token = ctx.save_login(&mut oidc, &tokens, &passphrase)?;
            let who = oidc.decode_claims(&token.access_token)?.ok().and_then(|c| c.subject).unwrap_or_else(|| "(unknown)".into());
            eprintln!(
                "logged in to {} as {who}; refresh token stored in {}",
                token.issuer,
                ctx.store.path(&ctx.name).display()
            );
            Ok(())
        }
    }
}

fn logout(args: &ProfileArgs) -> Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let runtime = Runtime::new()?;
    let ctx = context(&config, args, &runtime)?;
    let mut revoked = "no refresh token stored";
    if ctx.store.exists(&ctx.name) {
        revoked = "not revoked (no passphrase given)";
        if let Ok(pass) = ctx.passphrase.get(&format!("the token store of profile '{}'", ctx.name)) {
            let secrets = ctx.store.load(&ctx.name, &pass)?;
            if let Some(refresh) = secrets.as_ref().and_then(|s| s.refresh_token.clone()) {
                let mut oidc = ctx.oidc()?;
                let meta = ctx.discover(&mut oidc)?;
                let client = ctx.client(secrets.and_then(|s| s.client_secret).or_else(|| ctx.profile.client_secret.clone()))?;
                revoked = match oidc.revoke(&meta, &client, &refresh, "refresh_token")? {
                    Ok(true) => "revoked at the issuer",
                    Ok(false) => "the issuer offers no revocation",
                    Err(e) => {
                        eprintln!("lakeport: warning: revocation failed: {}", e.message());
                        "revocation failed"
                    }
                };
            }
        }
        ctx.store.remove(&ctx.name)?;
    }
    forget_cached(&ctx.name);
    eprintln!("profile '{}' logged out; refresh token: {revoked}", ctx.name);
    Ok(())
}

fn list(config_path: Option<PathBuf>, output: Output) -> Result<()> {
    let config = Config::load(config_path.as_deref())?;
    let store = Store::open_default()?;
    let mut rows = Vec::new();
    for name in config.profile_names() {
        let (_, profile) = config.profile(Some(name))?;
        let grant = match profile.grant.unwrap_or(GrantKind::Device) {
            GrantKind::Device => "device",
            GrantKind::ClientCredentials => "client_credentials",
            GrantKind::OidcAgent => "oidc-agent",
        };
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
