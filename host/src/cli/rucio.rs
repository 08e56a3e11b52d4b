//! `lakeport rucio`: DIDs, replicas and replication rules through the rucio
//! component, which may reach only the profile's Rucio hosts. The host
//! picks the credentials (userpass, or the profile's OIDC token), caches
//! the session token, and prints.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::profile::{context, ProfileArgs};
use super::Output;
use crate::config::{Config, Profile};
use crate::egress::{AllowedHost, EgressPolicy};
use crate::rucio::{
    cache_token, cached_token, failed, forget_token, Auth, UploadFile, UploadTarget, ClientConfig, Did, DidEntry, DidType, FileReplicas, Rucio, RucioError, Rule, RuleRequest,
    RuleState, UserpassLogin,
};
use crate::runtime::Runtime;
use crate::tokens::TokenContext;

#[derive(Args, Debug)]
pub struct RucioArgs {
    #[command(subcommand)]
    command: RucioCommand,
}

#[derive(Subcommand, Debug)]
enum RucioCommand {
    /// Check a Rucio password (userpass) and keep it in the encrypted token
    /// store, for profiles without rucio_password.
    Login {
        /// Read the password from standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// The account the session acts as.
    Whoami {
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// DIDs of a scope matching a pattern (SCOPE:PATTERN, `*` as wildcard),
    /// or the content of a dataset or container (SCOPE:NAME).
    Ls {
        did: String,
        /// Only DIDs of this type: file, dataset, container, collection or all.
        #[arg(long = "type")]
        did_type: Option<String>,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// A DID's metadata (Rucio's JSON object).
    Meta {
        did: String,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Create a dataset (or with --container a container).
    Add {
        did: String,
        #[arg(long)]
        container: bool,
        /// 3600, 12h, 7d, 2w; without it the DID does not expire.
        #[arg(long)]
        lifetime: Option<String>,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Attach DIDs to a dataset or container.
    Attach {
        collection: String,
        #[arg(required = true)]
        dids: Vec<String>,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Replicas of a file, or of the files of a collection, with their PFNs.
    Replicas {
        did: String,
        /// Only at RSEs matching this expression.
        #[arg(long)]
        rse: Option<String>,
        /// Only PFNs with these schemes (s3, https, root, …); repeatable.
        #[arg(long)]
        scheme: Vec<String>,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Upload files to an RSE and register them, as `rucio upload` does:
    /// replicas registered as COPYING, the bytes stored through the transfer
    /// component at the path Rucio assigns, then the replicas made
    /// AVAILABLE, attached to the dataset, and kept by a rule.
    Upload(UploadArgs),
    /// Replication rules: add, show, list, update, delete.
    Rule {
        #[command(subcommand)]
        command: RuleCommand,
    },
    /// Make a DID available at an RSE: reuse the account's rule for it or
    /// create one; with --wait follow it until OK or STUCK, then print the
    /// replicas' PFNs there (and local paths, with the profile's rse_mounts).
    MakeAvailable {
        did: String,
        #[arg(long)]
        rse: String,
        /// How long the data must stay: 3600, 12h, 7d, 2w.
        #[arg(long, default_value = "7d")]
        lifetime: String,
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this long (e.g. 2h); the rule stays.
        #[arg(long, default_value = "24h")]
        timeout: String,
        /// Seconds between looks at the rule while waiting.
        #[arg(long, default_value_t = 5)]
        poll: u64,
        #[command(flatten)]
        profile: ProfileArgs,
    },
}

#[derive(Args, Debug)]
struct UploadArgs {
    /// Files to upload; each becomes the DID SCOPE:FILE_NAME.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The RSE to upload to (it needs an S3 protocol on the profile's s3_endpoint).
    #[arg(long)]
    rse: String,
    #[arg(long)]
    scope: String,
    /// Attach the files to this dataset (SCOPE:NAME, or a NAME in --scope), created when new.
    #[arg(long)]
    dataset: Option<String>,
    /// How long the rule keeps the files: 3600, 12h, 7d, 2w; without it, for good.
    #[arg(long)]
    lifetime: Option<String>,
    /// No per-file lines.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    profile: ProfileArgs,
}

#[derive(Subcommand, Debug)]
enum RuleCommand {
    /// Create a rule for one or more DIDs.
    Add {
        #[arg(required = true)]
        dids: Vec<String>,
        /// RSE expression where the copies go.
        #[arg(long)]
        rse: String,
        #[arg(long, default_value_t = 1)]
        copies: u32,
        /// 3600, 12h, 7d, 2w; without it the rule does not expire.
        #[arg(long)]
        lifetime: Option<String>,
        /// ALL, DATASET or NONE.
        #[arg(long)]
        grouping: Option<String>,
        /// RSE attribute to weight the choice of RSEs by.
        #[arg(long)]
        weight: Option<String>,
        #[arg(long)]
        activity: Option<String>,
        #[arg(long)]
        comment: Option<String>,
        /// Let the server evaluate the rule later (large collections).
        #[arg(long)]
        asynchronous: bool,
        /// Y, N, C (on close) or P (progress).
        #[arg(long)]
        notify: Option<String>,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// One rule, with its locks.
    Show {
        id: String,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// The rules of a DID, or with --account those of an account.
    List {
        did: Option<String>,
        #[arg(long, conflicts_with = "did")]
        account: Option<String>,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Change a rule's lifetime (`never` for no expiry).
    Update {
        id: String,
        #[arg(long)]
        lifetime: String,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Delete a rule; its replicas stay unless --purge-replicas.
    Delete {
        id: String,
        #[arg(long)]
        purge_replicas: bool,
        #[command(flatten)]
        profile: ProfileArgs,
    },
}

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

/// A command's Rucio side: the profile, where and how to log in, and one
/// rucio component instance (which also parses DIDs and lifetimes). The
/// session opens on the first call.
struct Session<'a> {
    ctx: TokenContext<'a>,
    target: Target,
    rucio: Rucio,
    open: bool,
}

fn session<'a>(config: &'a Config, profile: &ProfileArgs, runtime: &'a Runtime, password: Option<String>) -> Result<Session<'a>> {
    let ctx = context(config, profile, runtime)?;
    let p: &Profile = ctx.profile;
    // The profile's rucio_* keys, else the [client] section of its rucio_cfg.
    let cfg = match &p.rucio_cfg {
        Some(path) => crate::config::rucio_client_section(path)?,
        None => Default::default(),
    };
    let from_cfg = |key: &str| cfg.get(key).filter(|v| !v.is_empty()).cloned();
    let setting = |own: &Option<String>, cfg_key: &str| own.clone().filter(|v| !v.is_empty()).or_else(|| from_cfg(cfg_key));
    let missing = |key: &str| anyhow::anyhow!("profile '{}' has no '{key}': add it to the configuration (or to the [client] section of its rucio_cfg)", ctx.name);
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
    let ca = profile.ca_file.clone().or_else(|| p.ca_file.clone()).or_else(|| from_cfg("ca_cert").map(std::path::PathBuf::from));
    let policy = EgressPolicy::for_secrets(allowed, ca, p.allow_insecure_http).with_context(|| format!("profile '{}'", ctx.name))?;
    let rucio = Rucio::new(runtime, policy)?;
    Ok(Session { target: Target { host, auth_host, account, login }, rucio, open: false, ctx })
}

fn no_password(profile: &str) -> String {
    format!("profile '{profile}': no Rucio password: run `lakeport rucio login`, or set rucio_password or LAKEPORT_RUCIO_PASSWORD")
}

impl Session<'_> {
    fn did(&mut self, text: &str) -> Result<Did> {
        self.rucio.did(text)
    }

    fn lifetime(&mut self, text: &str) -> Result<Option<u64>> {
        self.rucio.lifetime(text)
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
                            self.ctx.store.load(&name, &pass)?.and_then(|s| s.rucio_password).ok_or_else(|| anyhow::anyhow!("{}", no_password(&name)))?
                        }
                    };
                    Auth::Userpass(UserpassLogin { username: username.clone(), password })
                }
            },
        };
        let fresh_login = matches!(auth, Auth::Userpass(_));
        let config = ClientConfig { host: t.host.clone(), auth_host: t.auth_host.clone(), account: t.account.clone(), vo: None, auth, max_attempts: None };
        self.rucio.login(&config)?.map_err(failed)?;
        self.open = true;
        if let (true, Login::Userpass { username, .. }) = (fresh_login, &self.target.login) {
            if let Some(session) = self.rucio.session()? {
                cache_token(&name, &self.target.host, &self.target.account, username, &session);
            }
        }
        Ok(())
    }

    /// Runs `work` in the session; a cached token Rucio no longer accepts
    /// is dropped and the login done again, once.
    fn call<T>(&mut self, work: impl Fn(&mut Rucio, &Target) -> Result<Result<T, RucioError>>) -> Result<T> {
        if !self.open {
            self.open(true)?;
        }
        match work(&mut self.rucio, &self.target)? {
            Err(e) if e.class() == Some("CannotAuthenticate") && matches!(self.target.login, Login::Userpass { .. }) => {
                crate::log::verbose(format_args!("Rucio refused the cached token; logging in again"));
                forget_token(&self.ctx.name);
                self.open(false)?;
                work(&mut self.rucio, &self.target)?.map_err(failed)
            }
            other => other.map_err(failed),
        }
    }
}

fn type_name(t: Option<DidType>) -> &'static str {
    match t {
        Some(DidType::File) => "FILE",
        Some(DidType::Dataset) => "DATASET",
        Some(DidType::Container) => "CONTAINER",
        Some(DidType::Other) | None => "-",
    }
}

fn entry_json(e: &DidEntry) -> Value {
    json!({"scope": e.did.scope, "name": e.did.name, "type": type_name(e.did_type), "bytes": e.bytes, "adler32": e.adler32, "md5": e.md5})
}

fn rule_json(r: &Rule) -> Value {
    json!({
        "id": r.id, "account": r.account, "scope": r.did.scope, "name": r.did.name, "state": r.state.as_str(),
        "rse_expression": r.rse_expression, "copies": r.copies, "expires_at": r.expires_at,
        "locks_ok": r.locks_ok, "locks_replicating": r.locks_replicating, "locks_stuck": r.locks_stuck,
        "grouping": r.grouping, "activity": r.activity, "comment": r.comment, "error": r.error, "created_at": r.created_at,
    })
}

fn replicas_json(f: &FileReplicas) -> Value {
    let rses: serde_json::Map<String, Value> = f.rses.iter().map(|(rse, pfns)| (rse.clone(), json!(pfns))).collect();
    let states: serde_json::Map<String, Value> = f.states.iter().map(|(rse, s)| (rse.clone(), json!(s))).collect();
    json!({"scope": f.did.scope, "name": f.did.name, "bytes": f.bytes, "adler32": f.adler32, "md5": f.md5, "rses": rses, "states": states})
}

/// Prints rows under a header, each column as wide as its widest cell.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    // Cells hold server text: escaped before their widths are measured.
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| crate::log::printable(c).into_owned()).collect()).collect();
    let rows = &rows;
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn print_rules(rules: &[Rule], output: Output) {
    if output == Output::Json {
        println!("{}", Value::Array(rules.iter().map(rule_json).collect()));
        return;
    }
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.account.clone().unwrap_or_default(),
                r.did.to_string(),
                r.state.as_str().to_string(),
                format!("{}/{}/{}", r.locks_ok, r.locks_replicating, r.locks_stuck),
                r.rse_expression.clone(),
                r.copies.to_string(),
                r.expires_at.clone().unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    print_table(&["ID", "ACCOUNT", "DID", "STATE", "OK/REPL/STUCK", "RSE_EXPRESSION", "COPIES", "EXPIRES"], &rows);
}

fn print_rule(r: &Rule, output: Output) {
    if output == Output::Json {
        println!("{}", rule_json(r));
        return;
    }
    let fields = [
        ("id", r.id.clone()),
        ("account", r.account.clone().unwrap_or_default()),
        ("did", r.did.to_string()),
        ("state", r.state.as_str().to_string()),
        ("locks", format!("{} OK, {} replicating, {} stuck", r.locks_ok, r.locks_replicating, r.locks_stuck)),
        ("rse_expression", r.rse_expression.clone()),
        ("copies", r.copies.to_string()),
        ("grouping", r.grouping.clone().unwrap_or_default()),
        ("expires_at", r.expires_at.clone().unwrap_or_else(|| "never".into())),
        ("created_at", r.created_at.clone().unwrap_or_default()),
        ("activity", r.activity.clone().unwrap_or_default()),
        ("comment", r.comment.clone().unwrap_or_default()),
        ("error", r.error.clone().unwrap_or_default()),
    ];
    for (name, value) in fields {
        if !value.is_empty() {
            println!("{name:<15} {value}");
        }
    }
}

/// Local paths for PFNs, from the profile's `rse_mounts`: for each RSE a
/// `pfn_prefix` and the `path` it is mounted at on this machine.
fn local_path(profile: &Profile, rse: &str, pfn: &str) -> Option<String> {
    let mount = profile.rse_mounts.as_ref()?.get(rse)?.as_table()?;
    let prefix = mount.get("pfn_prefix")?.as_str()?;
    let path = mount.get("path")?.as_str()?;
    let rest = pfn.strip_prefix(prefix)?;
    Some(format!("{}/{}", path.trim_end_matches('/'), rest.trim_start_matches('/')))
}

impl RucioCommand {
    fn profile(&self) -> &ProfileArgs {
        match self {
            RucioCommand::Login { profile, .. }
            | RucioCommand::Whoami { profile }
            | RucioCommand::Ls { profile, .. }
            | RucioCommand::Meta { profile, .. }
            | RucioCommand::Add { profile, .. }
            | RucioCommand::Attach { profile, .. }
            | RucioCommand::Replicas { profile, .. }
            | RucioCommand::MakeAvailable { profile, .. } => profile,
            RucioCommand::Upload(args) => &args.profile,
            RucioCommand::Rule { command } => match command {
                RuleCommand::Add { profile, .. }
                | RuleCommand::Show { profile, .. }
                | RuleCommand::List { profile, .. }
                | RuleCommand::Update { profile, .. }
                | RuleCommand::Delete { profile, .. } => profile,
            },
        }
    }
}

pub fn run(args: RucioArgs, output: Output) -> Result<()> {
    let runtime = Runtime::new()?;
    let profile = args.command.profile().clone();
    let config = Config::load(profile.config.as_deref())?;
    if let RucioCommand::Login { password_stdin, .. } = args.command {
        return login(&config, &profile, &runtime, password_stdin, output);
    }
    let mut s = session(&config, &profile, &runtime, None)?;
    match args.command {
        RucioCommand::Login { .. } => unreachable!("handled above"),
        RucioCommand::Whoami { .. } => {
            let who = s.call(|r, _| r.whoami())?;
            if output == Output::Json {
                println!("{}", json!({"account": who.account, "account_type": who.account_type, "status": who.status, "email": who.email}));
            } else {
                println!("account  {}", who.account);
                for (name, value) in [("type", &who.account_type), ("status", &who.status), ("email", &who.email)] {
                    if let Some(v) = value {
                        println!("{name:<8} {v}");
                    }
                }
            }
            Ok(())
        }
        RucioCommand::Ls { did: text, did_type, .. } => {
            let Did { scope, name } = s.did(&text)?;
            let pattern = name.contains('*');
            let entries = s.call(|r, _| {
                if pattern {
                    let mut filters = vec![("name".to_string(), name.clone())];
                    if let Some(t) = &did_type {
                        filters.push(("type".to_string(), t.to_ascii_lowercase()));
                    }
                    return r.search_dids(&scope, &filters);
                }
                let did = Did { scope: scope.clone(), name: name.clone() };
                Ok(match r.get_did(&did)? {
                    Ok(e) if matches!(e.did_type, Some(DidType::Dataset | DidType::Container)) => r.list_content(&did)?,
                    other => other.map(|e| vec![e]),
                })
            })?;
            if output == Output::Json {
                println!("{}", Value::Array(entries.iter().map(entry_json).collect()));
            } else {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| vec![e.did.to_string(), type_name(e.did_type).to_string(), e.bytes.map(|b| b.to_string()).unwrap_or_default()])
                    .collect();
                print_table(&["DID", "TYPE", "BYTES"], &rows);
            }
            Ok(())
        }
        RucioCommand::Replicas { did: text, rse, scheme, .. } => {
            let d = s.did(&text)?;
            let files = s.call(|r, _| r.list_replicas(std::slice::from_ref(&d), &scheme, rse.as_deref(), false))?;
            if output == Output::Json {
                println!("{}", Value::Array(files.iter().map(replicas_json).collect()));
            } else {
                let mut rows = Vec::new();
                for f in &files {
                    for (rse, pfns) in &f.rses {
                        for pfn in pfns {
                            rows.push(vec![f.did.to_string(), rse.clone(), pfn.clone()]);
                        }
                    }
                }
                print_table(&["DID", "RSE", "PFN"], &rows);
            }
            Ok(())
        }
        RucioCommand::Meta { did: text, .. } => {
            let d = s.did(&text)?;
            let meta = s.call(|r, _| r.get_metadata(&d))?;
            let value: Value = serde_json::from_str(&meta).context("the component's metadata is not JSON")?;
            if output == Output::Json {
                println!("{value}");
            } else if let Value::Object(map) = value {
                for (key, v) in map {
                    let shown = match v {
                        Value::String(s) => s,
                        Value::Null => "-".into(),
                        other => other.to_string(),
                    };
                    println!("{key:<20} {shown}");
                }
            }
            Ok(())
        }
        RucioCommand::Add { did: text, container, lifetime: life, .. } => {
            let d = s.did(&text)?;
            let life = life.as_deref().map(|l| s.lifetime(l)).transpose()?.flatten();
            s.call(|r, _| r.add_collection(&d, container, life))?;
            let kind = if container { "container" } else { "dataset" };
            if output == Output::Json {
                println!("{}", json!({"added": d.to_string(), "type": kind}));
            } else {
                println!("added {kind} {d}");
            }
            Ok(())
        }
        RucioCommand::Attach { collection, dids, .. } => {
            let c = s.did(&collection)?;
            let dids = dids.iter().map(|t| s.did(t)).collect::<Result<Vec<_>>>()?;
            s.call(|r, _| r.attach(&c, &dids))?;
            if output == Output::Json {
                println!("{}", json!({"attached": dids.iter().map(|d| d.to_string()).collect::<Vec<_>>(), "to": c.to_string()}));
            } else {
                println!("attached {} DID(s) to {c}", dids.len());
            }
            Ok(())
        }
        RucioCommand::Rule { command } => run_rule(&mut s, command, output),
        RucioCommand::Upload(args) => upload(&mut s, args, output),
        RucioCommand::MakeAvailable { did: text, rse, lifetime: life, wait, timeout, poll, .. } => {
            let d = s.did(&text)?;
            let life = s.lifetime(&life)?;
            let timeout = Duration::from_secs(s.lifetime(&timeout)?.unwrap_or(u64::MAX / 4));
            make_available(&mut s, &d, &rse, life, wait.then_some((timeout, Duration::from_secs(poll.max(1)))), output)
        }
    }
}

fn run_rule(s: &mut Session, command: RuleCommand, output: Output) -> Result<()> {
    match command {
        RuleCommand::Add { dids, rse, copies, lifetime: life, grouping, weight, activity, comment, asynchronous, notify, .. } => {
            let dids = dids.iter().map(|t| s.did(t)).collect::<Result<Vec<_>>>()?;
            let request = RuleRequest {
                dids,
                copies,
                rse_expression: rse,
                lifetime: life.as_deref().map(|l| s.lifetime(l)).transpose()?.flatten(),
                grouping: grouping.map(|g| g.to_ascii_uppercase()),
                weight,
                activity,
                comment,
                asynchronous,
                notify: notify.map(|n| n.to_ascii_uppercase()),
            };
            let ids = s.call(|r, _| r.add_rule(&request))?;
            if output == Output::Json {
                println!("{}", json!(ids));
            } else {
                for id in ids {
                    println!("{id}");
                }
            }
            Ok(())
        }
        RuleCommand::Show { id, .. } => {
            let rule = s.call(|r, _| r.get_rule(&id))?;
            print_rule(&rule, output);
            Ok(())
        }
        RuleCommand::List { did: text, account, .. } => {
            let d = text.as_deref().map(|t| s.did(t)).transpose()?;
            let rules = s.call(|r, t| match (&d, &account) {
                (Some(d), _) => r.did_rules(d),
                (None, Some(a)) => r.account_rules(a),
                (None, None) => r.account_rules(&t.account),
            })?;
            print_rules(&rules, output);
            Ok(())
        }
        RuleCommand::Update { id, lifetime: life, .. } => {
            let life = s.lifetime(&life)?;
            let rule = s.call(|r, _| {
                if let Err(e) = r.update_rule_lifetime(&id, life)? {
                    return Ok(Err(e));
                }
                r.get_rule(&id)
            })?;
            print_rule(&rule, output);
            Ok(())
        }
        RuleCommand::Delete { id, purge_replicas, .. } => {
            s.call(|r, _| r.delete_rule(&id, purge_replicas))?;
            if output == Output::Json {
                println!("{}", json!({"deleted": id}));
            } else {
                println!("deleted rule {id}");
            }
            Ok(())
        }
    }
}

fn make_available(s: &mut Session, d: &Did, rse: &str, life: Option<u64>, wait: Option<(Duration, Duration)>, output: Output) -> Result<()> {
    let prof = s.ctx.profile;
    let outcome = s.call(|r, _| {
        let made = match r.make_available(d, rse, life)? {
            Ok(made) => made,
            Err(e) => return Ok(Err(e)),
        };
        let mut rule = made.rule.clone();
        if let Some((timeout, poll)) = wait {
            let started = Instant::now();
            let mut last = None;
            while !matches!(rule.state, RuleState::Ok | RuleState::Stuck | RuleState::Suspended) {
                let now = (rule.state, rule.locks_ok, rule.locks_replicating, rule.locks_stuck);
                if last != Some(now) {
                    eprintln!(
                        "lakeport: rule {} {}: {} OK, {} replicating, {} stuck",
                        rule.id,
                        rule.state.as_str(),
                        rule.locks_ok,
                        rule.locks_replicating,
                        rule.locks_stuck
                    );
                    last = Some(now);
                }
                if started.elapsed() >= timeout {
                    return Ok(Err(RucioError::Transport(format!(
                        "rule {} is still {} after the --timeout; it stays, run the command again to go on waiting",
                        rule.id,
                        rule.state.as_str()
                    ))));
                }
                std::thread::sleep(poll);
                rule = match r.get_rule(&rule.id)? {
                    Ok(rule) => rule,
                    Err(e) => return Ok(Err(e)),
                };
            }
        }
        let replicas = if rule.state == RuleState::Ok { r.list_replicas(std::slice::from_ref(d), &[], Some(rse), false)? } else { Ok(Vec::new()) };
        Ok(replicas.map(|files| (made.created, rule, files)))
    })?;
    let (created, rule, files) = outcome;
    if rule.state == RuleState::Stuck && wait.is_some() {
        bail!("rule {} for {d} at {rse} is STUCK ({} OK, {} stuck): {}", rule.id, rule.locks_ok, rule.locks_stuck, rule.error.clone().unwrap_or_else(|| "Rucio gave no reason".into()));
    }
    let mut placed = Vec::new();
    for f in &files {
        for (rse_name, pfns) in &f.rses {
            for pfn in pfns {
                placed.push((f.did.to_string(), rse_name.clone(), pfn.clone(), local_path(prof, rse_name, pfn)));
            }
        }
    }
    if output == Output::Json {
        let replicas: Vec<Value> = placed.iter().map(|(d, r, p, l)| json!({"did": d, "rse": r, "pfn": p, "path": l})).collect();
        println!("{}", json!({"created": created, "rule": rule_json(&rule), "replicas": replicas}));
        return Ok(());
    }
    println!("rule {} ({}): {} at {rse}", rule.id, if created { "created" } else { "existing" }, rule.state.as_str());
    for (d, rse_name, pfn, local) in placed {
        match local {
            Some(path) => println!("{d}  {rse_name}  {pfn}  {path}"),
            None => println!("{d}  {rse_name}  {pfn}"),
        }
    }
    Ok(())
}

/// Size, adler32 and MD5 (lowercase hex) of a file, in one pass.
fn checksums(path: &Path) -> Result<(u64, String, String)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (mut a, mut b) = (1u32, 0u32);
    let mut md5 = md5_many::Md5State::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        md5.update(&buf[..n]);
        // Adler-32 (RFC 1950): 5552 bytes is the most before the sums can overflow.
        for chunk in buf[..n].chunks(5552) {
            for &byte in chunk {
                a += u32::from(byte);
                b += a;
            }
            a %= 65_521;
            b %= 65_521;
        }
        size += n as u64;
    }
    let md5: String = md5.finalize().iter().map(|x| format!("{x:02x}")).collect();
    Ok((size, format!("{:08x}", (b << 16) | a), md5))
}

/// What became of one file of an upload.
struct Uploaded {
    path: PathBuf,
    file: UploadFile,
    /// The file as it was when its checksums were taken.
    state: FileState,
    target: Option<UploadTarget>,
    error: Option<String>,
}

/// What changes when a file's bytes change: size, modification and change
/// times, and which file it is.
#[derive(PartialEq, Eq)]
struct FileState {
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
    inode: (u64, u64),
}

impl FileState {
    fn of(path: &Path) -> Result<FileState> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !m.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        Ok(FileState { len: m.len(), modified: (m.mtime(), m.mtime_nsec()), changed: (m.ctime(), m.ctime_nsec()), inode: (m.dev(), m.ino()) })
    }
}

/// Why an uploaded file must not be registered with the checksums taken
/// before: it changed since, or the server stored other bytes than those
/// checksummed. Rucio would then vouch for an adler32 and MD5 the replica
/// does not have.
fn changed_since_checksummed(item: &Uploaded, sent: &crate::transfer::UploadResult) -> Option<String> {
    let changed = "changed while it was being uploaded: its checksums no longer describe the bytes sent, so it is not registered as available (run the upload again once the file no longer changes)";
    if FileState::of(&item.path).ok().as_ref() != Some(&item.state) || sent.size != item.file.bytes {
        return Some(changed.into());
    }
    // A single PUT's ETag is the MD5 of the bytes the server stored.
    let etag = sent.etag.trim_matches('"');
    let plain_md5 = sent.parts == 0 && etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
    (plain_md5 && !etag.eq_ignore_ascii_case(&item.file.md5)).then(|| changed.into())
}

fn upload(s: &mut Session, args: UploadArgs, output: Output) -> Result<()> {
    let dataset = match &args.dataset {
        Some(d) if d.contains(':') => Some(s.did(d)?),
        Some(d) => Some(s.did(&format!("{}:{d}", args.scope))?),
        None => None,
    };
    let lifetime = args.lifetime.as_deref().map(|l| s.lifetime(l)).transpose()?.flatten();
    let mut items = Vec::new();
    for path in &args.files {
        let state = FileState::of(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(|| anyhow::anyhow!("{} has no file name", path.display()))?;
        let did = s.did(&format!("{}:{name}", args.scope))?;
        if items.iter().any(|u: &Uploaded| u.file.did.name == did.name) {
            bail!("two files are named {name}: each becomes the DID {}:{name}", args.scope);
        }
        let (bytes, adler32, md5) = checksums(path)?;
        if FileState::of(path)? != state || bytes != state.len {
            bail!("{} changed while its checksums were computed: upload it once it no longer changes", path.display());
        }
        items.push(Uploaded { path: path.clone(), file: UploadFile { did, bytes, adler32, md5 }, state, target: None, error: None });
    }

    // The S3 side: the profile's endpoint and credentials.
    let ctx = &s.ctx;
    let endpoint = ctx.profile.require("s3_endpoint", &ctx.profile.s3_endpoint, &ctx.name)?.trim_end_matches('/').to_string();
    let (endpoint_scheme, endpoint_authority) = endpoint.split_once("://").unwrap_or(("", ""));
    let mut transfer = super::s3::transfer_for(ctx, args.profile.ca_file.clone(), &[], None, None)?;
    let quiet = args.quiet || output == Output::Json;

    // Each Rucio step is its own call: a refused session token re-runs
    // only the step it refused, never the S3 transfers between them.
    let files: Vec<UploadFile> = items.iter().map(|u| u.file.clone()).collect();
    let targets = s.call(|r, _| r.begin_upload(&args.rse, &files, dataset.as_ref(), lifetime))?;
    let mut done = Vec::new();
    {
        // Every file Rucio puts on the profile's endpoint, `concurrency` at
        // once per bucket through the transfer component.
        let mut by_bucket: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for (i, (item, target)) in items.iter_mut().zip(targets).enumerate() {
            let elsewhere = target.authority != endpoint_authority || (target.scheme != "s3" && target.scheme != endpoint_scheme);
            if elsewhere {
                item.error = Some(format!(
                    "Rucio puts it at {}, not on the profile's s3_endpoint {endpoint}: set s3_endpoint to the RSE's S3 endpoint",
                    target.pfn
                ));
            } else {
                by_bucket.entry(target.bucket.clone()).or_default().push(i);
            }
            item.target = Some(target);
        }
        let options = crate::transfer::UploadOptions { content_type: None, resume: false, resume_upload_id: None, keep_on_failure: false };
        for (bucket, indexes) in by_bucket {
            let mut batch = Vec::with_capacity(indexes.len());
            for &i in &indexes {
                let item = &items[i];
                let source = crate::transfer::FileSource::file(&item.path, crate::progress::Progress::new(Some(item.file.bytes)))?;
                batch.push((source, item.target.as_ref().expect("set above").key.clone()));
            }
            let outcomes = transfer.put_many(batch, &bucket, &options)?;
            for (i, outcome) in indexes.into_iter().zip(outcomes) {
                let item = &mut items[i];
                match outcome {
                    crate::transfer::BatchOutcome::Failed((_, e)) => item.error = Some(e.message()),
                    crate::transfer::BatchOutcome::Uploaded(sent) => match changed_since_checksummed(item, &sent) {
                        Some(why) => item.error = Some(why),
                        None => {
                            if !quiet {
                                eprintln!("lakeport: uploaded {} to {}", item.path.display(), item.target.as_ref().map_or("", |t| t.pfn.as_str()));
                            }
                            done.push(item.file.did.clone());
                        }
                    },
                    crate::transfer::BatchOutcome::Downloaded(_) => item.error = Some("the transfer component answered an upload with a download".into()),
                }
            }
        }
    }
    let rules = s.call(|r, _| r.finish_upload(&args.rse, &done, dataset.as_ref(), lifetime))?;

    let failed: Vec<&Uploaded> = items.iter().filter(|u| u.error.is_some()).collect();
    if output == Output::Json {
        let files: Vec<Value> = items
            .iter()
            .map(|u| {
                json!({
                    "path": u.path, "scope": u.file.did.scope, "name": u.file.did.name, "bytes": u.file.bytes,
                    "adler32": u.file.adler32, "md5": u.file.md5, "pfn": u.target.as_ref().map(|t| &t.pfn),
                    "uploaded": u.error.is_none(), "error": u.error,
                })
            })
            .collect();
        println!("{}", json!({"files": files, "rules": rules.iter().map(rule_json).collect::<Vec<_>>()}));
    } else {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|u| vec![u.file.did.to_string(), u.file.bytes.to_string(), u.file.adler32.clone(), if u.error.is_none() { "AVAILABLE".into() } else { "FAILED".into() }])
            .collect();
        print_table(&["DID", "BYTES", "ADLER32", "REPLICA"], &rows);
        if !rules.is_empty() {
            println!();
            print_rules(&rules, output);
        }
    }
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(|u| format!("{}: {}", u.path.display(), u.error.as_deref().unwrap_or_default())).collect();
        bail!(
            "{} of {} files were not uploaded, and are not registered as available at {} (their replicas stay COPYING; run the same upload again):\n  {}",
            failed.len(),
            items.len(),
            args.rse,
            list.join("\n  ")
        );
    }
    Ok(())
}

fn login(config: &Config, profile: &ProfileArgs, rt: &Runtime, password_stdin: bool, output: Output) -> Result<()> {
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password("lakeport: Rucio password: ").context("reading the password")?
    } else {
        bail!("no terminal to ask the Rucio password on: pass --password-stdin and write it to standard input");
    };
    if password.is_empty() {
        bail!("an empty password is not a Rucio password");
    }
    let mut s = session(config, profile, rt, Some(password.clone()))?;
    let Login::Userpass { username, .. } = &s.target.login else { bail!("profile '{}' does not log in to Rucio with userpass", s.ctx.name) };
    let username = username.clone();
    // Only a password Rucio accepts is kept.
    forget_token(&s.ctx.name);
    s.open(false)?;
    let who = s.rucio.whoami()?.map_err(failed)?;
    let ctx = &s.ctx;
    let passphrase = ctx.passphrase.get(&format!("the token store of profile '{}'", ctx.name))?;
    // A refresh between the load and the save would lose its rotated token.
    let lock = ctx.lock_tokens()?;
    let mut secrets = ctx.store.load(&ctx.name, &passphrase)?.unwrap_or_default();
    secrets.rucio_password = Some(password);
    ctx.store.save(&ctx.name, &passphrase, &secrets)?;
    drop(lock);
    if output == Output::Json {
        println!("{}", json!({"account": who.account, "username": username, "stored": true}));
    } else {
        println!("Rucio accepted {username} as account {}; the password is kept in the encrypted token store", who.account);
    }
    Ok(())
}
