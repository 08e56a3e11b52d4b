//! An upload to an RSE, as `rucio upload` does it: the replicas registered
//! as COPYING, the bytes stored through the transfer component at the
//! paths Rucio assigns on the profile's S3 endpoint, then the replicas made
//! AVAILABLE, attached to the dataset and kept by a rule. A file is
//! registered as available only with checksums that describe the bytes
//! stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::checksum;
use super::session::Session;
use super::{Rule, UploadFile, UploadTarget};
use crate::instance::ComponentError;
use crate::transfer::{BatchOutcome, FileSource, Transfer, UploadResult};

/// What to upload, and where, as the user gave it.
pub struct UploadOptions {
    /// Each becomes the DID SCOPE:FILE_NAME.
    pub files: Vec<PathBuf>,
    pub rse: String,
    pub scope: String,
    /// SCOPE:NAME, or a NAME in `scope`; created when new.
    pub dataset: Option<String>,
    /// How long the rule keeps the files (3600, 12h, 7d, 2w); none: for good.
    pub lifetime: Option<String>,
}

/// What became of one file of an upload.
pub struct Uploaded {
    pub path: PathBuf,
    pub file: UploadFile,
    /// Where Rucio put it.
    pub target: Option<UploadTarget>,
    /// Why it is not registered as available; none when it is.
    pub error: Option<String>,
    /// The file as it was when its checksums were taken.
    state: FileState,
}

/// What an upload did: each file, and the rules that keep them.
pub struct UploadReport {
    pub files: Vec<Uploaded>,
    pub rules: Vec<Rule>,
    rse: String,
}

impl UploadReport {
    /// The error for files that were not uploaded, if any were not.
    pub fn failure(&self) -> Option<anyhow::Error> {
        let failed: Vec<&Uploaded> = self.files.iter().filter(|u| u.error.is_some()).collect();
        if failed.is_empty() {
            return None;
        }
        let list: Vec<String> = failed.iter().map(|u| format!("{}: {}", u.path.display(), u.error.as_deref().unwrap_or_default())).collect();
        Some(anyhow!(
            "{} of {} files were not uploaded, and are not registered as available at {} (their replicas stay COPYING; run the same upload again):\n  {}",
            failed.len(),
            self.files.len(),
            self.rse,
            list.join("\n  ")
        ))
    }
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
fn changed_since_checksummed(item: &Uploaded, sent: &UploadResult) -> Option<String> {
    let changed = "changed while it was being uploaded: its checksums no longer describe the bytes sent, so it is not registered as available (run the upload again once the file no longer changes)";
    if FileState::of(&item.path).ok().as_ref() != Some(&item.state) || sent.size != item.file.bytes {
        return Some(changed.into());
    }
    // A single PUT's ETag is the MD5 of the bytes the server stored.
    let etag = sent.etag.trim_matches('"');
    let plain_md5 = sent.parts == 0 && etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
    (plain_md5 && !etag.eq_ignore_ascii_case(&item.file.md5)).then(|| changed.into())
}

/// Uploads and registers `options.files`; `on_uploaded` hears of each file
/// stored. Files that failed are in the report (see
/// [`UploadReport::failure`]); an error is returned only when nothing
/// could be tried, or a Rucio step failed.
pub fn upload(s: &mut Session, options: &UploadOptions, mut on_uploaded: impl FnMut(&Uploaded)) -> Result<UploadReport> {
    let dataset = match &options.dataset {
        Some(d) if d.contains(':') => Some(s.did(d)?),
        Some(d) => Some(s.did(&format!("{}:{d}", options.scope))?),
        None => None,
    };
    let lifetime = options.lifetime.as_deref().map(|l| s.lifetime(l)).transpose()?.flatten();
    let mut items = Vec::new();
    for path in &options.files {
        let state = FileState::of(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(|| anyhow!("{} has no file name", path.display()))?;
        let did = s.did(&format!("{}:{name}", options.scope))?;
        if items.iter().any(|u: &Uploaded| u.file.did.name == did.name) {
            bail!("two files are named {name}: each becomes the DID {}:{name}", options.scope);
        }
        let sums = checksum::of_file(path)?;
        if FileState::of(path)? != state || sums.bytes != state.len {
            bail!("{} changed while its checksums were computed: upload it once it no longer changes", path.display());
        }
        let file = UploadFile { did, bytes: sums.bytes, adler32: sums.adler32, md5: sums.md5 };
        items.push(Uploaded { path: path.clone(), file, state, target: None, error: None });
    }

    // The S3 side: the profile's endpoint and credentials.
    let ctx = &s.ctx;
    let endpoint = ctx.profile.require("s3_endpoint", &ctx.profile.s3_endpoint, &ctx.name)?.trim_end_matches('/').to_string();
    let (endpoint_scheme, endpoint_authority) = endpoint.split_once("://").unwrap_or(("", ""));
    let mut transfer = Transfer::for_profile(ctx, &[], None, None)?;

    // Each Rucio step is its own call: a refused session token re-runs
    // only the step it refused, never the S3 transfers between them.
    let files: Vec<UploadFile> = items.iter().map(|u| u.file.clone()).collect();
    let targets = s.call(|r| r.begin_upload(&options.rse, &files, dataset.as_ref(), lifetime))?;
    // Every file Rucio puts on the profile's endpoint, `concurrency` at
    // once per bucket through the transfer component.
    let mut by_bucket: BTreeMap<String, Vec<usize>> = Default::default();
    for (i, (item, target)) in items.iter_mut().zip(targets).enumerate() {
        let elsewhere = target.authority != endpoint_authority || (target.scheme != "s3" && target.scheme != endpoint_scheme);
        if elsewhere {
            item.error = Some(format!("Rucio puts it at {}, not on the profile's s3_endpoint {endpoint}: set s3_endpoint to the RSE's S3 endpoint", target.pfn));
        } else {
            by_bucket.entry(target.bucket.clone()).or_default().push(i);
        }
        item.target = Some(target);
    }
    let mut done = Vec::new();
    let put_options = crate::transfer::UploadOptions { content_type: None, resume: false, resume_upload_id: None, keep_on_failure: false };
    for (bucket, indexes) in by_bucket {
        let mut batch = Vec::with_capacity(indexes.len());
        for &i in &indexes {
            let item = &items[i];
            let source = FileSource::file(&item.path, crate::progress::Progress::new(Some(item.file.bytes)))?;
            batch.push((source, item.target.as_ref().expect("set above").key.clone()));
        }
        let outcomes = transfer.put_many(batch, &bucket, &put_options)?;
        for (i, outcome) in indexes.into_iter().zip(outcomes) {
            let item = &mut items[i];
            match outcome {
                BatchOutcome::Failed((_, e)) => item.error = Some(e.message()),
                BatchOutcome::Uploaded(sent) => match changed_since_checksummed(item, &sent) {
                    Some(why) => item.error = Some(why),
                    None => {
                        on_uploaded(item);
                        done.push(item.file.did.clone());
                    }
                },
                BatchOutcome::Downloaded(_) => item.error = Some("the transfer component answered an upload with a download".into()),
            }
        }
    }
    let rules = s.call(|r| r.finish_upload(&options.rse, &done, dataset.as_ref(), lifetime))?;
    Ok(UploadReport { files: items, rules, rse: options.rse.clone() })
}
