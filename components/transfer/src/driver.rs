//! The I/O half of transfers: async drivers for the core's state machines,
//! generic over the [`Exchange`] that moves requests, answers and local
//! bytes. The component's exchange is wasi:http and the host's files (parts
//! and ranges run concurrently in one wasm thread while the host's HTTP
//! client works in parallel); tests use a simulated server.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;

use futures_util::future::{FutureExt, LocalBoxFuture};
use futures_util::stream::{FuturesUnordered, StreamExt};
use lakeport_http::HttpError;

use crate::digest::{md5, Md5, Md5Hasher};
use crate::download::{
    digest_spans, range_digest, DownloadOptions, DownloadPlan, RangeDigest, RangeHasher, RangeToFetch, RangedDownload, Verification,
    DEFAULT_RANGE_SIZE,
};
use crate::error::{Result, TransferError, TransportKind};
use crate::etag::{etag_kind, normalize_etag, EtagKind};
use crate::multipart::{choose_part_size, completion_uncertain, infer_part_size, plan_upload, MultipartUpload, PartPlan, UploadOptions, UploadPlan, MAX_PART_SIZE, MAX_SINGLE_PUT};
use crate::parse::{self, ListedPart, ObjectMetadata};
use crate::requests::{ByteRange, CopyOptions, GetOptions, ListMultipartUploads, PayloadDescriptor, PutOptions, S3Requests};
use crate::retry::{forgotten_keys_as_expired, Attempts, Jitter, RetryDecision, RetryPolicy, S3Retry};
use crate::{Credentials, HttpRequest, HttpResponse};

/// XML and error answers are small; a larger one is not S3's.
const MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// Bytes to upload. A file (size known) is sent as opened spans and hashed
/// where it is (the component's host streams it: its bytes never enter the
/// component). A pipe's bytes come through `read`, and are hashed here.
pub trait Source {
    /// A span opened for sending (the component's: a host stream).
    type Span;
    fn name(&self) -> String;
    fn size(&self) -> Option<u64>;
    fn read(&self, offset: u64, len: u32) -> std::result::Result<Vec<u8>, String>;
    fn open_range(&self, offset: u64, len: u64) -> std::result::Result<Self::Span, String>;
    /// Starts hashing at once, so that several spans hash in parallel
    /// while the caller goes on; the future gives the MD5.
    fn md5(&self, offset: u64, len: u64) -> impl Future<Output = std::result::Result<Md5, String>>;
    fn record_upload(&self, bucket: &str, key: &str, upload_id: &str);
}

/// Where a download goes. A random-access sink (a file) takes answer
/// bodies written into it at an offset and hashes what it holds; a pipe
/// takes bytes in order through `write`.
pub trait Sink {
    /// A place opened for an answer's body (the component's: a host stream).
    type Writer;
    fn name(&self) -> String;
    fn random_access(&self) -> bool;
    fn write(&self, offset: u64, data: &[u8]) -> std::result::Result<(), String>;
    fn open_at(&self, offset: u64) -> std::result::Result<Self::Writer, String>;
    /// Starts hashing at once, like [`Source::md5`].
    fn md5(&self, offset: u64, len: u64) -> impl Future<Output = std::result::Result<Md5, String>>;
    fn commit(&self) -> std::result::Result<(), String>;
}

/// What a request carries: bytes, or a span of a [`Source`] opened for it.
pub enum Body<'a, Span> {
    Bytes(&'a [u8]),
    Span { span: &'a Span, len: u64 },
}

/// An answer whose head has arrived and whose body has not been read.
// One thread, no spawning: the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Answer {
    /// What [`Answer::splice_into`] writes into.
    type Writer;
    fn status(&self) -> u16;
    fn headers(&self) -> &[(String, String)];
    /// The next piece of the body; `None` at its end.
    async fn chunk(&mut self) -> std::result::Result<Option<Vec<u8>>, HttpError>;
    /// Moves up to `limit` bytes of the body into `out` (without copying
    /// them through the caller); the bytes moved, fewer if the body ended.
    async fn splice_into(&mut self, out: &Self::Writer, limit: u64) -> std::result::Result<u64, HttpError>;
    /// The whole answer, refusing bodies larger than `limit` bytes.
    async fn read_all(self, limit: usize) -> std::result::Result<HttpResponse, HttpError>;
}

/// Everything the drivers do outside the component's memory: HTTP, local
/// data, waiting, randomness and fresh keys.
#[allow(async_fn_in_trait)]
pub trait Exchange {
    type Source: Source;
    type Sink: Sink;
    type Answer: Answer<Writer = <Self::Sink as Sink>::Writer>;
    /// Sends `request` with `body` in place of its own, and returns once
    /// the answer's head has arrived.
    async fn send(&self, request: &HttpRequest, body: Body<'_, <Self::Source as Source>::Span>) -> std::result::Result<Self::Answer, HttpError>;
    async fn sleep_ms(&self, ms: u64);
    /// Seeds the retry jitter.
    fn random_seed(&self) -> u64;
    /// Keys other than those of `refused_access_key_id`, or why there are none.
    fn renew_keys(&self, refused_access_key_id: &str) -> std::result::Result<Credentials, String>;
}

/// The data of a part or an object to upload.
enum Payload {
    /// Read into the component (a pipe's bytes).
    Held(Vec<u8>),
    /// A span of a file: the host hashes and streams it.
    InSource { offset: u64, len: u64 },
}

impl Payload {
    fn len(&self) -> u64 {
        match self {
            Payload::Held(data) => data.len() as u64,
            Payload::InSource { len, .. } => *len,
        }
    }
}

pub struct Settings {
    pub concurrency: usize,
    pub part_size: Option<u64>,
    pub multipart_threshold: u64,
    pub retry: RetryPolicy,
}

/// A multipart upload that did not end in a checked object.
struct CompletionFailed {
    error: TransferError,
    /// The server may have assembled the object (or did, wrongly): the
    /// upload must not be aborted.
    maybe_completed: bool,
}

impl From<TransferError> for CompletionFailed {
    fn from(error: TransferError) -> Self {
        CompletionFailed { error, maybe_completed: false }
    }
}

pub struct Uploaded {
    pub size: u64,
    pub etag: String,
    pub parts: u32,
    pub parts_kept: u32,
}

pub struct Downloaded {
    pub size: u64,
    pub etag: Option<String>,
    pub verified_by: VerifiedBy,
}

/// How a download's bytes were checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifiedBy {
    /// The ETag is the object's MD5, and the bytes' MD5 matched it.
    Md5,
    /// The bytes' per-part MD5s make the multipart ETag.
    MultipartEtag,
    /// Only the size could be checked.
    Size,
}

pub struct PutRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub content_type: Option<String>,
    pub resume: bool,
    pub resume_upload_id: Option<String>,
    pub keep_on_failure: bool,
}

/// Spans whose MD5s are asked for together: the host hashes spans side by
/// side, one per SIMD lane (16 with AVX-512), so parts are hashed ahead of
/// sending in batches of at least this many, and landed ranges too. One
/// span at a time would run its lanes mostly empty.
pub const DIGESTS_AT_ONCE: usize = 16;

/// An MD5 the host is computing.
type PendingMd5<'a> = LocalBoxFuture<'a, std::result::Result<Md5, String>>;

/// User metadata naming the part size of a multipart upload: a download
/// can then check the multipart ETag for certain.
const PART_SIZE_METADATA: &str = "lakeport-part-size";

pub struct Session<X: Exchange> {
    requests: RefCell<S3Requests>,
    pub settings: Settings,
    jitter: RefCell<Jitter>,
    /// Requests sent, for messages.
    sent: Cell<u64>,
    exchange: X,
    /// Which keys requests are signed with: bumped on each renewal, so that
    /// parts refused together renew the keys once.
    generation: Cell<u32>,
    /// The keys in use have had a success answer.
    keys_worked: Cell<bool>,
}

use lakeport_http::unix_now as now;

fn local_io(what: &str, name: &str, e: String) -> TransferError {
    TransferError::LocalIo(format!("{what} {name} failed: {e}"))
}

/// Reads `len` bytes from `offset`, fewer only at the end of the source.
fn read_up_to(source: &impl Source, offset: u64, len: u64) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(len as usize);
    while (data.len() as u64) < len {
        let want = (len - data.len() as u64).min(8 << 20) as u32;
        let chunk = source.read(offset + data.len() as u64, want).map_err(|e| local_io("reading", &source.name(), e))?;
        if chunk.is_empty() {
            break;
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

fn head_only(answer: &impl Answer) -> HttpResponse {
    HttpResponse { status: answer.status(), headers: answer.headers().to_vec(), body: Vec::new() }
}

impl<X: Exchange> Session<X> {
    pub fn new(requests: S3Requests, settings: Settings, exchange: X) -> Self {
        let seed = exchange.random_seed();
        Session {
            requests: RefCell::new(requests),
            settings,
            jitter: RefCell::new(Jitter::new(seed)),
            sent: Cell::new(0),
            exchange,
            generation: Cell::new(0),
            keys_worked: Cell::new(false),
        }
    }

    /// What the session does its I/O through.
    pub fn exchange(&self) -> &X {
        &self.exchange
    }

    fn random(&self) -> u64 {
        self.jitter.borrow_mut().next_u64()
    }

    /// The request, signed now, and the generation of the keys it is signed with.
    fn sign(&self, build: &dyn Fn(&mut S3Requests, i64) -> Result<HttpRequest>) -> Result<(HttpRequest, u32)> {
        Ok((build(&mut self.requests.borrow_mut(), now())?, self.generation.get()))
    }

    /// Notes that an answer came: a success proves the keys in use.
    fn answered(&self, status: u16) {
        if (200..300).contains(&status) {
            self.keys_worked.set(true);
        }
    }

    /// A failed attempt's error, as the retry policy should judge it.
    fn judged(&self, error: TransferError) -> TransferError {
        forgotten_keys_as_expired(error, self.keys_worked.get())
    }

    /// One attempt: `request` sent with `body` (its own XML, a part, an
    /// object), the answer read whole.
    async fn attempt(&self, request: &HttpRequest, body: Body<'_, <X::Source as Source>::Span>) -> Result<HttpResponse> {
        self.sent.set(self.sent.get() + 1);
        let response = self.exchange.send(request, body).await.map_err(|e| TransferError::from(&e))?;
        let response = response.read_all(MAX_DOCUMENT_BYTES).await.map_err(|e| TransferError::from(&e))?;
        self.answered(response.status);
        Ok(response)
    }

    /// Sends `payload` as the body of `request`: held bytes as they are, a
    /// span of `source` streamed by the host.
    async fn attempt_payload(&self, request: &HttpRequest, payload: &Payload, source: &X::Source) -> Result<HttpResponse> {
        match payload {
            Payload::Held(data) => self.attempt(request, Body::Bytes(data)).await,
            Payload::InSource { offset, len } => {
                let span = source.open_range(*offset, *len).map_err(|e| local_io("reading", &source.name(), e))?;
                self.attempt(request, Body::Span { span: &span, len: *len }).await
            }
        }
    }

    /// The MD5 of a payload: computed here for held bytes, by the host for
    /// a file.
    async fn payload_md5(&self, payload: &Payload, source: &X::Source) -> Result<Md5> {
        match payload {
            Payload::Held(data) => Ok(md5(data)),
            Payload::InSource { offset, len } => source.md5(*offset, *len).await.map_err(|e| local_io("reading", &source.name(), e)),
        }
    }

    /// Acts on a retry decision taken for a request signed with keys of
    /// `generation`: the wait before sending it again, or why not (`None`:
    /// the decision was to give up; else a note on the failed renewal).
    fn settle(&self, decision: RetryDecision, generation: u32) -> std::result::Result<u64, Option<String>> {
        match decision {
            RetryDecision::Retry { after_ms } => Ok(after_ms),
            RetryDecision::FixClockAndRetry { offset_secs } => {
                self.requests.borrow_mut().set_clock_offset(offset_secs);
                Ok(0)
            }
            RetryDecision::RenewCredentialsAndRetry => self.renew_keys(generation).map(|()| 0).map_err(Some),
            RetryDecision::GiveUp => Err(None),
        }
    }

    /// New keys from the host, unless the ones that signed the refused
    /// request were replaced already (parts in flight are refused together).
    fn renew_keys(&self, generation: u32) -> std::result::Result<(), String> {
        if generation != self.generation.get() {
            return Ok(());
        }
        let refused = self.requests.borrow().access_key_id().to_string();
        let fresh = self.exchange.renew_keys(&refused).map_err(|e| format!("renewing the credentials failed: {e}"))?;
        if fresh.access_key_id == refused {
            return Err("renewing the credentials gave the refused keys again".into());
        }
        self.requests.borrow_mut().set_credentials(fresh).map_err(|e| e.to_string())?;
        self.generation.set(generation + 1);
        self.keys_worked.set(false);
        Ok(())
    }

    /// Sends a request (built afresh, so re-signed, for every attempt) and
    /// parses the answer, retrying what the retry policy says to retry.
    pub async fn call<T>(&self, build: impl Fn(&mut S3Requests, i64) -> Result<HttpRequest>, parse: impl Fn(&HttpResponse) -> Result<T>) -> Result<T> {
        self.call_with(build, None, parse).await
    }

    /// [`Session::call`] for a request that carries `payload` of `source`.
    async fn call_with<T>(
        &self,
        build: impl Fn(&mut S3Requests, i64) -> Result<HttpRequest>,
        payload: Option<(&Payload, &X::Source)>,
        parse: impl Fn(&HttpResponse) -> Result<T>,
    ) -> Result<T> {
        self.call_counting(&mut Attempts::default(), build, payload, parse).await
    }

    /// [`Session::call_with`], counting the failed attempts in `attempts`
    /// (all of them, when it ends in an error).
    async fn call_counting<T>(
        &self,
        attempts: &mut Attempts,
        build: impl Fn(&mut S3Requests, i64) -> Result<HttpRequest>,
        payload: Option<(&Payload, &X::Source)>,
        parse: impl Fn(&HttpResponse) -> Result<T>,
    ) -> Result<T> {
        loop {
            let (request, generation) = self.sign(&build)?;
            let answer = match payload {
                Some((payload, source)) => self.attempt_payload(&request, payload, source).await,
                None => self.attempt(&request, Body::Bytes(&request.body)).await,
            };
            let error = match answer {
                Ok(response) => match parse(&response) {
                    Ok(value) => return Ok(value),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            let error = self.judged(error);
            let decision = self.settings.retry.decide(attempts, &error, now(), self.random());
            match self.settle(decision, generation) {
                Ok(wait) => self.exchange.sleep_ms(wait).await,
                Err(note) => return Err(noted(error, note)),
            }
        }
    }

    pub async fn head(&self, bucket: &str, key: &str, part_number: Option<u32>) -> Result<ObjectMetadata> {
        let options = GetOptions { part_number, ..GetOptions::default() };
        self.call(|r, t| r.head_object(bucket, key, &options, t), parse::parse_head_object).await
    }

    // ---- uploads ----

    pub async fn put(&self, source: &X::Source, req: &PutRequest<'_>) -> Result<Uploaded> {
        let size = source.size();
        let options = UploadOptions { part_size: self.settings.part_size, multipart_threshold: self.settings.multipart_threshold };
        match plan_upload(size, &options)? {
            UploadPlan::Single { size } => self.put_single(source, Payload::InSource { offset: 0, len: size }, req).await,
            UploadPlan::Multipart(plan) if size.is_none() => {
                // A pipe: input that ends within the first part goes as one PUT.
                let first = read_up_to(source, 0, plan.part_size())?;
                if (first.len() as u64) < plan.part_size() {
                    return self.put_single(source, Payload::Held(first), req).await;
                }
                self.put_multipart(source, plan, Some(first), req).await
            }
            UploadPlan::Multipart(plan) => self.put_multipart(source, plan, None, req).await,
        }
    }

    async fn put_single(&self, source: &X::Source, payload: Payload, req: &PutRequest<'_>) -> Result<Uploaded> {
        let digest = self.payload_md5(&payload, source).await?;
        let descriptor = PayloadDescriptor::unsigned(payload.len(), digest);
        let options = PutOptions { content_type: req.content_type.clone(), ..PutOptions::default() };
        let put = self
            .call_with(|r, t| r.put_object(req.bucket, req.key, &descriptor, &options, t), Some((&payload, source)), parse::parse_put_object)
            .await?;
        if let EtagKind::Md5(stored) = etag_kind(&put.etag) {
            if stored != digest {
                return Err(TransferError::Integrity(format!(
                    "the server stored {} with an ETag that is not the MD5 of the data sent: the data was damaged on the way; upload it again",
                    req.key
                )));
            }
        }
        Ok(Uploaded { size: payload.len(), etag: normalize_etag(&put.etag).to_string(), parts: 0, parts_kept: 0 })
    }

    async fn put_multipart(&self, source: &X::Source, plan: PartPlan, first: Option<Vec<u8>>, req: &PutRequest<'_>) -> Result<Uploaded> {
        let (bucket, key) = (req.bucket, req.key);
        let resumed = match (req.resume, &req.resume_upload_id) {
            (false, _) => None,
            (true, Some(id)) => Some(id.clone()),
            // A server that cannot list uploads (s3s-fs, rclone) has none to offer.
            (true, None) => match self.find_upload(bucket, key).await {
                Err(TransferError::S3(e)) if e.status == 501 => None,
                other => other?,
            },
        };
        let (mut upload, kept) = match resumed {
            Some(upload_id) => {
                let server_parts = self.list_all_parts(bucket, key, &upload_id).await?;
                // Continue with the part size the upload started with, unless one was given.
                let plan = match (self.settings.part_size, infer_part_size(&server_parts), plan.total_size()) {
                    (None, Some(p), Some(total)) if p != plan.part_size() && server_parts.iter().any(|s| s.size == p && s.part_number == 1) => {
                        PartPlan::new(p, Some(total)).unwrap_or(plan)
                    }
                    _ => plan,
                };
                // The local data of the parts the server has, hashed by the host in parallel.
                let spans: Vec<crate::PartSpan> = server_parts.iter().filter_map(|p| plan.part(p.part_number)).collect();
                let digests: BTreeMap<u32, Md5> = futures_util::stream::iter(spans)
                    .map(|span| async move { (span.number, source.md5(span.offset, span.length).await) })
                    .buffer_unordered(DIGESTS_AT_ONCE)
                    .filter_map(|(number, digest)| async move { Some((number, digest.ok()?)) })
                    .collect()
                    .await;
                let local_md5 = |span: &crate::PartSpan| digests.get(&span.number).copied();
                let (upload, report) =
                    MultipartUpload::resume(&upload_id, plan, &server_parts, self.settings.concurrency, self.settings.retry, local_md5)?;
                (upload, report.kept.len() as u32)
            }
            None => {
                let metadata = vec![(PART_SIZE_METADATA.to_string(), plan.part_size().to_string())];
                let options = PutOptions { content_type: req.content_type.clone(), metadata, ..PutOptions::default() };
                let upload_id =
                    self.call(|r, t| r.create_multipart_upload(bucket, key, &options, t), parse::parse_create_multipart_upload).await?;
                source.record_upload(bucket, key, &upload_id);
                (MultipartUpload::new(&upload_id, plan, self.settings.concurrency, self.settings.retry)?, 0)
            }
        };
        let sent = match self.send_parts(source, &mut upload, first, req).await {
            Ok(()) => self.complete(&upload, bucket, key).await,
            Err(e) => Err(CompletionFailed { error: e, maybe_completed: false }),
        };
        match sent {
            Ok(etag) => {
                let size = upload.plan().total_size().unwrap_or_default();
                Ok(Uploaded { size, etag, parts: upload.plan().part_count().unwrap_or(0), parts_kept: kept })
            }
            // The server may have assembled the object: never abort.
            Err(CompletionFailed { error: e, maybe_completed: true }) => Err(with_note(
                e,
                &format!("the upload may have completed: check the object; if it is missing, run the same command with --resume (upload ID {})", upload.upload_id()),
            )),
            Err(CompletionFailed { error: e, .. }) if req.keep_on_failure => Err(with_note(e, "the parts sent so far are kept on the server: run the same command with --resume to continue")),
            Err(CompletionFailed { error: e, .. }) => {
                let id = upload.upload_id().to_string();
                let aborted = self.call(|r, t| r.abort_multipart_upload(bucket, key, &id, t), parse::parse_empty_success).await;
                Err(match aborted {
                    Ok(()) => with_note(e, "the unfinished upload was aborted (keep it for --resume with --keep-on-failure)"),
                    Err(_) => with_note(e, &format!("aborting the unfinished upload failed too: remove it with `lakeport s3 uploads abort` (upload ID {id})")),
                })
            }
        }
    }

    /// Sends every part not yet stored, `concurrency` at once.
    async fn send_parts(&self, source: &X::Source, upload: &mut MultipartUpload, mut first: Option<Vec<u8>>, req: &PutRequest<'_>) -> Result<()> {
        let (bucket, key) = (req.bucket, req.key);
        let upload_id = upload.upload_id().to_string();
        let pipe = upload.plan().total_size().is_none();
        let mut running = FuturesUnordered::new();
        let mut digests: BTreeMap<u32, PendingMd5<'_>> = BTreeMap::new();
        loop {
            // Topped up a whole batch at a time, so that a batch hashes together.
            if digests.len() <= DIGESTS_AT_ONCE {
                for span in upload.parts_to_send(2 * DIGESTS_AT_ONCE) {
                    digests.entry(span.number).or_insert_with(|| Box::pin(source.md5(span.offset, span.length)));
                }
            }
            while let Some(span) = upload.next_part_to_send() {
                let payload = match (span.number, first.take()) {
                    (1, Some(data)) => Payload::Held(data),
                    _ if !pipe => Payload::InSource { offset: span.offset, len: span.length },
                    _ => {
                        let data = read_up_to(source, span.offset, span.length)?;
                        if (data.len() as u64) < span.length {
                            upload.input_ended(span.offset + data.len() as u64)?;
                            if data.is_empty() {
                                continue;
                            }
                        }
                        Payload::Held(data)
                    }
                };
                let digest = digests.remove(&span.number);
                running.push(self.upload_part(source, bucket, key, &upload_id, span.number, payload, digest, 0));
            }
            if upload.is_complete() {
                break;
            }
            let Some((number, payload, generation, result)) = running.next().await else { break };
            match result {
                Ok(etag) => upload.part_done(number, &etag)?,
                Err(e) => {
                    let e = self.judged(e);
                    match self.settle(upload.part_failed(number, &e, now(), self.random()), generation) {
                        Ok(wait) => running.push(self.upload_part(source, bucket, key, &upload_id, number, payload, None, wait)),
                        Err(note) => return Err(upload.failure().cloned().unwrap_or_else(|| noted(e, note))),
                    }
                }
            }
        }
        match upload.failure() {
            Some(failure) => Err(failure.clone()),
            None => Ok(()),
        }
    }

    /// Completes an upload whose parts are all stored; the object's ETag.
    /// When the answer gives no ETag, or is lost in a way that may hide a
    /// completion, the object itself is checked by HEAD.
    async fn complete(&self, upload: &MultipartUpload, bucket: &str, key: &str) -> std::result::Result<String, CompletionFailed> {
        let mut attempts = Attempts::default();
        let build = |r: &mut S3Requests, t| upload.complete_request(r, bucket, key, t);
        let answer = self.call_counting(&mut attempts, build, None, parse::parse_complete_multipart_upload).await;
        let assembled = |error| CompletionFailed { error, maybe_completed: true };
        let lost = match answer {
            Ok(completed) => match upload.check_completed(key, completed.etag.as_deref()).map_err(assembled)? {
                Some(etag) => return Ok(etag),
                None => None,
            },
            Err(e) if completion_uncertain(&e, attempts.failures) => Some(e),
            Err(e) => return Err(CompletionFailed { error: e, maybe_completed: false }),
        };
        match (self.head(bucket, key, None).await, lost) {
            (Ok(head), _) => upload.check_assembled(key, &head).map_err(assembled),
            (Err(_), Some(lost)) => Err(assembled(lost)),
            (Err(e), None) => Err(assembled(e)),
        }
    }

    /// One attempt at a part (with its MD5 when it was asked for ahead);
    /// the payload comes back for another, with the generation of the keys
    /// that signed it.
    #[allow(clippy::too_many_arguments)]
    async fn upload_part(
        &self,
        source: &X::Source,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        payload: Payload,
        digest: Option<PendingMd5<'_>>,
        wait_ms: u64,
    ) -> (u32, Payload, u32, Result<String>) {
        self.exchange.sleep_ms(wait_ms).await;
        let mut generation = self.generation.get();
        let result = async {
            let digest = match digest {
                Some(pending) => pending.await.map_err(|e| local_io("reading", &source.name(), e))?,
                None => self.payload_md5(&payload, source).await?,
            };
            let descriptor = PayloadDescriptor::unsigned(payload.len(), digest);
            let (request, signed_with) = self.sign(&|r, t| r.upload_part(bucket, key, upload_id, number, &descriptor, t))?;
            generation = signed_with;
            parse::parse_upload_part(&self.attempt_payload(&request, &payload, source).await?)
        }
        .await;
        (number, payload, generation, result)
    }

    /// The newest unfinished upload of exactly `key`.
    async fn find_upload(&self, bucket: &str, key: &str) -> Result<Option<String>> {
        let uploads = self.list_uploads(bucket, key).await?;
        Ok(uploads.into_iter().filter(|u| u.key == key).max_by_key(|u| u.initiated.unwrap_or(0)).map(|u| u.upload_id))
    }

    pub async fn list_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<parse::UploadSummary>> {
        let mut params = ListMultipartUploads { prefix: (!prefix.is_empty()).then(|| prefix.to_string()), encoding_type_url: false, ..Default::default() };
        let mut all = Vec::new();
        loop {
            let page = self.call(|r, t| r.list_multipart_uploads(bucket, &params, t), parse::parse_list_multipart_uploads).await?;
            all.extend(page.uploads);
            if !page.is_truncated || page.next_key_marker.is_none() {
                return Ok(all);
            }
            params.key_marker = page.next_key_marker;
            params.upload_id_marker = page.next_upload_id_marker;
        }
    }

    async fn list_all_parts(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Vec<ListedPart>> {
        let mut marker = None;
        let mut all = Vec::new();
        loop {
            let page = self.call(|r, t| r.list_parts(bucket, key, upload_id, marker, None, t), parse::parse_list_parts).await?;
            all.extend(page.parts);
            match (page.is_truncated, page.next_part_number_marker) {
                (true, Some(next)) if Some(next) != marker => marker = Some(next),
                _ => return Ok(all),
            }
        }
    }

    /// Server-side copy: one CopyObject up to 5 GiB; above, a multipart
    /// upload of UploadPartCopy ranges (`concurrency` at once is not worth
    /// it here: the server does the work, parts go one after the other).
    pub async fn copy(&self, source_bucket: &str, source_key: &str, bucket: &str, key: &str) -> Result<String> {
        let head = self.head(source_bucket, source_key, None).await?;
        let options = CopyOptions { replace: None, source_if_match: head.etag.clone() };
        if head.content_length <= MAX_SINGLE_PUT {
            let copied = self
                .call(|r, t| r.copy_object((source_bucket, source_key), (bucket, key), &options, t), parse::parse_copy_object)
                .await?;
            return Ok(normalize_etag(&copied.etag).to_string());
        }
        let plan = PartPlan::new(choose_part_size(head.content_length, Some(MAX_PART_SIZE.min(1 << 30)))?, Some(head.content_length))?;
        let upload_id =
            self.call(|r, t| r.create_multipart_upload(bucket, key, &PutOptions::default(), t), parse::parse_create_multipart_upload).await?;
        let mut upload = MultipartUpload::new(&upload_id, plan, 1, self.settings.retry)?;
        let if_match = head.etag.as_deref();
        let result = async {
            while let Some(span) = upload.next_part_to_send() {
                let range = ByteRange::new(span.offset, span.length)?;
                let part = |r: &mut S3Requests, t| r.upload_part_copy((bucket, key), &upload_id, span.number, (source_bucket, source_key), Some(range), if_match, t);
                let copied = self.call(part, parse::parse_upload_part_copy).await?;
                upload.part_done(span.number, &copied.etag)?;
            }
            self.complete(&upload, bucket, key).await
        }
        .await;
        match result {
            Ok(etag) => Ok(etag),
            Err(CompletionFailed { error, maybe_completed: true }) => Err(error),
            Err(CompletionFailed { error, maybe_completed: false }) => {
                let _ = self.call(|r, t| r.abort_multipart_upload(bucket, key, &upload_id, t), parse::parse_empty_success).await;
                Err(error)
            }
        }
    }

    pub fn presign(&self, method: &'static str, bucket: &str, key: &str, expires: u32, now: i64) -> Result<String> {
        self.requests.borrow_mut().presign(method, bucket, key, expires, now)
    }

    // ---- downloads ----

    fn range_size(&self) -> Option<u64> {
        self.settings.part_size
    }

    pub async fn get(&self, bucket: &str, key: &str, sink: &X::Sink) -> Result<Downloaded> {
        let head = self.head(bucket, key, None).await?;
        let size = head.content_length;
        // A multipart ETag is checkable only with the part layout: lakeport
        // notes it in the metadata; else HEAD of part 1 tells it.
        let noted = head.metadata.iter().find(|(n, _)| n == PART_SIZE_METADATA).and_then(|(_, v)| v.parse::<u64>().ok());
        let known_part_size = match head.etag.as_deref().map(etag_kind) {
            Some(EtagKind::Multipart { .. }) if noted.is_some() => noted,
            // Servers that ignore `partNumber` answer with the whole object and no parts count.
            Some(EtagKind::Multipart { parts, .. }) if parts > 1 => self
                .head(bucket, key, Some(1))
                .await
                .ok()
                .filter(|p| p.parts_count == Some(parts) && p.content_length < size)
                .map(|p| p.content_length),
            _ => None,
        };
        let options = DownloadOptions { range_size: self.range_size(), max_in_flight: self.settings.concurrency, known_part_size };
        let plan = DownloadPlan::new(size, head.etag.as_deref(), &options)?;
        self.fetch_ranges(bucket, key, plan, sink).await
    }

    /// A download whose size is known from a listing: small objects skip
    /// the HEAD and come in one GET.
    pub async fn get_listed(&self, bucket: &str, key: &str, size: Option<u64>, sink: &X::Sink) -> Result<Downloaded> {
        match size {
            Some(size) if size <= self.range_size().unwrap_or(DEFAULT_RANGE_SIZE) => {
                let whole = |resp: &HttpResponse| parse::parse_get_object(resp, None).map(|meta| (meta, resp.body.clone()));
                let (meta, body) = self.call(|r, t| r.get_object(bucket, key, &GetOptions::default(), t), whole).await?;
                let options = DownloadOptions { range_size: self.range_size(), max_in_flight: 1, known_part_size: None };
                let mut download = RangedDownload::new(DownloadPlan::new(meta.content_length, meta.etag.as_deref(), &options)?, self.settings.retry);
                let range = download.next_range().ok_or_else(|| TransferError::Usage("no range to fetch".into()))?;
                let mut hasher = RangeHasher::new(download.plan());
                hasher.update(&body);
                download.range_done(range.index, hasher.finish())?;
                let verification = download.verify(None)?;
                sink.write(0, &body).map_err(|e| local_io("writing", &sink.name(), e))?;
                sink.commit().map_err(|e| local_io("completing", &sink.name(), e))?;
                Ok(Downloaded { size: meta.content_length, etag: download.plan().etag.clone(), verified_by: verified_by(&verification) })
            }
            _ => self.get(bucket, key, sink).await,
        }
    }

    async fn fetch_ranges(&self, bucket: &str, key: &str, plan: DownloadPlan, sink: &X::Sink) -> Result<Downloaded> {
        let size = plan.size;
        let random_access = sink.random_access();
        // A plain ETag is the MD5 of all bytes in order: for a file the host
        // hashes each complete prefix while later ranges still arrive (it
        // goes on from the last one), leaving only the tail for the end; a
        // pipe's bytes are hashed as they go out.
        let whole_md5 = matches!(plan.etag.as_deref().map(etag_kind), Some(EtagKind::Md5(_))) && plan.range_count() > 1;
        let mut prefix_md5 = None;
        let max_held = 2 * self.settings.concurrency.max(1);
        let mut download = RangedDownload::new(plan.clone(), self.settings.retry);
        let mut hasher = Md5Hasher::default();
        // A pipe's ranges wait here until the ones before them are out.
        let mut held: BTreeMap<u32, (u64, Vec<u8>)> = BTreeMap::new();
        let mut next_in_order = 0u32;
        // Ranges stored in the file whose digests are still to be taken:
        // asked for DIGESTS_AT_ONCE together, or when nothing else arrives.
        let mut landed: Vec<RangeToFetch> = Vec::new();
        let mut fetching = 0usize;
        let mut running: FuturesUnordered<LocalBoxFuture<'_, RangeEvent>> = FuturesUnordered::new();
        loop {
            while held.len() + download.in_flight() < max_held {
                let Some(range) = download.next_range() else { break };
                fetching += 1;
                running.push(Box::pin(self.fetch_range(bucket, key, &plan, range, sink, 0).map(RangeEvent::Fetched)));
            }
            if landed.len() >= DIGESTS_AT_ONCE || (!landed.is_empty() && fetching == 0) {
                running.push(Box::pin(self.hash_landed(&plan, std::mem::take(&mut landed), sink).map(RangeEvent::Hashed)));
            }
            let Some(event) = running.next().await else { break };
            let (range, generation, result) = match event {
                // Only ranges hashed on their own land: an object MD5 over
                // several ranges is hashed by prefix instead, so no prefix
                // to extend here.
                RangeEvent::Hashed(digests) => {
                    for (index, digest) in digests? {
                        download.range_done(index, digest)?;
                    }
                    continue;
                }
                RangeEvent::Fetched(fetched) => fetched,
            };
            fetching -= 1;
            let prefix_before = download.done_prefix_end();
            let stored = result.and_then(|fetched| match fetched {
                Fetched::Landed => download.range_landed(range.index).map(|()| {
                    landed.push(range.clone());
                    None
                }),
                Fetched::Done { digest, data } => download.range_done(range.index, digest).map(|()| data),
            });
            match stored {
                Ok(None) => {
                    if whole_md5 && download.done_prefix_end() > prefix_before {
                        prefix_md5 = Some(sink.md5(0, download.done_prefix_end()));
                    }
                }
                Ok(Some(data)) => {
                    held.insert(range.index, (range.offset, data));
                    while let Some((offset, data)) = held.remove(&next_in_order) {
                        if whole_md5 {
                            hasher.update(&data);
                        }
                        sink.write(offset, &data).map_err(|e| local_io("writing", &sink.name(), e))?;
                        next_in_order += 1;
                    }
                }
                Err(e) => {
                    let e = self.judged(e);
                    match self.settle(download.range_failed(range.index, &e, now(), self.random()), generation) {
                        Ok(wait) => {
                            fetching += 1;
                            running.push(Box::pin(self.fetch_range(bucket, key, &plan, range, sink, wait).map(RangeEvent::Fetched)));
                        }
                        Err(note) => return Err(download.failure().cloned().unwrap_or_else(|| noted(e, note))),
                    }
                }
            }
        }
        if let Some(failure) = download.failure() {
            return Err(failure.clone());
        }
        let whole = match (whole_md5, random_access) {
            (false, _) => None,
            (true, true) => {
                drop(prefix_md5);
                Some(sink.md5(0, size).await.map_err(|e| local_io("reading back", &sink.name(), e))?)
            }
            (true, false) => Some(hasher.finish()),
        };
        let verification = download.verify(whole)?;
        sink.commit().map_err(|e| local_io("completing", &sink.name(), e))?;
        Ok(Downloaded { size, etag: download.plan().etag.clone(), verified_by: verified_by(&verification) })
    }

    /// The digests of ranges stored in `sink`, read back by the host: all
    /// their spans are asked for before any is awaited, so they are hashed
    /// side by side.
    async fn hash_landed(&self, plan: &DownloadPlan, ranges: Vec<RangeToFetch>, sink: &X::Sink) -> Result<Vec<(u32, RangeDigest)>> {
        let pending: Vec<(RangeToFetch, Vec<_>)> = ranges
            .into_iter()
            .map(|range| {
                let md5s = digest_spans(plan, range.length).iter().map(|&(at, len)| sink.md5(range.offset + at, len)).collect();
                (range, md5s)
            })
            .collect();
        let mut digests = Vec::with_capacity(pending.len());
        for (range, md5s) in pending {
            let mut got = Vec::with_capacity(md5s.len());
            for md5 in md5s {
                got.push(md5.await.map_err(|e| local_io("reading back", &sink.name(), e))?);
            }
            digests.push((range.index, range_digest(plan, range.length, &got)?));
        }
        Ok(digests)
    }

    /// One attempt at a range, and the generation of the keys that signed
    /// it. Into a file the body is spliced by the host and hashed there;
    /// for a pipe the bytes come back to go out in order.
    async fn fetch_range(&self, bucket: &str, key: &str, plan: &DownloadPlan, range: RangeToFetch, sink: &X::Sink, wait_ms: u64) -> (RangeToFetch, u32, Result<Fetched>) {
        self.exchange.sleep_ms(wait_ms).await;
        let mut generation = self.generation.get();
        let result = async {
            let (request, signed_with) = self.sign(&|r, t| r.get_object(bucket, key, &range.options, t))?;
            generation = signed_with;
            self.sent.set(self.sent.get() + 1);
            let mut response = self.exchange.send(&request, Body::Bytes(&request.body)).await.map_err(|e| TransferError::from(&e))?;
            self.answered(response.status());
            if !(200..300).contains(&response.status()) {
                let full = response.read_all(MAX_DOCUMENT_BYTES).await.map_err(|e| TransferError::from(&e))?;
                return Err(parse::error_from_response(&full, false));
            }
            let meta = parse::parse_get_object(&head_only(&response), range.options.range)?;
            if meta.content_length != range.length {
                return Err(TransferError::InvalidResponse {
                    status: response.status(),
                    message: format!("the server sent {} bytes of {key} where {} were asked for; try again", meta.content_length, range.length),
                });
            }
            let cut_short = |got: u64| TransferError::Transport {
                kind: TransportKind::ConnectionReset,
                message: format!("the answer for {key} ended after {got} of {} bytes", range.length),
            };
            if sink.random_access() {
                let out = sink.open_at(range.offset).map_err(|e| local_io("writing", &sink.name(), e))?;
                let moved = response.splice_into(&out, range.length).await.map_err(|e| TransferError::from(&e))?;
                drop(out);
                if moved < range.length {
                    return Err(cut_short(moved));
                }
                if digest_spans(plan, range.length).is_empty() {
                    return Ok(Fetched::Done { digest: range_digest(plan, range.length, &[])?, data: None });
                }
                return Ok(Fetched::Landed);
            }
            let mut data = Vec::with_capacity(range.length as usize);
            let mut hasher = RangeHasher::new(plan);
            while let Some(chunk) = response.chunk().await.map_err(|e| TransferError::from(&e))? {
                data.extend_from_slice(&chunk);
                hasher.update(&chunk);
                if data.len() as u64 > range.length {
                    return Err(TransferError::InvalidResponse { status: response.status(), message: format!("the server sent more of {key} than it announced") });
                }
            }
            if (data.len() as u64) < range.length {
                return Err(cut_short(data.len() as u64));
            }
            Ok(Fetched::Done { digest: hasher.finish(), data: Some(data) })
        }
        .await;
        (range, generation, result)
    }
}

/// A range that arrived.
enum Fetched {
    /// Stored in the sink; its digests are read back later, with others'.
    Landed,
    /// Its digests, and its bytes when they are not already in the sink.
    Done { digest: RangeDigest, data: Option<Vec<u8>> },
}

/// What a download waits for: a range, or the digests of landed ones.
enum RangeEvent {
    Fetched((RangeToFetch, u32, Result<Fetched>)),
    Hashed(Result<Vec<(u32, RangeDigest)>>),
}

fn verified_by(v: &Verification) -> VerifiedBy {
    match v {
        Verification::Md5 => VerifiedBy::Md5,
        Verification::MultipartEtag { .. } => VerifiedBy::MultipartEtag,
        Verification::SizeOnlyMultipart { .. } | Verification::SizeOnly => VerifiedBy::Size,
    }
}

/// The error a request gave up with, and why its keys could not be renewed.
fn noted(error: TransferError, renewal: Option<String>) -> TransferError {
    match renewal {
        Some(note) => with_note(error, &note),
        None => error,
    }
}

/// Adds what became of the upload to an error's message.
fn with_note(e: TransferError, note: &str) -> TransferError {
    match e {
        TransferError::S3(mut s3) => {
            s3.message = format!("{}; {note}", s3.message.trim_end_matches('.'));
            TransferError::S3(s3)
        }
        TransferError::Transport { kind, message } => TransferError::Transport { kind, message: format!("{message}; {note}") },
        TransferError::InvalidResponse { status, message } => TransferError::InvalidResponse { status, message: format!("{message}; {note}") },
        TransferError::InvalidInput(m) => TransferError::InvalidInput(format!("{m}; {note}")),
        TransferError::Integrity(m) => TransferError::Integrity(format!("{m}; {note}")),
        TransferError::Usage(m) => TransferError::Usage(format!("{m}; {note}")),
        TransferError::LocalIo(m) => TransferError::LocalIo(format!("{m}; {note}")),
    }
}
