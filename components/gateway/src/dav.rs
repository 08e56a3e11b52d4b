//! The WebDAV subset real clients (rclone's `webdav` backend, davix,
//! curl) need, on an S3 backend: `PROPFIND` Depth 0 and 1, `MKCOL`,
//! `COPY`, `MOVE`, `DELETE` of a collection, and `OPTIONS`.
//!
//! S3 has objects and key prefixes, not directories: a path ending in `/`
//! (or a bucket) is a collection, the keys under its prefix; `MKCOL`
//! writes the zero-byte `dir/` marker object that S3 consoles also use.
//!
//! Each WebDAV request is a few backend requests in a row (a HEAD, a
//! listing page, a copy, a delete). [`Operation::step`] is that sequence
//! as a state machine: given the backend's last reply it says what to send
//! next or what to answer. The component signs and sends; nothing here
//! does I/O.

use std::collections::BTreeSet;

use lakeport_sigv4::encoding::{uri_encode, uri_encode_into};

use crate::proxy::{LocalAnswer, Plan};
use crate::scopes::{Denied, ResourcePath};

/// What `OPTIONS` and a refused method name as served.
pub const ALLOW: &str = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, MKCOL, COPY, MOVE";

/// The most a backend answer read into the component may hold (a
/// listing page of 1000 keys of 1 KiB is about 1.3 MiB).
pub const MAX_REPLY_BYTES: usize = 8 << 20;

/// Entries in one `207` answer, and keys one collection `DELETE` removes:
/// beyond, the answer is `507` rather than an unbounded body.
pub const MAX_ENTRIES: usize = 100_000;

/// S3 refuses `CopyObject` of larger sources: those are copied as a
/// multipart upload of `UploadPartCopy` ranges.
pub const MAX_COPY_BYTES: u64 = 5 << 30;

/// The range one `UploadPartCopy` copies: within S3's 5 GiB a part, and
/// 10 000 of them reach past S3's 5 TiB object limit.
pub const COPY_PART_BYTES: u64 = 1 << 30;

/// A backend answer, read whole (bounded by [`MAX_REPLY_BYTES`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Sign and send this, then call [`Operation::step`] with the reply.
    Send(Plan),
    /// The same, with this body (a CompleteMultipartUpload document).
    SendWith(Plan, Vec<u8>),
    /// Give this answer; the operation is over.
    Answer(LocalAnswer),
}

/// `200` to `OPTIONS`: WebDAV class 1 and the methods served. Given
/// without a token: it says nothing about any object.
pub fn options() -> LocalAnswer {
    LocalAnswer {
        status: 200,
        headers: vec![("dav".into(), "1".into()), ("allow".into(), ALLOW.into()), ("ms-author-via".into(), "DAV".into())],
        body: String::new(),
    }
}

/// `PROPFIND` without a finite depth: RFC 4918 §9.1 lets a server refuse
/// `Depth: infinity` (and a missing Depth, which means it).
pub fn infinite_depth() -> LocalAnswer {
    LocalAnswer {
        status: 403,
        headers: vec![("content-type".into(), "application/xml; charset=utf-8".into())],
        body: "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n".into(),
    }
}

/// One WebDAV request in progress.
#[derive(Debug)]
pub enum Operation {
    Propfind(Propfind),
    Mkcol(Mkcol),
    DeleteTree(DeleteTree),
    Transfer(Transfer),
}

impl Operation {
    /// `PROPFIND` of `path` with Depth 0 or 1 (`depth_one`).
    pub fn propfind(path: &ResourcePath, depth_one: bool) -> Operation {
        let (bucket, key) = split(path);
        Operation::Propfind(Propfind { bucket, key, depth_one, stage: PropfindStage::Start, out: Multistatus::new(), prefix: String::new() })
    }

    /// `MKCOL` of `path`; `create_only`: the caller may create, not replace.
    pub fn mkcol(path: &ResourcePath, create_only: bool) -> Operation {
        let (bucket, key) = split(path);
        Operation::Mkcol(Mkcol { bucket, marker: collection_prefix(&key), create_only, stage: MkcolStage::Start })
    }

    /// `DELETE` of the collection `path` (its key ends in `/`): every key
    /// under it, then the markers of it and its sub-collections.
    pub fn delete_tree(path: &ResourcePath) -> Operation {
        let (bucket, key) = split(path);
        let prefix = collection_prefix(&key);
        Operation::DeleteTree(DeleteTree { bucket, prefix, after: None, more: true, pending: Vec::new(), dirs: BTreeSet::new(), deleted: 0, stage: DeleteStage::Start })
    }

    /// `COPY` (or `MOVE`, `remove_source`) of the object at `source` to
    /// `destination`. `overwrite`: the client's `Overwrite` (`T` unless
    /// `F`); `if_exists`: the refusal to give when the destination exists
    /// and the caller may only create it (`storage.create` alone).
    pub fn transfer(source: &ResourcePath, destination: &ResourcePath, remove_source: bool, overwrite: bool, if_exists: Option<LocalAnswer>) -> Operation {
        Operation::Transfer(Transfer {
            source: split(source),
            destination: split(destination),
            remove_source,
            overwrite,
            if_exists,
            destination_existed: false,
            size: 0,
            content_type: None,
            upload_id: None,
            etags: Vec::new(),
            failure: None,
            stage: TransferStage::Start,
        })
    }

    /// The next step, given the reply to the last [`Step::Send`] (`None`
    /// at the start).
    pub fn step(&mut self, reply: Option<Reply>) -> Step {
        let reply = reply.unwrap_or_default();
        match self {
            Operation::Propfind(p) => p.step(reply),
            Operation::Mkcol(m) => m.step(reply),
            Operation::DeleteTree(d) => d.step(reply),
            Operation::Transfer(t) => t.step(reply),
        }
    }
}

/// (bucket, key) of a path; the key is `""` for the bucket itself.
fn split(path: &ResourcePath) -> (String, String) {
    (path.bucket().unwrap_or_default().to_string(), path.key().unwrap_or_default())
}

/// `key` as a collection's prefix: `""` (the bucket) or ending in `/`.
fn collection_prefix(key: &str) -> String {
    if key.is_empty() || key.ends_with('/') {
        key.to_string()
    } else {
        format!("{key}/")
    }
}

fn head(bucket: &str, key: &str) -> Plan {
    Plan::backend("HEAD", ResourcePath::object(bucket, key), Vec::new(), Vec::new())
}

fn delete(bucket: &str, key: &str) -> Plan {
    Plan::backend("DELETE", ResourcePath::object(bucket, key), Vec::new(), Vec::new())
}

/// ListObjectsV2 of `prefix`, one level (`delimiter`) or all keys below,
/// `max_keys` at most, resuming with `token` or after `start_after`.
fn list(bucket: &str, prefix: &str, delimiter: bool, max_keys: Option<u32>, token: Option<&str>, start_after: Option<&str>) -> Plan {
    let mut query = vec![("list-type".to_string(), "2".to_string()), ("prefix".to_string(), prefix.to_string())];
    if delimiter {
        query.push(("delimiter".into(), "/".into()));
    }
    if let Some(n) = max_keys {
        query.push(("max-keys".into(), n.to_string()));
    }
    if let Some(t) = token {
        query.push(("continuation-token".into(), t.to_string()));
    }
    if let Some(a) = start_after {
        query.push(("start-after".into(), a.to_string()));
    }
    Plan::backend("GET", ResourcePath::object(bucket, ""), query, Vec::new())
}

/// A backend refusal or failure as the client's answer.
pub(crate) fn backend_failed(reply: &Reply, doing: &str) -> LocalAnswer {
    let code = std::str::from_utf8(&reply.body)
        .ok()
        .and_then(|t| lakeport_xml::parse_document(t).ok())
        .and_then(|e| e.text_of("Code").map(|c| lakeport_xml::clean(c, 64)))
        .filter(|c| !c.is_empty());
    let said = code.map(|c| format!(" ({c})")).unwrap_or_default();
    match reply.status {
        404 => LocalAnswer::text(404, format!("not found{said}")),
        403 => LocalAnswer::text(403, format!("the storage backend refused {doing}{said}")),
        s => LocalAnswer::text(502, format!("the storage backend answered {s} to {doing}{said}")),
    }
}

/// `204`: done, no body (RFC 9110 forbids one).
fn no_content() -> LocalAnswer {
    LocalAnswer { status: 204, headers: Vec::new(), body: String::new() }
}

fn ok(reply: &Reply) -> bool {
    (200..300).contains(&reply.status)
}

/// One ListObjectsV2 page.
#[derive(Debug, Default, PartialEq, Eq)]
struct Page {
    objects: Vec<Listed>,
    prefixes: Vec<String>,
    next: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
struct Listed {
    key: String,
    size: u64,
    modified: Option<i64>,
    etag: Option<String>,
}

fn parse_page(body: &[u8]) -> Result<Page, LocalAnswer> {
    let bad = || LocalAnswer::bad_gateway("its listing is not a ListObjectsV2 answer");
    let text = std::str::from_utf8(body).map_err(|_| bad())?;
    let root = lakeport_xml::parse_document(text).map_err(|_| bad())?;
    if root.name != "ListBucketResult" {
        return Err(bad());
    }
    let mut page = Page::default();
    for c in root.children_named("Contents") {
        let key = c.text_of("Key").ok_or_else(bad)?;
        page.objects.push(Listed {
            // Keys are not trimmed: spaces at either end belong to them.
            key: c.child("Key").map(|k| k.text.clone()).unwrap_or_else(|| key.to_string()),
            size: c.text_of("Size").and_then(|s| s.parse().ok()).ok_or_else(bad)?,
            modified: c.text_of("LastModified").and_then(|t| lakeport_calendar::parse_date_time(t, lakeport_calendar::DateTimeForm::S3)),
            etag: c.text_of("ETag").filter(|e| !e.is_empty()).map(String::from),
        });
    }
    for p in root.children_named("CommonPrefixes") {
        page.prefixes.push(p.child("Prefix").map(|k| k.text.clone()).ok_or_else(bad)?);
    }
    if root.text_of("IsTruncated") == Some("true") {
        page.next = Some(root.text_of("NextContinuationToken").filter(|t| !t.is_empty()).ok_or_else(bad)?.to_string());
    }
    Ok(page)
}

/// Whether a collection `marker` (`dir/`) exists, and an object named
/// like it without the slash, asked of the listing one level up
/// (`prefix=dir`, `delimiter=/`): there `dir/` is a common prefix whether
/// the marker is an object (S3) or an empty directory (a file-system
/// backend such as s3s-fs, whose HEAD of a directory fails).
#[derive(Debug)]
struct Probe {
    bucket: String,
    marker: String,
}

/// What a [`Probe`] page says.
enum Probed {
    Found { collection: bool, object: bool },
    /// Not on this page, perhaps on the next (its continuation token).
    Next(String),
}

impl Probe {
    fn request(&self, token: Option<&str>) -> Step {
        Step::Send(list(&self.bucket, self.marker.trim_end_matches('/'), true, None, token, None))
    }

    fn check(&self, reply: &Reply) -> Result<Probed, LocalAnswer> {
        if !ok(reply) {
            return Err(backend_failed(reply, "a listing of the parent collection"));
        }
        let page = parse_page(&reply.body)?;
        let name = self.marker.trim_end_matches('/');
        let collection = page.prefixes.contains(&self.marker) || page.objects.iter().any(|o| o.key == self.marker);
        let object = page.objects.iter().any(|o| o.key == name);
        // Listings come in key order: past the marker, it is not there.
        let past = page.objects.iter().map(|o| o.key.as_str()).chain(page.prefixes.iter().map(String::as_str)).any(|k| k > self.marker.as_str());
        Ok(match page.next {
            Some(token) if !collection && !past => Probed::Next(token),
            _ => Probed::Found { collection, object },
        })
    }
}

/// Text escaped by [`lakeport_xml::push_escaped`], with characters XML 1.0
/// cannot carry (most controls) as U+FFFD (an href carries them
/// percent-encoded).
pub(crate) fn escape(out: &mut String, text: &str) {
    let carried: String = text.chars().map(|c| if lakeport_xml::is_xml_char(c) { c } else { '\u{FFFD}' }).collect();
    lakeport_xml::push_escaped(out, &carried);
}

/// The href of `key` in `bucket`: each byte outside RFC 3986's unreserved
/// set percent-encoded (so `&`, `<`, spaces and non-ASCII are safe in
/// XML and in a URL), `/` kept; a collection's ends in `/`.
pub fn href(bucket: &str, key: &str, collection: bool) -> String {
    let mut out = String::from("/");
    uri_encode_into(&mut out, bucket.as_bytes(), false);
    out.push('/');
    uri_encode_into(&mut out, key.as_bytes(), true);
    if collection && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// What a `207` says about one resource.
enum Props<'a> {
    Collection,
    File { length: u64, modified: Option<i64>, etag: Option<&'a str> },
}

/// A `207 Multi-Status` body being written.
#[derive(Debug)]
struct Multistatus {
    body: String,
    entries: usize,
}

impl Multistatus {
    fn new() -> Multistatus {
        Multistatus { body: "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">\n".into(), entries: 0 }
    }

    /// Adds the resource `key` of `bucket`; `Err` (a `507`) past [`MAX_ENTRIES`].
    fn add(&mut self, bucket: &str, key: &str, props: Props<'_>) -> Result<(), LocalAnswer> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(LocalAnswer::text(507, format!("the collection holds more than {MAX_ENTRIES} entries: list a deeper one")));
        }
        let collection = matches!(props, Props::Collection);
        let name = key.trim_end_matches('/').rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or(bucket);
        let b = &mut self.body;
        b.push_str("<D:response><D:href>");
        b.push_str(&href(bucket, key, collection));
        b.push_str("</D:href><D:propstat><D:prop><D:displayname>");
        escape(b, name);
        b.push_str("</D:displayname>");
        match props {
            Props::Collection => b.push_str("<D:resourcetype><D:collection/></D:resourcetype>"),
            Props::File { length, modified, etag } => {
                b.push_str("<D:resourcetype/><D:getcontentlength>");
                b.push_str(&length.to_string());
                b.push_str("</D:getcontentlength>");
                if let Some(t) = modified {
                    b.push_str("<D:getlastmodified>");
                    b.push_str(&lakeport_http::date::format_http_date(t));
                    b.push_str("</D:getlastmodified>");
                }
                if let Some(e) = etag {
                    b.push_str("<D:getetag>");
                    escape(b, e);
                    b.push_str("</D:getetag>");
                }
            }
        }
        b.push_str("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>\n");
        Ok(())
    }

    fn finish(&mut self) -> LocalAnswer {
        let mut body = std::mem::take(&mut self.body);
        body.push_str("</D:multistatus>\n");
        LocalAnswer { status: 207, headers: vec![("content-type".into(), "application/xml; charset=utf-8".into())], body }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum PropfindStage {
    Start,
    /// HEAD of an object path.
    Head,
    /// A listing page of the collection `prefix`; `first`: none seen yet.
    Listing { first: bool },
    /// Nothing under the collection: does its marker exist?
    Marker,
}

#[derive(Debug)]
pub struct Propfind {
    bucket: String,
    key: String,
    depth_one: bool,
    stage: PropfindStage,
    out: Multistatus,
    prefix: String,
}

impl Propfind {
    fn step(&mut self, reply: Reply) -> Step {
        match self.try_step(reply) {
            Ok(step) => step,
            Err(answer) => Step::Answer(answer),
        }
    }

    fn probe(&self) -> Probe {
        Probe { bucket: self.bucket.clone(), marker: self.prefix.clone() }
    }

    fn list_page(&self, token: Option<&str>) -> Step {
        // Depth 0 only asks whether anything is there.
        let max_keys = if self.depth_one { None } else { Some(1) };
        Step::Send(list(&self.bucket, &self.prefix, true, max_keys, token, None))
    }

    fn try_step(&mut self, reply: Reply) -> Result<Step, LocalAnswer> {
        match self.stage {
            PropfindStage::Start if self.key.is_empty() || self.key.ends_with('/') => {
                self.prefix = self.key.clone();
                self.stage = PropfindStage::Listing { first: true };
                Ok(self.list_page(None))
            }
            PropfindStage::Start => {
                self.stage = PropfindStage::Head;
                Ok(Step::Send(head(&self.bucket, &self.key)))
            }
            PropfindStage::Head if ok(&reply) => {
                let length = reply.header("content-length").and_then(|l| l.trim().parse().ok()).unwrap_or(0);
                let modified = reply.header("last-modified").and_then(lakeport_http::date::parse_http_date);
                self.out.add(&self.bucket, &self.key, Props::File { length, modified, etag: reply.header("etag") })?;
                Ok(Step::Answer(self.out.finish()))
            }
            // No object of that name: perhaps a collection named without
            // its trailing slash.
            PropfindStage::Head if reply.status == 404 => {
                self.prefix = format!("{}/", self.key);
                self.stage = PropfindStage::Listing { first: true };
                Ok(self.list_page(None))
            }
            PropfindStage::Head => Err(backend_failed(&reply, "a HEAD of the object")),
            PropfindStage::Listing { first } => {
                if !ok(&reply) {
                    return Err(backend_failed(&reply, "a listing of the collection"));
                }
                let page = parse_page(&reply.body)?;
                if first {
                    let empty = page.objects.is_empty() && page.prefixes.is_empty();
                    if empty && !self.prefix.is_empty() {
                        self.stage = PropfindStage::Marker;
                        return Ok(self.probe().request(None));
                    }
                    self.out.add(&self.bucket, &self.prefix, Props::Collection)?;
                    if !self.depth_one {
                        return Ok(Step::Answer(self.out.finish()));
                    }
                }
                for o in page.objects.iter().filter(|o| o.key != self.prefix) {
                    self.out.add(&self.bucket, &o.key, Props::File { length: o.size, modified: o.modified, etag: o.etag.as_deref() })?;
                }
                for p in &page.prefixes {
                    self.out.add(&self.bucket, p, Props::Collection)?;
                }
                match page.next {
                    Some(token) => {
                        self.stage = PropfindStage::Listing { first: false };
                        Ok(self.list_page(Some(&token)))
                    }
                    None => Ok(Step::Answer(self.out.finish())),
                }
            }
            PropfindStage::Marker => match self.probe().check(&reply)? {
                Probed::Next(token) => Ok(self.probe().request(Some(&token))),
                Probed::Found { collection: false, .. } => Err(LocalAnswer::text(404, "not found")),
                Probed::Found { collection: true, .. } => {
                    self.out.add(&self.bucket, &self.prefix, Props::Collection)?;
                    Ok(Step::Answer(self.out.finish()))
                }
            },
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum MkcolStage {
    Start,
    Probing,
    Put,
}

#[derive(Debug)]
pub struct Mkcol {
    bucket: String,
    marker: String,
    create_only: bool,
    stage: MkcolStage,
}

impl Mkcol {
    fn exists() -> LocalAnswer {
        let mut a = LocalAnswer::text(405, "the collection (or an object of that name) exists already");
        a.headers.push(("allow".into(), ALLOW.into()));
        a
    }

    fn probe(&self) -> Probe {
        Probe { bucket: self.bucket.clone(), marker: self.marker.clone() }
    }

    fn step(&mut self, reply: Reply) -> Step {
        match self.stage {
            MkcolStage::Start if self.marker.is_empty() => Step::Answer(Mkcol::exists()),
            MkcolStage::Start => {
                self.stage = MkcolStage::Probing;
                self.probe().request(None)
            }
            MkcolStage::Probing => match self.probe().check(&reply) {
                Err(a) => Step::Answer(a),
                Ok(Probed::Next(token)) => self.probe().request(Some(&token)),
                Ok(Probed::Found { collection, object }) if collection || object => Step::Answer(Mkcol::exists()),
                Ok(Probed::Found { .. }) => {
                    self.stage = MkcolStage::Put;
                    let mut headers = vec![("content-length".to_string(), "0".to_string())];
                    if self.create_only {
                        headers.push(("if-none-match".into(), "*".into()));
                    }
                    Step::Send(Plan::backend("PUT", ResourcePath::object(&self.bucket, &self.marker), Vec::new(), headers))
                }
            },
            MkcolStage::Put if ok(&reply) => Step::Answer(LocalAnswer::text(201, "created")),
            MkcolStage::Put if reply.status == 412 => Step::Answer(Mkcol::exists()),
            MkcolStage::Put => Step::Answer(backend_failed(&reply, "writing the collection marker")),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum DeleteStage {
    Start,
    Listed,
    /// The existence check of a collection with no keys under it.
    MarkerChecked,
    Deleting,
}

#[derive(Debug)]
pub struct DeleteTree {
    bucket: String,
    prefix: String,
    /// The last key listed: the next page starts after it (keys that
    /// would not go away are never listed twice).
    after: Option<String>,
    more: bool,
    pending: Vec<String>,
    /// Sub-collection markers (`a/`, `a/b/`), removed after the keys.
    dirs: BTreeSet<String>,
    deleted: usize,
    stage: DeleteStage,
}

impl DeleteTree {
    fn step(&mut self, reply: Reply) -> Step {
        match self.try_step(reply) {
            Ok(step) => step,
            Err(answer) => Step::Answer(answer),
        }
    }

    fn try_step(&mut self, reply: Reply) -> Result<Step, LocalAnswer> {
        match self.stage {
            DeleteStage::Start => {
                if self.prefix.is_empty() {
                    return Err(LocalAnswer::text(405, "buckets are not deleted through this gateway: name a collection inside one"));
                }
                self.stage = DeleteStage::Listed;
                Ok(Step::Send(list(&self.bucket, &self.prefix, false, None, None, None)))
            }
            DeleteStage::Listed => {
                if !ok(&reply) {
                    return Err(backend_failed(&reply, "a listing of the collection"));
                }
                let page = parse_page(&reply.body)?;
                if self.after.is_none() && page.objects.is_empty() {
                    self.more = false;
                    self.stage = DeleteStage::MarkerChecked;
                    return Ok(self.probe().request(None));
                }
                self.more = page.next.is_some();
                self.after = page.objects.last().map(|o| o.key.clone()).or(self.after.take());
                for o in page.objects {
                    self.deleted += 1;
                    if self.deleted > MAX_ENTRIES {
                        return Err(LocalAnswer::text(507, format!("the collection holds more than {MAX_ENTRIES} objects: delete deeper ones first")));
                    }
                    // Every collection between the prefix and the key.
                    if let Some(below) = o.key.strip_prefix(self.prefix.as_str()) {
                        for (i, c) in below.char_indices() {
                            if c == '/' {
                                self.dirs.insert(o.key[..self.prefix.len() + i + 1].to_string());
                            }
                        }
                    }
                    self.pending.push(o.key);
                }
                self.stage = DeleteStage::Deleting;
                Ok(self.next_delete())
            }
            DeleteStage::MarkerChecked => match self.probe().check(&reply)? {
                Probed::Next(token) => Ok(self.probe().request(Some(&token))),
                Probed::Found { collection: false, .. } => Err(LocalAnswer::text(404, "not found")),
                Probed::Found { collection: true, .. } => {
                    self.stage = DeleteStage::Deleting;
                    Ok(self.next_delete())
                }
            },
            DeleteStage::Deleting => {
                if !ok(&reply) && reply.status != 404 {
                    return Err(backend_failed(&reply, "a DELETE"));
                }
                Ok(self.next_delete())
            }
        }
    }

    fn probe(&self) -> Probe {
        Probe { bucket: self.bucket.clone(), marker: self.prefix.clone() }
    }

    fn next_delete(&mut self) -> Step {
        if let Some(key) = self.pending.pop() {
            return Step::Send(delete(&self.bucket, &key));
        }
        if self.more {
            self.stage = DeleteStage::Listed;
            return Step::Send(list(&self.bucket, &self.prefix, false, None, None, self.after.as_deref()));
        }
        // Deepest markers first (directories, on a backend that keeps
        // them, go only when empty), the collection's own last.
        let deepest = self.dirs.iter().max_by_key(|d| (d.len(), (*d).clone())).cloned();
        if let Some(dir) = deepest {
            self.dirs.remove(&dir);
            return Step::Send(delete(&self.bucket, &dir));
        }
        if !self.prefix.is_empty() {
            let own = std::mem::take(&mut self.prefix);
            return Step::Send(delete(&self.bucket, &own));
        }
        Step::Answer(no_content())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum TransferStage {
    Start,
    SourceHead,
    DestinationHead,
    /// CopyObject, or CompleteMultipartUpload of the part copies.
    Copied,
    UploadCreated,
    PartCopied,
    /// Aborting the part copies; then the answer kept.
    Aborted,
    SourceDeleted,
}

#[derive(Debug)]
pub struct Transfer {
    source: (String, String),
    destination: (String, String),
    remove_source: bool,
    overwrite: bool,
    if_exists: Option<LocalAnswer>,
    destination_existed: bool,
    /// The source's size and content type, from its HEAD.
    size: u64,
    content_type: Option<String>,
    upload_id: Option<String>,
    etags: Vec<String>,
    failure: Option<LocalAnswer>,
    stage: TransferStage,
}

impl Transfer {
    fn done(&self) -> LocalAnswer {
        // RFC 4918 §9.8.5: 201 for a new resource, 204 for a replaced one.
        if self.destination_existed {
            no_content()
        } else {
            LocalAnswer::text(201, "created")
        }
    }

    fn step(&mut self, reply: Reply) -> Step {
        let (sb, sk) = (&self.source.0, &self.source.1);
        let (db, dk) = (&self.destination.0, &self.destination.1);
        match self.stage {
            TransferStage::Start => {
                if sk.is_empty() || sk.ends_with('/') || dk.is_empty() || dk.ends_with('/') {
                    return Step::Answer(LocalAnswer::text(
                        501,
                        "COPY and MOVE of collections are not served: copy or move the objects one by one",
                    ));
                }
                if self.source == self.destination {
                    return Step::Answer(LocalAnswer::text(403, "the source and the destination are the same"));
                }
                self.stage = TransferStage::SourceHead;
                Step::Send(head(sb, sk))
            }
            TransferStage::SourceHead if ok(&reply) => {
                self.size = reply.header("content-length").and_then(|l| l.trim().parse().ok()).unwrap_or(0);
                self.content_type = reply.header("content-type").map(String::from);
                self.stage = TransferStage::DestinationHead;
                Step::Send(head(db, dk))
            }
            TransferStage::SourceHead => Step::Answer(backend_failed(&reply, "a HEAD of the source")),
            TransferStage::DestinationHead if ok(&reply) => {
                if !self.overwrite {
                    return Step::Answer(LocalAnswer::text(412, "the destination exists and the request says 'Overwrite: F'"));
                }
                if let Some(refusal) = self.if_exists.take() {
                    return Step::Answer(refusal);
                }
                self.destination_existed = true;
                self.copy()
            }
            TransferStage::DestinationHead if reply.status == 404 => self.copy(),
            TransferStage::DestinationHead => Step::Answer(backend_failed(&reply, "a HEAD of the destination")),
            // CopyObject may answer 200 with an error document.
            TransferStage::Copied if ok(&reply) && !String::from_utf8_lossy(&reply.body).contains("<Error>") => {
                self.upload_id = None;
                if !self.remove_source {
                    return Step::Answer(self.done());
                }
                self.stage = TransferStage::SourceDeleted;
                Step::Send(delete(sb, sk))
            }
            TransferStage::Copied => {
                let failed = backend_failed(&Reply { status: if ok(&reply) { 502 } else { reply.status }, ..reply }, "the copy");
                self.abort(failed)
            }
            TransferStage::UploadCreated if ok(&reply) => match crate::upload::upload_id(&reply.body) {
                Some(id) => {
                    self.upload_id = Some(id);
                    self.copy_part()
                }
                None => Step::Answer(LocalAnswer::bad_gateway("its CreateMultipartUpload answer holds no UploadId")),
            },
            TransferStage::UploadCreated => Step::Answer(backend_failed(&reply, "starting a multipart copy")),
            TransferStage::PartCopied if ok(&reply) => {
                let etag = std::str::from_utf8(&reply.body)
                    .ok()
                    .and_then(|t| lakeport_xml::parse_document(t).ok())
                    .filter(|e| e.name == "CopyPartResult")
                    .and_then(|e| e.text_of("ETag").filter(|t| !t.is_empty()).map(String::from));
                let Some(etag) = etag else {
                    let failed = backend_failed(&Reply { status: 502, ..reply }, "a part copy");
                    return self.abort(failed);
                };
                self.etags.push(etag);
                if (self.etags.len() as u64) * COPY_PART_BYTES < self.size {
                    return self.copy_part();
                }
                self.stage = TransferStage::Copied;
                let id = self.upload_id.clone().unwrap_or_default();
                let headers = vec![("content-type".to_string(), "application/xml".to_string())];
                let plan = Plan::backend("POST", ResourcePath::object(db, dk), vec![("uploadId".into(), id)], headers);
                Step::SendWith(plan, crate::upload::complete_body(&self.etags))
            }
            TransferStage::PartCopied => {
                let failed = backend_failed(&reply, "a part copy");
                self.abort(failed)
            }
            TransferStage::Aborted => Step::Answer(self.failure.take().unwrap_or_else(|| LocalAnswer::bad_gateway("the copy failed"))),
            TransferStage::SourceDeleted if ok(&reply) => Step::Answer(self.done()),
            TransferStage::SourceDeleted => Step::Answer(backend_failed(&reply, "deleting the source after copying it")),
        }
    }

    /// `/bucket/key`, URL-encoded with `/` kept (S3's rule for the header).
    fn copy_source(&self) -> String {
        let (sb, sk) = &self.source;
        format!("/{}/{}", uri_encode(sb.as_bytes(), false), uri_encode(sk.as_bytes(), true))
    }

    fn copy(&mut self) -> Step {
        let (db, dk) = &self.destination;
        if self.size > MAX_COPY_BYTES {
            self.stage = TransferStage::UploadCreated;
            let headers = self.content_type.iter().map(|t| ("content-type".to_string(), t.clone())).collect();
            return Step::Send(Plan::backend("POST", ResourcePath::object(db, dk), vec![("uploads".into(), String::new())], headers));
        }
        self.stage = TransferStage::Copied;
        let headers = vec![("x-amz-copy-source".to_string(), self.copy_source()), ("x-amz-metadata-directive".to_string(), "COPY".to_string())];
        Step::Send(Plan::backend("PUT", ResourcePath::object(db, dk), Vec::new(), headers))
    }

    /// The next `UploadPartCopy`: the source's next [`COPY_PART_BYTES`].
    fn copy_part(&mut self) -> Step {
        self.stage = TransferStage::PartCopied;
        let first = self.etags.len() as u64 * COPY_PART_BYTES;
        let last = (first + COPY_PART_BYTES).min(self.size) - 1;
        let number = (self.etags.len() + 1).to_string();
        let id = self.upload_id.clone().unwrap_or_default();
        let headers = vec![("x-amz-copy-source".to_string(), self.copy_source()), ("x-amz-copy-source-range".to_string(), format!("bytes={first}-{last}"))];
        let (db, dk) = &self.destination;
        Step::Send(Plan::backend("PUT", ResourcePath::object(db, dk), vec![("partNumber".into(), number), ("uploadId".into(), id)], headers))
    }

    /// Ends with `answer`, aborting the part copies first if there are any.
    fn abort(&mut self, answer: LocalAnswer) -> Step {
        match self.upload_id.take() {
            Some(id) => {
                self.failure = Some(answer);
                self.stage = TransferStage::Aborted;
                let (db, dk) = &self.destination;
                Step::Send(Plan::backend("DELETE", ResourcePath::object(db, dk), vec![("uploadId".into(), id)], Vec::new()))
            }
            None => Step::Answer(answer),
        }
    }
}

/// The `Destination` of `COPY`/`MOVE`: an absolute URL on `authority`
/// (this gateway) or an absolute path. Elsewhere is `502` (RFC 4918
/// §9.8.5: the destination is on another server).
pub fn destination(value: &str, authority: Option<&str>) -> Result<ResourcePath, LocalAnswer> {
    if let Some(rest) = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://")) {
        let there = &rest[..rest.find('/').unwrap_or(rest.len())];
        if authority.is_none_or(|a| !a.eq_ignore_ascii_case(there)) {
            return Err(LocalAnswer::text(502, "the Destination is not on this gateway: name a path here, /BUCKET/KEY"));
        }
    } else if !value.starts_with('/') {
        return Err(LocalAnswer::text(400, "the Destination header is neither an absolute URL nor a path"));
    }
    crate::scopes::destination_path(value).map_err(|e| LocalAnswer::text(Denied::BadPath(e).status(), format!("the Destination: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Option<Reply> {
        Some(Reply { status, headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(), body: body.as_bytes().to_vec() })
    }

    fn path(p: &str) -> ResourcePath {
        crate::scopes::normalize_path(p).unwrap()
    }

    /// (method, bucket-relative URL with query) of a sent plan.
    fn sent(step: Step) -> String {
        match step {
            Step::Send(plan) => plan.describe(),
            Step::SendWith(plan, _) => plan.describe(),
            Step::Answer(a) => panic!("an answer, not a request: {} {}", a.status, a.body),
        }
    }

    fn answered(step: Step) -> LocalAnswer {
        match step {
            Step::Answer(a) => a,
            Step::Send(plan) | Step::SendWith(plan, _) => panic!("a request, not an answer: {}", plan.describe()),
        }
    }

    fn page(contents: &[(&str, u64)], prefixes: &[&str], next: Option<&str>) -> String {
        let mut x = String::from("<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
        for (k, size) in contents {
            let mut key = String::new();
            escape(&mut key, k);
            x.push_str(&format!("<Contents><Key>{key}</Key><LastModified>2026-12-06T02:40:06.000Z</LastModified><ETag>&quot;e{size}&quot;</ETag><Size>{size}</Size></Contents>"));
        }
        for p in prefixes {
            x.push_str(&format!("<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>"));
        }
        match next {
            Some(t) => x.push_str(&format!("<IsTruncated>true</IsTruncated><NextContinuationToken>{t}</NextContinuationToken>")),
            None => x.push_str("<IsTruncated>false</IsTruncated>"),
        }
        x + "</ListBucketResult>"
    }

    #[test]
    fn propfind_depth_0_of_an_object_is_its_head() {
        let mut op = Operation::propfind(&path("/bkt/d/a%26b%20%3C%C3%A9%3E.txt"), false);
        assert_eq!(sent(op.step(None)), "HEAD /bkt/d/a%26b%20%3C%C3%A9%3E.txt");
        let a = answered(op.step(reply(200, &[("Content-Length", "42"), ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"), ("ETag", "\"abc\"")], "")));
        assert_eq!(a.status, 207);
        let doc = lakeport_xml::parse_document(&a.body).expect("well-formed XML");
        let r = doc.child("response").unwrap();
        assert_eq!(r.text_of("href"), Some("/bkt/d/a%26b%20%3C%C3%A9%3E.txt"));
        let prop = r.child("propstat").unwrap().child("prop").unwrap();
        assert_eq!(prop.text_of("displayname"), Some("a&b <é>.txt"));
        assert_eq!(prop.text_of("getcontentlength"), Some("42"));
        assert_eq!(prop.text_of("getlastmodified"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(prop.text_of("getetag"), Some("\"abc\""));
        assert!(prop.child("resourcetype").unwrap().children.is_empty());
        assert!(a.body.contains("xmlns:D=\"DAV:\"") && a.body.contains("HTTP/1.1 200 OK"), "{}", a.body);
    }

    #[test]
    fn propfind_of_a_name_without_an_object_is_the_collection_under_it_or_404() {
        let mut op = Operation::propfind(&path("/bkt/dir"), false);
        sent(op.step(None));
        assert_eq!(sent(op.step(reply(404, &[], ""))), "GET /bkt?list-type=2&prefix=dir%2F&delimiter=%2F&max-keys=1");
        let a = answered(op.step(reply(200, &[], &page(&[("dir/x", 1)], &[], Some("t")))));
        assert_eq!(a.status, 207);
        let doc = lakeport_xml::parse_document(&a.body).unwrap();
        assert_eq!(doc.children_named("response").count(), 1, "depth 0: the collection alone");
        assert_eq!(doc.child("response").unwrap().text_of("href"), Some("/bkt/dir/"));
        assert!(a.body.contains("<D:resourcetype><D:collection/></D:resourcetype>"));

        // Nothing under it, no marker: not found.
        let mut op = Operation::propfind(&path("/bkt/none/"), false);
        sent(op.step(None));
        assert_eq!(sent(op.step(reply(200, &[], &page(&[], &[], None)))), "GET /bkt?list-type=2&prefix=none&delimiter=%2F");
        assert_eq!(answered(op.step(reply(200, &[], &page(&[("none", 1)], &["none 2/"], None)))).status, 404);
        // An empty collection with its marker exists (an object, or a
        // common prefix where the backend keeps empty directories).
        for marker in [page(&[("empty/", 0)], &[], None), page(&[], &["empty/"], None)] {
            let mut op = Operation::propfind(&path("/bkt/empty/"), true);
            sent(op.step(None));
            sent(op.step(reply(200, &[], &page(&[], &[], None))));
            assert_eq!(answered(op.step(reply(200, &[], &marker))).status, 207);
        }
        // The probe follows pages until it passes the marker's place.
        let mut op = Operation::propfind(&path("/bkt/e/"), true);
        sent(op.step(None));
        sent(op.step(reply(200, &[], &page(&[], &[], None))));
        assert_eq!(sent(op.step(reply(200, &[], &page(&[("e ", 1)], &[], Some("t"))))), "GET /bkt?list-type=2&prefix=e&delimiter=%2F&continuation-token=t");
        assert_eq!(answered(op.step(reply(200, &[], &page(&[], &["e/"], None)))).status, 207);
    }

    #[test]
    fn propfind_depth_1_lists_one_level_across_pages_with_encoded_hrefs() {
        let mut op = Operation::propfind(&path("/bkt/d/"), true);
        assert_eq!(sent(op.step(None)), "GET /bkt?list-type=2&prefix=d%2F&delimiter=%2F");
        let first = page(&[("d/", 0), ("d/a&b <c>.txt", 3)], &["d/sub dir/"], Some("tok/1+="));
        assert_eq!(sent(op.step(reply(200, &[], &first))), "GET /bkt?list-type=2&prefix=d%2F&delimiter=%2F&continuation-token=tok%2F1%2B%3D");
        let a = answered(op.step(reply(200, &[], &page(&[("d/\u{e9}t\u{e9}", 0)], &[], None))));
        assert_eq!(a.status, 207);
        let doc = lakeport_xml::parse_document(&a.body).expect("well-formed XML");
        let got: Vec<(String, String, bool)> = doc
            .children_named("response")
            .map(|r| {
                let prop = r.child("propstat").unwrap().child("prop").unwrap();
                let collection = prop.child("resourcetype").unwrap().child("collection").is_some();
                (r.text_of("href").unwrap().to_string(), prop.text_of("displayname").unwrap().to_string(), collection)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/bkt/d/".to_string(), "d".to_string(), true),
                ("/bkt/d/a%26b%20%3Cc%3E.txt".into(), "a&b <c>.txt".into(), false),
                ("/bkt/d/sub%20dir/".into(), "sub dir".into(), true),
                ("/bkt/d/%C3%A9t%C3%A9".into(), "\u{e9}t\u{e9}".into(), false),
            ],
            "the marker d/ is the collection itself, not a child"
        );
        assert!(a.body.contains("<D:getlastmodified>Sun, 06 Dec 2026 02:40:06 GMT</D:getlastmodified>"), "{}", a.body);
        assert!(a.body.contains("<D:getetag>&quot;e3&quot;</D:getetag>"), "{}", a.body);

        // The bucket is a collection; its absence is the backend's 404.
        let mut op = Operation::propfind(&path("/bkt"), true);
        assert_eq!(sent(op.step(None)), "GET /bkt?list-type=2&prefix=&delimiter=%2F");
        assert_eq!(answered(op.step(reply(404, &[], "<Error><Code>NoSuchBucket</Code></Error>"))).status, 404);
        let mut op = Operation::propfind(&path("/bkt/"), true);
        sent(op.step(None));
        assert_eq!(answered(op.step(reply(200, &[], "<html>"))).status, 502);
    }

    #[test]
    fn mkcol_writes_a_marker_unless_something_is_there() {
        let mut op = Operation::mkcol(&path("/bkt/new"), true);
        assert_eq!(sent(op.step(None)), "GET /bkt?list-type=2&prefix=new&delimiter=%2F");
        match op.step(reply(200, &[], &page(&[("new1", 1)], &["new 2/"], None))) {
            Step::Send(plan) => {
                assert_eq!(plan.describe(), "PUT /bkt/new/");
                assert!(plan.has_header("if-none-match", "*") && plan.has_header("content-length", "0"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(answered(op.step(reply(200, &[], ""))).status, 201);

        // A collection, a marker, or an object of that name is there.
        for there in [page(&[], &["old/"], None), page(&[("old/", 0)], &[], None), page(&[("old", 3)], &[], None)] {
            let mut op = Operation::mkcol(&path("/bkt/old/"), false);
            sent(op.step(None));
            assert_eq!(answered(op.step(reply(200, &[], &there))).status, 405);
        }
        assert_eq!(answered(Operation::mkcol(&path("/bkt"), false).step(None)).status, 405);
    }

    #[test]
    fn delete_of_a_collection_removes_every_key_then_the_markers_deepest_first() {
        let mut op = Operation::delete_tree(&path("/bkt/t/"));
        assert_eq!(sent(op.step(None)), "GET /bkt?list-type=2&prefix=t%2F");
        let mut requests = vec![sent(op.step(reply(200, &[], &page(&[("t/a", 1), ("t/s/b", 1)], &[], Some("x")))))];
        loop {
            match op.step(if requests.last().unwrap().starts_with("GET") {
                reply(200, &[], &page(&[("t/s/q/c", 1)], &[], None))
            } else {
                reply(204, &[], "")
            }) {
                Step::Send(plan) => requests.push(plan.describe()),
                Step::Answer(a) => {
                    assert_eq!(a.status, 204);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            requests,
            [
                "DELETE /bkt/t/s/b",
                "DELETE /bkt/t/a",
                "GET /bkt?list-type=2&prefix=t%2F&start-after=t%2Fs%2Fb",
                "DELETE /bkt/t/s/q/c",
                "DELETE /bkt/t/s/q/",
                "DELETE /bkt/t/s/",
                "DELETE /bkt/t/",
            ]
        );
        // Nothing there at all.
        let mut op = Operation::delete_tree(&path("/bkt/none/"));
        sent(op.step(None));
        assert_eq!(sent(op.step(reply(200, &[], &page(&[], &[], None)))), "GET /bkt?list-type=2&prefix=none&delimiter=%2F");
        assert_eq!(answered(op.step(reply(200, &[], &page(&[], &[], None)))).status, 404);
        // A failed delete stops it.
        let mut op = Operation::delete_tree(&path("/bkt/t/"));
        sent(op.step(None));
        sent(op.step(reply(200, &[], &page(&[("t/a", 1)], &[], None))));
        assert_eq!(answered(op.step(reply(403, &[], "<Error><Code>AccessDenied</Code></Error>"))).status, 403);
        assert_eq!(answered(Operation::delete_tree(&path("/bkt/")).step(None)).status, 405);
    }

    #[test]
    fn copy_and_move_use_copyobject_with_an_encoded_source() {
        for remove_source in [false, true] {
            let mut op = Operation::transfer(&path("/bkt/a%20b/%C3%A9+%26"), &path("/bkt/dst/x"), remove_source, true, None);
            assert_eq!(sent(op.step(None)), "HEAD /bkt/a%20b/%C3%A9%2B%26");
            assert_eq!(sent(op.step(reply(200, &[("Content-Length", "5")], ""))), "HEAD /bkt/dst/x");
            match op.step(reply(404, &[], "")) {
                Step::Send(plan) => {
                    assert_eq!(plan.describe(), "PUT /bkt/dst/x");
                    assert!(plan.has_header("x-amz-copy-source", "/bkt/a%20b/%C3%A9%2B%26"), "{plan:?}");
                }
                other => panic!("{other:?}"),
            }
            let copied = op.step(reply(200, &[], "<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>"));
            if remove_source {
                assert_eq!(sent(copied), "DELETE /bkt/a%20b/%C3%A9%2B%26");
                assert_eq!(answered(op.step(reply(204, &[], ""))).status, 201);
            } else {
                assert_eq!(answered(copied).status, 201);
            }
        }
        // An existing destination: replaced (204), refused by Overwrite: F
        // (412) or by a create-only grant (403 naming storage.modify).
        let start = |overwrite, create_only: bool| {
            let refusal = create_only.then(|| LocalAnswer::text(403, "the token lacks the scope storage.modify:/bkt/b"));
            let mut op = Operation::transfer(&path("/bkt/a"), &path("/bkt/b"), true, overwrite, refusal);
            sent(op.step(None));
            sent(op.step(reply(200, &[("Content-Length", "5")], "")));
            op
        };
        let mut op = start(true, false);
        sent(op.step(reply(200, &[], "")));
        sent(op.step(reply(200, &[], "<CopyObjectResult/>")));
        assert_eq!(answered(op.step(reply(204, &[], ""))).status, 204);
        assert_eq!(answered(start(false, false).step(reply(200, &[], ""))).status, 412);
        let a = answered(start(true, true).step(reply(200, &[], "")));
        assert_eq!((a.status, a.body.contains("storage.modify:/bkt/b")), (403, true), "{}", a.body);
        // A copy that failed inside a 200 deletes nothing.
        let mut op = start(true, false);
        sent(op.step(reply(404, &[], "")));
        assert_eq!(answered(op.step(reply(200, &[], "<Error><Code>InternalError</Code></Error>"))).status, 502);
        // Above 5 GiB: UploadPartCopy of 1 GiB ranges, then complete.
        let mut op = Operation::transfer(&path("/bkt/a"), &path("/bkt/b"), true, true, None);
        sent(op.step(None));
        let size = (5u64 << 30) + 7;
        sent(op.step(reply(200, &[("Content-Length", &size.to_string()), ("Content-Type", "image/png")], "")));
        match op.step(reply(404, &[], "")) {
            Step::Send(plan) => assert!(plan.describe() == "POST /bkt/b?uploads=" && plan.has_header("content-type", "image/png"), "{plan:?}"),
            other => panic!("{other:?}"),
        }
        let mut step = op.step(reply(200, &[], "<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>"));
        let mut ranges = Vec::new();
        loop {
            match step {
                Step::Send(plan) => {
                    assert!(plan.describe().starts_with(&format!("PUT /bkt/b?partNumber={}&uploadId=u1", ranges.len() + 1)), "{plan:?}");
                    assert!(plan.has_header("x-amz-copy-source", "/bkt/a"));
                    ranges.push(plan.header("x-amz-copy-source-range").unwrap().to_string());
                    let n = ranges.len();
                    step = op.step(reply(200, &[], &format!("<CopyPartResult><ETag>\"p{n}\"</ETag></CopyPartResult>")));
                }
                Step::SendWith(plan, body) => {
                    assert_eq!(plan.describe(), "POST /bkt/b?uploadId=u1");
                    let body = String::from_utf8(body).unwrap();
                    assert!(body.contains("<PartNumber>6</PartNumber><ETag>&quot;p6&quot;</ETag>") && !body.contains("<PartNumber>7<"), "{body}");
                    break;
                }
                Step::Answer(a) => panic!("{}", a.body),
            }
        }
        assert_eq!(ranges.len(), 6);
        assert_eq!(ranges[0], "bytes=0-1073741823");
        assert_eq!(ranges[5], format!("bytes={}-{}", 5u64 << 30, size - 1));
        assert_eq!(sent(op.step(reply(200, &[], "<CompleteMultipartUploadResult/>"))), "DELETE /bkt/a");
        assert_eq!(answered(op.step(reply(204, &[], ""))).status, 201);
        // A failed part copy aborts the upload; the source stays.
        let mut op = Operation::transfer(&path("/bkt/a"), &path("/bkt/b"), true, true, None);
        sent(op.step(None));
        sent(op.step(reply(200, &[("Content-Length", &size.to_string())], "")));
        sent(op.step(reply(404, &[], "")));
        sent(op.step(reply(200, &[], "<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>")));
        assert_eq!(sent(op.step(reply(500, &[], ""))), "DELETE /bkt/b?uploadId=u1");
        assert_eq!(answered(op.step(reply(204, &[], ""))).status, 502);
        assert_eq!(answered(Operation::transfer(&path("/bkt/a"), &path("/bkt/a"), false, true, None).step(None)).status, 403);
        assert_eq!(answered(Operation::transfer(&path("/bkt/d/"), &path("/bkt/e/"), false, true, None).step(None)).status, 501);
    }

    #[test]
    fn destinations_stay_on_this_gateway() {
        assert_eq!(destination("http://gw:8080/bkt/b%20c", Some("gw:8080")).unwrap(), path("/bkt/b%20c"));
        assert_eq!(destination("/bkt/b", None).unwrap(), path("/bkt/b"));
        assert_eq!(destination("http://elsewhere/bkt/b", Some("gw:8080")).unwrap_err().status, 502);
        assert_eq!(destination("http://gw:8080/bkt/b", None).unwrap_err().status, 502);
        assert_eq!(destination("bkt/b", None).unwrap_err().status, 400);
        assert_eq!(destination("/bkt/%2e%2e/x", None).unwrap_err().status, 403);
    }

    #[test]
    fn options_and_infinite_depth() {
        let o = options();
        assert!(o.headers.contains(&("dav".into(), "1".into())) && o.headers.iter().any(|(n, v)| n == "allow" && v.contains("PROPFIND")));
        assert!(lakeport_xml::parse_document(&infinite_depth().body).unwrap().child("propfind-finite-depth").is_some());
    }
}
