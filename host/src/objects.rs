//! What an S3 command works on, resolved before anything moves: complete
//! listings, the files of a directory tree to upload, where
//! downloaded keys land, and the keys of a server-side copy.

use std::collections::HashSet;
use std::path::{Component as PathPart, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::transfer::{ObjectSummary, S3Location, Transfer};

/// Every object (and, with a delimiter, every common prefix) under
/// `prefix` in `bucket`, page after page.
pub fn list_all(transfer: &mut Transfer, bucket: &str, prefix: &str, delimiter: Option<&str>) -> Result<(Vec<ObjectSummary>, Vec<String>)> {
    let (mut objects, mut prefixes, mut token) = (Vec::new(), Vec::new(), None::<String>);
    let mut seen = HashSet::new();
    loop {
        let page = transfer.list(bucket, prefix, delimiter, token.as_deref())?;
        objects.extend(page.objects);
        prefixes.extend(page.common_prefixes);
        match page.next_continuation {
            Some(next) if !seen.insert(next.clone()) => {
                bail!("listing s3://{}/{}: the server gave a continuation token it gave before, so its listing would never end (a server bug)", bucket, prefix)
            }
            Some(next) => token = Some(next),
            None => return Ok((objects, prefixes)),
        }
    }
}

/// The key for a local file copied to `to`: `to`'s key, or under it when
/// it is a prefix.
pub fn key_for(to: &S3Location, file: &Path) -> Result<String> {
    if !to.is_prefix {
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
pub fn copy_pairs(transfer: &mut Transfer, from: &S3Location, to: &S3Location, recursive: bool) -> Result<Vec<(String, String)>> {
    if recursive {
        let prefix = &from.dir_key;
        let (objects, _) = list_all(transfer, &from.bucket, prefix, None)?;
        return Ok(objects.into_iter().map(|o| (o.key.clone(), format!("{}{}", to.dir_key, &o.key[prefix.len()..]))).collect());
    }
    let name = from.key.rsplit('/').next().unwrap_or(&from.key);
    let key = if to.is_prefix { format!("{}{name}", to.key) } else { to.key.clone() };
    Ok(vec![(from.key.clone(), key)])
}

#[cfg(test)]
mod tests {
    use super::*;


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
