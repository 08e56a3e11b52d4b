//! Reading S3 answers: the XML results, the headers of HEAD/GET/PUT, and
//! errors. Dialects: AWS, Ceph RGW, MinIO, rclone's `serve s3`, s3s-based
//! servers and moto. Elements are matched by local name under their
//! parent, so namespaces, element order and unknown elements do not
//! matter; what a transfer needs is required and its absence is an error.
//!
//! A 200 answer may still be an `<Error>` document (CompleteMultipartUpload
//! and CopyObject can fail after the status line went out): every parser
//! reads that as the error it is. Errors never quote the body; a 2xx body
//! cut short is reported as a dropped connection, so it is retried.

use lakeport_http::HttpResponse;
use lakeport_sigv4::encoding::percent_decode;

use crate::error::{Result, S3Error, TransferError, TransportKind};
use crate::requests::ByteRange;
use crate::time::{parse_http_date, parse_iso8601};
use crate::xml::{parse_document, trim_xml, Element, Malformed};
use lakeport_xml::{clean, describe_answer, looks_like_html};

/// Longest server error message kept (some append stack traces).
const MAX_MESSAGE_CHARS: usize = 1000;
const MAX_CODE_CHARS: usize = 128;

/// One object in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// Unix seconds.
    pub last_modified: Option<i64>,
    pub storage_class: Option<String>,
}

/// One page of ListObjectsV2.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListObjectsV2Page {
    pub objects: Vec<ObjectSummary>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// Pass as `continuation-token` for the next page.
    pub next_continuation_token: Option<String>,
    pub key_count: Option<u64>,
}

impl ListObjectsV2Page {
    /// Refuses a page listing anything outside `prefix`: acting on such a
    /// key (a server or proxy bug) could make a recursive delete or copy
    /// touch objects the user never named.
    pub fn check_under(&self, prefix: &str) -> Result<()> {
        let stray = self.objects.iter().map(|o| o.key.as_str()).chain(self.common_prefixes.iter().map(String::as_str)).find(|k| !k.starts_with(prefix));
        match stray {
            Some(key) => Err(TransferError::InvalidResponse {
                status: 200,
                message: format!(
                    "the server listed {key:?} when asked for keys under {prefix:?}: its listing cannot be trusted, so nothing was done with it (a server or proxy bug)"
                ),
            }),
            None => Ok(()),
        }
    }
}

/// One stored part of a multipart upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedPart {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPartsPage {
    pub parts: Vec<ListedPart>,
    pub is_truncated: bool,
    /// Pass as `part-number-marker` for the next page.
    pub next_part_number_marker: Option<u32>,
}

/// An unfinished multipart upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSummary {
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<i64>,
    pub storage_class: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListMultipartUploadsPage {
    pub uploads: Vec<UploadSummary>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompleteResult {
    /// `None` when the answer has an empty or no ETag (Ceph RGW 16.2
    /// answers `<ETag></ETag>`): the object is then checked by HEAD.
    pub etag: Option<String>,
    pub location: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub version_id: Option<String>,
}

/// CopyObjectResult or CopyPartResult.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyResult {
    pub etag: String,
    pub last_modified: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedObject {
    pub key: String,
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

/// A key DeleteObjects could not delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteFailure {
    pub key: String,
    pub code: String,
    pub message: String,
    pub version_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteResult {
    pub deleted: Vec<DeletedObject>,
    pub errors: Vec<DeleteFailure>,
}

/// `Content-Range: bytes start-end/total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
    pub total: u64,
}

/// What HEAD (or the headers of GET) says about an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMetadata {
    /// Bytes in this answer's body (the range, for a ranged GET).
    pub content_length: u64,
    pub etag: Option<String>,
    pub last_modified: Option<i64>,
    pub content_type: Option<String>,
    /// `x-amz-meta-*`, names lowercased without the prefix.
    pub metadata: Vec<(String, String)>,
    pub version_id: Option<String>,
    pub storage_class: Option<String>,
    /// `x-amz-mp-parts-count` (HEAD/GET with `partNumber`).
    pub parts_count: Option<u32>,
    pub content_range: Option<ContentRange>,
}

impl ObjectMetadata {
    /// The whole object's size.
    pub fn object_size(&self) -> u64 {
        self.content_range.map_or(self.content_length, |r| r.total)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutResult {
    pub etag: String,
    pub version_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketInfo {
    /// `x-amz-bucket-region`, when the server says.
    pub region: Option<String>,
}

/// What a status without an S3 answer suggests.
fn status_hint(status: u16) -> &'static str {
    match status {
        200..=299 => "check that the endpoint is the S3 service",
        300..=399 => "a redirect: set the endpoint to the final URL (often https:// instead of http://)",
        401 | 403 => "the endpoint or a proxy in front of it refused the request: check the endpoint",
        404 | 405 => "nothing answers S3 requests there: check the endpoint",
        413 => "the request was too large for the server or a proxy: use a smaller part size",
        429 => "too many requests: wait and try again with fewer parallel transfers",
        502..=504 => "a proxy or load balancer could not reach the S3 service: try again later",
        500..=599 => "the server failed: try again later",
        _ => "check the endpoint",
    }
}

fn invalid(response: &HttpResponse, what: &str) -> TransferError {
    TransferError::InvalidResponse {
        status: response.status,
        message: format!("the S3 endpoint answered {} with {what}; {}", describe_answer(response.status, response.header("content-type")), status_hint(response.status)),
    }
}

fn missing(response: &HttpResponse, what: &str) -> TransferError {
    TransferError::InvalidResponse {
        status: response.status,
        message: format!("the S3 answer ({}) has no {what}; the server or a proxy is misbehaving", describe_answer(response.status, response.header("content-type"))),
    }
}

/// The body as an XML document, or why it is not one.
fn document(response: &HttpResponse) -> Result<Element> {
    let body = response.body.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(&response.body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(response, "an empty body"));
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(invalid(response, "a body that is not UTF-8 text"));
    };
    // S3 may send whitespace while a CompleteMultipartUpload is still working.
    let text = text.trim_start();
    if looks_like_html(response.header("content-type"), text) {
        return Err(invalid(response, "an HTML page instead of S3 XML (often a proxy's error page)"));
    }
    if text.starts_with('{') || text.starts_with('[') {
        return Err(invalid(response, "JSON instead of S3 XML"));
    }
    if !text.starts_with('<') {
        return Err(invalid(response, "a body that is not XML"));
    }
    parse_document(text).map_err(|m| match m {
        Malformed::Truncated if (200..300).contains(&response.status) => TransferError::Transport {
            kind: TransportKind::ConnectionReset,
            message: format!("the S3 answer ({}) ended early (truncated XML): the connection was probably cut", describe_answer(response.status, response.header("content-type"))),
        },
        Malformed::Truncated => invalid(response, "truncated XML"),
        Malformed::Invalid => invalid(response, "malformed XML"),
        Malformed::TooLarge => invalid(response, "XML nested deeper or larger than any S3 answer"),
    })
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(trim_xml).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A code, request ID, region or endpoint: one word of printable ASCII,
/// else nothing (a broken answer's stray text is not an identifier).
fn identifier(s: &str) -> Option<String> {
    let s = trim_xml(s);
    (!s.is_empty() && s.len() <= MAX_CODE_CHARS && s.bytes().all(|b| b.is_ascii_graphic())).then(|| s.to_string())
}

/// The S3 error an `<Error>` element (and the answer's headers) describe.
fn s3_error(response: &HttpResponse, e: &Element) -> S3Error {
    let code = e.text_of("Code").and_then(identifier).unwrap_or_else(|| synthesized_code(response.status));
    let mut error = S3Error::new(response.status, &code, &clean(e.text_of("Message").unwrap_or(""), MAX_MESSAGE_CHARS));
    error.request_id =
        e.text_of("RequestId").or(e.text_of("RequestID")).and_then(identifier).or_else(|| response.header("x-amz-request-id").and_then(identifier));
    error.server_time = e.text_of("ServerTime").and_then(parse_iso8601).or_else(|| response.header("date").and_then(parse_http_date));
    error.region = response.header("x-amz-bucket-region").and_then(identifier).or_else(|| e.text_of("Region").and_then(identifier));
    error.endpoint = e.text_of("Endpoint").and_then(identifier);
    error
}

/// The code SDKs give an error answer without a body (HEAD).
fn synthesized_code(status: u16) -> String {
    match status {
        301 => "PermanentRedirect",
        304 => "NotModified",
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        412 => "PreconditionFailed",
        416 => "InvalidRange",
        429 => "TooManyRequests",
        500 => "InternalError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => return format!("HTTP{status}"),
    }
    .to_string()
}

/// The error a non-2xx answer stands for. HEAD answers have no body: their
/// status becomes the code (404 on HEAD is `NotFound`).
pub fn error_from_response(response: &HttpResponse, is_head: bool) -> TransferError {
    if is_head || (response.body.is_empty() && response.status == 304) {
        return TransferError::from(s3_error(response, &Element::default()));
    }
    match document(response) {
        Ok(root) if root.name == "Error" => TransferError::from(s3_error(response, &root)),
        // `<ErrorResponse><Error>…` (some gateways wrap it).
        Ok(root) if root.child("Error").is_some() => {
            let mut error = s3_error(response, root.child("Error").unwrap());
            error.request_id = error.request_id.or_else(|| root.text_of("RequestId").and_then(identifier));
            TransferError::from(error)
        }
        Ok(_) => invalid(response, "XML that holds no S3 error"),
        Err(e) => e,
    }
}

fn ok_status(response: &HttpResponse) -> Result<()> {
    if (200..300).contains(&response.status) {
        Ok(())
    } else {
        Err(error_from_response(response, false))
    }
}

/// A 2xx answer's XML, checked to have the expected root (an `<Error>`
/// root is the error it describes).
fn result_document(response: &HttpResponse, root_name: &str) -> Result<Element> {
    ok_status(response)?;
    let root = document(response)?;
    if root.name == "Error" {
        return Err(TransferError::from(s3_error(response, &root)));
    }
    // moto names some roots `…Response` (ListPartsResponse); rclone's
    // `serve s3` drops the suffix (InitiateMultipartUpload).
    let base = root_name.strip_suffix("Result");
    let alias = base.map(|b| format!("{b}Response"));
    if root.name != root_name && alias.as_deref() != Some(root.name.as_str()) && base != Some(root.name.as_str()) {
        let shown = if root.name.len() <= 64 && root.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            format!("<{}>", root.name)
        } else {
            "another document".to_string()
        };
        return Err(invalid(response, &format!("{shown} instead of <{root_name}>")));
    }
    Ok(root)
}

fn parse_bool(response: &HttpResponse, e: &Element, name: &str) -> Result<bool> {
    match e.text_of(name) {
        None | Some("") => Ok(false),
        Some(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Some(t) if t.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(invalid(response, &format!("an {name} that is neither true nor false"))),
    }
}

fn parse_number<T: std::str::FromStr>(response: &HttpResponse, e: &Element, name: &str) -> Result<Option<T>> {
    match e.text_of(name) {
        None | Some("") => Ok(None),
        Some(t) if t.bytes().all(|b| b.is_ascii_digit()) => {
            t.parse().map(Some).map_err(|_| invalid(response, &format!("a {name} out of range")))
        }
        Some(_) => Err(invalid(response, &format!("a {name} that is not a number"))),
    }
}

fn required_number<T: std::str::FromStr>(response: &HttpResponse, e: &Element, name: &str, within: &str) -> Result<T> {
    parse_number(response, e, name)?.ok_or_else(|| missing(response, &format!("{name} in a {within}")))
}

fn required_text(response: &HttpResponse, e: &Element, name: &str, within: &str) -> Result<String> {
    non_empty(e.text_of(name)).ok_or_else(|| missing(response, &format!("{name} in {within}")))
}

/// Decodes `EncodingType=url` values (`+` is a space, as S3 writes them).
fn decoder<'a>(response: &'a HttpResponse, root: &Element) -> impl Fn(&str) -> Result<String> + 'a {
    let url = root.text_of("EncodingType").is_some_and(|t| t.eq_ignore_ascii_case("url"));
    move |s: &str| {
        if !url {
            return Ok(s.to_string());
        }
        String::from_utf8(percent_decode(s, true)).map_err(|_| invalid(response, "a url-encoded key that is not UTF-8"))
    }
}

/// A key's text exactly as sent: keys may begin or end with spaces, so
/// they are not trimmed.
fn raw_text<'a>(e: &'a Element, name: &str) -> Option<&'a str> {
    e.child(name).map(|c| c.text.as_str())
}

fn common_prefixes(root: &Element, decode: &impl Fn(&str) -> Result<String>) -> Result<Vec<String>> {
    root.children_named("CommonPrefixes").filter_map(|c| raw_text(c, "Prefix")).map(decode).collect()
}

pub fn parse_list_objects_v2(response: &HttpResponse) -> Result<ListObjectsV2Page> {
    let root = result_document(response, "ListBucketResult")?;
    let decode = decoder(response, &root);
    let mut page = ListObjectsV2Page {
        is_truncated: parse_bool(response, &root, "IsTruncated")?,
        next_continuation_token: non_empty(root.text_of("NextContinuationToken")),
        key_count: parse_number(response, &root, "KeyCount")?,
        common_prefixes: common_prefixes(&root, &decode)?,
        objects: Vec::new(),
    };
    for c in root.children_named("Contents") {
        let key = raw_text(c, "Key").filter(|k| !k.is_empty()).ok_or_else(|| missing(response, "Key in a listed object"))?;
        page.objects.push(ObjectSummary {
            key: decode(key)?,
            size: required_number(response, c, "Size", "listed object")?,
            etag: non_empty(c.text_of("ETag")),
            last_modified: c.text_of("LastModified").and_then(parse_iso8601),
            storage_class: non_empty(c.text_of("StorageClass")),
        });
    }
    if page.is_truncated && page.next_continuation_token.is_none() {
        return Err(missing(response, "NextContinuationToken in a truncated listing (does the server support ListObjectsV2?)"));
    }
    Ok(page)
}

/// The UploadId of CreateMultipartUpload.
pub fn parse_create_multipart_upload(response: &HttpResponse) -> Result<String> {
    let root = result_document(response, "InitiateMultipartUploadResult")?;
    let id = required_text(response, &root, "UploadId", "InitiateMultipartUploadResult")?;
    if id.chars().any(char::is_control) {
        return Err(invalid(response, "an UploadId with control characters"));
    }
    Ok(id)
}

pub fn parse_complete_multipart_upload(response: &HttpResponse) -> Result<CompleteResult> {
    let root = result_document(response, "CompleteMultipartUploadResult")?;
    Ok(CompleteResult {
        etag: non_empty(root.text_of("ETag")),
        location: non_empty(root.text_of("Location")),
        bucket: non_empty(root.text_of("Bucket")),
        key: non_empty(root.text_of("Key")),
        version_id: non_empty(response.header("x-amz-version-id")),
    })
}

pub fn parse_list_parts(response: &HttpResponse) -> Result<ListPartsPage> {
    let root = result_document(response, "ListPartsResult")?;
    let mut page = ListPartsPage {
        is_truncated: parse_bool(response, &root, "IsTruncated")?,
        next_part_number_marker: parse_number(response, &root, "NextPartNumberMarker")?,
        parts: Vec::new(),
    };
    for p in root.children_named("Part") {
        let part_number: u32 = required_number(response, p, "PartNumber", "listed part")?;
        if !(1..=crate::limits::MAX_PARTS).contains(&part_number) {
            return Err(invalid(response, "a part number outside 1..=10000"));
        }
        page.parts.push(ListedPart {
            part_number,
            // s3s-fs lists parts without an ETag: such a part cannot be
            // checked against the local data, so a resume sends it again.
            etag: p.text_of("ETag").unwrap_or_default().to_string(),
            size: required_number(response, p, "Size", "listed part")?,
            last_modified: p.text_of("LastModified").and_then(parse_iso8601),
        });
    }
    if page.is_truncated && page.next_part_number_marker.is_none() {
        return Err(missing(response, "NextPartNumberMarker in a truncated part list"));
    }
    Ok(page)
}

pub fn parse_list_multipart_uploads(response: &HttpResponse) -> Result<ListMultipartUploadsPage> {
    let root = result_document(response, "ListMultipartUploadsResult")?;
    let decode = decoder(response, &root);
    let mut page = ListMultipartUploadsPage {
        is_truncated: parse_bool(response, &root, "IsTruncated")?,
        next_key_marker: raw_text(&root, "NextKeyMarker").filter(|k| !k.is_empty()).map(&decode).transpose()?,
        next_upload_id_marker: non_empty(root.text_of("NextUploadIdMarker")),
        common_prefixes: common_prefixes(&root, &decode)?,
        uploads: Vec::new(),
    };
    for u in root.children_named("Upload") {
        let key = raw_text(u, "Key").filter(|k| !k.is_empty()).ok_or_else(|| missing(response, "Key in a listed upload"))?;
        page.uploads.push(UploadSummary {
            key: decode(key)?,
            upload_id: required_text(response, u, "UploadId", "a listed upload")?,
            initiated: u.text_of("Initiated").and_then(parse_iso8601),
            storage_class: non_empty(u.text_of("StorageClass")),
        });
    }
    if page.is_truncated && page.next_key_marker.is_none() {
        return Err(missing(response, "NextKeyMarker in a truncated upload list"));
    }
    Ok(page)
}

fn copy_result(response: &HttpResponse, root_name: &str) -> Result<CopyResult> {
    let root = result_document(response, root_name)?;
    Ok(CopyResult {
        etag: required_text(response, &root, "ETag", root_name)?,
        last_modified: root.text_of("LastModified").and_then(parse_iso8601),
    })
}

pub fn parse_copy_object(response: &HttpResponse) -> Result<CopyResult> {
    copy_result(response, "CopyObjectResult")
}

pub fn parse_upload_part_copy(response: &HttpResponse) -> Result<CopyResult> {
    copy_result(response, "CopyPartResult")
}

pub fn parse_delete_objects(response: &HttpResponse) -> Result<DeleteResult> {
    let root = result_document(response, "DeleteResult")?;
    let mut result = DeleteResult::default();
    for d in root.children_named("Deleted") {
        result.deleted.push(DeletedObject {
            key: raw_text(d, "Key").filter(|k| !k.is_empty()).ok_or_else(|| missing(response, "Key in a Deleted entry"))?.to_string(),
            version_id: non_empty(d.text_of("VersionId")),
            delete_marker: parse_bool(response, d, "DeleteMarker")?,
        });
    }
    for e in root.children_named("Error") {
        result.errors.push(DeleteFailure {
            key: raw_text(e, "Key").unwrap_or("").to_string(),
            code: e.text_of("Code").and_then(identifier).unwrap_or_else(|| "UnknownError".into()),
            message: clean(e.text_of("Message").unwrap_or(""), MAX_MESSAGE_CHARS),
            version_id: non_empty(e.text_of("VersionId")),
        });
    }
    Ok(result)
}

fn header_number<T: std::str::FromStr>(response: &HttpResponse, name: &str) -> Result<Option<T>> {
    match response.header(name).map(str::trim) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            v.parse().map(Some).map_err(|_| invalid(response, &format!("a {name} header out of range")))
        }
        Some(_) => Err(invalid(response, &format!("a {name} header that is not a number"))),
    }
}

fn header_text(response: &HttpResponse, name: &str) -> Option<String> {
    response.header(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

fn parse_content_range(response: &HttpResponse) -> Result<Option<ContentRange>> {
    let Some(v) = response.header("content-range") else {
        return Ok(None);
    };
    let bad = || invalid(response, "a Content-Range header that is not 'bytes start-end/size'");
    let rest = v.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = rest.split_once('/').ok_or_else(bad)?;
    let (start, end) = range.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| s.trim().parse::<u64>().ok().filter(|_| s.trim().bytes().all(|b| b.is_ascii_digit()));
    let (start, end, total) = (num(start).ok_or_else(bad)?, num(end).ok_or_else(bad)?, num(total).ok_or_else(bad)?);
    if start > end || end >= total {
        return Err(bad());
    }
    Ok(Some(ContentRange { start, end, total }))
}

fn object_metadata(response: &HttpResponse) -> Result<ObjectMetadata> {
    let mut metadata: Vec<(String, String)> = response
        .headers
        .iter()
        .filter_map(|(n, v)| {
            let n = n.to_ascii_lowercase();
            n.strip_prefix("x-amz-meta-").map(|name| (name.to_string(), v.trim().to_string()))
        })
        .collect();
    metadata.sort();
    Ok(ObjectMetadata {
        content_length: header_number(response, "content-length")?.ok_or_else(|| missing(response, "Content-Length header"))?,
        etag: header_text(response, "etag"),
        last_modified: response.header("last-modified").and_then(parse_http_date),
        content_type: header_text(response, "content-type"),
        metadata,
        version_id: header_text(response, "x-amz-version-id"),
        storage_class: header_text(response, "x-amz-storage-class"),
        parts_count: header_number(response, "x-amz-mp-parts-count")?,
        content_range: parse_content_range(response)?,
    })
}

/// HeadObject: the object's metadata; a 404 is `NotFound`
/// ([`TransferError::is_not_found`]).
pub fn parse_head_object(response: &HttpResponse) -> Result<ObjectMetadata> {
    if !(200..300).contains(&response.status) {
        return Err(error_from_response(response, true));
    }
    object_metadata(response)
}

/// The headers of GetObject (the body is the caller's). For a ranged GET
/// the answer must be 206 with exactly the range asked for (clipped at the
/// object's end); a 200 means the server ignored the range and sends the
/// whole object, which `content_range: None` tells.
pub fn parse_get_object(response: &HttpResponse, requested: Option<ByteRange>) -> Result<ObjectMetadata> {
    ok_status(response)?;
    let meta = object_metadata(response)?;
    match (requested, meta.content_range) {
        (Some(asked), Some(got)) => {
            let expected_end = asked.end.min(got.total.saturating_sub(1));
            if got.start != asked.start || got.end != expected_end {
                return Err(invalid(
                    response,
                    &format!("bytes {}-{} when {}-{} were asked for", got.start, got.end, asked.start, asked.end),
                ));
            }
            if meta.content_length != got.end - got.start + 1 {
                return Err(invalid(response, "a Content-Length that does not match its Content-Range"));
            }
        }
        (Some(_), None) if response.status == 206 => return Err(missing(response, "Content-Range header in a 206 answer")),
        _ => {}
    }
    Ok(meta)
}

/// PutObject and UploadPart: the ETag of what was stored.
pub fn parse_put_object(response: &HttpResponse) -> Result<PutResult> {
    ok_status(response)?;
    Ok(PutResult {
        etag: header_text(response, "etag").ok_or_else(|| missing(response, "ETag header"))?,
        version_id: header_text(response, "x-amz-version-id"),
    })
}

/// UploadPart: the part's ETag, which CompleteMultipartUpload needs.
pub fn parse_upload_part(response: &HttpResponse) -> Result<String> {
    parse_put_object(response).map(|r| r.etag)
}

/// HeadBucket; a 404 is `NotFound`, a 301 names the bucket's region.
pub fn parse_head_bucket(response: &HttpResponse) -> Result<BucketInfo> {
    if !(200..300).contains(&response.status) {
        return Err(error_from_response(response, true));
    }
    Ok(BucketInfo { region: header_text(response, "x-amz-bucket-region") })
}

/// Answers whose success has no content: DeleteObject, DeleteBucket,
/// CreateBucket, AbortMultipartUpload.
pub fn parse_empty_success(response: &HttpResponse) -> Result<()> {
    ok_status(response)
}
