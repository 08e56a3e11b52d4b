//! A simulated S3 server for the transfer driver: an in-memory object store
//! that speaks the subset of S3 the driver uses (HEAD, ranged GET, PUT and
//! the multipart calls), answering with S3's XML, plus a scripted plan of
//! faults. Requests take effect when they arrive; their answers come back
//! one poll later, so that parts and ranges in flight overlap as they do on
//! a network. Sleeping returns at once and records the delay asked for.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use lakeport_http::{split_url, HttpError, HttpRequest, HttpResponse, TransportKind};
use lakeport_transfer::digest::{md5, to_hex, Md5};
use lakeport_transfer::driver::{Answer, Body, Exchange, Session, Settings, Sink, Source};
use lakeport_transfer::retry::RetryPolicy;
use lakeport_transfer::{Addressing, Credentials, S3Endpoint, S3Requests};

pub const MIB: u64 = 1 << 20;

// ---- running futures ----

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `future` to completion. Nothing here waits on real I/O, so a
/// future that is pending without having woken itself would wait forever.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(flag.0.swap(false, Ordering::SeqCst), "the driver waits for something the simulated server never sends");
    }
}

/// Pending once: lets the other futures run before this one goes on.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn yield_once() -> YieldOnce {
    YieldOnce(false)
}

// ---- local data ----

thread_local! {
    /// Requests sent so far on this thread: when a digest was asked for.
    static REQUESTS_SENT: Cell<usize> = const { Cell::new(0) };
}

/// A digest asked of local data: its span, and how many requests had been
/// sent by then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigestAsked {
    pub offset: u64,
    pub len: u64,
    pub requests_before: usize,
}

fn note_digest(log: &RefCell<Vec<DigestAsked>>, offset: u64, len: u64) {
    log.borrow_mut().push(DigestAsked { offset, len, requests_before: REQUESTS_SENT.with(Cell::get) });
}

/// Bytes to upload: a file (size known) or a pipe.
pub struct MemSource {
    pub data: Vec<u8>,
    pub pipe: bool,
    pub recorded_uploads: RefCell<Vec<String>>,
    pub digests_asked: RefCell<Vec<DigestAsked>>,
}

impl MemSource {
    pub fn file(data: Vec<u8>) -> Self {
        MemSource { data, pipe: false, recorded_uploads: RefCell::default(), digests_asked: RefCell::default() }
    }
}

fn span(data: &[u8], offset: u64, len: u64) -> &[u8] {
    let start = (offset as usize).min(data.len());
    let end = (offset.saturating_add(len) as usize).min(data.len());
    &data[start..end]
}

impl Source for MemSource {
    type Span = Vec<u8>;
    fn name(&self) -> String {
        "local data".into()
    }
    fn size(&self) -> Option<u64> {
        (!self.pipe).then_some(self.data.len() as u64)
    }
    fn read(&self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        Ok(span(&self.data, offset, len as u64).to_vec())
    }
    fn open_range(&self, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        Ok(span(&self.data, offset, len).to_vec())
    }
    fn md5(&self, offset: u64, len: u64) -> impl Future<Output = Result<Md5, String>> {
        note_digest(&self.digests_asked, offset, len);
        std::future::ready(Ok(md5(span(&self.data, offset, len))))
    }
    fn record_upload(&self, _bucket: &str, _key: &str, upload_id: &str) {
        self.recorded_uploads.borrow_mut().push(upload_id.into());
    }
}

/// Where a download goes: a file (random access) or a pipe.
#[derive(Default)]
pub struct MemSink {
    pub data: Rc<RefCell<Vec<u8>>>,
    pub pipe: bool,
    pub committed: Cell<bool>,
    pub digests_asked: RefCell<Vec<DigestAsked>>,
}

fn write_at(data: &RefCell<Vec<u8>>, offset: u64, bytes: &[u8]) {
    let mut data = data.borrow_mut();
    let end = offset as usize + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset as usize..end].copy_from_slice(bytes);
}

/// A place in a [`MemSink`] an answer's body is written into.
pub struct MemWriter {
    data: Rc<RefCell<Vec<u8>>>,
    offset: Cell<u64>,
}

impl Sink for MemSink {
    type Writer = MemWriter;
    fn name(&self) -> String {
        "the local file".into()
    }
    fn random_access(&self) -> bool {
        !self.pipe
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), String> {
        write_at(&self.data, offset, data);
        Ok(())
    }
    fn open_at(&self, offset: u64) -> Result<MemWriter, String> {
        Ok(MemWriter { data: self.data.clone(), offset: Cell::new(offset) })
    }
    fn md5(&self, offset: u64, len: u64) -> impl Future<Output = Result<Md5, String>> {
        note_digest(&self.digests_asked, offset, len);
        std::future::ready(Ok(md5(span(&self.data.borrow(), offset, len))))
    }
    fn commit(&self) -> Result<(), String> {
        self.committed.set(true);
        Ok(())
    }
}

// ---- answers ----

/// An answer whose body may end early (a cut connection).
pub struct SimAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    read: usize,
    /// The body stops after this many bytes.
    cut_after: Option<usize>,
}

impl SimAnswer {
    fn end(&self) -> usize {
        self.cut_after.unwrap_or(self.body.len()).min(self.body.len())
    }
}

impl Answer for SimAnswer {
    type Writer = MemWriter;
    fn status(&self) -> u16 {
        self.status
    }
    fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
    async fn chunk(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        yield_once().await;
        let end = self.end().min(self.read + 256 * 1024);
        if self.read == end {
            return Ok(None);
        }
        let chunk = self.body[self.read..end].to_vec();
        self.read = end;
        Ok(Some(chunk))
    }
    async fn splice_into(&mut self, out: &MemWriter, limit: u64) -> Result<u64, HttpError> {
        yield_once().await;
        let end = self.end().min(self.read + limit as usize);
        let moved = &self.body[self.read..end];
        write_at(&out.data, out.offset.get(), moved);
        out.offset.set(out.offset.get() + moved.len() as u64);
        self.read = end;
        Ok(moved.len() as u64)
    }
    async fn read_all(mut self, _limit: usize) -> Result<HttpResponse, HttpError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse { status: self.status, headers: self.headers, body })
    }
}

// ---- the fault plan ----

/// Which requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// UploadPart of this part number.
    Part(u32),
    /// A ranged GET starting at this offset.
    RangeFrom(u64),
    Complete,
    Put,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The answer's body ends after this many bytes.
    CutAnswer(usize),
    /// The request's body is cut after this many bytes: nothing is stored.
    CutRequest(usize),
    /// 503 SlowDown; nothing is done.
    SlowDown,
    /// The connection is reset before the request is taken.
    ResetBeforeAnswer,
    /// The request takes effect, then its answer is lost.
    LoseAnswer,
    /// The answer body has the byte at this offset flipped.
    CorruptByte(usize),
}

/// A fault for the next `times` requests that match.
#[derive(Clone, Copy, Debug)]
pub struct Planned {
    pub on: On,
    pub fault: Fault,
    pub times: u32,
}

/// Keys the server stops accepting after a number of requests.
#[derive(Clone, Debug)]
pub struct KeyLimit {
    pub access_key_id: String,
    pub accepted: u32,
    /// `ExpiredToken` or `InvalidAccessKeyId`.
    pub refusal: &'static str,
}

// ---- the store ----

#[derive(Clone, Debug)]
pub struct Object {
    pub data: Vec<u8>,
    pub etag: String,
    pub metadata: Vec<(String, String)>,
    /// Part sizes of a multipart object.
    pub parts: Vec<u64>,
}

#[derive(Clone, Debug)]
pub struct Upload {
    pub bucket: String,
    pub key: String,
    pub parts: BTreeMap<u32, (Vec<u8>, String)>,
    pub metadata: Vec<(String, String)>,
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub op: &'static str,
    pub part: Option<u32>,
    pub range_start: Option<u64>,
    pub access_key_id: String,
    /// The status answered, or 0 when no answer went back.
    pub status: u16,
    /// The request changed what the server holds.
    pub took_effect: bool,
}

#[derive(Default)]
pub struct Server {
    pub objects: BTreeMap<(String, String), Object>,
    pub uploads: BTreeMap<String, Upload>,
    next_upload: u32,
    pub plan: Vec<Planned>,
    pub key_limits: Vec<KeyLimit>,
    /// Access key IDs the server knows; others are `InvalidAccessKeyId`.
    pub known_keys: Vec<String>,
    /// Requests seen per access key ID.
    seen: BTreeMap<String, u32>,
    /// Answers CompleteMultipartUpload with an empty ETag, like Ceph RGW.
    pub empty_complete_etag: bool,
    /// Seconds the server's clock is ahead of the local one.
    pub clock_ahead_secs: i64,
    pub log: Vec<Logged>,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("percent escape"));
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 path")
}

fn iso8601(unix: i64) -> String {
    let (y, mo, d) = lakeport_calendar::civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

fn amz_date_secs(v: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| v.get(r)?.parse::<u32>().ok();
    lakeport_calendar::unix_seconds(n(0..4)? as i64, n(4..6)?, n(6..8)?, n(9..11)?, n(11..13)?, n(13..15)?)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn quoted_md5(data: &[u8]) -> String {
    format!("\"{}\"", to_hex(&md5(data)))
}

/// The ETag S3 gives an object assembled from parts with these MD5s.
fn multipart_etag(part_md5s: &[Md5]) -> String {
    let joined: Vec<u8> = part_md5s.iter().flatten().copied().collect();
    format!("\"{}-{}\"", to_hex(&md5(&joined)), part_md5s.len())
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// An answer the server gives.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn new(status: u16) -> Self {
        Reply { status, headers: Vec::new(), body: Vec::new() }
    }
    fn xml(status: u16, body: String) -> Self {
        let mut r = Reply::new(status);
        r.headers.push(("content-type".into(), "application/xml".into()));
        r.body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}").into_bytes();
        r
    }
    fn error(status: u16, code: &str, message: &str) -> Self {
        Reply::xml(status, format!("<Error><Code>{code}</Code><Message>{message}</Message><RequestId>sim</RequestId></Error>"))
    }
    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a request is, from its method and URL.
struct Parsed {
    op: &'static str,
    bucket: String,
    key: String,
    query: BTreeMap<String, String>,
}

fn parse_request(request: &HttpRequest) -> Parsed {
    let (_, _, path_and_query) = split_url(&request.url).expect("an http URL");
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let query: BTreeMap<String, String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let has = |k: &str| query.contains_key(k);
    let op = match (request.method, key.is_empty()) {
        ("GET", true) if has("uploads") => "ListMultipartUploads",
        ("HEAD", false) => "HeadObject",
        ("GET", false) if has("uploadId") => "ListParts",
        ("GET", false) => "GetObject",
        ("POST", false) if has("uploads") => "CreateMultipartUpload",
        ("POST", false) if has("uploadId") => "CompleteMultipartUpload",
        ("PUT", false) if has("uploadId") => "UploadPart",
        ("PUT", false) => "PutObject",
        ("DELETE", false) if has("uploadId") => "AbortMultipartUpload",
        (method, _) => panic!("the simulated server does not know {method} {}", request.url),
    };
    Parsed { op, bucket: percent_decode(bucket), key: percent_decode(key), query }
}

fn access_key_of(request: &HttpRequest) -> String {
    let auth = header(request, "authorization").unwrap_or_default();
    let credential = auth.split("Credential=").nth(1).unwrap_or_default();
    credential.split('/').next().unwrap_or_default().to_string()
}

impl Server {
    fn take_fault(&mut self, parsed: &Parsed, range_start: Option<u64>) -> Option<Fault> {
        let part = parsed.query.get("partNumber").and_then(|n| n.parse::<u32>().ok());
        let matches = |on: On| match on {
            On::Part(n) => parsed.op == "UploadPart" && part == Some(n),
            On::RangeFrom(start) => parsed.op == "GetObject" && range_start == Some(start),
            On::Complete => parsed.op == "CompleteMultipartUpload",
            On::Put => parsed.op == "PutObject",
        };
        let planned = self.plan.iter_mut().find(|p| p.times > 0 && matches(p.on))?;
        planned.times -= 1;
        Some(planned.fault)
    }

    /// Refuses requests whose keys are unknown, limited or signed at a time
    /// too far from the server's.
    fn refusal(&mut self, request: &HttpRequest, access_key_id: &str) -> Option<Reply> {
        let server_now = now() + self.clock_ahead_secs;
        let signed_at = header(request, "x-amz-date").and_then(amz_date_secs);
        if signed_at.is_some_and(|t| (t - server_now).abs() > 15 * 60) {
            let body = format!(
                "<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message><ServerTime>{}</ServerTime><RequestId>sim</RequestId></Error>",
                iso8601(server_now)
            );
            return Some(Reply::xml(403, body));
        }
        if !self.known_keys.iter().any(|k| k == access_key_id) {
            return Some(Reply::error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."));
        }
        let seen = self.seen.entry(access_key_id.to_string()).or_default();
        *seen += 1;
        let limit = self.key_limits.iter().find(|l| l.access_key_id == access_key_id)?;
        if *seen <= limit.accepted {
            return None;
        }
        Some(match limit.refusal {
            "ExpiredToken" => Reply::error(400, "ExpiredToken", "The provided token has expired."),
            code => Reply::error(403, code, "The AWS Access Key Id you provided does not exist in our records."),
        })
    }

    /// Takes a request whose body arrived whole, and answers it.
    fn handle(&mut self, request: &HttpRequest, parsed: &Parsed, body: &[u8], logged: &mut Logged) -> Reply {
        let object_key = (parsed.bucket.clone(), parsed.key.clone());
        let upload_of = |server: &Server| parsed.query.get("uploadId").filter(|id| server.uploads.contains_key(*id)).cloned();
        match parsed.op {
            "HeadObject" | "GetObject" => {
                let Some(object) = self.objects.get(&object_key) else {
                    return Reply::error(404, "NoSuchKey", "The specified key does not exist.");
                };
                let mut reply = Reply::new(200).header("etag", object.etag.clone());
                for (name, value) in &object.metadata {
                    reply = reply.header(&format!("x-amz-meta-{name}"), value.clone());
                }
                let size = object.data.len() as u64;
                if let Some(part) = parsed.query.get("partNumber").and_then(|n| n.parse::<usize>().ok()) {
                    if object.parts.len() > 1 && (1..=object.parts.len()).contains(&part) {
                        return reply
                            .header("content-length", object.parts[part - 1].to_string())
                            .header("x-amz-mp-parts-count", object.parts.len().to_string());
                    }
                }
                if parsed.op == "HeadObject" {
                    return reply.header("content-length", size.to_string());
                }
                let range = header(request, "range").and_then(|r| {
                    let (a, b) = r.strip_prefix("bytes=")?.split_once('-')?;
                    Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?.min(size.saturating_sub(1))))
                });
                match range {
                    Some((start, end)) => {
                        let data = object.data[start as usize..=end as usize].to_vec();
                        let mut reply = reply
                            .header("content-length", data.len().to_string())
                            .header("content-range", format!("bytes {start}-{end}/{size}"));
                        reply.status = 206;
                        reply.body = data;
                        reply
                    }
                    None => {
                        let mut reply = reply.header("content-length", size.to_string());
                        reply.body = object.data.clone();
                        reply
                    }
                }
            }
            "PutObject" => {
                if let Some(wrong) = self.wrong_digest(request, body) {
                    return wrong;
                }
                let etag = quoted_md5(body);
                self.objects.insert(object_key, Object { data: body.to_vec(), etag: etag.clone(), metadata: Vec::new(), parts: Vec::new() });
                logged.took_effect = true;
                Reply::new(200).header("etag", etag)
            }
            "CreateMultipartUpload" => {
                self.next_upload += 1;
                let id = format!("upload-{}", self.next_upload);
                let metadata = request
                    .headers
                    .iter()
                    .filter_map(|(n, v)| Some((n.to_ascii_lowercase().strip_prefix("x-amz-meta-")?.to_string(), v.clone())))
                    .collect();
                let upload = Upload { bucket: parsed.bucket.clone(), key: parsed.key.clone(), parts: BTreeMap::new(), metadata };
                self.uploads.insert(id.clone(), upload);
                logged.took_effect = true;
                Reply::xml(
                    200,
                    format!(
                        "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
                        xml_escape(&parsed.bucket),
                        xml_escape(&parsed.key)
                    ),
                )
            }
            "UploadPart" => {
                let Some(id) = upload_of(self) else { return no_such_upload() };
                if let Some(wrong) = self.wrong_digest(request, body) {
                    return wrong;
                }
                let number: u32 = parsed.query["partNumber"].parse().expect("a part number");
                let etag = quoted_md5(body);
                self.uploads.get_mut(&id).unwrap().parts.insert(number, (body.to_vec(), etag.clone()));
                logged.took_effect = true;
                Reply::new(200).header("etag", etag)
            }
            "ListParts" => {
                let Some(id) = upload_of(self) else { return no_such_upload() };
                let parts: String = self.uploads[&id]
                    .parts
                    .iter()
                    .map(|(n, (data, etag))| {
                        format!("<Part><PartNumber>{n}</PartNumber><LastModified>2024-05-01T12:00:00.000Z</LastModified><ETag>{}</ETag><Size>{}</Size></Part>", xml_escape(etag), data.len())
                    })
                    .collect();
                Reply::xml(
                    200,
                    format!(
                        "<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated>{parts}</ListPartsResult>",
                        xml_escape(&parsed.bucket),
                        xml_escape(&parsed.key)
                    ),
                )
            }
            "ListMultipartUploads" => {
                let prefix = parsed.query.get("prefix").cloned().unwrap_or_default();
                let uploads: String = self
                    .uploads
                    .iter()
                    .filter(|(_, u)| u.bucket == parsed.bucket && u.key.starts_with(&prefix))
                    .map(|(id, u)| format!("<Upload><Key>{}</Key><UploadId>{id}</UploadId><Initiated>2024-05-01T12:00:00.000Z</Initiated></Upload>", xml_escape(&u.key)))
                    .collect();
                Reply::xml(
                    200,
                    format!(
                        "<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><IsTruncated>false</IsTruncated>{uploads}</ListMultipartUploadsResult>",
                        xml_escape(&parsed.bucket)
                    ),
                )
            }
            "CompleteMultipartUpload" => {
                let Some(id) = upload_of(self) else { return no_such_upload() };
                let listed = listed_parts(body);
                let upload = &self.uploads[&id];
                let mut data = Vec::new();
                let mut md5s = Vec::new();
                let mut sizes = Vec::new();
                for (number, etag) in &listed {
                    match upload.parts.get(number) {
                        Some((bytes, stored)) if stored.trim_matches('"') == etag.trim_matches('"') => {
                            data.extend_from_slice(bytes);
                            md5s.push(md5(bytes));
                            sizes.push(bytes.len() as u64);
                        }
                        _ => return Reply::error(400, "InvalidPart", "One or more of the specified parts could not be found."),
                    }
                }
                if listed.is_empty() || listed.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Reply::error(400, "InvalidPartOrder", "The list of parts was not in ascending order.");
                }
                let etag = multipart_etag(&md5s);
                let upload = self.uploads.remove(&id).unwrap();
                self.objects.insert(object_key, Object { data, etag: etag.clone(), metadata: upload.metadata, parts: sizes });
                logged.took_effect = true;
                let shown = if self.empty_complete_etag { String::new() } else { xml_escape(&etag) };
                Reply::xml(
                    200,
                    format!(
                        "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>sim/{b}/{k}</Location><Bucket>{b}</Bucket><Key>{k}</Key><ETag>{shown}</ETag></CompleteMultipartUploadResult>",
                        b = xml_escape(&parsed.bucket),
                        k = xml_escape(&parsed.key)
                    ),
                )
            }
            "AbortMultipartUpload" => {
                let Some(id) = upload_of(self) else { return no_such_upload() };
                self.uploads.remove(&id);
                logged.took_effect = true;
                Reply::new(204)
            }
            other => unreachable!("{other}"),
        }
    }

    /// A `Content-MD5` that is not the MD5 of the body.
    fn wrong_digest(&self, request: &HttpRequest, body: &[u8]) -> Option<Reply> {
        use base64::Engine;
        let given = header(request, "content-md5")?;
        let actual = base64::engine::general_purpose::STANDARD.encode(md5(body));
        (given != actual).then(|| Reply::error(400, "BadDigest", "The Content-MD5 you specified did not match what we received."))
    }
}

fn no_such_upload() -> Reply {
    Reply::error(404, "NoSuchUpload", "The specified upload does not exist.")
}

/// (part number, ETag) of a CompleteMultipartUpload body, in order.
fn listed_parts(body: &[u8]) -> Vec<(u32, String)> {
    let text = String::from_utf8_lossy(body);
    let between = |s: &str, open: &str, close: &str| -> Option<String> {
        let start = s.find(open)? + open.len();
        Some(s[start..start + s[start..].find(close)?].to_string())
    };
    text.split("<Part>")
        .skip(1)
        .map(|p| {
            let number = between(p, "<PartNumber>", "</PartNumber>").and_then(|n| n.parse().ok()).expect("a part number");
            let etag = between(p, "<ETag>", "</ETag>").unwrap_or_default().replace("&quot;", "\"");
            (number, etag)
        })
        .collect()
}

fn reset(message: &str) -> HttpError {
    HttpError::Transport { kind: TransportKind::Reset, message: message.into() }
}

/// The simulated server as the driver's exchange, with the keys it renews.
pub struct SimExchange {
    pub server: RefCell<Server>,
    /// What each renewal gives, in turn.
    pub renewals: RefCell<VecDeque<Result<Credentials, String>>>,
    /// The access key IDs renewal was asked to replace.
    pub renewed: RefCell<Vec<String>>,
    pub slept_ms: RefCell<Vec<u64>>,
}

impl SimExchange {
    pub fn new(known_keys: &[&str]) -> Self {
        let server = Server { known_keys: known_keys.iter().map(|k| k.to_string()).collect(), ..Server::default() };
        SimExchange { server: RefCell::new(server), renewals: RefCell::default(), renewed: RefCell::default(), slept_ms: RefCell::default() }
    }

    /// An object as a single PUT stores it.
    pub fn store(&self, bucket: &str, key: &str, data: Vec<u8>) {
        let object = Object { etag: quoted_md5(&data), data, metadata: Vec::new(), parts: Vec::new() };
        self.server.borrow_mut().objects.insert((bucket.into(), key.into()), object);
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<Object> {
        self.server.borrow().objects.get(&(bucket.to_string(), key.to_string())).cloned()
    }

    pub fn fault(&self, on: On, fault: Fault, times: u32) {
        self.server.borrow_mut().plan.push(Planned { on, fault, times });
    }

    pub fn log(&self) -> Vec<Logged> {
        self.server.borrow().log.clone()
    }

    /// Logged requests of operation `op`.
    pub fn count(&self, op: &str) -> usize {
        self.server.borrow().log.iter().filter(|l| l.op == op).count()
    }
}

impl Exchange for SimExchange {
    type Source = MemSource;
    type Sink = MemSink;
    type Answer = SimAnswer;

    async fn send(&self, request: &HttpRequest, body: Body<'_, Vec<u8>>) -> Result<SimAnswer, HttpError> {
        REQUESTS_SENT.with(|sent| sent.set(sent.get() + 1));
        let body: &[u8] = match body {
            Body::Bytes(bytes) => bytes,
            Body::Span { span, len } => {
                assert_eq!(span.len() as u64, len, "a span of the announced length");
                span
            }
        };
        let parsed = parse_request(request);
        let range_start = header(request, "range").and_then(|r| r.strip_prefix("bytes=")?.split('-').next()?.parse().ok());
        let access_key_id = access_key_of(request);
        let part = parsed.query.get("partNumber").and_then(|n| n.parse().ok());
        let mut logged = Logged { op: parsed.op, part, range_start, access_key_id: access_key_id.clone(), status: 0, took_effect: false };
        let (reply, fault) = {
            let mut server = self.server.borrow_mut();
            let fault = server.take_fault(&parsed, range_start);
            let reply = match fault {
                Some(Fault::CutRequest(_)) | Some(Fault::ResetBeforeAnswer) => None,
                Some(Fault::SlowDown) => Some(Reply::error(503, "SlowDown", "Please reduce your request rate.")),
                _ => Some(match server.refusal(request, &access_key_id) {
                    Some(refused) => refused,
                    None => server.handle(request, &parsed, body, &mut logged),
                }),
            };
            if !matches!(fault, Some(Fault::LoseAnswer)) {
                logged.status = reply.as_ref().map_or(0, |r| r.status);
            }
            server.log.push(logged);
            (reply, fault)
        };
        // The answer comes back after the other requests in flight arrived.
        yield_once().await;
        let Some(mut reply) = reply else {
            return Err(match fault {
                Some(Fault::CutRequest(n)) => reset(&format!("the connection closed after {n} bytes of the request body")),
                _ => reset("the connection was reset before an answer"),
            });
        };
        reply.headers.push(("x-amz-request-id".into(), "sim".into()));
        let mut cut_after = None;
        match fault {
            Some(Fault::LoseAnswer) => return Err(reset("the connection was reset before the answer arrived")),
            Some(Fault::CorruptByte(at)) => {
                if let Some(b) = reply.body.get_mut(at) {
                    *b ^= 0xff;
                }
            }
            Some(Fault::CutAnswer(after)) => cut_after = Some(after),
            _ => {}
        }
        Ok(SimAnswer { status: reply.status, headers: reply.headers, body: reply.body, read: 0, cut_after })
    }

    async fn sleep_ms(&self, ms: u64) {
        self.slept_ms.borrow_mut().push(ms);
        yield_once().await;
    }

    fn random_seed(&self) -> u64 {
        7
    }

    fn renew_keys(&self, refused_access_key_id: &str) -> Result<Credentials, String> {
        self.renewed.borrow_mut().push(refused_access_key_id.to_string());
        self.renewals.borrow_mut().pop_front().unwrap_or_else(|| Err("no keys to renew with".into()))
    }
}

pub fn keys(access_key_id: &str) -> Credentials {
    Credentials { access_key_id: access_key_id.into(), secret_access_key: format!("secret of {access_key_id}"), session_token: None }
}

/// A session against the simulated server, signed with `access_key_id`.
pub fn session(exchange: SimExchange, access_key_id: &str, part_size: u64, concurrency: usize, max_attempts: u32) -> Session<SimExchange> {
    let endpoint = S3Endpoint::new("http://127.0.0.1:9000", "us-east-1", Addressing::Path).unwrap();
    let requests = S3Requests::new(endpoint, keys(access_key_id)).unwrap();
    let retry = RetryPolicy { max_attempts, ..RetryPolicy::default() };
    let settings = Settings { concurrency, part_size: Some(part_size), multipart_threshold: part_size, retry };
    Session::new(requests, settings, exchange)
}

/// Bytes that differ from part to part and from offset to offset.
pub fn data(len: u64) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
