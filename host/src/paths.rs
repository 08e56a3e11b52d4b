//! Where lakeport keeps state, following the XDG base directory rules, and
//! when a file found there may be believed.

use std::path::{Path, PathBuf};

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

fn xdg(var: &str, fallback: &str) -> Option<PathBuf> {
    match std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => Some(dir),
        _ => home().map(|h| h.join(fallback)),
    }
}

/// `$XDG_CACHE_HOME/lakeport` (default `~/.cache/lakeport`): compiled
/// components and cached credentials.
pub fn cache_dir() -> Option<PathBuf> {
    xdg("XDG_CACHE_HOME", ".cache").map(|d| d.join("lakeport"))
}

/// `$XDG_CONFIG_HOME/lakeport` (default `~/.config/lakeport`).
pub fn config_dir() -> Option<PathBuf> {
    xdg("XDG_CONFIG_HOME", ".config").map(|d| d.join("lakeport"))
}

/// `$XDG_DATA_HOME/lakeport` (default `~/.local/share/lakeport`): the
/// encrypted token store.
pub fn data_dir() -> Option<PathBuf> {
    xdg("XDG_DATA_HOME", ".local/share").map(|d| d.join("lakeport"))
}

/// Writes a file readable by its owner only (0600), atomically: a reader
/// never sees half a file, and a crash leaves the old one.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().expect("files live in a directory");
    create_private_dir(dir)?;
    let tmp = dir.join(format!(".{}.{}.tmp", path.file_name().unwrap().to_string_lossy(), std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    written.and_then(|()| std::fs::rename(&tmp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Creates a directory (and parents) readable by its owner only.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let perms = std::fs::metadata(dir)?.permissions();
    if perms.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// An exclusive lock on one profile's `kind` of cached state (`tokens`,
/// `creds`) shared by all lakeport processes: `<cache>/<kind>/<profile>.lock`,
/// held until the file is dropped. Where both are needed they are taken
/// `creds` first, then `tokens` (STS needs a token; a token never needs S3
/// keys), so two processes never wait on each other.
pub fn profile_lock(kind: &str, profile: &str) -> anyhow::Result<std::fs::File> {
    use anyhow::Context;
    let dir = cache_dir().map(|d| d.join(kind)).ok_or_else(|| anyhow::anyhow!("cannot find the cache directory: set XDG_CACHE_HOME or HOME"))?;
    create_private_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{profile}.lock"));
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    lock.lock().with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(lock)
}

/// Why a file lakeport keeps (a cache, the token store) was not read.
#[derive(Debug)]
pub enum Untrusted {
    /// Someone other than this user could have written it: what is wrong
    /// and how to fix it, in one sentence.
    Exposed(String),
    /// It could not be read at all.
    Unreadable(PathBuf, std::io::Error),
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Exposed(why) => f.write_str(why),
            Untrusted::Unreadable(path, e) => write!(f, "cannot read {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for Untrusted {}

/// The bytes of a file lakeport wrote for itself (none if it is not there),
/// only if nobody else could have written them (see [`open_trusted`]).
pub fn read_trusted(path: &Path) -> Result<Option<Vec<u8>>, Untrusted> {
    use std::io::Read;
    let Some(mut file) = open_trusted(path)? else { return Ok(None) };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| Untrusted::Unreadable(path.to_path_buf(), e))?;
    Ok(Some(bytes))
}

/// A file lakeport wrote for itself, opened for reading (none if it is not
/// there), only if nobody else could have written it: it must be a regular
/// file, not a link, and both it and its directory must belong to this user
/// (or root, who can change any file anyway) and be writable by no group or
/// other user. The file is checked on the descriptor returned, not by name;
/// its directory's ancestors are not checked.
pub fn open_trusted(path: &Path) -> Result<Option<std::fs::File>, Untrusted> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // The directory may be a link (a cache moved to another disk): what
    // matters is who can write the directory it leads to.
    match std::fs::metadata(dir) {
        Ok(meta) => exposed(dir, &meta, "chmod 700")?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Untrusted::Unreadable(dir.to_path_buf(), e)),
    }
    // O_NONBLOCK: a FIFO put there must not hang the open.
    let opened = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Untrusted::Exposed(format!("{} is a symbolic link, where lakeport keeps a file of its own: remove it", path.display())))
        }
        Err(e) => return Err(Untrusted::Unreadable(path.to_path_buf(), e)),
    };
    let meta = file.metadata().map_err(|e| Untrusted::Unreadable(path.to_path_buf(), e))?;
    if !meta.is_file() {
        return Err(Untrusted::Exposed(format!("{} is not a regular file: remove it", path.display())));
    }
    exposed(path, &meta, "chmod go-w")?;
    Ok(Some(file))
}

/// A cache file's bytes, if it is there and trusted; an untrusted one is
/// ignored (it is only a cache: lakeport makes a new one) and `-v` says why.
pub fn read_cache(path: &Path) -> Option<Vec<u8>> {
    read_trusted(path).unwrap_or_else(|e| {
        crate::log::verbose(format_args!("ignoring the cache file {}: {e}", path.display()));
        None
    })
}

/// Whether another user (not root) owns `path`, or a group or other users
/// may write it; `chmod` is the command that fixes the mode.
fn exposed(path: &Path, meta: &std::fs::Metadata, chmod: &str) -> Result<(), Untrusted> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(Untrusted::Exposed(format!(
            "{} is owned by uid {}, not by you (uid {me}): remove it, or `chown` it to yourself",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Untrusted::Exposed(format!(
            "{} can be written by other users (mode {:03o}): run `{chmod} {}`",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn refusal(path: &Path) -> String {
        match read_trusted(path) {
            Err(Untrusted::Exposed(why)) => why,
            other => panic!("{} should not be trusted: {other:?}", path.display()),
        }
    }

    #[test]
    fn private_files_are_read_and_missing_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("private/entry.json");
        write_private(&file, b"{}").unwrap();
        assert_eq!(read_trusted(&file).unwrap().unwrap(), b"{}");
        assert!(read_trusted(&dir.path().join("private/absent")).unwrap().is_none());
        assert!(read_trusted(&dir.path().join("no-dir/absent")).unwrap().is_none());
        // Read-only for others is fine; only writing is a threat.
        mode(&file, 0o644);
        mode(file.parent().unwrap(), 0o755);
        assert!(read_trusted(&file).unwrap().is_some());
    }

    #[test]
    fn a_file_or_directory_others_can_write_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("private/entry.json");
        write_private(&file, b"{}").unwrap();
        for m in [0o620, 0o602, 0o666] {
            mode(&file, m);
            let why = refusal(&file);
            assert!(why.contains("can be written by other users") && why.contains("chmod go-w"), "{why}");
        }
        mode(&file, 0o600);
        for m in [0o770, 0o707, 0o1777] {
            mode(file.parent().unwrap(), m);
            let why = refusal(&file);
            assert!(why.contains(&format!("run `chmod 700 {}`", file.parent().unwrap().display())), "{why}");
        }
        mode(file.parent().unwrap(), 0o700);
        assert!(read_trusted(&file).unwrap().is_some());
    }

    #[test]
    fn a_file_or_directory_of_another_user_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("private/entry.json");
        write_private(&file, b"{}").unwrap();
        std::os::unix::fs::chown(&file, Some(65534), None).expect("giving a file to another user (the tests run as root)");
        assert!(refusal(&file).contains("owned by uid 65534"));
        std::os::unix::fs::chown(&file, Some(unsafe { libc::geteuid() }), None).unwrap();
        assert!(read_trusted(&file).unwrap().is_some());
        std::os::unix::fs::chown(file.parent().unwrap(), Some(65534), None).unwrap();
        assert!(refusal(&file).contains("owned by uid 65534"));
    }

    #[test]
    fn links_and_other_special_files_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("private/entry.json");
        write_private(&file, b"{}").unwrap();
        let link = dir.path().join("private/link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(refusal(&link).contains("symbolic link"));
        let fifo = dir.path().join("private/fifo");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        assert!(refusal(&fifo).contains("not a regular file"), "no hang on a FIFO");
    }
}
