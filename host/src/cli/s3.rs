//! `lakeport s3`: object operations and transfers through the transfer
//! component. The host resolves what the user named (paths, `s3://` URLs,
//! directories to walk) and opens exactly those files; the component does
//! the S3 work and may reach only the profile's endpoint.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::log::printable;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::profile::{context, ProfileArgs};
use super::Output;
use crate::config::Config;
use crate::instance::{CallError, ComponentError};
use crate::objects::{copy_pairs, key_for, list_all, local_path, walk, Walked};
use crate::progress::{bytes, Bar, Progress};
use crate::runtime::Runtime;
use crate::transfer::{BatchOutcome, FileSink, FileSource, Locations, S3Location, Transfer, UploadOptions};

#[derive(Args, Debug)]
pub struct S3Args {
    #[command(subcommand)]
    command: S3Command,
}

#[derive(Subcommand, Debug)]
enum S3Command {
    /// List objects under s3://bucket[/prefix] (one level; --recursive for all).
    Ls {
        url: String,
        #[arg(long, short)]
        recursive: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Copy: local → S3 (upload), S3 → local (download), S3 → S3 (server-side). `-` is stdin/stdout.
    Cp {
        source: String,
        destination: String,
        /// Copy a directory tree, or every object under a prefix.
        #[arg(long, short)]
        recursive: bool,
        /// Continue an interrupted multipart upload from the parts the server has.
        #[arg(long)]
        resume: bool,
        /// On failure keep the parts already uploaded (for --resume) instead of aborting the upload.
        #[arg(long)]
        keep_on_failure: bool,
        /// Content-Type of uploaded objects.
        #[arg(long)]
        content_type: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Delete an object, or with --recursive every object under a prefix.
    Rm {
        url: String,
        #[arg(long, short)]
        recursive: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Make a bucket.
    Mb {
        url: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove an (empty) bucket.
    Rb {
        url: String,
        #[command(flatten)]
        common: Common,
    },
    /// Show an object's size, ETag, type and metadata.
    Stat {
        url: String,
        #[command(flatten)]
        common: Common,
    },
    /// Print a presigned URL for an object.
    Presign {
        url: String,
        /// Validity in seconds (at most 7 days).
        #[arg(long, default_value_t = 3600)]
        expires: u32,
        #[arg(long, default_value = "GET")]
        method: String,
        #[command(flatten)]
        common: Common,
    },
    /// Unfinished multipart uploads: list them, or abort them.
    Uploads {
        #[command(subcommand)]
        command: UploadsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum UploadsCommand {
    /// List unfinished uploads under s3://bucket[/prefix].
    Ls {
        url: String,
        #[command(flatten)]
        common: Common,
    },
    /// Abort one upload (s3://bucket/key UPLOAD_ID), or with --all every upload under s3://bucket[/prefix].
    Abort {
        url: String,
        upload_id: Option<String>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args, Debug)]
struct Common {
    #[command(flatten)]
    profile: ProfileArgs,
    /// Requests in flight at once (parts, ranges or files); default 4.
    #[arg(long)]
    concurrency: Option<u32>,
    /// Part size for multipart uploads and ranged downloads, e.g. 16M or 64MiB.
    #[arg(long, value_parser = parse_size)]
    part_size: Option<u64>,
    /// No progress bar and no per-file lines.
    #[arg(long, short)]
    quiet: bool,
}

/// `16M`, `64MiB`, `1G`, `5242880`: binary units.
fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("'{text}' is not a size (e.g. 16M, 64MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("'{text}': the unit must be K, M or G")),
    };
    n.checked_mul(1 << shift).ok_or_else(|| format!("'{text}' is too large"))
}

/// The S3 side of a profile: endpoint, region, addressing, credentials.
struct Session {
    transfer: Transfer,
    output: Output,
    quiet: bool,
}

fn open(runtime: &Runtime, common: &Common, output: Output, buckets: &[&str]) -> Result<Session> {
    let config = Config::load(common.profile.config.as_deref())?;
    let ctx = context(&config, &common.profile, runtime)?;
    let transfer = Transfer::for_profile(&ctx, buckets, common.concurrency, common.part_size)?;
    Ok(Session { transfer, output, quiet: common.quiet })
}

pub fn run(args: S3Args, output: Output) -> Result<()> {
    let runtime = Runtime::new()?;
    let mut locations = Locations::new(&runtime)?;
    match args.command {
        S3Command::Ls { url, recursive, common } => {
            let url = locations.require(&url)?;
            let mut s = open(&runtime, &common, output, &[&url.bucket])?;
            ls(&mut s, &url, recursive)
        }
        S3Command::Cp { source, destination, recursive, resume, keep_on_failure, content_type, common } => {
            let (from, to) = (locations.parse(&source)?, locations.parse(&destination)?);
            let buckets: Vec<&str> = [&from, &to].into_iter().flatten().map(|u| u.bucket.as_str()).collect();
            let options = UploadOptions { content_type, resume, resume_upload_id: None, keep_on_failure: keep_on_failure || resume };
            let mut s = open(&runtime, &common, output, &buckets)?;
            match (from, to) {
                (None, Some(to)) if recursive => upload_tree(&mut s, Path::new(&source), &to, &options),
                (None, Some(to)) => upload(&mut s, &source, &to, &options),
                (Some(from), None) if recursive => download_tree(&mut s, &from, Path::new(&destination)),
                (Some(from), None) => download(&mut s, &from, &destination),
                (Some(from), Some(to)) => server_copy(&mut s, &from, &to, recursive),
                (None, None) => bail!("one side of cp must be an s3:// URL"),
            }
        }
        S3Command::Rm { url, recursive, common } => {
            let url = locations.require(&url)?;
            let mut s = open(&runtime, &common, output, &[&url.bucket])?;
            rm(&mut s, &url, recursive)
        }
        S3Command::Mb { url, common } => {
            let url = locations.require(&url)?;
            let mut s = open(&runtime, &common, output, &[&url.bucket])?;
            s.transfer.make_bucket(&url.bucket)?;
            s.say(&format!("make_bucket: {}", url.bucket), json!({"created": url.bucket}));
            Ok(())
        }
        S3Command::Rb { url, common } => {
            let url = locations.require(&url)?;
            let mut s = open(&runtime, &common, output, &[&url.bucket])?;
            s.transfer.remove_bucket(&url.bucket)?;
            s.say(&format!("remove_bucket: {}", url.bucket), json!({"removed": url.bucket}));
            Ok(())
        }
        S3Command::Stat { url, common } => {
            let url = locations.object(&url)?;
            let mut s = open(&runtime, &common, output, &[&url.bucket])?;
            let info = s.transfer.stat(&url.bucket, &url.key)?;
            let doc = json!({
                "key": url.key, "size": info.size, "etag": info.etag, "last_modified": info.last_modified.map(crate::tokens::rfc3339),
                "content_type": info.content_type, "storage_class": info.storage_class, "parts": info.parts_count,
                "metadata": info.metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            });
            if output == Output::Json {
                println!("{doc}");
            } else {
                println!("key:           {}", printable(&url.key));
                println!("size:          {} ({})", info.size, bytes(info.size));
                println!("etag:          {}", printable(info.etag.as_deref().unwrap_or("-")));
                println!("last modified: {}", info.last_modified.map(crate::tokens::rfc3339).unwrap_or_else(|| "-".into()));
                println!("content type:  {}", printable(info.content_type.as_deref().unwrap_or("-")));
                if let Some(n) = info.parts_count {
                    println!("parts:         {n}");
                }
                for (k, v) in &info.metadata {
                    println!("meta {}: {}", printable(k), printable(v));
                }
            }
            Ok(())
        }
        S3Command::Presign { url, expires, method, common } => {
            let url = locations.object(&url)?;
            let mut s = open(&runtime, &common, output, &[&url.bucket])?;
            let signed = s.transfer.presign(&method, &url.bucket, &url.key, expires)?;
            if output == Output::Json {
                println!("{}", json!({"url": signed, "method": method.to_ascii_uppercase(), "expires_in": expires}));
            } else {
                println!("{signed}");
            }
            Ok(())
        }
        S3Command::Uploads { command: UploadsCommand::Ls { url, common } } => {
            let url = locations.require(&url)?;
            let mut s = open(&runtime, &common, output, &[&url.bucket])?;
            let uploads = s.transfer.list_uploads(&url.bucket, &url.key)?;
            if output == Output::Json {
                let list: Vec<Value> = uploads
                    .iter()
                    .map(|u| json!({"key": u.key, "upload_id": u.upload_id, "initiated": u.initiated.map(crate::tokens::rfc3339)}))
                    .collect();
                println!("{}", Value::Array(list));
            } else {
                for u in &uploads {
                    println!("{}  {}  {}", u.initiated.map(crate::tokens::rfc3339).unwrap_or_else(|| "-".into()), printable(&u.upload_id), printable(&u.key));
                }
            }
            Ok(())
        }
        S3Command::Uploads { command: UploadsCommand::Abort { url, upload_id, all, common } } => {
            let url = locations.require(&url)?;
            let mut s = open(&runtime, &common, output, &[&url.bucket])?;
            let targets: Vec<(String, String)> = match (upload_id, all) {
                (Some(id), false) => vec![(url.key.clone(), id)],
                (None, true) => s.transfer.list_uploads(&url.bucket, &url.key)?.into_iter().map(|u| (u.key, u.upload_id)).collect(),
                _ => bail!("give either an upload ID or --all"),
            };
            for (key, id) in targets {
                s.transfer.abort_upload(&url.bucket, &key, &id)?;
                s.say(&format!("aborted: {id} {}", url.show(&key)), json!({"aborted": id, "key": key}));
            }
            Ok(())
        }
    }
}

impl Session {
    /// A line for the user (text) or a JSON object per line (json).
    fn say(&self, text: &str, doc: Value) {
        match self.output {
            Output::Json => println!("{doc}"),
            Output::Text if !self.quiet => println!("{}", crate::log::printable(text)),
            Output::Text => {}
        }
    }
}

fn ls(s: &mut Session, url: &S3Location, recursive: bool) -> Result<()> {
    // `s3://b/dir` lists the directory, as `s3://b/dir/` does.
    let prefix = if recursive { &url.key } else { &url.dir_key };
    let (objects, prefixes) = list_all(&mut s.transfer, &url.bucket, prefix, (!recursive).then_some("/"))?;
    if s.output == Output::Json {
        let mut list: Vec<Value> = prefixes.iter().map(|p| json!({"prefix": p})).collect();
        list.extend(objects.iter().map(|o| {
            json!({"key": o.key, "size": o.size, "etag": o.etag, "last_modified": o.last_modified.map(crate::tokens::rfc3339), "storage_class": o.storage_class})
        }));
        println!("{}", Value::Array(list));
        return Ok(());
    }
    for p in &prefixes {
        println!("{:>20} {:>12} {}", "", "PRE", printable(p));
    }
    for o in &objects {
        let when = o.last_modified.map(crate::tokens::rfc3339).unwrap_or_default();
        println!("{when:>20} {:>12} {}", o.size, printable(&o.key));
    }
    Ok(())
}

fn upload(s: &mut Session, source: &str, to: &S3Location, options: &UploadOptions) -> Result<()> {
    let (file, key, progress) = if source == "-" {
        if to.is_prefix {
            bail!("stdin has no name: give the full key (s3://bucket/key)");
        }
        let progress = Progress::new(None);
        (FileSource::stdin(progress.clone()), to.key.clone(), progress)
    } else {
        let path = Path::new(source);
        let progress = Progress::new(None);
        let file = FileSource::file(path, progress.clone())?;
        progress.add_total(file.size().unwrap_or(0));
        (file, key_for(to, path)?, progress)
    };
    let bar = Bar::start(progress, s.quiet);
    let result = s.transfer.put(file, &to.bucket, &key, options);
    drop(bar);
    let done = match result {
        Err(CallError::Stopped(e)) => return Err(e),
        other => other.with_context(|| format!("uploading {source} to {}", to.show(&key)))?,
    };
    let resumed = if done.parts_kept > 0 { format!(", {} parts already on the server", done.parts_kept) } else { String::new() };
    s.say(
        &format!("upload: {source} to {} ({}{resumed})", to.show(&key), bytes(done.size)),
        json!({"uploaded": source, "bucket": to.bucket, "key": key, "size": done.size, "etag": done.etag, "parts": done.parts, "parts_kept": done.parts_kept}),
    );
    Ok(())
}

fn download(s: &mut Session, from: &S3Location, destination: &str) -> Result<()> {
    if from.is_prefix {
        bail!("{} names no object: add the key, or use --recursive", from.show(&from.key));
    }
    let progress = Progress::new(None);
    let (sink, shown) = if destination == "-" {
        (FileSink::stdout(progress.clone()), "stdout".to_string())
    } else {
        let mut path = PathBuf::from(destination);
        if destination.ends_with('/') || path.is_dir() {
            path = path.join(from.key.rsplit('/').next().unwrap_or(&from.key));
        }
        (FileSink::file(&path, progress.clone()), path.display().to_string())
    };
    if destination != "-" {
        if let Ok(info) = s.transfer.stat(&from.bucket, &from.key) {
            progress.add_total(info.size);
        }
    }
    let bar = Bar::start(progress, s.quiet || destination == "-");
    let result = s.transfer.get(&from.bucket, &from.key, sink);
    drop(bar);
    let done = match result {
        Err(CallError::Stopped(e)) => return Err(e),
        other => other.with_context(|| format!("downloading {} to {shown}", from.show(&from.key)))?,
    };
    if destination != "-" {
        s.say(
            &format!("download: {} to {shown} ({}, verified by {})", from.show(&from.key), bytes(done.size), done.verified_by.as_str()),
            json!({"downloaded": from.show(&from.key), "to": shown, "size": done.size, "etag": done.etag, "verified_by": done.verified_by.as_str()}),
        );
    }
    Ok(())
}

fn report(s: &Session, outcomes: Vec<BatchOutcome>, local: &[String]) -> Result<()> {
    let mut failures = 0;
    for (outcome, local) in outcomes.into_iter().zip(local) {
        match outcome {
            BatchOutcome::Uploaded(u) => s.say(
                &format!("upload: {local} to {} ({})", u.key, bytes(u.size)),
                json!({"uploaded": local, "key": u.key, "size": u.size, "etag": u.etag, "parts": u.parts}),
            ),
            BatchOutcome::Downloaded(d) => s.say(
                &format!("download: {} to {local} ({}, verified by {})", d.key, bytes(d.size), d.verified_by.as_str()),
                json!({"downloaded": d.key, "to": local, "size": d.size, "etag": d.etag, "verified_by": d.verified_by.as_str()}),
            ),
            BatchOutcome::Failed((key, e)) => {
                failures += 1;
                eprintln!("lakeport: failed: {}: {}", printable(&key), printable(&e.message()));
            }
        }
    }
    if failures > 0 {
        bail!("{failures} of {} objects failed (see above); the others were copied", local.len());
    }
    Ok(())
}

fn upload_tree(s: &mut Session, dir: &Path, to: &S3Location, options: &UploadOptions) -> Result<()> {
    if !dir.is_dir() {
        bail!("{} is not a directory (drop --recursive to copy one file)", dir.display());
    }
    let prefix = &to.dir_key;
    let Walked { files, skipped } = walk(dir)?;
    if !s.quiet {
        for (path, why) in &skipped {
            eprintln!("lakeport: skipping {}: {why}", path.display());
        }
    }
    let progress = Progress::new(None);
    let mut items = Vec::with_capacity(files.len());
    let mut names = Vec::with_capacity(files.len());
    for (path, rel) in &files {
        let source = FileSource::walked(path, progress.clone())?;
        progress.add_total(source.size().unwrap_or(0));
        items.push((source, format!("{prefix}{rel}")));
        names.push(path.display().to_string());
    }
    let bar = Bar::start(progress, s.quiet);
    let outcomes = s.transfer.put_many(items, &to.bucket, options)?;
    drop(bar);
    report(s, outcomes, &names)
}

fn download_tree(s: &mut Session, from: &S3Location, dir: &Path) -> Result<()> {
    let prefix = &from.dir_key;
    let (objects, _) = list_all(&mut s.transfer, &from.bucket, prefix, None)?;
    let progress = Progress::new(None);
    let mut items = Vec::new();
    let mut names = Vec::new();
    for o in objects {
        if o.key.ends_with('/') {
            continue; // a "directory" marker object
        }
        let rel = &o.key[prefix.len()..];
        let path = local_path(dir, rel).ok_or_else(|| anyhow!("the key {:?} would be written outside {}: refusing it", o.key, dir.display()))?;
        progress.add_total(o.size);
        names.push(path.display().to_string());
        items.push((o.key.clone(), Some(o.size), FileSink::file(&path, progress.clone())));
    }
    let bar = Bar::start(progress, s.quiet);
    let outcomes = s.transfer.get_many(&from.bucket, items)?;
    drop(bar);
    report(s, outcomes, &names)
}

fn server_copy(s: &mut Session, from: &S3Location, to: &S3Location, recursive: bool) -> Result<()> {
    let pairs = copy_pairs(&mut s.transfer, from, to, recursive)?;
    for (src, dst) in pairs {
        let etag = s.transfer.copy(&from.bucket, &src, &to.bucket, &dst)?;
        s.say(&format!("copy: {} to {}", from.show(&src), to.show(&dst)), json!({"copied": from.show(&src), "to": to.show(&dst), "etag": etag}));
    }
    Ok(())
}

fn rm(s: &mut Session, url: &S3Location, recursive: bool) -> Result<()> {
    if !recursive {
        if url.key.is_empty() {
            bail!("{} names a bucket: delete objects with --recursive, the bucket with `lakeport s3 rb`", url.show(""));
        }
        s.transfer.delete(&url.bucket, &url.key)?;
        s.say(&format!("delete: {}", url.show(&url.key)), json!({"deleted": url.key}));
        return Ok(());
    }
    let (objects, _) = list_all(&mut s.transfer, &url.bucket, &url.key, None)?;
    let keys: Vec<String> = objects.into_iter().map(|o| o.key).collect();
    let failures = s.transfer.delete_many(&url.bucket, &keys)?;
    for (key, e) in &failures {
        eprintln!("lakeport: failed: {}: {}", printable(key), printable(&e.message()));
    }
    for key in keys.iter().filter(|k| !failures.iter().any(|(f, _)| f == *k)) {
        s.say(&format!("delete: {}", url.show(key)), json!({"deleted": key}));
    }
    if !failures.is_empty() {
        bail!("{} of {} objects could not be deleted (see above)", failures.len(), keys.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("5242880"), Ok(5 << 20));
        assert!(parse_size("12X").is_err());
    }
}
