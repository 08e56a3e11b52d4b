//! What an S3 command works on, resolved before anything moves: `s3://`
//! URLs, complete listings, the files of a directory tree to upload, where
//! downloaded keys land, and the keys of a server-side copy.

use std::collections::HashSet;
use std::path::{Component as PathPart, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::transfer::{ObjectSummary, Transfer};

/// `s3://bucket/key` split; the key may be empty. Bucket and key rules are
/// the component's to check.
#[derive(Clone, Debug)]
pub struct S3Url {
    pub bucket: String,
    pub key: String,
}

impl S3Url {
    /// None when `text` is not an `s3://` URL (a local path, `-`).
    pub fn parse(text: &str) -> Option<S3Url> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        Some(S3Url { bucket: bucket.to_string(), key: key.to_string() })
    }

    /// An `s3://` URL naming a bucket, the key optional.
    pub fn require(text: &str) -> Result<S3Url> {
        let url = S3Url::parse(text).ok_or_else(|| anyhow!("'{text}' is not an s3://bucket/key URL"))?;
        if url.bucket.is_empty() {
            bail!("'{text}' names no bucket");
        }
        Ok(url)
    }

    /// An `s3://` URL naming an object.
    pub fn object(text: &str) -> Result<S3Url> {
        let url = S3Url::require(text)?;
        if url.key.is_empty() {
            bail!("'{text}' names a bucket, not an object: add the key (s3://bucket/key)");
        }
        Ok(url)
    }

    /// `key` in this URL's bucket, as a URL.
    pub fn show(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The key as a "directory": empty, or ending in `/`.
    pub fn prefix(&self) -> String {
        if self.key.is_empty() || self.key.ends_with('/') {
            self.key.clone()
        } else {
            format!("{}/", self.key)
        }
    }
}

/// Every object (and, with a delimiter, every common prefix) under the
/// URL's key, page after page.
pub fn list_all(transfer: &mut Transfer, url: &S3Url, delimiter: Option<&str>) -> Result<(Vec<ObjectSummary>, Vec<String>)> {
    let (mut objects, mut prefixes, mut token) = (Vec::new(), Vec::new(), None::<String>);
    let mut seen = HashSet::new();
    loop {
        let page = transfer.list(&url.bucket, &url.key, delimiter, token.as_deref())?;
        objects.extend(page.objects);
        prefixes.extend(page.common_prefixes);
        match page.next_continuation {
            Some(next) if !seen.insert(next.clone()) => {
                bail!("listing s3://{}/{}: the server gave a continuation token it gave before, so its listing would never end (a server bug)", url.bucket, url.key)
            }
            Some(next) => token = Some(next),
            None => return Ok((objects, prefixes)),
        }
    }
}

/// The key for a local file copied to `to`: `to`'s key, or under it when
/// it names a "directory" (empty, or ending in `/`).
pub fn key_for(to: &S3Url, file: &Path) -> Result<String> {
    if !to.key.is_empty() && !to.key.ends_with('/') {
        return Ok(to.key.clone());
    }
    let name = file.file_name().ok_or_else(|| anyhow!("{} has no file name: give the key in the s3:// URL", file.display()))?;
    Ok(format!("{}{}", to.key, name.to_string_lossy()))
}

/// What a walk of a directory found: its regular files, with their paths
/// relative to it, and what it passed over and why.
pub struct Walked {
    pub files: Vec<(PathBuf, String)>,
    pub skipped: Vec<(PathBuf, &'static str)>,
}

/// The regular files under `dir`. Links are not followed (one may lead
/// anywhere, and whoever can write in the tree could have put it there),
/// and lakeport's own unfinished downloads are not data.
pub fn walk(dir: &Path) -> Result<Walked> {
    let mut walked = Walked { files: Vec::new(), skipped: Vec::new() };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("cannot read the directory {}", d.display()))? {
            let entry = entry?;
            // The entry's own type: a link is a link here, not what it points to.
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_symlink() {
                walked.skipped.push((path, "a symbolic link (links are not followed)"));
            } else if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && crate::transfer::is_partial_download(&entry.file_name()) {
                walked.skipped.push((path, "an unfinished lakeport download"));
            } else if kind.is_file() {
                let rel = path.strip_prefix(dir).expect("walked from dir");
                let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                walked.files.push((path, parts.join("/")));
            }
        }
    }
    walked.files.sort_by(|a, b| a.1.cmp(&b.1));
    walked.skipped.sort();
    Ok(walked)
}

/// Where an object's key lands under `dir`: keys are untrusted, so a key
/// that would climb out of `dir` (`..`, an absolute path) is refused.
pub fn local_path(dir: &Path, relative: &str) -> Option<PathBuf> {
    let rel = Path::new(relative);
    let clean = !relative.is_empty() && rel.components().all(|c| matches!(c, PathPart::Normal(_)));
    clean.then(|| dir.join(rel))
}

/// The (source, destination) keys of a server-side copy from `from` to
/// `to`: one object, or with `recursive` every object under `from`.
pub fn copy_pairs(transfer: &mut Transfer, from: &S3Url, to: &S3Url, recursive: bool) -> Result<Vec<(String, String)>> {
    if recursive {
        let prefix = from.prefix();
        let to_prefix = to.prefix();
        let (objects, _) = list_all(transfer, &S3Url { bucket: from.bucket.clone(), key: prefix.clone() }, None)?;
        return Ok(objects.into_iter().map(|o| (o.key.clone(), format!("{to_prefix}{}", &o.key[prefix.len()..]))).collect());
    }
    let name = from.key.rsplit('/').next().unwrap_or(&from.key);
    let key = if to.key.is_empty() || to.key.ends_with('/') { format!("{}{name}", to.key) } else { to.key.clone() };
    Ok(vec![(from.key.clone(), key)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = S3Url::parse("s3://b/a/b c").unwrap();
        assert_eq!((u.bucket.as_str(), u.key.as_str()), ("b", "a/b c"));
        assert_eq!(S3Url::parse("s3://b").unwrap().key, "");
        assert!(S3Url::parse("/tmp/x").is_none());
    }

    #[test]
    fn keys_cannot_climb_out_of_the_destination() {
        let dir = Path::new("/tmp/d");
        assert_eq!(local_path(dir, "a/b.txt"), Some(PathBuf::from("/tmp/d/a/b.txt")));
        assert_eq!(local_path(dir, "../etc/passwd"), None);
        assert_eq!(local_path(dir, "a/../../x"), None);
        assert_eq!(local_path(dir, "/etc/passwd"), None);
        assert_eq!(local_path(dir, ""), None);
    }
}
