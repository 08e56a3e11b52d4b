//! Where lakeport keeps state, following the XDG base directory rules.

use std::path::PathBuf;

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
