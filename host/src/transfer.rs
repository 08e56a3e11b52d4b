//! The transfer component as the host sees it. The component may reach
//! only the profile's S3 endpoint, and touch only the files the user
//! named: the host opens them and passes them in as `source`/`sink`
//! resources (it has no filesystem import at all).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use wasmtime::component::{HasSelf, Resource};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, InputStream, OutputStream, Pollable, StreamError, StreamResult};
use tokio::sync::oneshot;
use wasmtime_wasi::runtime::poll_noop;

use crate::config::AddressingStyle;
use crate::egress::{AllowedHost, EgressPolicy};
use crate::file_md5::{ended_early, md5_of_prefix, md5_of_span, Md5Result, PrefixMd5};
use crate::progress::Progress;
use crate::instance::{CallError, ComponentError, Instance};
use crate::runtime::{Grant, HostState, Runtime};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "transfer-component",
    require_store_data_send: true,
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "lakeport:plugins/files.source": FileSource,
        "lakeport:plugins/files.sink": FileSink,
        "lakeport:plugins/files.pending-digest": PendingDigest,
    },
    // These make resources; a full resource table is a trap, not an answer.
    imports: {
        "lakeport:plugins/files.[method]pending-digest.subscribe": trappable,
        "lakeport:plugins/files.[method]source.md5": trappable,
        "lakeport:plugins/files.[method]sink.md5": trappable,
    },
});

use self::lakeport::plugins::{credential_source, files};
pub use exports::lakeport::plugins::transfer::{
    Addressing, BatchOutcome, ClientConfig, DownloadResult, ListPage, ObjectInfo, ObjectSummary, S3Location, S3Refusal, TransferError,
    UploadOptions, UploadResult, UploadSummary, VerifiedBy,
};
pub use self::lakeport::plugins::types::Credentials;

const NAME: &str = "transfer";

impl ComponentError for TransferError {
    /// The component's message, which already says what to do.
    fn message(&self) -> String {
        match self {
            TransferError::Transport(m)
            | TransferError::HostDenied(m)
            | TransferError::InvalidResponse(m)
            | TransferError::Integrity(m)
            | TransferError::LocalIo(m)
            | TransferError::InvalidInput(m) => m.clone(),
            TransferError::S3(r) => r.message.clone(),
        }
    }
}

/// Bytes a file stream reads or writes per system call.
const FILE_CHUNK: usize = 1 << 20;

/// An MD5 of a file span, hashed off the component's thread (with other
/// spans, see `file_md5`) while the component goes on moving bytes.
pub struct PendingDigest(DigestState);

enum DigestState {
    Running(oneshot::Receiver<Md5Result>),
    Done(Md5Result),
}

impl PendingDigest {
    /// A digest being computed, or why it could not start.
    fn new(started: std::result::Result<oneshot::Receiver<Md5Result>, String>) -> Self {
        PendingDigest(match started {
            Ok(receiver) => DigestState::Running(receiver),
            Err(e) => DigestState::Done(Err(e)),
        })
    }
}

/// What the hasher's answer, or its absence, means.
fn digest_outcome(received: std::result::Result<Md5Result, oneshot::error::RecvError>) -> Md5Result {
    received.unwrap_or_else(|_| Err("the MD5 of the file was never computed (its hashing thread ended)".into()))
}

#[wasmtime_wasi::async_trait]
impl Pollable for PendingDigest {
    async fn ready(&mut self) {
        if let DigestState::Running(receiver) = &mut self.0 {
            self.0 = DigestState::Done(digest_outcome(receiver.await));
        }
    }
}

/// A span of a file as a `wasi:io` input stream: the component splices it
/// into a request body, and the bytes never enter its memory.
struct FileRangeReader {
    file: File,
    name: String,
    offset: u64,
    end: u64,
    progress: Arc<Progress>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for FileRangeReader {
    async fn ready(&mut self) {}
}

impl InputStream for FileRangeReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.offset >= self.end {
            return Err(StreamError::Closed);
        }
        let want = size.min(FILE_CHUNK).min((self.end - self.offset) as usize);
        let mut buf = vec![0u8; want];
        let n = loop {
            match self.file.read_at(&mut buf, self.offset) {
                Ok(0) => return Err(StreamError::LastOperationFailed(wasmtime::Error::msg(ended_early(&self.name, self.offset, self.end)))),
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StreamError::LastOperationFailed(wasmtime::Error::msg(format!("reading {}: {e}", self.name)))),
            }
        };
        buf.truncate(n);
        self.offset += n as u64;
        self.progress.add(n as u64);
        Ok(Bytes::from(buf))
    }
}

/// A `wasi:io` output stream writing a file from an offset on: the
/// component splices a response body into it.
struct FileRangeWriter {
    file: File,
    name: String,
    offset: u64,
    progress: Arc<Progress>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for FileRangeWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for FileRangeWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.file
            .write_all_at(&bytes, self.offset)
            .map_err(|e| StreamError::LastOperationFailed(wasmtime::Error::msg(format!("writing {}: {e}", self.name))))?;
        self.offset += bytes.len() as u64;
        self.progress.add(bytes.len() as u64);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(FILE_CHUNK)
    }
}

/// A file (or stdin) the user named as the data of an upload. Opened on the
/// first read, so a batch of thousands holds only the files in flight open.
pub struct FileSource {
    name: String,
    path: Option<PathBuf>,
    /// False for files found by walking a directory: a link there is not
    /// the user's choice, so one that appears after the walk is refused.
    follow_links: bool,
    size: Option<u64>,
    file: Option<File>,
    /// For stdin: where the next read must start.
    position: u64,
    progress: Arc<Progress>,
}

impl FileSource {
    /// A file the user named (a link to a file is followed, as `cp` does).
    pub fn file(path: &Path, progress: Arc<Progress>) -> Result<Self> {
        Self::at(path, true, progress)
    }

    /// A file found under a directory given to `--recursive`.
    pub fn walked(path: &Path, progress: Arc<Progress>) -> Result<Self> {
        Self::at(path, false, progress)
    }

    fn at(path: &Path, follow_links: bool, progress: Arc<Progress>) -> Result<Self> {
        let meta = if follow_links { std::fs::metadata(path) } else { std::fs::symlink_metadata(path) };
        let meta = meta.map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        if !meta.is_file() {
            anyhow::bail!("{} is not a regular file", path.display());
        }
        Ok(FileSource {
            name: path.display().to_string(),
            path: Some(path.to_path_buf()),
            follow_links,
            size: Some(meta.len()),
            file: None,
            position: 0,
            progress,
        })
    }

    pub fn stdin(progress: Arc<Progress>) -> Self {
        FileSource { name: "stdin".into(), path: None, follow_links: true, size: None, file: None, position: 0, progress }
    }

    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// The file, opened on first use.
    fn opened(&mut self) -> std::result::Result<&File, String> {
        let Some(path) = &self.path else { return Err(format!("{} is a pipe: it is read in order, not by range", self.name)) };
        if self.file.is_none() {
            let file = if self.follow_links {
                File::open(path).map_err(|e| format!("opening {}: {e}", self.name))?
            } else {
                use std::os::unix::fs::OpenOptionsExt;
                // O_NONBLOCK: a FIFO swapped in since the walk must not hang the open.
                let file = File::options().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path).map_err(|e| match e.raw_os_error() {
                    Some(libc::ELOOP) => format!("{} became a symbolic link after the directory was read; links are not followed", self.name),
                    _ => format!("opening {}: {e}", self.name),
                })?;
                match file.metadata() {
                    Ok(meta) if meta.is_file() => file,
                    Ok(_) => return Err(format!("{} is no longer a regular file", self.name)),
                    Err(e) => return Err(format!("opening {}: {e}", self.name)),
                }
            };
            self.file = Some(file);
        }
        Ok(self.file.as_ref().unwrap())
    }

    /// A handle of its own on the file, for a stream or a digest.
    fn file_handle(&mut self) -> std::result::Result<File, String> {
        let name = self.name.clone();
        self.opened()?.try_clone().map_err(|e| format!("opening {name}: {e}"))
    }

    fn read(&mut self, offset: u64, len: u32) -> std::result::Result<Vec<u8>, String> {
        let mut buf = vec![0u8; len as usize];
        let filled = match self.path {
            Some(_) => {
                let file = self.opened()?;
                let mut filled = 0;
                while filled < buf.len() {
                    match file.read_at(&mut buf[filled..], offset + filled as u64) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                filled
            }
            None => {
                if offset != self.position {
                    return Err(format!("stdin is read in order: asked for byte {offset} after byte {}", self.position));
                }
                let mut stdin = std::io::stdin().lock();
                let mut filled = 0;
                while filled < buf.len() {
                    match stdin.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                self.position += filled as u64;
                filled
            }
        };
        buf.truncate(filled);
        self.progress.add(filled as u64);
        Ok(buf)
    }
}

/// Where a download goes: a temporary file of its own beside the
/// destination (see [`create_partial`]), renamed over it on commit and
/// deleted when dropped uncommitted; or stdout.
pub struct FileSink {
    name: String,
    /// The final path; none for stdout.
    target: Option<PathBuf>,
    /// The temporary file, once created.
    temp: Option<(PathBuf, File)>,
    committed: bool,
    progress: Arc<Progress>,
    /// The MD5 of the longest prefix asked for so far.
    prefix_md5: Arc<Mutex<PrefixMd5>>,
}

/// What names every temporary download file: `.NAME` + this + the hex of
/// [`PARTIAL_RANDOM_BYTES`] random bytes + [`PARTIAL_SUFFIX`].
const PARTIAL_MARK: &str = ".lakeport-";
const PARTIAL_RANDOM_BYTES: usize = 6;
const PARTIAL_SUFFIX: &str = ".partial";
/// The fixed name earlier versions used, `.NAME.lakeport-partial`.
const OLD_PARTIAL_SUFFIX: &str = ".lakeport-partial";
/// Bytes of a destination's name kept in its temporary file's name, so the
/// additions never push it past the usual 255-byte limit.
const PARTIAL_NAME_KEEP: usize = 200;

/// Whether `name` is one lakeport gives an unfinished download (now or in
/// earlier versions): such files are never uploaded by `--recursive`.
pub fn is_partial_download(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    if !name.starts_with(b".") {
        return false;
    }
    if name.ends_with(OLD_PARTIAL_SUFFIX.as_bytes()) {
        return true;
    }
    let Some(rest) = name.strip_suffix(PARTIAL_SUFFIX.as_bytes()) else { return false };
    let Some((before, random)) = rest.split_at_checked(rest.len().saturating_sub(2 * PARTIAL_RANDOM_BYTES)) else { return false };
    before.ends_with(PARTIAL_MARK.as_bytes()) && random.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// Creates the temporary file of a download to `target`, in its directory
/// (so the final rename is atomic), under a name nobody can predict, with
/// O_CREAT|O_EXCL|O_NOFOLLOW: a link or file planted at any name is never
/// written through, and two downloads to one name never share a file.
/// Mode 0600 until the download is complete and verified.
fn create_partial(target: &Path) -> std::result::Result<(PathBuf, File), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "download".into());
    let mut keep = name.len().min(PARTIAL_NAME_KEEP);
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    for _ in 0..16 {
        let mut random = [0u8; PARTIAL_RANDOM_BYTES];
        getrandom::getrandom(&mut random).map_err(|e| format!("no randomness from the OS for a temporary file name: {e}"))?;
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let temp = target.with_file_name(format!(".{}{PARTIAL_MARK}{hex}{PARTIAL_SUFFIX}", &name[..keep]));
        // Readable too: the host hashes what was written.
        let opened = File::options().read(true).write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&temp);
        match opened {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("creating {}: {e}", temp.display())),
        }
    }
    Err(format!("cannot create a temporary file beside {}: every name tried was taken", target.display()))
}

/// The mode a plain `creat(…, 0666)` would give a file: what the process's
/// umask allows (from /proc, since umask(2) cannot read it without setting it).
fn default_file_mode() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let umask = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    Some(0o666 & !u32::from_str_radix(umask.trim(), 8).ok()?)
}

impl FileSink {
    pub fn file(path: &Path, progress: Arc<Progress>) -> Self {
        FileSink {
            name: path.display().to_string(),
            target: Some(path.to_path_buf()),
            temp: None,
            committed: false,
            progress,
            prefix_md5: Arc::default(),
        }
    }

    pub fn stdout(progress: Arc<Progress>) -> Self {
        FileSink { name: "stdout".into(), target: None, temp: None, committed: false, progress, prefix_md5: Arc::default() }
    }

    fn open(&mut self) -> std::result::Result<&File, String> {
        if self.temp.is_none() {
            let target = self.target.as_ref().expect("only file sinks are opened");
            // Directories on the way are followed like any path the user gives
            // (one may be a link to another disk); only the file's own name,
            // the last part, is never followed.
            if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            }
            self.temp = Some(create_partial(target)?);
        }
        Ok(&self.temp.as_ref().unwrap().1)
    }

    /// A handle of its own on the temporary file.
    fn file_handle(&mut self) -> std::result::Result<File, String> {
        if self.target.is_none() {
            return Err("stdout is written in order, not at offsets".into());
        }
        self.open()?.try_clone().map_err(|e| format!("opening {}: {e}", self.name))
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> std::result::Result<(), String> {
        if self.target.is_none() {
            let mut out = std::io::stdout().lock();
            out.write_all(data).map_err(|e| e.to_string())?;
        } else {
            self.open()?.write_all_at(data, offset).map_err(|e| e.to_string())?;
        }
        self.progress.add(data.len() as u64);
        Ok(())
    }

    fn commit(&mut self) -> std::result::Result<(), String> {
        match self.target {
            None => std::io::stdout().flush().map_err(|e| e.to_string())?,
            Some(_) => {
                use std::os::unix::fs::PermissionsExt;
                // An empty object never wrote: the file is created now.
                let file = self.open()?;
                // Complete and verified: the mode any new file would have.
                if let Some(mode) = default_file_mode() {
                    file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())?;
                }
                file.sync_all().map_err(|e| e.to_string())?;
                let (target, (temp, _)) = (self.target.as_ref().expect("a file sink"), self.temp.as_ref().expect("opened above"));
                // rename(2) replaces whatever is at the target, a link
                // included, and never writes through it.
                std::fs::rename(temp, target).map_err(|e| format!("renaming into place: {e}"))?;
            }
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let (false, Some((temp, _))) = (self.committed, &self.temp) {
            let _ = std::fs::remove_file(temp);
        }
    }
}

impl files::Host for HostState {}

impl credential_source::Host for HostState {
    fn renew(&mut self, refused_access_key_id: String) -> std::result::Result<Credentials, String> {
        let renew = self.renew_s3_keys.as_mut().ok_or("this transfer has no way to renew its credentials")?;
        let fresh = renew(&refused_access_key_id)?;
        Ok(Credentials { access_key_id: fresh.access_key_id, secret_access_key: fresh.secret_access_key, session_token: fresh.session_token })
    }
}

impl files::HostPendingDigest for HostState {
    fn subscribe(&mut self, digest: Resource<PendingDigest>) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table(), digest)
    }

    fn get(&mut self, digest: Resource<PendingDigest>) -> Option<std::result::Result<Vec<u8>, String>> {
        let digest = match self.table().get_mut(&digest) {
            Ok(d) => d,
            Err(e) => return Some(Err(e.to_string())),
        };
        if let DigestState::Running(receiver) = &mut digest.0 {
            digest.0 = DigestState::Done(digest_outcome(poll_noop(std::pin::Pin::new(receiver))?));
        }
        match &digest.0 {
            DigestState::Done(result) => Some(result.clone().map(|d| d.to_vec())),
            DigestState::Running(_) => None,
        }
    }

    fn drop(&mut self, digest: Resource<PendingDigest>) -> wasmtime::Result<()> {
        self.table().delete(digest)?;
        Ok(())
    }
}

impl files::HostSource for HostState {
    fn name(&mut self, source: Resource<FileSource>) -> String {
        self.table().get(&source).map(|s| s.name.clone()).unwrap_or_default()
    }

    fn size(&mut self, source: Resource<FileSource>) -> Option<u64> {
        self.table().get(&source).ok().and_then(|s| s.size)
    }

    fn read(&mut self, source: Resource<FileSource>, offset: u64, len: u32) -> std::result::Result<Vec<u8>, String> {
        self.table().get_mut(&source).map_err(|e| e.to_string())?.read(offset, len)
    }

    fn open_range(&mut self, source: Resource<FileSource>, offset: u64, len: u64) -> std::result::Result<Resource<DynInputStream>, String> {
        let source = self.table().get_mut(&source).map_err(|e| e.to_string())?;
        let reader = FileRangeReader {
            file: source.file_handle()?,
            name: source.name.clone(),
            offset,
            end: offset.checked_add(len).ok_or("the range is past any file's end")?,
            progress: source.progress.clone(),
        };
        let stream: DynInputStream = Box::new(reader);
        self.table().push(stream).map_err(|e| e.to_string())
    }

    fn md5(&mut self, source: Resource<FileSource>, offset: u64, len: u64) -> wasmtime::Result<Resource<PendingDigest>> {
        let digest = match self.table().get_mut(&source) {
            Ok(source) => PendingDigest::new(source.file_handle().map(|file| md5_of_span(file, source.name.clone(), offset, len))),
            Err(e) => PendingDigest::new(Err(e.to_string())),
        };
        Ok(self.table().push(digest)?)
    }

    fn record_upload(&mut self, source: Resource<FileSource>, bucket: String, key: String, upload_id: String) {
        let Some(path) = self.table().get(&source).ok().and_then(|s| s.path.clone()) else { return };
        if let Some(note) = upload_note(&bucket, &key, &path) {
            let written = crate::paths::create_private_dir(note.parent().expect("notes live in a directory"))
                .and_then(|()| crate::paths::write_private(&note, upload_id.as_bytes()));
            if let Err(e) = written {
                crate::log::verbose(format_args!("cannot note the upload ID for --resume: {e}"));
            }
        }
    }

    fn drop(&mut self, source: Resource<FileSource>) -> wasmtime::Result<()> {
        self.table().delete(source)?;
        Ok(())
    }
}

/// Where the upload ID of a multipart upload of `path` to `bucket/key` is
/// noted while it runs: keyed by the file's path, size and modification
/// time, so a changed file is never resumed into an old upload.
fn upload_note(bucket: &str, key: &str, path: &Path) -> Option<PathBuf> {
    use sha2::{Digest, Sha256};
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    let absolute = std::path::absolute(path).ok()?;
    let digest = Sha256::digest(format!("{bucket}\n{key}\n{}\n{}\n{mtime}", absolute.display(), meta.len()).as_bytes());
    let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Some(crate::paths::cache_dir()?.join("uploads").join(name))
}

/// The upload ID noted for `path` → `bucket/key`, if an upload of it was interrupted.
fn noted_upload(bucket: &str, key: &str, path: &Path) -> Option<String> {
    let id = String::from_utf8(crate::paths::read_cache(&upload_note(bucket, key, path)?)?).ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

/// Drops the note once the upload is complete (or given up).
fn forget_upload(bucket: &str, key: &str, path: &Path) {
    if let Some(note) = upload_note(bucket, key, path) {
        let _ = std::fs::remove_file(note);
    }
}

impl files::HostSink for HostState {
    fn name(&mut self, sink: Resource<FileSink>) -> String {
        self.table().get(&sink).map(|s| s.name.clone()).unwrap_or_default()
    }

    fn random_access(&mut self, sink: Resource<FileSink>) -> bool {
        self.table().get(&sink).is_ok_and(|s| s.target.is_some())
    }

    fn write(&mut self, sink: Resource<FileSink>, offset: u64, data: Vec<u8>) -> std::result::Result<(), String> {
        self.table().get_mut(&sink).map_err(|e| e.to_string())?.write(offset, &data)
    }

    fn open_at(&mut self, sink: Resource<FileSink>, offset: u64) -> std::result::Result<Resource<DynOutputStream>, String> {
        let sink = self.table().get_mut(&sink).map_err(|e| e.to_string())?;
        let writer = FileRangeWriter { file: sink.file_handle()?, name: sink.name.clone(), offset, progress: sink.progress.clone() };
        let stream: DynOutputStream = Box::new(writer);
        self.table().push(stream).map_err(|e| e.to_string())
    }

    fn md5(&mut self, sink: Resource<FileSink>, offset: u64, len: u64) -> wasmtime::Result<Resource<PendingDigest>> {
        let digest = match self.table().get_mut(&sink) {
            Ok(sink) if offset == 0 => {
                let prefix = sink.prefix_md5.clone();
                PendingDigest::new(sink.file_handle().map(|file| md5_of_prefix(prefix, file, sink.name.clone(), len)))
            }
            Ok(sink) => PendingDigest::new(sink.file_handle().map(|file| md5_of_span(file, sink.name.clone(), offset, len))),
            Err(e) => PendingDigest::new(Err(e.to_string())),
        };
        Ok(self.table().push(digest)?)
    }

    fn commit(&mut self, sink: Resource<FileSink>) -> std::result::Result<(), String> {
        self.table().get_mut(&sink).map_err(|e| e.to_string())?.commit()
    }

    fn drop(&mut self, sink: Resource<FileSink>) -> wasmtime::Result<()> {
        self.table().delete(sink)?;
        Ok(())
    }
}

/// An instance of the transfer component with lakeport's own imports.
fn instantiate(runtime: &Runtime, grant: Grant, renew_keys: Option<crate::runtime::RenewS3Keys>) -> Result<Instance<TransferComponent>> {
    let imports: crate::instance::Imports = Box::new(|linker, state| {
        files::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
        credential_source::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
        state.renew_s3_keys = renew_keys;
        Ok(())
    });
    Instance::new(runtime, NAME, grant, Some(imports), |store, component, linker| TransferComponent::instantiate(store, component, linker))
}

/// The transfer component's reading of `s3://` locations, before there is
/// a client (which needs the buckets named): an instance that may reach no
/// host.
pub struct Locations {
    instance: Instance<TransferComponent>,
}

impl Locations {
    pub fn new(runtime: &Runtime) -> Result<Self> {
        Ok(Locations { instance: instantiate(runtime, Grant::http_to(EgressPolicy::new(Vec::new(), None)), None)? })
    }

    /// None when `text` is not an `s3://` URL (a local path, `-`).
    pub fn parse(&mut self, text: &str) -> Result<Option<S3Location>> {
        Ok(self.instance.call(|b, store| b.lakeport_plugins_transfer().call_parse_location(store, text))?)
    }

    /// An `s3://` URL naming a bucket, the key optional.
    pub fn require(&mut self, text: &str) -> Result<S3Location> {
        self.parse(text)?.ok_or_else(|| anyhow!("'{text}' is not an s3://bucket/key URL"))
    }

    /// An `s3://` URL naming an object.
    pub fn object(&mut self, text: &str) -> Result<S3Location> {
        let url = self.require(text)?;
        if url.key.is_empty() {
            bail!("'{text}' names a bucket, not an object: add the key (s3://bucket/key)");
        }
        Ok(url)
    }
}

impl VerifiedBy {
    /// As `lakeport s3 cp` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifiedBy::Md5 => "md5",
            VerifiedBy::MultipartEtag => "multipart-etag",
            VerifiedBy::Size => "size",
        }
    }
}

impl S3Location {
    /// `key` in this location's bucket, as a URL.
    pub fn show(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// A transfer client: one component instance with one S3 client in it.
pub struct Transfer {
    instance: Instance<TransferComponent>,
    client: wasmtime::component::ResourceAny,
}

/// A transfer's answer: the value, or the S3 server's (or the component's) error.
pub type Answer<T> = std::result::Result<T, CallError<TransferError>>;

/// The component's `client` resource, as a call into it sees it.
type ClientApi<'a> = exports::lakeport::plugins::transfer::GuestClient<'a>;

impl Transfer {
    /// An instance that may reach only the hosts of `policy`. A transfer is
    /// one call however large, so the per-call limit is generous; stalled
    /// connections end by the HTTP timeouts instead.
    pub fn new(runtime: &Runtime, policy: EgressPolicy, config: &ClientConfig, renew_keys: Option<crate::runtime::RenewS3Keys>) -> Result<Self> {
        let parts = u64::from(config.concurrency.unwrap_or(4)) * config.part_size.unwrap_or(16 << 20);
        let grant = Grant {
            max_memory_bytes: (256 << 20).max(3 * parts + (64 << 20)) as usize,
            time_limit: Duration::from_secs(30 * 24 * 3600),
            ..Grant::http_to(policy)
        };
        let mut instance = instantiate(runtime, grant, renew_keys)?;
        let client = instance.call(|b, store| b.lakeport_plugins_transfer().client().call_open(store, config))?;
        Ok(Transfer { instance, client })
    }

    /// A transfer client for the profile's S3 endpoint and credentials, that
    /// may reach the endpoint (and, with virtual addressing, `buckets` on it).
    pub fn for_profile(
        ctx: &crate::tokens::TokenContext<'_>,
        buckets: &[&str],
        concurrency: Option<u32>,
        part_size: Option<u64>,
    ) -> Result<Transfer> {
        let endpoint = ctx.profile.require("s3_endpoint", &ctx.profile.s3_endpoint, &ctx.name)?.to_string();
        let region = ctx.profile.region.clone().unwrap_or_else(|| "us-east-1".into());
        let addressing = match ctx.profile.addressing_style {
            None | Some(AddressingStyle::Path) => Addressing::Path,
            Some(AddressingStyle::Virtual) => Addressing::VirtualHosted,
        };
        let mut allowed = vec![AllowedHost::from_url(&endpoint).with_context(|| format!("profile '{}': bad s3_endpoint", ctx.name))?];
        if addressing == Addressing::VirtualHosted {
            // bucket.endpoint-host, for the buckets this command names only.
            let (scheme, host) = endpoint.split_once("://").ok_or_else(|| anyhow!("profile '{}': bad s3_endpoint", ctx.name))?;
            for bucket in buckets {
                allowed.push(AllowedHost::from_url(&format!("{scheme}://{bucket}.{host}"))?);
            }
        }
        let creds = ctx.s3_credentials()?;
        let client = ClientConfig {
            endpoint,
            region,
            addressing,
            credentials: Credentials {
                access_key_id: creds.access_key_id,
                secret_access_key: creds.secret_access_key,
                session_token: creds.session_token,
            },
            concurrency,
            part_size,
            multipart_threshold: None,
            max_attempts: None,
        };
        let renewal = crate::creds::Renewal::of(ctx)?;
        let renew_keys: crate::runtime::RenewS3Keys = Box::new(move |refused| renewal.renew(refused).map_err(|e| format!("{e:#}")));
        Self::new(ctx.runtime, EgressPolicy::new(allowed, ctx.ca_file()), &client, Some(renew_keys))
    }

    /// Calls a method of the component's `client` resource that has no error of its own.
    fn on_client<T>(&mut self, work: impl FnOnce(ClientApi<'_>, &mut wasmtime::Store<HostState>, wasmtime::component::ResourceAny) -> wasmtime::Result<T>) -> Result<T> {
        let client = self.client;
        self.instance.run(|b, store| work(b.lakeport_plugins_transfer().client(), store, client))
    }

    /// Calls a method of the component's `client` resource that answers with a value or a transfer error.
    fn answer<T>(
        &mut self,
        work: impl FnOnce(ClientApi<'_>, &mut wasmtime::Store<HostState>, wasmtime::component::ResourceAny) -> wasmtime::Result<std::result::Result<T, TransferError>>,
    ) -> Answer<T> {
        self.on_client(work).map_err(CallError::Stopped)?.map_err(CallError::Refused)
    }

    pub fn source(&mut self, source: FileSource) -> Result<Resource<FileSource>> {
        Ok(self.instance.state().table().push(source)?)
    }

    pub fn sink(&mut self, sink: FileSink) -> Result<Resource<FileSink>> {
        Ok(self.instance.state().table().push(sink)?)
    }

    pub fn list(&mut self, bucket: &str, prefix: &str, delimiter: Option<&str>, continuation: Option<&str>) -> Answer<ListPage> {
        self.answer(|c, store, me| c.call_list_objects(store, me, bucket, prefix, delimiter, continuation, None))
    }

    pub fn stat(&mut self, bucket: &str, key: &str) -> Answer<ObjectInfo> {
        self.answer(|c, store, me| c.call_stat(store, me, bucket, key))
    }

    /// Uploads one file (or stdin). With `options.resume`, a multipart
    /// upload of the same file noted as interrupted is continued; the note
    /// is dropped once the upload is complete, or given up without keeping
    /// its parts.
    pub fn put(&mut self, source: FileSource, bucket: &str, key: &str, options: &UploadOptions) -> Answer<UploadResult> {
        let path = source.path.clone();
        let mut options = options.clone();
        if let (true, Some(path)) = (options.resume, &path) {
            options.resume_upload_id = noted_upload(bucket, key, path);
        }
        let source = self.source(source).map_err(CallError::Stopped)?;
        let result = self.answer(|c, store, me| c.call_put(store, me, source, bucket, key, &options));
        let given_up = matches!(result, Err(CallError::Refused(_))) && !options.keep_on_failure;
        if let (true, Some(path)) = (result.is_ok() || given_up, &path) {
            forget_upload(bucket, key, path);
        }
        result
    }

    pub fn get(&mut self, bucket: &str, key: &str, sink: FileSink) -> Answer<DownloadResult> {
        let sink = self.sink(sink).map_err(CallError::Stopped)?;
        self.answer(|c, store, me| c.call_get(store, me, bucket, key, sink))
    }

    pub fn put_many(&mut self, items: Vec<(FileSource, String)>, bucket: &str, options: &UploadOptions) -> Result<Vec<BatchOutcome>> {
        let mut handles = Vec::with_capacity(items.len());
        for (source, key) in items {
            handles.push((self.source(source)?, key));
        }
        self.on_client(|c, store, me| c.call_put_many(store, me, &handles, bucket, options))
    }

    pub fn get_many(&mut self, bucket: &str, items: Vec<(String, Option<u64>, FileSink)>) -> Result<Vec<BatchOutcome>> {
        let mut handles = Vec::with_capacity(items.len());
        for (key, size, sink) in items {
            handles.push((key, size, self.sink(sink)?));
        }
        self.on_client(|c, store, me| c.call_get_many(store, me, bucket, &handles))
    }

    pub fn delete(&mut self, bucket: &str, key: &str) -> Answer<()> {
        self.answer(|c, store, me| c.call_delete(store, me, bucket, key))
    }

    pub fn delete_many(&mut self, bucket: &str, keys: &[String]) -> Answer<Vec<(String, TransferError)>> {
        self.answer(|c, store, me| c.call_delete_many(store, me, bucket, keys))
    }

    pub fn make_bucket(&mut self, bucket: &str) -> Answer<()> {
        self.answer(|c, store, me| c.call_make_bucket(store, me, bucket))
    }

    pub fn remove_bucket(&mut self, bucket: &str) -> Answer<()> {
        self.answer(|c, store, me| c.call_remove_bucket(store, me, bucket))
    }

    pub fn copy(&mut self, source_bucket: &str, source_key: &str, bucket: &str, key: &str) -> Answer<String> {
        self.answer(|c, store, me| c.call_copy(store, me, source_bucket, source_key, bucket, key))
    }

    pub fn presign(&mut self, method: &str, bucket: &str, key: &str, expires: u32) -> Answer<String> {
        self.answer(|c, store, me| c.call_presign(store, me, method, bucket, key, expires))
    }

    pub fn list_uploads(&mut self, bucket: &str, prefix: &str) -> Answer<Vec<UploadSummary>> {
        self.answer(|c, store, me| c.call_list_uploads(store, me, bucket, prefix))
    }

    pub fn abort_upload(&mut self, bucket: &str, key: &str, upload_id: &str) -> Answer<()> {
        self.answer(|c, store, me| c.call_abort_upload(store, me, bucket, key, upload_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn temporary_download_names_are_unpredictable_and_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data.h5");
        let (a, _) = create_partial(&target).unwrap();
        let (b, _) = create_partial(&target).unwrap();
        assert_ne!(a, b, "two downloads to one name get two files");
        for temp in [&a, &b] {
            let name = temp.file_name().unwrap();
            assert!(name.to_str().unwrap().starts_with(".data.h5.lakeport-"), "{name:?}");
            assert!(is_partial_download(name), "{name:?}");
        }
        assert!(is_partial_download(OsStr::new(".data.h5.lakeport-partial")), "earlier versions' name");
        for name in ["data.h5", ".data.h5", "x.lakeport-0123456789ab.partial", ".x.lakeport-0123456789AB.partial", ".x.lakeport-0123.partial", ".x.partial"] {
            assert!(!is_partial_download(OsStr::new(name)), "{name}");
        }
        let long = dir.path().join("ü".repeat(127));
        let (temp, _) = create_partial(&long).expect("a 254-byte name still gets a temporary file");
        assert!(is_partial_download(temp.file_name().unwrap()));
    }
}
