//! The S3 requests a transfer makes. Each operation is a pure function
//! from its inputs to a [`RequestSpec`] (method, URL, headers, what to
//! sign); [`S3Requests`] signs specs with the sigv4 core and returns
//! [`HttpRequest`]s ready to send.
//!
//! Ceph-safe by construction: bodies are sent plainly with
//! `Content-Length`, never `aws-chunked`, and no trailing checksums. A body
//! the caller supplies (a part, a small object) is signed as
//! `UNSIGNED-PAYLOAD` with a signed `Content-MD5`, so the server checks
//! the bytes and the signature covers the digest; or, when the caller has
//! it, with its SHA-256. XML bodies this crate writes are signed in full.

use lakeport_http::HttpRequest;
use lakeport_sigv4::encoding::uri_encode_into;
use lakeport_sigv4::{Credentials, Payload, SignOptions, SignableRequest, Signer, SigningTime};

use crate::digest::{md5, sha256, to_base64, to_hex, Md5, Sha256};
use crate::endpoint::{validate_bucket_name, validate_key, S3Endpoint};
use crate::error::{invalid_input, Result};
use crate::xml::{push_escaped, S3_NAMESPACE};

pub use crate::limits::MAX_DELETE_KEYS;
use crate::limits::{MAX_PARTS as MAX_PART_NUMBER, MAX_PART_SIZE, MAX_SINGLE_PUT};

/// How a caller-supplied body is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadHash {
    /// `UNSIGNED-PAYLOAD`: no second pass over the data for SHA-256; the
    /// server checks the body against `Content-MD5` instead.
    Unsigned,
    /// The body's SHA-256, computed by the caller.
    Sha256(Sha256),
}

/// What the caller will send as the body of a PutObject or UploadPart:
/// its length and digests. The request's body is left empty for the
/// caller to fill (or stream) with exactly these bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadDescriptor {
    pub length: u64,
    /// Sent (and signed) as `Content-MD5`.
    pub md5: Option<Md5>,
    pub hash: PayloadHash,
    /// Also send `x-amz-checksum-sha256` (needs [`PayloadHash::Sha256`]).
    /// Off by default: older Ceph RGW releases do not know it.
    pub checksum_sha256: bool,
}

/// How [`PayloadDescriptor::of`] describes bytes in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadMode {
    /// `UNSIGNED-PAYLOAD` with `Content-MD5`: one pass over the data (MD5
    /// only), and the server still checks every byte. The default.
    #[default]
    UnsignedWithMd5,
    /// The SHA-256 signed, and `Content-MD5` too.
    Sha256WithMd5,
}

impl PayloadDescriptor {
    pub fn empty() -> Self {
        PayloadDescriptor { length: 0, md5: None, hash: PayloadHash::Sha256(sha256(b"")), checksum_sha256: false }
    }

    pub fn unsigned(length: u64, md5: Md5) -> Self {
        PayloadDescriptor { length, md5: Some(md5), hash: PayloadHash::Unsigned, checksum_sha256: false }
    }

    pub fn sha256(length: u64, sha256: Sha256, md5: Option<Md5>) -> Self {
        PayloadDescriptor { length, md5, hash: PayloadHash::Sha256(sha256), checksum_sha256: false }
    }

    /// Describes bytes in memory.
    pub fn of(data: &[u8], mode: PayloadMode) -> Self {
        match mode {
            PayloadMode::UnsignedWithMd5 => Self::unsigned(data.len() as u64, md5(data)),
            PayloadMode::Sha256WithMd5 => Self::sha256(data.len() as u64, sha256(data), Some(md5(data))),
        }
    }

    pub fn with_checksum_sha256(mut self) -> Self {
        self.checksum_sha256 = true;
        self
    }

    fn apply(&self, spec: &mut RequestSpec) -> Result<()> {
        if let Some(md5) = &self.md5 {
            spec.headers.push(("Content-MD5".into(), to_base64(md5)));
        }
        spec.payload = match &self.hash {
            PayloadHash::Unsigned => Payload::UnsignedPayload,
            PayloadHash::Sha256(h) => Payload::Precomputed(to_hex(h)),
        };
        if self.checksum_sha256 {
            let PayloadHash::Sha256(h) = &self.hash else {
                return Err(invalid_input("x-amz-checksum-sha256 needs the body's SHA-256: describe the payload with its SHA-256"));
            };
            spec.headers.push(("x-amz-checksum-sha256".into(), to_base64(h)));
        }
        spec.content_length = Some(self.length);
        Ok(())
    }
}

/// An inclusive byte range, sent as `bytes=start-end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// `len` bytes from `start` (`len` > 0).
    pub fn new(start: u64, len: u64) -> Result<Self> {
        if len == 0 {
            return Err(invalid_input("a byte range cannot be empty"));
        }
        let end = start.checked_add(len - 1).ok_or_else(|| invalid_input("the byte range overflows"))?;
        Ok(ByteRange { start, end })
    }

    pub fn len(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.end - self.start + 1
        }
    }

    /// Only a range built by hand with `end < start`.
    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }

    /// The `Range` header value.
    pub fn header(&self) -> String {
        format!("bytes={}-{}", self.start, self.end)
    }
}

/// A request before signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: &'static str,
    /// The URL with path and query already in S3's encoding.
    pub url: String,
    /// Headers to sign and send (the signer adds `Host`, `X-Amz-Date`,
    /// `X-Amz-Content-SHA256`, the session token and `Authorization`).
    pub headers: Vec<(String, String)>,
    /// What `x-amz-content-sha256` says.
    pub payload: Payload,
    /// A body this crate wrote (XML); empty when the caller supplies it.
    pub body: Vec<u8>,
    /// Sent as `Content-Length` (not signed: it only frames the body).
    pub content_length: Option<u64>,
}

impl RequestSpec {
    fn new(method: &'static str, url: String) -> Self {
        RequestSpec { method, url, headers: Vec::new(), payload: Payload::Empty, body: Vec::new(), content_length: None }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// An XML body, signed in full, optionally with `Content-MD5`.
    fn xml_body(mut self, body: String, content_md5: bool) -> Self {
        let body = body.into_bytes();
        self.headers.push(("Content-Type".into(), "application/xml".into()));
        if content_md5 {
            self.headers.push(("Content-MD5".into(), to_base64(&md5(&body))));
        }
        self.payload = Payload::Precomputed(to_hex(&sha256(&body)));
        self.content_length = Some(body.len() as u64);
        self.body = body;
        self
    }

    /// The request as the sigv4 core takes it.
    pub fn signable(&self) -> SignableRequest {
        SignableRequest { method: self.method.into(), url: self.url.clone(), headers: self.headers.clone(), payload: self.payload.clone() }
    }
}

/// Appends query parameters; `None` is a bare flag such as `?uploads`.
fn push_query(url: &mut String, params: &[(&str, Option<&str>)]) {
    for (name, value) in params {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(name);
        if let Some(v) = value {
            url.push('=');
            uri_encode_into(url, v.as_bytes(), false);
        }
    }
}

fn check_range(r: &ByteRange) -> Result<()> {
    if r.is_empty() {
        return Err(invalid_input(format!("the byte range {}-{} is empty", r.start, r.end)));
    }
    Ok(())
}

fn check_part_number(n: u32) -> Result<()> {
    if !(1..=MAX_PART_NUMBER).contains(&n) {
        return Err(invalid_input(format!("part number {n} is outside 1..={MAX_PART_NUMBER}")));
    }
    Ok(())
}

fn check_upload_id(id: &str) -> Result<()> {
    if id.is_empty() || id.chars().any(char::is_control) {
        return Err(invalid_input("the multipart upload ID is empty or has control characters"));
    }
    Ok(())
}

/// Content type and user metadata of a new object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    pub content_type: Option<String>,
    /// User metadata, sent as `x-amz-meta-NAME`: names of letters, digits,
    /// `-` and `_`; values in printable ASCII (S3 headers carry nothing else).
    pub metadata: Vec<(String, String)>,
    /// For multipart uploads: announce `x-amz-checksum-sha256` on parts.
    pub checksum_algorithm_sha256: bool,
}

impl PutOptions {
    fn apply(&self, mut spec: RequestSpec) -> Result<RequestSpec> {
        if let Some(ct) = &self.content_type {
            if ct.is_empty() || !ct.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                return Err(invalid_input(format!("the content type {ct:?} is not printable ASCII")));
            }
            spec = spec.header("Content-Type", ct.as_str());
        }
        for (name, value) in &self.metadata {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')) {
                return Err(invalid_input(format!("metadata name {name:?}: use letters, digits, '-' and '_'")));
            }
            if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                return Err(invalid_input(format!(
                    "the value of metadata {name:?} is not printable ASCII: S3 headers cannot carry it (percent-encode it first)"
                )));
            }
            spec = spec.header(&format!("x-amz-meta-{}", name.to_ascii_lowercase()), value.as_str());
        }
        Ok(spec)
    }
}

/// Options of GetObject and HeadObject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetOptions {
    pub range: Option<ByteRange>,
    /// `If-Match`: fail with 412 if the object changed (keeps the ranges
    /// of one download from mixing two versions).
    pub if_match: Option<String>,
    /// `?partNumber=N`: the N-th part of a multipart object (HEAD with
    /// part 1 reveals the part size and count).
    pub part_number: Option<u32>,
}

impl GetOptions {
    fn apply(&self, mut spec: RequestSpec) -> Result<RequestSpec> {
        if let Some(n) = self.part_number {
            check_part_number(n)?;
            if self.range.is_some() {
                return Err(invalid_input("ask for a part number or a byte range, not both"));
            }
            push_query(&mut spec.url, &[("partNumber", Some(&n.to_string()))]);
        }
        if let Some(r) = &self.range {
            check_range(r)?;
            spec = spec.header("Range", r.header());
        }
        if let Some(etag) = &self.if_match {
            spec = spec.header("If-Match", quoted_etag(etag));
        }
        Ok(spec)
    }
}

/// ListObjectsV2 parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListObjectsV2 {
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub continuation_token: Option<String>,
    pub start_after: Option<String>,
    pub max_keys: Option<u32>,
    /// `encoding-type=url`: keys come back percent-encoded, so keys with
    /// characters XML cannot carry can be listed (the parser decodes them).
    pub encoding_type_url: bool,
}

/// ListMultipartUploads parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListMultipartUploads {
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: Option<u32>,
    pub encoding_type_url: bool,
}

/// One part for CompleteMultipartUpload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
    pub checksum_sha256: Option<String>,
}

/// CopyObject options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// Replace content type and metadata (`x-amz-metadata-directive:
    /// REPLACE`) instead of copying the source's.
    pub replace: Option<PutOptions>,
    /// `x-amz-copy-source-if-match`: copy only this version of the source.
    pub source_if_match: Option<String>,
}

/// An ETag in the quoted form headers and XML bodies use.
pub fn quoted_etag(etag: &str) -> String {
    format!("\"{}\"", etag.trim().trim_matches('"'))
}

/// `x-amz-copy-source`: `bucket/key` with the key encoded by S3's rules
/// (slashes kept), as the signer encodes paths.
pub fn copy_source(bucket: &str, key: &str) -> Result<String> {
    crate::endpoint::validate_legacy_bucket_name(bucket)?;
    validate_key(key)?;
    let mut out = String::with_capacity(bucket.len() + 1 + key.len() * 3);
    out.push_str(bucket);
    out.push('/');
    uri_encode_into(&mut out, key.as_bytes(), true);
    Ok(out)
}

pub fn list_objects_v2(endpoint: &S3Endpoint, bucket: &str, p: &ListObjectsV2) -> Result<RequestSpec> {
    let mut url = endpoint.bucket_url(bucket)?;
    let max_keys = p.max_keys.map(|n| n.to_string());
    push_query(&mut url, &[("list-type", Some("2"))]);
    for (name, value) in [
        ("prefix", p.prefix.as_deref()),
        ("delimiter", p.delimiter.as_deref()),
        ("continuation-token", p.continuation_token.as_deref()),
        ("start-after", p.start_after.as_deref()),
        ("max-keys", max_keys.as_deref()),
        ("encoding-type", p.encoding_type_url.then_some("url")),
    ] {
        if let Some(v) = value {
            push_query(&mut url, &[(name, Some(v))]);
        }
    }
    Ok(RequestSpec::new("GET", url))
}

pub fn head_object(endpoint: &S3Endpoint, bucket: &str, key: &str, options: &GetOptions) -> Result<RequestSpec> {
    options.apply(RequestSpec::new("HEAD", endpoint.object_url(bucket, key)?))
}

pub fn get_object(endpoint: &S3Endpoint, bucket: &str, key: &str, options: &GetOptions) -> Result<RequestSpec> {
    options.apply(RequestSpec::new("GET", endpoint.object_url(bucket, key)?))
}

pub fn put_object(endpoint: &S3Endpoint, bucket: &str, key: &str, payload: &PayloadDescriptor, options: &PutOptions) -> Result<RequestSpec> {
    if payload.length > MAX_SINGLE_PUT {
        return Err(invalid_input(format!(
            "a single PUT carries at most 5 GiB; this object has {} bytes: upload it in parts",
            payload.length
        )));
    }
    let mut spec = options.apply(RequestSpec::new("PUT", endpoint.object_url(bucket, key)?))?;
    payload.apply(&mut spec)?;
    Ok(spec)
}

pub fn delete_object(endpoint: &S3Endpoint, bucket: &str, key: &str) -> Result<RequestSpec> {
    Ok(RequestSpec::new("DELETE", endpoint.object_url(bucket, key)?))
}

/// One DeleteObjects batch (at most [`MAX_DELETE_KEYS`] keys). With
/// `quiet`, the answer lists only the keys that failed.
pub fn delete_objects<K: AsRef<str>>(endpoint: &S3Endpoint, bucket: &str, keys: &[K], quiet: bool) -> Result<RequestSpec> {
    if keys.is_empty() || keys.len() > MAX_DELETE_KEYS {
        return Err(invalid_input(format!(
            "a DeleteObjects request takes 1 to {MAX_DELETE_KEYS} keys, not {}: split the keys into batches",
            keys.len()
        )));
    }
    let mut url = endpoint.bucket_url(bucket)?;
    push_query(&mut url, &[("delete", None)]);
    let mut body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Delete xmlns=\"{S3_NAMESPACE}\"><Quiet>{quiet}</Quiet>");
    for key in keys {
        let key = key.as_ref();
        validate_key(key)?;
        body.push_str("<Object><Key>");
        push_escaped(&mut body, key, &format!("the key {key:?}"))?;
        body.push_str("</Key></Object>");
    }
    body.push_str("</Delete>");
    // S3 requires Content-MD5 on DeleteObjects.
    Ok(RequestSpec::new("POST", url).xml_body(body, true))
}

/// CreateBucket. `location` overrides the `LocationConstraint`; by default
/// it is the endpoint's region, left out for `us-east-1` (where S3 wants
/// none) and when empty.
pub fn create_bucket(endpoint: &S3Endpoint, bucket: &str, location: Option<&str>) -> Result<RequestSpec> {
    validate_bucket_name(bucket)?;
    let spec = RequestSpec::new("PUT", endpoint.bucket_url(bucket)?);
    let location = location.unwrap_or(&endpoint.region).trim();
    if location.is_empty() || location == "us-east-1" {
        return Ok(spec);
    }
    let mut body = format!("<CreateBucketConfiguration xmlns=\"{S3_NAMESPACE}\"><LocationConstraint>");
    push_escaped(&mut body, location, "the location constraint")?;
    body.push_str("</LocationConstraint></CreateBucketConfiguration>");
    Ok(spec.xml_body(body, false))
}

pub fn delete_bucket(endpoint: &S3Endpoint, bucket: &str) -> Result<RequestSpec> {
    Ok(RequestSpec::new("DELETE", endpoint.bucket_url(bucket)?))
}

pub fn head_bucket(endpoint: &S3Endpoint, bucket: &str) -> Result<RequestSpec> {
    Ok(RequestSpec::new("HEAD", endpoint.bucket_url(bucket)?))
}

pub fn copy_object(
    endpoint: &S3Endpoint,
    source_bucket: &str,
    source_key: &str,
    bucket: &str,
    key: &str,
    options: &CopyOptions,
) -> Result<RequestSpec> {
    let mut spec = RequestSpec::new("PUT", endpoint.object_url(bucket, key)?).header("x-amz-copy-source", copy_source(source_bucket, source_key)?);
    if let Some(etag) = &options.source_if_match {
        spec = spec.header("x-amz-copy-source-if-match", quoted_etag(etag));
    }
    if let Some(put) = &options.replace {
        spec = put.apply(spec.header("x-amz-metadata-directive", "REPLACE"))?;
    }
    Ok(spec)
}

pub fn create_multipart_upload(endpoint: &S3Endpoint, bucket: &str, key: &str, options: &PutOptions) -> Result<RequestSpec> {
    let mut url = endpoint.object_url(bucket, key)?;
    push_query(&mut url, &[("uploads", None)]);
    let mut spec = options.apply(RequestSpec::new("POST", url))?;
    if options.checksum_algorithm_sha256 {
        spec = spec.header("x-amz-checksum-algorithm", "SHA256");
    }
    Ok(spec)
}

fn part_url(endpoint: &S3Endpoint, bucket: &str, key: &str, upload_id: &str, part_number: u32) -> Result<String> {
    check_part_number(part_number)?;
    check_upload_id(upload_id)?;
    let mut url = endpoint.object_url(bucket, key)?;
    push_query(&mut url, &[("partNumber", Some(&part_number.to_string())), ("uploadId", Some(upload_id))]);
    Ok(url)
}

pub fn upload_part(
    endpoint: &S3Endpoint,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
    payload: &PayloadDescriptor,
) -> Result<RequestSpec> {
    if payload.length > MAX_PART_SIZE {
        return Err(invalid_input(format!("part {part_number} has {} bytes; S3 parts hold at most 5 GiB", payload.length)));
    }
    let mut spec = RequestSpec::new("PUT", part_url(endpoint, bucket, key, upload_id, part_number)?);
    payload.apply(&mut spec)?;
    Ok(spec)
}

/// UploadPartCopy: a part copied server-side from (a range of) an object.
#[allow(clippy::too_many_arguments)]
pub fn upload_part_copy(
    endpoint: &S3Endpoint,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
    source_bucket: &str,
    source_key: &str,
    source_range: Option<ByteRange>,
    source_if_match: Option<&str>,
) -> Result<RequestSpec> {
    let mut spec = RequestSpec::new("PUT", part_url(endpoint, bucket, key, upload_id, part_number)?)
        .header("x-amz-copy-source", copy_source(source_bucket, source_key)?);
    if let Some(r) = source_range {
        check_range(&r)?;
        spec = spec.header("x-amz-copy-source-range", r.header());
    }
    if let Some(etag) = source_if_match {
        spec = spec.header("x-amz-copy-source-if-match", quoted_etag(etag));
    }
    Ok(spec)
}

/// CompleteMultipartUpload: the parts in ascending order, each once.
pub fn complete_multipart_upload(
    endpoint: &S3Endpoint,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[CompletedPart],
) -> Result<RequestSpec> {
    check_upload_id(upload_id)?;
    if parts.is_empty() || parts.len() > MAX_PART_NUMBER as usize {
        return Err(invalid_input(format!("a multipart upload completes with 1 to {MAX_PART_NUMBER} parts, not {}", parts.len())));
    }
    let mut url = endpoint.object_url(bucket, key)?;
    push_query(&mut url, &[("uploadId", Some(upload_id))]);
    let mut body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload xmlns=\"{S3_NAMESPACE}\">");
    let mut previous = 0;
    for part in parts {
        check_part_number(part.part_number)?;
        if part.part_number <= previous {
            return Err(invalid_input(format!(
                "parts must be listed in ascending order, each once: part {} follows part {previous}",
                part.part_number
            )));
        }
        previous = part.part_number;
        if part.etag.trim().trim_matches('"').is_empty() {
            return Err(invalid_input(format!("part {} has no ETag", part.part_number)));
        }
        body.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>", part.part_number));
        push_escaped(&mut body, &quoted_etag(&part.etag), "an ETag")?;
        body.push_str("</ETag>");
        if let Some(c) = &part.checksum_sha256 {
            body.push_str("<ChecksumSHA256>");
            push_escaped(&mut body, c, "a checksum")?;
            body.push_str("</ChecksumSHA256>");
        }
        body.push_str("</Part>");
    }
    body.push_str("</CompleteMultipartUpload>");
    Ok(RequestSpec::new("POST", url).xml_body(body, false))
}

pub fn abort_multipart_upload(endpoint: &S3Endpoint, bucket: &str, key: &str, upload_id: &str) -> Result<RequestSpec> {
    check_upload_id(upload_id)?;
    let mut url = endpoint.object_url(bucket, key)?;
    push_query(&mut url, &[("uploadId", Some(upload_id))]);
    Ok(RequestSpec::new("DELETE", url))
}

/// ListParts, from after `part_number_marker` (the previous page's
/// `NextPartNumberMarker`).
pub fn list_parts(
    endpoint: &S3Endpoint,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number_marker: Option<u32>,
    max_parts: Option<u32>,
) -> Result<RequestSpec> {
    check_upload_id(upload_id)?;
    let mut url = endpoint.object_url(bucket, key)?;
    push_query(&mut url, &[("uploadId", Some(upload_id))]);
    if let Some(n) = max_parts {
        push_query(&mut url, &[("max-parts", Some(&n.to_string()))]);
    }
    if let Some(m) = part_number_marker {
        push_query(&mut url, &[("part-number-marker", Some(&m.to_string()))]);
    }
    Ok(RequestSpec::new("GET", url))
}

pub fn list_multipart_uploads(endpoint: &S3Endpoint, bucket: &str, p: &ListMultipartUploads) -> Result<RequestSpec> {
    let mut url = endpoint.bucket_url(bucket)?;
    push_query(&mut url, &[("uploads", None)]);
    let max_uploads = p.max_uploads.map(|n| n.to_string());
    for (name, value) in [
        ("prefix", p.prefix.as_deref()),
        ("delimiter", p.delimiter.as_deref()),
        ("key-marker", p.key_marker.as_deref()),
        ("upload-id-marker", p.upload_id_marker.as_deref()),
        ("max-uploads", max_uploads.as_deref()),
        ("encoding-type", p.encoding_type_url.then_some("url")),
    ] {
        if let Some(v) = value {
            push_query(&mut url, &[(name, Some(v))]);
        }
    }
    Ok(RequestSpec::new("GET", url))
}

/// Signs requests for one endpoint with one set of credentials. The
/// signing key is derived once per day and reused; a clock offset learnt
/// from the server (see [`crate::retry::clock_offset`]) is added to every
/// signing time.
pub struct S3Requests {
    endpoint: S3Endpoint,
    signer: Signer,
    access_key_id: String,
    clock_offset: i64,
}

impl S3Requests {
    pub fn new(endpoint: S3Endpoint, credentials: Credentials) -> Result<Self> {
        let access_key_id = credentials.access_key_id.clone();
        let signer = Signer::new(credentials).map_err(|e| invalid_input(format!("the S3 credentials are not usable: {e}")))?;
        Ok(S3Requests { endpoint, signer, access_key_id, clock_offset: 0 })
    }

    /// The access key ID requests are signed with (not a secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn endpoint(&self) -> &S3Endpoint {
        &self.endpoint
    }

    /// Renewed credentials (after `ExpiredToken`).
    pub fn set_credentials(&mut self, credentials: Credentials) -> Result<()> {
        let access_key_id = credentials.access_key_id.clone();
        self.signer = Signer::new(credentials).map_err(|e| invalid_input(format!("the S3 credentials are not usable: {e}")))?;
        self.access_key_id = access_key_id;
        Ok(())
    }

    pub fn clock_offset(&self) -> i64 {
        self.clock_offset
    }

    /// Seconds added to the local time when signing.
    pub fn set_clock_offset(&mut self, seconds: i64) {
        self.clock_offset = seconds;
    }

    /// Signs a spec at `now` (Unix seconds, local clock). `Host` is signed
    /// but not returned among the headers: `wasi:http` derives it from the
    /// URL, whose authority is exactly the signed value.
    pub fn sign(&mut self, spec: RequestSpec, now: i64) -> Result<HttpRequest> {
        let time = SigningTime::UnixSeconds(now.saturating_add(self.clock_offset));
        let options = SignOptions::s3(&self.endpoint.region, time);
        let RequestSpec { method, url, headers, payload, body, content_length } = spec;
        let signable = SignableRequest { method: method.into(), url, headers, payload };
        let signed = self.signer.sign(&signable, &options).map_err(|e| invalid_input(format!("cannot sign the request: {e}")))?;
        let mut headers: Vec<(String, String)> = signed.headers.into_iter().filter(|(n, _)| !n.eq_ignore_ascii_case("host")).collect();
        if let Some(n) = content_length {
            headers.push(("Content-Length".into(), n.to_string()));
        }
        Ok(HttpRequest { method, url: signed.url, headers, body })
    }

    /// A presigned URL for `method` on an object, valid `expires` seconds
    /// (1 s to 7 days) from `now`. Anyone holding it may use it until then.
    pub fn presign(&mut self, method: &'static str, bucket: &str, key: &str, expires: u32, now: i64) -> Result<String> {
        if !matches!(method, "GET" | "PUT" | "HEAD" | "DELETE") {
            return Err(invalid_input(format!("presigned URLs are for GET, PUT, HEAD or DELETE, not {method}")));
        }
        let spec = RequestSpec::new(method, self.endpoint.object_url(bucket, key)?);
        let time = SigningTime::UnixSeconds(now.saturating_add(self.clock_offset));
        let mut options = SignOptions::s3(&self.endpoint.region, time);
        options.presign_expires = Some(expires);
        let mut signable = spec.signable();
        signable.payload = Payload::UnsignedPayload;
        let signed = self.signer.sign(&signable, &options).map_err(|e| invalid_input(format!("cannot presign: {e}")))?;
        Ok(signed.url)
    }

    pub fn list_objects_v2(&mut self, bucket: &str, params: &ListObjectsV2, now: i64) -> Result<HttpRequest> {
        let spec = list_objects_v2(&self.endpoint, bucket, params)?;
        self.sign(spec, now)
    }

    pub fn head_object(&mut self, bucket: &str, key: &str, options: &GetOptions, now: i64) -> Result<HttpRequest> {
        let spec = head_object(&self.endpoint, bucket, key, options)?;
        self.sign(spec, now)
    }

    pub fn get_object(&mut self, bucket: &str, key: &str, options: &GetOptions, now: i64) -> Result<HttpRequest> {
        let spec = get_object(&self.endpoint, bucket, key, options)?;
        self.sign(spec, now)
    }

    /// PutObject; the caller puts the described bytes in `body`.
    pub fn put_object(&mut self, bucket: &str, key: &str, payload: &PayloadDescriptor, options: &PutOptions, now: i64) -> Result<HttpRequest> {
        let spec = put_object(&self.endpoint, bucket, key, payload, options)?;
        self.sign(spec, now)
    }

    pub fn delete_object(&mut self, bucket: &str, key: &str, now: i64) -> Result<HttpRequest> {
        let spec = delete_object(&self.endpoint, bucket, key)?;
        self.sign(spec, now)
    }

    pub fn delete_objects<K: AsRef<str>>(&mut self, bucket: &str, keys: &[K], quiet: bool, now: i64) -> Result<HttpRequest> {
        let spec = delete_objects(&self.endpoint, bucket, keys, quiet)?;
        self.sign(spec, now)
    }

    pub fn create_bucket(&mut self, bucket: &str, location: Option<&str>, now: i64) -> Result<HttpRequest> {
        let spec = create_bucket(&self.endpoint, bucket, location)?;
        self.sign(spec, now)
    }

    pub fn delete_bucket(&mut self, bucket: &str, now: i64) -> Result<HttpRequest> {
        let spec = delete_bucket(&self.endpoint, bucket)?;
        self.sign(spec, now)
    }

    pub fn head_bucket(&mut self, bucket: &str, now: i64) -> Result<HttpRequest> {
        let spec = head_bucket(&self.endpoint, bucket)?;
        self.sign(spec, now)
    }

    pub fn copy_object(
        &mut self,
        source: (&str, &str),
        destination: (&str, &str),
        options: &CopyOptions,
        now: i64,
    ) -> Result<HttpRequest> {
        let spec = copy_object(&self.endpoint, source.0, source.1, destination.0, destination.1, options)?;
        self.sign(spec, now)
    }

    pub fn create_multipart_upload(&mut self, bucket: &str, key: &str, options: &PutOptions, now: i64) -> Result<HttpRequest> {
        let spec = create_multipart_upload(&self.endpoint, bucket, key, options)?;
        self.sign(spec, now)
    }

    /// UploadPart; the caller puts the described bytes in `body`.
    pub fn upload_part(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        payload: &PayloadDescriptor,
        now: i64,
    ) -> Result<HttpRequest> {
        let spec = upload_part(&self.endpoint, bucket, key, upload_id, part_number, payload)?;
        self.sign(spec, now)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn upload_part_copy(
        &mut self,
        destination: (&str, &str),
        upload_id: &str,
        part_number: u32,
        source: (&str, &str),
        source_range: Option<ByteRange>,
        source_if_match: Option<&str>,
        now: i64,
    ) -> Result<HttpRequest> {
        let spec = upload_part_copy(
            &self.endpoint,
            destination.0,
            destination.1,
            upload_id,
            part_number,
            source.0,
            source.1,
            source_range,
            source_if_match,
        )?;
        self.sign(spec, now)
    }

    pub fn complete_multipart_upload(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        now: i64,
    ) -> Result<HttpRequest> {
        let spec = complete_multipart_upload(&self.endpoint, bucket, key, upload_id, parts)?;
        self.sign(spec, now)
    }

    pub fn abort_multipart_upload(&mut self, bucket: &str, key: &str, upload_id: &str, now: i64) -> Result<HttpRequest> {
        let spec = abort_multipart_upload(&self.endpoint, bucket, key, upload_id)?;
        self.sign(spec, now)
    }

    pub fn list_parts(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: Option<u32>,
        max_parts: Option<u32>,
        now: i64,
    ) -> Result<HttpRequest> {
        let spec = list_parts(&self.endpoint, bucket, key, upload_id, part_number_marker, max_parts)?;
        self.sign(spec, now)
    }

    pub fn list_multipart_uploads(&mut self, bucket: &str, params: &ListMultipartUploads, now: i64) -> Result<HttpRequest> {
        let spec = list_multipart_uploads(&self.endpoint, bucket, params)?;
        self.sign(spec, now)
    }
}
