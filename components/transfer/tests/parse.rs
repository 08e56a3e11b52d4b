//! The answer parsers on real and realistic answers. Fixtures
//! (tests/fixtures/):
//! - moto-*: captured from `moto_server` 5.2.5 driven by boto3 (which asks
//!   for `encoding-type=url`): listings, multipart (moto names the ListParts
//!   root `ListPartsResponse`), copy, delete, and its error documents;
//! - aws-*: AWS's documented shapes: a truncated V2 listing with
//!   `&quot;`-escaped ETags, a CompleteMultipartUpload preceded by the
//!   keep-alive whitespace S3 sends while it works, and the same request
//!   failing inside a 200 answer; RequestTimeTooSkewed with ServerTime,
//!   ExpiredToken (which echoes the token in `<Token-0>`),
//!   SignatureDoesNotMatch (with the canonical request), PermanentRedirect;
//! - ceph-rgw-*: in the shapes Ceph RGW writes (Owner and Type in
//!   listings, a Tenant element, unquoted ETags in CompleteMultipartUpload,
//!   errors with an empty Message, SlowDown and QuotaExceeded without one);
//! - minio-*: Go's XML encoder (`&#34;` for quotes, Region and Resource in
//!   errors); rclone-*: `rclone serve s3` (an empty ETag for backends
//!   without MD5, seconds-only timestamps); s3s-*: an s3s gateway listing
//!   with `EncodingType=url`;
//! - gateway-error-response.xml: `<ErrorResponse><Error>`;
//! - proxy-*.html: an nginx 502 page and a login page holding a token.

use lakeport_transfer::digest::md5;
use lakeport_transfer::etag::multipart_etag;
use lakeport_transfer::parse::*;
use lakeport_transfer::{ByteRange, HttpResponse, S3ErrorKind, TransferError, TransportKind};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn response(status: u16, body: Vec<u8>) -> HttpResponse {
    HttpResponse { status, headers: vec![("Content-Type".into(), "application/xml".into())], body }
}

fn answer(status: u16, name: &str) -> HttpResponse {
    response(status, fixture(name))
}

fn s3_error(result: Result<impl std::fmt::Debug, TransferError>) -> lakeport_transfer::S3Error {
    match result {
        Err(TransferError::S3(e)) => *e,
        other => panic!("expected an S3 error, got {other:?}"),
    }
}

fn invalid(result: Result<impl std::fmt::Debug, TransferError>) -> (u16, String) {
    match result {
        Err(TransferError::InvalidResponse { status, message }) => (status, message),
        other => panic!("expected an invalid response, got {other:?}"),
    }
}

#[test]
fn list_v2_aws_truncated() {
    let page = parse_list_objects_v2(&answer(200, "aws-list-v2.xml")).unwrap();
    assert!(page.is_truncated);
    assert_eq!(page.next_continuation_token.as_deref(), Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="));
    assert_eq!(page.key_count, Some(3));
    assert_eq!(page.common_prefixes, ["runs/calibration/"]);
    assert_eq!(page.objects.len(), 2);
    let o = &page.objects[1];
    assert_eq!(o.key, "runs/0003 final.h5");
    assert_eq!(o.size, 201_326_592);
    assert_eq!(o.etag.as_deref(), Some("\"f4a2f2a8b6a9e25c5b31d2c0c8e1e7b9-12\""));
    assert_eq!(o.last_modified, Some(1_714_564_780));
    assert_eq!(o.storage_class.as_deref(), Some("INTELLIGENT_TIERING"));
}

#[test]
fn list_v2_ceph_minio_rclone() {
    let page = parse_list_objects_v2(&answer(200, "ceph-rgw-list-v2.xml")).unwrap();
    assert!(!page.is_truncated);
    assert_eq!(page.next_continuation_token, None);
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["run/a.dat", "run/b dir/ü.dat"]);
    assert_eq!(page.objects[0].etag.as_deref(), Some("\"5d41402abc4b2a76b9719d911017c592\""));
    assert_eq!(page.objects[0].last_modified, Some(1_714_564_798));

    let page = parse_list_objects_v2(&answer(200, "minio-list-v2.xml")).unwrap();
    assert_eq!(page.objects[0].key, "a & b.txt");
    assert_eq!(page.objects[0].etag.as_deref(), Some("\"0cc175b9c0f1b6a831c399e269772661\""));
    assert_eq!(page.common_prefixes, ["dir/"]);

    let page = parse_list_objects_v2(&answer(200, "rclone-list-v2.xml")).unwrap();
    assert_eq!(page.objects.len(), 2);
    assert_eq!(page.objects[0].etag.as_deref(), Some("\"\""));
    assert_eq!(page.objects[1].last_modified, Some(1_714_564_801));
}

#[test]
fn list_v2_url_encoding_is_decoded() {
    let page = parse_list_objects_v2(&answer(200, "s3s-list-v2-url.xml")).unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["café menu+1.txt", "ctl\u{1}key "]);
    assert_eq!(page.common_prefixes, ["dir one/"]);
    // The token is opaque: never decoded.
    assert_eq!(page.next_continuation_token.as_deref(), Some("Y2Fmw6kgbWVudSsxLnR4dA"));

    let page = parse_list_objects_v2(&answer(200, "moto-list-v2.xml")).unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["ctl\u{1}key", "top.txt"]);
    assert_eq!(page.common_prefixes, ["run 1/", "run 2/"]);
    let page = parse_list_objects_v2(&answer(200, "moto-list-v2-truncated.xml")).unwrap();
    assert!(page.is_truncated);
    assert_eq!(page.objects[1].key, "run 1/a+b.txt");
    assert_eq!(page.next_continuation_token.as_deref(), Some("d6959cf7974b4b018d104f4911c6d408"));
    // Without EncodingType in the answer, keys are taken as they are.
    let raw = String::from_utf8(fixture("moto-list-v2.xml")).unwrap().replace("<EncodingType>url</EncodingType>", "");
    let page = parse_list_objects_v2(&response(200, raw.into_bytes())).unwrap();
    assert_eq!(page.objects[0].key, "ctl%01key");
    // A url-encoded key that is not UTF-8 is refused.
    let bad = String::from_utf8(fixture("moto-list-v2.xml")).unwrap().replace("ctl%01key", "bad%FF");
    assert!(invalid(parse_list_objects_v2(&response(200, bad.into_bytes()))).1.contains("not UTF-8"));
}

#[test]
fn list_v2_requires_what_pagination_needs() {
    let no_token = r#"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"#;
    assert!(invalid(parse_list_objects_v2(&response(200, no_token.into()))).1.contains("NextContinuationToken"));
    let no_size = r#"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>"#;
    assert!(invalid(parse_list_objects_v2(&response(200, no_size.into()))).1.contains("Size"));
    let bad_size = r#"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>"#;
    assert!(invalid(parse_list_objects_v2(&response(200, bad_size.into()))).1.contains("not a number"));
    let no_key = r#"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>"#;
    assert!(invalid(parse_list_objects_v2(&response(200, no_key.into()))).1.contains("Key"));
    let bad_bool = r#"<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>"#;
    assert!(invalid(parse_list_objects_v2(&response(200, bad_bool.into()))).1.contains("IsTruncated"));
    // Unknown elements, prefixes, element order: all fine; an empty listing too.
    let odd = r#"<s3:ListBucketResult xmlns:s3="x"><s3:Future>1</s3:Future><s3:KeyCount>0</s3:KeyCount><s3:IsTruncated>FALSE</s3:IsTruncated></s3:ListBucketResult>"#;
    assert_eq!(parse_list_objects_v2(&response(200, odd.into())).unwrap(), ListObjectsV2Page { key_count: Some(0), ..Default::default() });
    // The wrong document.
    assert!(invalid(parse_list_objects_v2(&answer(200, "moto-initiate.xml"))).1.contains("<InitiateMultipartUploadResult> instead of <ListBucketResult>"));
}

#[test]
fn initiate_multipart_upload() {
    assert_eq!(parse_create_multipart_upload(&answer(200, "moto-initiate.xml")).unwrap(), "sXhHYqF3p7MniruQpc9U3lwBT4Vd5thtBjNpfISV5eRha3GxL6xUUC8Bg");
    assert_eq!(parse_create_multipart_upload(&answer(200, "ceph-rgw-initiate.xml")).unwrap(), "2~4n0zPCRDQFbXQlDaCnsJLpB3NFoPfFm");
    let empty = "<InitiateMultipartUploadResult><UploadId> </UploadId></InitiateMultipartUploadResult>";
    assert!(invalid(parse_create_multipart_upload(&response(200, empty.into()))).1.contains("UploadId"));
}

#[test]
fn complete_multipart_upload_and_its_200_errors() {
    let r = parse_complete_multipart_upload(&answer(200, "moto-complete.xml")).unwrap();
    assert_eq!(r.etag.as_deref(), Some("\"16cafe8d6b8c1c55c3d339c8d69326c6-2\""));
    assert_eq!(r.key.as_deref(), Some("big file"));
    // moto computed that ETag from 5 MiB of 'a' and 100 bytes of 'b'.
    assert_eq!(Some(format!("\"{}\"", multipart_etag(&[md5(&vec![b'a'; 5 << 20]), md5(&[b'b'; 100])]))), r.etag);

    let r = parse_complete_multipart_upload(&answer(200, "aws-complete-after-whitespace.xml")).unwrap();
    assert_eq!(r.etag.as_deref(), Some("\"3858f62230ac3c915f300c664312c11f-9\""));
    assert_eq!(r.location.as_deref(), Some("https://lakeport-data.s3.eu-central-1.amazonaws.com/runs/0003+final.h5"));
    // Captured from Ceph RGW 16.2.15: a completed upload with an empty ETag
    // (the object's HEAD then shows "bf41c171de41e4f76511c989bffc955f-1").
    let r = parse_complete_multipart_upload(&answer(200, "ceph-rgw-complete.xml")).unwrap();
    assert_eq!((r.etag, r.key.as_deref()), (None, Some("big.h5")));
    let r = parse_complete_multipart_upload(&answer(200, "minio-complete.xml")).unwrap();
    assert_eq!(r.etag.as_deref(), Some("\"d8e8fca2dc0f896fd7cb4cb0031ba249-3\""));

    // HTTP 200 carrying an error: an error, and a retryable one.
    let e = s3_error(parse_complete_multipart_upload(&answer(200, "aws-complete-200-error.xml")));
    assert_eq!((e.status, e.code.as_str(), e.kind()), (200, "InternalError", S3ErrorKind::InternalError));
    assert_eq!(e.request_id.as_deref(), Some("656c76696e6727732072657175657374"));
    let err = TransferError::from(e);
    assert_eq!(lakeport_transfer::retry::classify(&err), lakeport_transfer::retry::FailureClass::Transient);

    let e = s3_error(parse_complete_multipart_upload(&answer(400, "moto-complete-invalid-part.xml")));
    assert_eq!(e.kind(), S3ErrorKind::InvalidPart);
    assert!(e.to_string().contains("send that part again"));
    let e = s3_error(parse_complete_multipart_upload(&answer(400, "minio-invalid-part.xml")));
    assert!(e.message.contains("part's entity tag"));
    let e = s3_error(parse_complete_multipart_upload(&answer(400, "moto-entity-too-small.xml")));
    assert!(e.to_string().contains("at least 5 MiB"));
    // A success cut short is a dropped connection (retried), not garbage.
    let full = fixture("aws-complete-after-whitespace.xml");
    match parse_complete_multipart_upload(&response(200, full[..full.len() - 40].to_vec())) {
        Err(TransferError::Transport { kind: TransportKind::ConnectionReset, message }) => assert!(message.contains("ended early")),
        other => panic!("{other:?}"),
    }
    // Only whitespace arrived before the connection dropped.
    assert!(invalid(parse_complete_multipart_upload(&response(200, b"   \n   ".to_vec()))).1.contains("empty body"));
}

#[test]
fn list_parts_pages() {
    let page = parse_list_parts(&answer(200, "moto-list-parts-truncated.xml")).unwrap();
    assert!(page.is_truncated);
    assert_eq!(page.next_part_number_marker, Some(1));
    assert_eq!(page.parts, [ListedPart { part_number: 1, etag: "\"79b281060d337b9b2b84ccf390adcf74\"".into(), size: 5_242_880, last_modified: Some(1_795_436_028) }]);
    let page = parse_list_parts(&answer(200, "ceph-rgw-list-parts.xml")).unwrap();
    assert!(!page.is_truncated);
    assert_eq!(page.parts.iter().map(|p| (p.part_number, p.size)).collect::<Vec<_>>(), [(1, 16 << 20), (2, 16 << 20), (3, 4 << 20)]);
    let truncated = "<ListPartsResult><IsTruncated>true</IsTruncated></ListPartsResult>";
    assert!(invalid(parse_list_parts(&response(200, truncated.into()))).1.contains("NextPartNumberMarker"));
    let zero = "<ListPartsResult><Part><PartNumber>0</PartNumber><ETag>e</ETag><Size>1</Size></Part></ListPartsResult>";
    assert!(invalid(parse_list_parts(&response(200, zero.into()))).1.contains("1..=10000"));
    let e = s3_error(parse_list_parts(&answer(404, "moto-no-such-upload.xml")));
    assert_eq!(e.kind(), S3ErrorKind::NoSuchUpload);
    assert!(e.to_string().contains("start the upload again"));
}

#[test]
fn list_multipart_uploads_pages() {
    let page = parse_list_multipart_uploads(&answer(200, "moto-list-uploads.xml")).unwrap();
    assert_eq!(page.uploads.len(), 1);
    assert_eq!(page.uploads[0].key, "big file");
    assert_eq!(page.uploads[0].initiated, Some(1_289_422_113));
    assert!(!page.is_truncated);
    let page = parse_list_multipart_uploads(&answer(200, "aws-list-uploads-url.xml")).unwrap();
    assert!(page.is_truncated);
    assert_eq!(page.uploads.iter().map(|u| u.key.as_str()).collect::<Vec<_>>(), ["runs/0003 final.h5", "runs/0004 big.h5"]);
    assert_eq!(page.next_key_marker.as_deref(), Some("runs/0004 big.h5"));
    assert_eq!(page.next_upload_id_marker.as_deref(), Some("YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ"));
    assert_eq!(page.common_prefixes, ["runs/old+/"]);
}

#[test]
fn copy_results() {
    let r = parse_copy_object(&answer(200, "moto-copy-object.xml")).unwrap();
    assert_eq!(r.etag, "\"12276fd42fc4bdabc960250e5a403293\"");
    assert!(r.last_modified.is_some());
    assert_eq!(parse_upload_part_copy(&answer(200, "moto-copy-part.xml")).unwrap().etag, "\"12276fd42fc4bdabc960250e5a403293\"");
    // CopyObject too can fail inside a 200 answer.
    assert_eq!(s3_error(parse_copy_object(&answer(200, "aws-complete-200-error.xml"))).kind(), S3ErrorKind::InternalError);
    assert!(invalid(parse_upload_part_copy(&answer(200, "moto-copy-object.xml"))).1.contains("instead of <CopyPartResult>"));
}

#[test]
fn delete_results() {
    let r = parse_delete_objects(&answer(200, "aws-delete-result.xml")).unwrap();
    assert_eq!(r.deleted.len(), 2);
    assert!(r.deleted[1].delete_marker);
    assert_eq!(r.errors, [DeleteFailure { key: "runs/locked.h5".into(), code: "AccessDenied".into(), message: "Access Denied".into(), version_id: None }]);
    let r = parse_delete_objects(&answer(200, "moto-delete-result.xml")).unwrap();
    assert_eq!(r.deleted.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), ["copy.txt", "missing"]);
    // Quiet mode with no failures: an empty result.
    assert_eq!(parse_delete_objects(&response(200, b"<DeleteResult/>".to_vec())).unwrap(), DeleteResult::default());
}

#[test]
fn error_documents_of_every_dialect() {
    let e = s3_error(parse_list_objects_v2(&answer(404, "moto-no-such-bucket.xml")));
    assert_eq!((e.status, e.kind()), (404, S3ErrorKind::NoSuchBucket));
    assert!(TransferError::from(e).is_not_found());
    let e = s3_error(parse_empty_success(&answer(409, "moto-bucket-not-empty.xml")));
    assert!(e.to_string().contains("delete the objects"));
    let e = s3_error(parse_get_object(&answer(404, "ceph-rgw-no-such-key.xml"), None));
    assert_eq!(e.message, "");
    assert_eq!(e.request_id.as_deref(), Some("tx000006d6c2f8e5a3b4c1d-0066322180-1c2b3-default"));
    assert!(e.to_string().starts_with("S3 refused (HTTP 404, NoSuchKey): no object has this key"));
    let e = s3_error(parse_upload_part(&answer(503, "ceph-rgw-slowdown.xml")));
    assert_eq!(e.kind(), S3ErrorKind::SlowDown);
    let e = s3_error(parse_put_object(&answer(403, "ceph-rgw-quota.xml")));
    assert_eq!(e.kind(), S3ErrorKind::QuotaExceeded);
    let e = s3_error(parse_get_object(&answer(403, "minio-access-denied.xml"), None));
    assert_eq!((e.kind(), e.region.as_deref()), (S3ErrorKind::AccessDenied, Some("us-east-1")));
    let e = s3_error(parse_get_object(&answer(404, "rclone-no-such-key.xml"), None));
    assert_eq!(e.kind(), S3ErrorKind::NoSuchKey);
    let e = s3_error(parse_list_objects_v2(&answer(503, "gateway-error-response.xml")));
    assert_eq!((e.code.as_str(), e.request_id.as_deref()), ("ServiceUnavailable", Some("gw-0001")));
    let e = s3_error(parse_list_objects_v2(&answer(301, "aws-permanent-redirect.xml")));
    assert_eq!(e.endpoint.as_deref(), Some("lakeport-data.s3.eu-central-1.amazonaws.com"));
    assert!(e.to_string().contains("reached through 'lakeport-data.s3.eu-central-1.amazonaws.com'"));
}

#[test]
fn skewed_clock_errors_carry_the_server_time() {
    let e = s3_error(parse_list_objects_v2(&answer(403, "aws-skewed.xml")));
    assert_eq!(e.kind(), S3ErrorKind::RequestTimeTooSkewed);
    assert_eq!(e.server_time, Some(1_714_564_800));
    // Without ServerTime, the Date header tells the server's clock.
    let mut r = response(403, b"<Error><Code>RequestTimeTooSkewed</Code></Error>".to_vec());
    r.headers.push(("Date".into(), "Wed, 01 May 2024 12:00:05 GMT".into()));
    assert_eq!(s3_error(parse_list_objects_v2(&r)).server_time, Some(1_714_564_805));
}

#[test]
fn errors_never_echo_tokens_or_signing_details() {
    let token = "FwoGZXIvYXdzEBcaDSECRETSESSIONTOKEN0123456789";
    let e = s3_error(parse_get_object(&answer(400, "aws-expired-token.xml"), None));
    assert_eq!(e.kind(), S3ErrorKind::ExpiredToken);
    let e = s3_error(parse_get_object(&answer(403, "aws-signature-mismatch.xml"), None));
    assert_eq!(e.kind(), S3ErrorKind::SignatureDoesNotMatch);
    for name in ["aws-expired-token.xml", "aws-signature-mismatch.xml", "proxy-login.html"] {
        let err = parse_get_object(&answer(403, name), None).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains(token), "{name}: {text}");
        assert!(!text.contains("CanonicalRequest") && !text.contains("StringToSign"), "{name}: {text}");
    }
}

#[test]
fn proxies_and_garbage_are_invalid_responses_without_the_body() {
    let mut page = answer(502, "proxy-502.html");
    page.headers = vec![("Content-Type".into(), "text/html".into())];
    let (status, message) = invalid(parse_list_objects_v2(&page));
    assert_eq!(status, 502);
    assert!(message.contains("HTTP 502 (text/html) with an HTML page"), "{message}");
    assert!(message.contains("try again later") && !message.contains("nginx"));
    let (_, message) = invalid(parse_list_objects_v2(&answer(200, "proxy-login.html")));
    assert!(message.contains("HTML page") && !message.contains("session"));
    for (body, what) in [
        (&b""[..], "an empty body"),
        (b"\xff\xfe<", "not UTF-8"),
        (b"{\"error\": 1}", "JSON"),
        (b"Service Unavailable", "not XML"),
        (b"<ListBucketResult><Contents>", "truncated"),
        (b"<A></B>", "malformed"),
    ] {
        let (_, message) = match parse_list_objects_v2(&response(503, body.to_vec())) {
            Err(TransferError::InvalidResponse { status, message }) => (status, message),
            other => panic!("{what}: {other:?}"),
        };
        assert!(message.contains(what), "{what}: {message}");
    }
    // An error status with XML that is no error document.
    assert!(invalid(parse_list_objects_v2(&answer(500, "moto-initiate.xml"))).1.contains("holds no S3 error"));
}

fn head(status: u16, headers: &[(&str, &str)]) -> HttpResponse {
    HttpResponse { status, headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(), body: Vec::new() }
}

#[test]
fn head_object_metadata_from_headers() {
    // The headers moto sent for HEAD of the completed multipart object.
    let r = head(200, &[
        ("Date", "Mon, 23 Nov 2026 12:13:49 GMT"),
        ("content-type", "binary/octet-stream"),
        ("ETag", "\"16cafe8d6b8c1c55c3d339c8d69326c6-2\""),
        ("last-modified", "Mon, 23 Nov 2026 12:13:48 GMT"),
        ("Content-Length", "5242980"),
        ("x-amz-meta-Project", "ocean"),
        ("X-Amz-Meta-run", " 7 "),
        ("x-amz-version-id", "null"),
        ("x-amz-mp-parts-count", "2"),
    ]);
    let m = parse_head_object(&r).unwrap();
    assert_eq!(m.content_length, 5_242_980);
    assert_eq!(m.object_size(), 5_242_980);
    assert_eq!(m.etag.as_deref(), Some("\"16cafe8d6b8c1c55c3d339c8d69326c6-2\""));
    assert_eq!(m.last_modified, Some(1_795_436_028));
    assert_eq!(m.content_type.as_deref(), Some("binary/octet-stream"));
    assert_eq!(m.metadata, [("project".to_string(), "ocean".to_string()), ("run".to_string(), "7".to_string())]);
    assert_eq!(m.parts_count, Some(2));
    assert!(invalid(parse_head_object(&head(200, &[("ETag", "\"e\"")]))).1.contains("Content-Length"));
    assert!(invalid(parse_head_object(&head(200, &[("Content-Length", "12x")]))).1.contains("not a number"));
}

#[test]
fn head_errors_come_from_the_status() {
    // moto's 404 to HEAD: no body, and a text/html content type.
    let r = head(404, &[("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "0"), ("x-amz-request-id", "req-404")]);
    let err = parse_head_object(&r).unwrap_err();
    assert!(err.is_not_found());
    let e = err.s3().unwrap();
    assert_eq!((e.code.as_str(), e.request_id.as_deref()), ("NotFound", Some("req-404")));
    let e = s3_error(parse_head_object(&head(403, &[])));
    assert_eq!(e.kind(), S3ErrorKind::AccessDenied);
    let e = s3_error(parse_head_bucket(&head(301, &[("x-amz-bucket-region", "eu-central-1")])));
    assert!(e.to_string().contains("region 'eu-central-1'"));
    let e = s3_error(parse_head_object(&head(503, &[])));
    assert_eq!(e.kind(), S3ErrorKind::ServiceUnavailable);
    assert_eq!(s3_error(parse_head_object(&head(418, &[]))).code, "HTTP418");
    assert_eq!(parse_head_bucket(&head(200, &[("x-amz-bucket-region", "us-east-1")])).unwrap().region.as_deref(), Some("us-east-1"));
}

#[test]
fn ranged_get_headers() {
    let asked = ByteRange::new(100, 50).unwrap();
    let r = head(206, &[("Content-Length", "50"), ("Content-Range", "bytes 100-149/1000"), ("ETag", "\"e\"")]);
    let m = parse_get_object(&r, Some(asked)).unwrap();
    assert_eq!(m.content_range, Some(ContentRange { start: 100, end: 149, total: 1000 }));
    assert_eq!(m.object_size(), 1000);
    // Clipped at the object's end.
    let r = head(206, &[("Content-Length", "20"), ("Content-Range", "bytes 980-999/1000")]);
    assert!(parse_get_object(&r, Some(ByteRange::new(980, 100).unwrap())).is_ok());
    // Another range than asked, a length that disagrees, or a 206 without a range.
    let r = head(206, &[("Content-Length", "50"), ("Content-Range", "bytes 0-49/1000")]);
    assert!(invalid(parse_get_object(&r, Some(asked))).1.contains("were asked for"));
    let r = head(206, &[("Content-Length", "49"), ("Content-Range", "bytes 100-149/1000")]);
    assert!(parse_get_object(&r, Some(asked)).is_err());
    assert!(parse_get_object(&head(206, &[("Content-Length", "50")]), Some(asked)).is_err());
    for bad in ["100-149/1000", "bytes 149-100/1000", "bytes 100-149/100", "bytes 1-2/*", "bytes a-b/c"] {
        assert!(parse_get_object(&head(206, &[("Content-Length", "50"), ("Content-Range", bad)]), Some(asked)).is_err(), "{bad}");
    }
    // A server that ignores Range answers 200 with the whole object.
    let m = parse_get_object(&head(200, &[("Content-Length", "1000")]), Some(asked)).unwrap();
    assert_eq!((m.content_range, m.object_size()), (None, 1000));
    let e = s3_error(parse_get_object(&response(416, b"<Error><Code>InvalidRange</Code><Message>The requested range is not satisfiable</Message></Error>".to_vec()), Some(asked)));
    assert_eq!(e.kind(), S3ErrorKind::InvalidRange);
    let e = s3_error(parse_get_object(&response(412, b"<Error><Code>PreconditionFailed</Code></Error>".to_vec()), Some(asked)));
    assert!(e.to_string().contains("changed since"));
}

#[test]
fn put_and_empty_answers() {
    let r = parse_put_object(&head(200, &[("ETag", "\"5d41402abc4b2a76b9719d911017c592\""), ("x-amz-version-id", "v1")])).unwrap();
    assert_eq!(r, PutResult { etag: "\"5d41402abc4b2a76b9719d911017c592\"".into(), version_id: Some("v1".into()) });
    assert_eq!(parse_upload_part(&head(200, &[("etag", "abc")])).unwrap(), "abc");
    assert!(invalid(parse_upload_part(&head(200, &[]))).1.contains("ETag"));
    assert!(parse_empty_success(&head(204, &[])).is_ok());
    let e = s3_error(parse_empty_success(&response(409, b"<Error><Code>BucketAlreadyOwnedByYou</Code></Error>".to_vec())));
    assert!(e.to_string().contains("nothing to do"));
    assert!(invalid(parse_empty_success(&head(500, &[]))).0 == 500);
}
