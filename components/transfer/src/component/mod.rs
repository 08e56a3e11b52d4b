//! The `transfer-component` world: WIT conversions around [`driver`], and
//! its exchange: wasi:http and the host's files, whose bytes the host
//! splices between file and connection without copying them in here.

lakeport_http::component_world!("transfer-component");

use lakeport_no_cli as _;

use std::future::Future;

use futures_util::stream::{self, StreamExt};
use lakeport_http::aio::{self, block_on};
use lakeport_http::{HttpError, HttpRequest, HttpResponse};
use wasip2::io::streams::{InputStream, OutputStream};

use exports::lakeport::plugins::transfer as wit;
use lakeport::plugins::files::{PendingDigest, Sink, Source};

use crate::endpoint::{Addressing, S3Endpoint};
use crate::error::{TransferError, TransportKind};
use crate::multipart::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_MULTIPART_THRESHOLD};
use crate::requests::{ListObjectsV2, S3Requests, MAX_DELETE_KEYS};
use crate::digest::Md5;
use crate::driver::{self, Body, Downloaded, PutRequest, Settings, Uploaded, VerifiedBy};
use crate::retry::RetryPolicy;
use crate::{parse, Credentials, S3Location};

type Session = driver::Session<HostExchange>;

struct Component;

fn error(e: TransferError) -> wit::TransferError {
    match e {
        TransferError::InvalidInput(m) => wit::TransferError::InvalidInput(m),
        TransferError::Usage(m) => wit::TransferError::InvalidInput(format!("internal error (please report it): {m}")),
        TransferError::Transport { kind: TransportKind::Denied, message } => wit::TransferError::HostDenied(message),
        TransferError::Transport { message, .. } => wit::TransferError::Transport(message),
        TransferError::InvalidResponse { message, .. } => wit::TransferError::InvalidResponse(message),
        TransferError::Integrity(m) => wit::TransferError::Integrity(m),
        TransferError::LocalIo(m) => wit::TransferError::LocalIo(m),
        TransferError::S3(e) => wit::TransferError::S3(wit::S3Refusal {
            status: e.status,
            code: e.code.clone(),
            message: e.to_string(),
            request_id: e.request_id.clone(),
        }),
    }
}

/// Waits for an MD5 the host computes.
async fn host_md5(pending: PendingDigest) -> Result<Md5, String> {
    loop {
        match pending.get() {
            Some(result) => return result?.try_into().map_err(|_| "the host's MD5 is not 16 bytes".to_string()),
            None => aio::wait(pending.subscribe()).await,
        }
    }
}

impl driver::Source for Source {
    type Span = InputStream;
    fn name(&self) -> String {
        Source::name(self)
    }
    fn size(&self) -> Option<u64> {
        Source::size(self)
    }
    fn read(&self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        Source::read(self, offset, len)
    }
    fn open_range(&self, offset: u64, len: u64) -> Result<InputStream, String> {
        Source::open_range(self, offset, len)
    }
    fn md5(&self, offset: u64, len: u64) -> impl Future<Output = Result<Md5, String>> {
        host_md5(Source::md5(self, offset, len))
    }
    fn record_upload(&self, bucket: &str, key: &str, upload_id: &str) {
        Source::record_upload(self, bucket, key, upload_id)
    }
}

impl driver::Sink for Sink {
    type Writer = OutputStream;
    fn name(&self) -> String {
        Sink::name(self)
    }
    fn random_access(&self) -> bool {
        Sink::random_access(self)
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), String> {
        Sink::write(self, offset, data)
    }
    fn open_at(&self, offset: u64) -> Result<OutputStream, String> {
        Sink::open_at(self, offset)
    }
    fn md5(&self, offset: u64, len: u64) -> impl Future<Output = Result<Md5, String>> {
        host_md5(Sink::md5(self, offset, len))
    }
    fn commit(&self) -> Result<(), String> {
        Sink::commit(self)
    }
}

impl driver::Answer for aio::Response {
    type Writer = OutputStream;
    fn status(&self) -> u16 {
        self.status
    }
    fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
    async fn chunk(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        aio::Response::chunk(self).await
    }
    async fn splice_into(&mut self, out: &OutputStream, limit: u64) -> Result<u64, HttpError> {
        aio::Response::splice_into(self, out, limit).await
    }
    async fn read_all(self, limit: usize) -> Result<HttpResponse, HttpError> {
        aio::Response::read_all(self, limit).await
    }
}

/// wasi:http, the host's files, its clock and randomness, and keys from
/// the `credential-source` import.
struct HostExchange;

impl driver::Exchange for HostExchange {
    type Source = Source;
    type Sink = Sink;
    type Answer = aio::Response;
    async fn send(&self, request: &HttpRequest, body: Body<'_, InputStream>) -> Result<aio::Response, HttpError> {
        let body = match body {
            Body::Bytes(bytes) => aio::Body::Bytes(bytes),
            Body::Span { span, len } => aio::Body::Stream { stream: span, len },
        };
        aio::send_body(request, body).await
    }
    async fn sleep_ms(&self, ms: u64) {
        aio::sleep_ms(ms).await
    }
    fn random_seed(&self) -> u64 {
        wasip2::random::random::get_random_u64()
    }
    fn renew_keys(&self, refused_access_key_id: &str) -> Result<Credentials, String> {
        let c = lakeport::plugins::credential_source::renew(refused_access_key_id)?;
        Ok(Credentials { access_key_id: c.access_key_id, secret_access_key: c.secret_access_key, session_token: c.session_token })
    }
}

fn uploaded(key: String, u: Uploaded) -> wit::UploadResult {
    wit::UploadResult { key, size: u.size, etag: u.etag, parts: u.parts, parts_kept: u.parts_kept }
}

fn downloaded(key: String, d: Downloaded) -> wit::DownloadResult {
    let verified_by = match d.verified_by {
        VerifiedBy::Md5 => wit::VerifiedBy::Md5,
        VerifiedBy::MultipartEtag => wit::VerifiedBy::MultipartEtag,
        VerifiedBy::Size => wit::VerifiedBy::Size,
    };
    wit::DownloadResult { key, size: d.size, etag: d.etag, verified_by }
}

/// Runs a batch: the small items `concurrency` at once, then the large
/// ones one after the other, each with `concurrency` parts or ranges in
/// flight, so memory stays bounded by `concurrency` pieces either way. The
/// outcomes come back in item order.
fn run_batch<I, Fut>(
    count: usize,
    small: Vec<(usize, I)>,
    large: Vec<(usize, I)>,
    concurrency: usize,
    one: impl Fn((usize, I)) -> Fut,
) -> Vec<wit::BatchOutcome>
where
    Fut: std::future::Future<Output = (usize, wit::BatchOutcome)>,
{
    let mut outcomes: Vec<Option<wit::BatchOutcome>> = (0..count).map(|_| None).collect();
    block_on(async {
        let mut small = stream::iter(small).map(&one).buffer_unordered(concurrency);
        while let Some((i, outcome)) = small.next().await {
            outcomes[i] = Some(outcome);
        }
        for item in large {
            let (i, outcome) = one(item).await;
            outcomes[i] = Some(outcome);
        }
    });
    outcomes.into_iter().map(|o| o.expect("every item has an outcome")).collect()
}

pub struct Client {
    session: Session,
}

impl Client {
    fn put_request<'a>(&self, bucket: &'a str, key: &'a str, options: &wit::UploadOptions) -> PutRequest<'a> {
        PutRequest {
            bucket,
            key,
            content_type: options.content_type.clone(),
            resume: options.resume,
            resume_upload_id: options.resume_upload_id.clone(),
            keep_on_failure: options.keep_on_failure,
        }
    }

    fn threshold(&self) -> u64 {
        self.session.settings.multipart_threshold
    }
}

impl wit::Guest for Component {
    type Client = Client;

    fn parse_location(text: String) -> Result<Option<wit::S3Location>, wit::TransferError> {
        let location = S3Location::parse_if_s3(&text).map_err(error)?;
        Ok(location.map(|l| wit::S3Location { is_prefix: l.is_prefix(), dir_key: l.dir_key(), bucket: l.bucket, key: l.key }))
    }
}

impl wit::GuestClient for Client {
    fn open(config: wit::ClientConfig) -> Result<wit::Client, wit::TransferError> {
        let addressing = match config.addressing {
            wit::Addressing::Path => Addressing::Path,
            wit::Addressing::VirtualHosted => Addressing::VirtualHosted,
        };
        let endpoint = S3Endpoint::new(&config.endpoint, &config.region, addressing).map_err(error)?;
        let c = config.credentials;
        let credentials = Credentials { access_key_id: c.access_key_id, secret_access_key: c.secret_access_key, session_token: c.session_token };
        let requests = S3Requests::new(endpoint, credentials).map_err(error)?;
        let concurrency = config.concurrency.map_or(DEFAULT_MAX_IN_FLIGHT, |n| n as usize);
        if !(1..=64).contains(&concurrency) {
            return Err(wit::TransferError::InvalidInput(format!("a concurrency of {concurrency} is outside 1..=64")));
        }
        let mut retry = RetryPolicy::default();
        if let Some(n) = config.max_attempts {
            retry.max_attempts = n.max(1);
        }
        let settings = Settings {
            concurrency,
            part_size: config.part_size,
            // A part size given alone also sets where multipart starts.
            multipart_threshold: config.multipart_threshold.or(config.part_size).unwrap_or(DEFAULT_MULTIPART_THRESHOLD),
            retry,
        };
        Ok(wit::Client::new(Client { session: Session::new(requests, settings, HostExchange) }))
    }

    fn list_objects(
        &self,
        bucket: String,
        prefix: String,
        delimiter: Option<String>,
        continuation: Option<String>,
        max_keys: Option<u32>,
    ) -> Result<wit::ListPage, wit::TransferError> {
        let params = ListObjectsV2 {
            prefix: (!prefix.is_empty()).then_some(prefix),
            delimiter,
            continuation_token: continuation,
            max_keys,
            // Keys come back as XML text: `encoding-type=url` is encoded
            // differently by different servers (`+` for space or for itself).
            encoding_type_url: false,
            ..Default::default()
        };
        let page = block_on(self.session.call(|r, t| r.list_objects_v2(&bucket, &params, t), parse::parse_list_objects_v2)).map_err(error)?;
        page.check_under(params.prefix.as_deref().unwrap_or("")).map_err(error)?;
        Ok(wit::ListPage {
            objects: page
                .objects
                .into_iter()
                .map(|o| wit::ObjectSummary { key: o.key, size: o.size, etag: o.etag, last_modified: o.last_modified, storage_class: o.storage_class })
                .collect(),
            common_prefixes: page.common_prefixes,
            next_continuation: page.next_continuation_token.filter(|_| page.is_truncated),
        })
    }

    fn stat(&self, bucket: String, key: String) -> Result<wit::ObjectInfo, wit::TransferError> {
        let m = block_on(self.session.head(&bucket, &key, None)).map_err(error)?;
        Ok(wit::ObjectInfo {
            size: m.content_length,
            etag: m.etag,
            last_modified: m.last_modified,
            content_type: m.content_type,
            metadata: m.metadata,
            storage_class: m.storage_class,
            parts_count: m.parts_count,
        })
    }

    fn put(&self, data: Source, bucket: String, key: String, options: wit::UploadOptions) -> Result<wit::UploadResult, wit::TransferError> {
        let request = self.put_request(&bucket, &key, &options);
        let done = block_on(self.session.put(&data, &request)).map_err(error)?;
        Ok(uploaded(key, done))
    }

    fn get(&self, bucket: String, key: String, into: Sink) -> Result<wit::DownloadResult, wit::TransferError> {
        let done = block_on(self.session.get(&bucket, &key, &into)).map_err(error)?;
        Ok(downloaded(key, done))
    }

    fn put_many(&self, items: Vec<(Source, String)>, bucket: String, options: wit::UploadOptions) -> Vec<wit::BatchOutcome> {
        let count = items.len();
        let (small, large): (Vec<_>, Vec<_>) =
            items.into_iter().enumerate().partition(|(_, (source, _))| source.size().is_some_and(|s| s <= self.threshold()));
        let one = |(index, (source, key)): (usize, (Source, String))| {
            let options = &options;
            let bucket = &bucket;
            async move {
                let result = self.session.put(&source, &self.put_request(bucket, &key, options)).await;
                drop(source);
                let outcome = match result {
                    Ok(done) => wit::BatchOutcome::Uploaded(uploaded(key, done)),
                    Err(e) => wit::BatchOutcome::Failed((key, error(e))),
                };
                (index, outcome)
            }
        };
        run_batch(count, small, large, self.session.settings.concurrency, one)
    }

    fn get_many(&self, bucket: String, items: Vec<(String, Option<u64>, Sink)>) -> Vec<wit::BatchOutcome> {
        let count = items.len();
        let limit = self.session.settings.part_size.unwrap_or(crate::download::DEFAULT_RANGE_SIZE);
        let (small, large): (Vec<_>, Vec<_>) = items.into_iter().enumerate().partition(|(_, (_, size, _))| size.is_some_and(|s| s <= limit));
        let one = |(index, (key, size, sink)): (usize, (String, Option<u64>, Sink))| {
            let bucket = &bucket;
            async move {
                let result = self.session.get_listed(bucket, &key, size, &sink).await;
                drop(sink);
                let outcome = match result {
                    Ok(done) => wit::BatchOutcome::Downloaded(downloaded(key, done)),
                    Err(e) => wit::BatchOutcome::Failed((key, error(e))),
                };
                (index, outcome)
            }
        };
        run_batch(count, small, large, self.session.settings.concurrency, one)
    }

    fn delete(&self, bucket: String, key: String) -> Result<(), wit::TransferError> {
        block_on(self.session.call(|r, t| r.delete_object(&bucket, &key, t), parse::parse_empty_success)).map_err(error)
    }

    fn delete_many(&self, bucket: String, keys: Vec<String>) -> Result<Vec<(String, wit::TransferError)>, wit::TransferError> {
        let mut failed = Vec::new();
        for batch in keys.chunks(MAX_DELETE_KEYS) {
            let result = block_on(self.session.call(|r, t| r.delete_objects(&bucket, batch, true, t), parse::parse_delete_objects)).map_err(error)?;
            for f in result.errors {
                let e = crate::error::S3Error::new(200, &f.code, &f.message);
                failed.push((f.key, error(TransferError::from(e))));
            }
        }
        Ok(failed)
    }

    fn make_bucket(&self, bucket: String) -> Result<(), wit::TransferError> {
        block_on(self.session.call(|r, t| r.create_bucket(&bucket, None, t), parse::parse_empty_success)).map_err(error)
    }

    fn remove_bucket(&self, bucket: String) -> Result<(), wit::TransferError> {
        block_on(self.session.call(|r, t| r.delete_bucket(&bucket, t), parse::parse_empty_success)).map_err(error)
    }

    fn copy(&self, source_bucket: String, source_key: String, bucket: String, key: String) -> Result<String, wit::TransferError> {
        block_on(self.session.copy(&source_bucket, &source_key, &bucket, &key)).map_err(error)
    }

    fn presign(&self, method: String, bucket: String, key: String, expires_seconds: u32) -> Result<String, wit::TransferError> {
        let method: &'static str = match method.to_ascii_uppercase().as_str() {
            "GET" => "GET",
            "PUT" => "PUT",
            "HEAD" => "HEAD",
            "DELETE" => "DELETE",
            other => return Err(wit::TransferError::InvalidInput(format!("presigned URLs are for GET, PUT, HEAD or DELETE, not {other}"))),
        };
        self.session.presign(method, &bucket, &key, expires_seconds, lakeport_http::unix_now()).map_err(error)
    }

    fn list_uploads(&self, bucket: String, prefix: String) -> Result<Vec<wit::UploadSummary>, wit::TransferError> {
        let uploads = block_on(self.session.list_uploads(&bucket, &prefix)).map_err(error)?;
        Ok(uploads.into_iter().map(|u| wit::UploadSummary { key: u.key, upload_id: u.upload_id, initiated: u.initiated }).collect())
    }

    fn abort_upload(&self, bucket: String, key: String, upload_id: String) -> Result<(), wit::TransferError> {
        block_on(self.session.call(|r, t| r.abort_multipart_upload(&bucket, &key, &upload_id, t), parse::parse_empty_success)).map_err(error)
    }
}

export!(Component);
