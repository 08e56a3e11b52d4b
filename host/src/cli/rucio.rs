//! `lakeport rucio`: DIDs, replicas and replication rules through the rucio
//! component, which may reach only the profile's Rucio hosts. The session
//! (credentials, cached token), uploads and make-available are
//! [`crate::rucio`]'s; this module parses arguments and prints.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::profile::{context, ProfileArgs};
use super::Output;
use crate::config::Config;
use crate::rucio::availability::{make_available, AvailabilityOptions};
use crate::rucio::session::Session;
use crate::rucio::upload::UploadOptions;
use crate::rucio::{DidEntry, DidType, FileReplicas, Grouping, Notify, Rule, RuleRequest};
use crate::runtime::Runtime;

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
        #[arg(long, value_parser = parse_grouping)]
        grouping: Option<Grouping>,
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
        #[arg(long, value_parser = parse_notify)]
        notify: Option<Notify>,
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
    let mut s = Session::new(context(&config, &profile, &runtime)?, None)?;
    match args.command {
        RucioCommand::Login { .. } => unreachable!("handled above"),
        RucioCommand::Whoami { .. } => {
            let who = s.call(|r| r.whoami())?;
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
            let entries = crate::rucio::dids::list(&mut s, &text, did_type.as_deref())?;
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
            let files = s.call(|r| r.list_replicas(std::slice::from_ref(&d), &scheme, rse.as_deref(), false))?;
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
            let meta = s.call(|r| r.get_metadata(&d))?;
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
            s.call(|r| r.add_collection(&d, container, life))?;
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
            s.call(|r| r.attach(&c, &dids))?;
            if output == Output::Json {
                println!("{}", json!({"attached": dids.iter().map(|d| d.to_string()).collect::<Vec<_>>(), "to": c.to_string()}));
            } else {
                println!("attached {} DID(s) to {c}", dids.len());
            }
            Ok(())
        }
        RucioCommand::Rule { command } => run_rule(&mut s, command, output),
        RucioCommand::Upload(args) => upload(&mut s, args, output),
        RucioCommand::MakeAvailable { did, rse, lifetime, wait, timeout, poll, .. } => {
            let options = AvailabilityOptions { did, rse, lifetime, wait, timeout, poll_seconds: poll };
            let made = make_available(&mut s, &options, |rule| {
                eprintln!(
                    "lakeport: rule {} {}: {} OK, {} replicating, {} stuck",
                    rule.id,
                    rule.state.as_str(),
                    rule.locks_ok,
                    rule.locks_replicating,
                    rule.locks_stuck
                )
            })?;
            if output == Output::Json {
                let replicas: Vec<Value> = made.replicas.iter().map(|p| json!({"did": p.did, "rse": p.rse, "pfn": p.pfn, "path": p.path})).collect();
                println!("{}", json!({"created": made.created, "rule": rule_json(&made.rule), "replicas": replicas}));
                return Ok(());
            }
            let rule = &made.rule;
            println!("rule {} ({}): {} at {}", rule.id, if made.created { "created" } else { "existing" }, rule.state.as_str(), options.rse);
            for p in &made.replicas {
                match &p.path {
                    Some(path) => println!("{}  {}  {}  {path}", p.did, p.rse, p.pfn),
                    None => println!("{}  {}  {}", p.did, p.rse, p.pfn),
                }
            }
            Ok(())
        }
    }
}


/// `--grouping`, as Rucio's clients spell it (any case).
fn parse_grouping(text: &str) -> std::result::Result<Grouping, String> {
    match text.to_ascii_uppercase().as_str() {
        "ALL" => Ok(Grouping::All),
        "DATASET" => Ok(Grouping::Dataset),
        "NONE" => Ok(Grouping::None),
        _ => Err("write ALL, DATASET or NONE".into()),
    }
}

/// `--notify`, as Rucio's clients spell it (any case).
fn parse_notify(text: &str) -> std::result::Result<Notify, String> {
    match text.to_ascii_uppercase().as_str() {
        "Y" => Ok(Notify::Yes),
        "N" => Ok(Notify::No),
        "C" => Ok(Notify::OnClose),
        "P" => Ok(Notify::Progress),
        _ => Err("write Y, N, C (on close) or P (progress)".into()),
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
                grouping,
                weight,
                activity,
                comment,
                asynchronous,
                notify,
            };
            let ids = s.call(|r| r.add_rule(&request))?;
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
            let rule = s.call(|r| r.get_rule(&id))?;
            print_rule(&rule, output);
            Ok(())
        }
        RuleCommand::List { did: text, account, .. } => {
            let d = text.as_deref().map(|t| s.did(t)).transpose()?;
            let account = account.unwrap_or_else(|| s.account().to_string());
            let rules = s.call(|r| match &d {
                Some(d) => r.did_rules(d),
                None => r.account_rules(&account),
            })?;
            print_rules(&rules, output);
            Ok(())
        }
        RuleCommand::Update { id, lifetime: life, .. } => {
            let life = s.lifetime(&life)?;
            let rule = s.call(|r| {
                r.update_rule_lifetime(&id, life)?;
                r.get_rule(&id)
            })?;
            print_rule(&rule, output);
            Ok(())
        }
        RuleCommand::Delete { id, purge_replicas, .. } => {
            s.call(|r| r.delete_rule(&id, purge_replicas))?;
            if output == Output::Json {
                println!("{}", json!({"deleted": id}));
            } else {
                println!("deleted rule {id}");
            }
            Ok(())
        }
    }
}


fn upload(s: &mut Session, args: UploadArgs, output: Output) -> Result<()> {
    let quiet = args.quiet || output == Output::Json;
    let options = UploadOptions { files: args.files, rse: args.rse, scope: args.scope, dataset: args.dataset, lifetime: args.lifetime };
    let report = crate::rucio::upload::upload(s, &options, |u| {
        if !quiet {
            eprintln!("lakeport: uploaded {} to {}", u.path.display(), u.target.as_ref().map_or("", |t| t.pfn.as_str()));
        }
    })?;
    if output == Output::Json {
        let files: Vec<Value> = report
            .files
            .iter()
            .map(|u| {
                json!({
                    "path": u.path, "scope": u.file.did.scope, "name": u.file.did.name, "bytes": u.file.bytes,
                    "adler32": u.file.adler32, "md5": u.file.md5, "pfn": u.target.as_ref().map(|t| &t.pfn),
                    "uploaded": u.error.is_none(), "error": u.error,
                })
            })
            .collect();
        println!("{}", json!({"files": files, "rules": report.rules.iter().map(rule_json).collect::<Vec<_>>()}));
    } else {
        let rows: Vec<Vec<String>> = report
            .files
            .iter()
            .map(|u| vec![u.file.did.to_string(), u.file.bytes.to_string(), u.file.adler32.clone(), if u.error.is_none() { "AVAILABLE".into() } else { "FAILED".into() }])
            .collect();
        print_table(&["DID", "BYTES", "ADLER32", "REPLICA"], &rows);
        if !report.rules.is_empty() {
            println!();
            print_rules(&report.rules, output);
        }
    }
    match report.failure() {
        Some(e) => Err(e),
        None => Ok(()),
    }
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
    let mut s = Session::new(context(config, profile, rt)?, Some(password.clone()))?;
    let (username, who) = s.store_password(password)?;
    if output == Output::Json {
        println!("{}", json!({"account": who.account, "username": username, "stored": true}));
    } else {
        println!("Rucio accepted {username} as account {}; the password is kept in the encrypted token store", who.account);
    }
    Ok(())
}
