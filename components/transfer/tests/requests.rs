//! Every request builder: the exact URL, headers and body, and signatures
//! that equal what the sigv4 core's own signer computes for the same
//! request (so signing exists once and the builders only describe).

use lakeport_sigv4::{Payload, SignOptions, Signer, SigningTime};
use lakeport_transfer::digest::{md5, sha256, to_base64, to_hex};
use lakeport_transfer::requests::{self as rq, CompletedPart, CopyOptions, GetOptions, ListMultipartUploads, ListObjectsV2, PayloadMode, PutOptions};
use lakeport_transfer::{Addressing, ByteRange, Credentials, HttpRequest, PayloadDescriptor, RequestSpec, S3Endpoint, S3Requests};

/// 2024-05-01T12:00:00Z
const NOW: i64 = 1_714_564_800;
const AMZ_DATE: &str = "20240501T120000Z";

fn credentials() -> Credentials {
    Credentials {
        access_key_id: "AKIDLAKEPORT".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: Some("FwoGZXIvYXdzEXAMPLE/token+==".into()),
    }
}

fn path_endpoint() -> S3Endpoint {
    S3Endpoint::new("http://127.0.0.1:9000", "us-east-1", Addressing::Path).unwrap()
}

fn requests() -> S3Requests {
    S3Requests::new(path_endpoint(), credentials()).unwrap()
}

fn header<'a>(r: &'a HttpRequest, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn names(headers: &[(String, String)]) -> Vec<&str> {
    headers.iter().map(|(n, _)| n.as_str()).collect()
}

/// Signs `spec` with the sigv4 core directly and checks that `S3Requests`
/// produced exactly that: same URL, same headers (bar Host), same
/// Authorization. Returns the canonical request.
fn assert_signed_like_sigv4(spec: RequestSpec, region: &str, offset: i64) -> (HttpRequest, String) {
    let mut signer = Signer::new(credentials()).unwrap();
    let expected = signer.sign(&spec.signable(), &SignOptions::s3(region, SigningTime::UnixSeconds(NOW + offset))).unwrap();
    let endpoint = S3Endpoint::new(
        if spec.url.starts_with("https") { "https://s3.example.org" } else { "http://127.0.0.1:9000" },
        region,
        Addressing::Path,
    )
    .unwrap();
    let mut requests = S3Requests::new(endpoint, credentials()).unwrap();
    requests.set_clock_offset(offset);
    let content_length = spec.content_length;
    let got = requests.sign(spec, NOW).unwrap();
    assert_eq!(got.url, expected.url);
    assert_eq!(got.method, expected.method);
    let mut expected_headers: Vec<(String, String)> = expected.headers.iter().filter(|(n, _)| n != "Host").cloned().collect();
    if let Some(n) = content_length {
        expected_headers.push(("Content-Length".into(), n.to_string()));
    }
    assert_eq!(got.headers, expected_headers);
    assert_eq!(header(&got, "authorization"), expected.authorization.as_deref());
    // Host is signed from the URL's authority, which wasi:http sends as Host.
    let host = expected.headers.iter().find(|(n, _)| n == "Host").unwrap().1.clone();
    assert_eq!(lakeport_http::split_url(&got.url).unwrap().1, host);
    assert!(expected.signed_headers.split(';').any(|h| h == "host"));
    (got, expected.canonical_request)
}

#[test]
fn list_objects_v2_exact_canonical_request() {
    let params = ListObjectsV2 {
        prefix: Some("run 1/ü+".into()),
        delimiter: Some("/".into()),
        continuation_token: Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=".into()),
        start_after: Some("a~b".into()),
        max_keys: Some(500),
        encoding_type_url: true,
    };
    let spec = rq::list_objects_v2(&path_endpoint(), "data", &params).unwrap();
    assert_eq!(
        spec.url,
        "http://127.0.0.1:9000/data?list-type=2&prefix=run%201%2F%C3%BC%2B&delimiter=%2F\
         &continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4vbOwM%3D&start-after=a~b&max-keys=500&encoding-type=url"
    );
    let (req, canonical) = assert_signed_like_sigv4(spec, "us-east-1", 0);
    assert_eq!(
        canonical,
        format!(
            "GET\n/data\n\
             continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4vbOwM%3D&delimiter=%2F&encoding-type=url\
             &list-type=2&max-keys=500&prefix=run%201%2F%C3%BC%2B&start-after=a~b\n\
             host:127.0.0.1:9000\nx-amz-content-sha256:{empty}\nx-amz-date:{AMZ_DATE}\n\
             x-amz-security-token:FwoGZXIvYXdzEXAMPLE/token+==\n\n\
             host;x-amz-content-sha256;x-amz-date;x-amz-security-token\n{empty}",
            empty = lakeport_sigv4::EMPTY_SHA256
        )
    );
    assert_eq!(req.method, "GET");
    assert!(req.body.is_empty());
    assert_eq!(names(&req.headers), ["X-Amz-Date", "X-Amz-Content-SHA256", "X-Amz-Security-Token", "Authorization"]);
    assert!(header(&req, "authorization").unwrap().starts_with("AWS4-HMAC-SHA256 Credential=AKIDLAKEPORT/20240501/us-east-1/s3/aws4_request, "));
}

#[test]
fn list_objects_v2_minimal_and_virtual_hosted() {
    let spec = rq::list_objects_v2(&path_endpoint(), "data", &ListObjectsV2::default()).unwrap();
    assert_eq!(spec.url, "http://127.0.0.1:9000/data?list-type=2");
    let vh = S3Endpoint::new("https://s3.example.org", "eu-1", Addressing::VirtualHosted).unwrap();
    let spec = rq::list_objects_v2(&vh, "data", &ListObjectsV2 { prefix: Some("a".into()), ..Default::default() }).unwrap();
    assert_eq!(spec.url, "https://data.s3.example.org/?list-type=2&prefix=a");
    let mut signer = Signer::new(credentials()).unwrap();
    let signed = signer.sign(&spec.signable(), &SignOptions::s3("eu-1", SigningTime::UnixSeconds(NOW))).unwrap();
    assert!(signed.canonical_request.starts_with("GET\n/\nlist-type=2&prefix=a\nhost:data.s3.example.org\n"));
}

#[test]
fn head_and_get_object() {
    let e = path_endpoint();
    let spec = rq::head_object(&e, "data", "dir/a b+c%.txt", &GetOptions::default()).unwrap();
    assert_eq!((spec.method, spec.url.as_str()), ("HEAD", "http://127.0.0.1:9000/data/dir/a%20b%2Bc%25.txt"));
    assert!(spec.headers.is_empty());
    assert_signed_like_sigv4(spec, "us-east-1", 0);

    let options = GetOptions { range: Some(ByteRange::new(100, 50).unwrap()), if_match: Some("abc".into()), part_number: None };
    let spec = rq::get_object(&e, "data", "k", &options).unwrap();
    assert_eq!(spec.headers, vec![("Range".to_string(), "bytes=100-149".to_string()), ("If-Match".to_string(), "\"abc\"".to_string())]);
    let (req, canonical) = assert_signed_like_sigv4(spec, "us-east-1", 0);
    assert!(canonical.contains("\nif-match:\"abc\"\nrange:bytes=100-149\n"));
    assert_eq!(header(&req, "range"), Some("bytes=100-149"));

    let spec = rq::head_object(&e, "data", "k", &GetOptions { part_number: Some(1), ..Default::default() }).unwrap();
    assert_eq!(spec.url, "http://127.0.0.1:9000/data/k?partNumber=1");
    let both = GetOptions { part_number: Some(1), range: Some(ByteRange::new(0, 1).unwrap()), if_match: None };
    assert!(rq::get_object(&e, "data", "k", &both).is_err());
    assert!(rq::get_object(&e, "data", "k", &GetOptions { range: Some(ByteRange { start: 5, end: 4 }), ..Default::default() }).is_err());
    assert!(ByteRange::new(0, 0).is_err());
}

#[test]
fn put_object_unsigned_with_content_md5() {
    let body = b"hello, lakeport".to_vec();
    let payload = PayloadDescriptor::of(&body, PayloadMode::default());
    assert_eq!(payload, PayloadDescriptor::unsigned(15, md5(&body)));
    let options = PutOptions {
        content_type: Some("text/plain".into()),
        metadata: vec![("Project".into(), "ocean 7".into())],
        checksum_algorithm_sha256: false,
    };
    let spec = rq::put_object(&path_endpoint(), "data", "f.txt", &payload, &options).unwrap();
    assert_eq!(spec.payload, Payload::UnsignedPayload);
    assert_eq!(spec.content_length, Some(body.len() as u64));
    assert_eq!(
        spec.headers,
        vec![
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("x-amz-meta-project".to_string(), "ocean 7".to_string()),
            ("Content-MD5".to_string(), to_base64(&md5(&body))),
        ]
    );
    let (req, canonical) = assert_signed_like_sigv4(spec, "us-east-1", 0);
    assert!(canonical.ends_with("\nUNSIGNED-PAYLOAD"));
    // Content-MD5 is signed: the signature covers the body's digest.
    assert!(canonical.contains(&format!("\ncontent-md5:{}\n", to_base64(&md5(&body)))));
    assert_eq!(header(&req, "x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
    assert_eq!(header(&req, "content-length"), Some("15"));
    // Ceph-safe: nothing streaming or trailing.
    for h in ["content-encoding", "x-amz-decoded-content-length", "x-amz-trailer", "x-amz-sdk-checksum-algorithm"] {
        assert_eq!(header(&req, h), None, "{h}");
    }
    assert!(req.body.is_empty(), "the caller supplies the body");
}

#[test]
fn put_object_with_sha256_and_checksum() {
    let body = b"data".to_vec();
    let payload = PayloadDescriptor::of(&body, PayloadMode::Sha256WithMd5).with_checksum_sha256();
    let spec = rq::put_object(&path_endpoint(), "data", "k", &payload, &PutOptions::default()).unwrap();
    assert_eq!(spec.payload, Payload::Precomputed(to_hex(&sha256(&body))));
    assert_eq!(
        names(&spec.headers),
        ["Content-MD5", "x-amz-checksum-sha256"],
    );
    assert_eq!(spec.headers[1].1, to_base64(&sha256(&body)));
    let (req, _) = assert_signed_like_sigv4(spec, "us-east-1", 0);
    assert_eq!(header(&req, "x-amz-content-sha256"), Some(to_hex(&sha256(&body)).as_str()));

    // A checksum needs the SHA-256.
    let unsigned = PayloadDescriptor::of(&body, PayloadMode::UnsignedWithMd5).with_checksum_sha256();
    assert!(rq::put_object(&path_endpoint(), "data", "k", &unsigned, &PutOptions::default()).unwrap_err().to_string().contains("SHA-256"));
    // Too large for one PUT; bad metadata.
    let huge = PayloadDescriptor::unsigned(5 * (1 << 30) + 1, [0; 16]);
    assert!(rq::put_object(&path_endpoint(), "data", "k", &huge, &PutOptions::default()).unwrap_err().to_string().contains("in parts"));
    let bad_meta = PutOptions { metadata: vec![("a b".into(), "v".into())], ..Default::default() };
    assert!(rq::put_object(&path_endpoint(), "data", "k", &PayloadDescriptor::empty(), &bad_meta).is_err());
    let non_ascii = PutOptions { metadata: vec![("a".into(), "ü".into())], ..Default::default() };
    assert!(rq::put_object(&path_endpoint(), "data", "k", &PayloadDescriptor::empty(), &non_ascii).is_err());
}

#[test]
fn empty_put_is_signed_with_the_empty_hash() {
    let spec = rq::put_object(&path_endpoint(), "data", "empty", &PayloadDescriptor::empty(), &PutOptions::default()).unwrap();
    assert_eq!(spec.payload, Payload::Precomputed(lakeport_sigv4::EMPTY_SHA256.into()));
    let (req, _) = assert_signed_like_sigv4(spec, "us-east-1", 0);
    assert_eq!(header(&req, "content-length"), Some("0"));
}

#[test]
fn delete_object_and_batches() {
    let e = path_endpoint();
    let spec = rq::delete_object(&e, "data", "a/b").unwrap();
    assert_eq!((spec.method, spec.url.as_str()), ("DELETE", "http://127.0.0.1:9000/data/a/b"));
    assert_signed_like_sigv4(spec, "us-east-1", 0);

    let spec = rq::delete_objects(&e, "data", &["a&b", "<x>", "plain", "cr\r"], true).unwrap();
    assert_eq!(spec.url, "http://127.0.0.1:9000/data?delete");
    let body = String::from_utf8(spec.body.clone()).unwrap();
    assert_eq!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>\
         <Object><Key>a&amp;b</Key></Object><Object><Key>&lt;x&gt;</Key></Object><Object><Key>plain</Key></Object>\
         <Object><Key>cr&#13;</Key></Object></Delete>"
    );
    assert_eq!(spec.headers, vec![
        ("Content-Type".to_string(), "application/xml".to_string()),
        ("Content-MD5".to_string(), to_base64(&md5(body.as_bytes()))),
    ]);
    assert_eq!(spec.payload, Payload::Precomputed(to_hex(&sha256(body.as_bytes()))));
    let (req, canonical) = assert_signed_like_sigv4(spec, "us-east-1", 0);
    assert!(canonical.starts_with("POST\n/data\ndelete=\n"));
    assert_eq!(req.body, body.as_bytes());
    assert_eq!(header(&req, "content-length"), Some(body.len().to_string().as_str()));

    let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    assert!(rq::delete_objects(&e, "data", &keys, false).is_ok());
    let too_many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    assert!(rq::delete_objects(&e, "data", &too_many, false).unwrap_err().to_string().contains("batches"));
    assert!(rq::delete_objects::<&str>(&e, "data", &[], false).is_err());
    assert!(rq::delete_objects(&e, "data", &["bad\u{1}key"], false).unwrap_err().to_string().contains("U+0001"));
    let not_quiet = String::from_utf8(rq::delete_objects(&e, "data", &["k"], false).unwrap().body).unwrap();
    assert!(not_quiet.contains("<Quiet>false</Quiet>"));
}

#[test]
fn buckets() {
    let e = S3Endpoint::new("https://s3.example.org", "eu-central-1", Addressing::Path).unwrap();
    let spec = rq::create_bucket(&e, "new-bucket", None).unwrap();
    assert_eq!((spec.method, spec.url.as_str()), ("PUT", "https://s3.example.org/new-bucket"));
    assert_eq!(
        String::from_utf8(spec.body.clone()).unwrap(),
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <LocationConstraint>eu-central-1</LocationConstraint></CreateBucketConfiguration>"
    );
    assert_signed_like_sigv4(spec, "eu-central-1", 0);
    // us-east-1 and an explicitly empty constraint send no body.
    let east = S3Endpoint::new("https://s3.example.org", "us-east-1", Addressing::Path).unwrap();
    for spec in [rq::create_bucket(&east, "new-bucket", None).unwrap(), rq::create_bucket(&e, "new-bucket", Some("")).unwrap()] {
        assert!(spec.body.is_empty() && spec.headers.is_empty() && spec.content_length.is_none());
    }
    assert!(String::from_utf8(rq::create_bucket(&e, "nb1", Some("default")).unwrap().body).unwrap().contains(">default<"));
    // New buckets follow the strict rules even path-style.
    assert!(rq::create_bucket(&e, "Legacy_Name", None).is_err());

    let spec = rq::delete_bucket(&e, "old").unwrap();
    assert_eq!((spec.method, spec.url.as_str()), ("DELETE", "https://s3.example.org/old"));
    assert_signed_like_sigv4(spec, "eu-central-1", 0);
    let spec = rq::head_bucket(&e, "Legacy_Name").unwrap();
    assert_eq!((spec.method, spec.url.as_str()), ("HEAD", "https://s3.example.org/Legacy_Name"));
    assert_signed_like_sigv4(spec, "eu-central-1", 0);
}

#[test]
fn copy_object_encodes_the_source_once() {
    let e = path_endpoint();
    let options = CopyOptions {
        replace: Some(PutOptions { content_type: Some("application/x-hdf5".into()), ..Default::default() }),
        source_if_match: Some("\"e1\"".into()),
    };
    let spec = rq::copy_object(&e, "src", "dir/a b+ü?#%.h5", "dst", "copy.h5", &options).unwrap();
    assert_eq!((spec.method, spec.url.as_str()), ("PUT", "http://127.0.0.1:9000/dst/copy.h5"));
    assert_eq!(
        spec.headers,
        vec![
            ("x-amz-copy-source".to_string(), "src/dir/a%20b%2B%C3%BC%3F%23%25.h5".to_string()),
            ("x-amz-copy-source-if-match".to_string(), "\"e1\"".to_string()),
            ("x-amz-metadata-directive".to_string(), "REPLACE".to_string()),
            ("Content-Type".to_string(), "application/x-hdf5".to_string()),
        ]
    );
    assert_signed_like_sigv4(spec, "us-east-1", 0);
    assert_eq!(rq::copy_source("b", "~x/y").unwrap(), "b/~x/y");
    assert!(rq::copy_source("b", "").is_err());
}

#[test]
fn multipart_requests() {
    let e = path_endpoint();
    let id = "2~iCw_lDY8VoGbKR1PaA/+=x";
    let spec = rq::create_multipart_upload(&e, "data", "big file", &PutOptions::default()).unwrap();
    assert_eq!((spec.method, spec.url.as_str()), ("POST", "http://127.0.0.1:9000/data/big%20file?uploads"));
    let (_, canonical) = assert_signed_like_sigv4(spec, "us-east-1", 0);
    assert!(canonical.starts_with("POST\n/data/big%20file\nuploads=\n"));
    let with_checksum = PutOptions { checksum_algorithm_sha256: true, ..Default::default() };
    let spec = rq::create_multipart_upload(&e, "data", "k", &with_checksum).unwrap();
    assert_eq!(spec.headers, vec![("x-amz-checksum-algorithm".to_string(), "SHA256".to_string())]);

    let part = vec![7u8; 1000];
    let payload = PayloadDescriptor::of(&part, PayloadMode::UnsignedWithMd5);
    let spec = rq::upload_part(&e, "data", "big file", id, 3, &payload).unwrap();
    assert_eq!(spec.url, "http://127.0.0.1:9000/data/big%20file?partNumber=3&uploadId=2~iCw_lDY8VoGbKR1PaA%2F%2B%3Dx");
    assert_eq!(spec.headers, vec![("Content-MD5".to_string(), to_base64(&md5(&part)))]);
    let (req, canonical) = assert_signed_like_sigv4(spec, "us-east-1", 0);
    assert_eq!(
        canonical,
        format!(
            "PUT\n/data/big%20file\npartNumber=3&uploadId=2~iCw_lDY8VoGbKR1PaA%2F%2B%3Dx\n\
             content-md5:{}\nhost:127.0.0.1:9000\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{AMZ_DATE}\n\
             x-amz-security-token:FwoGZXIvYXdzEXAMPLE/token+==\n\n\
             content-md5;host;x-amz-content-sha256;x-amz-date;x-amz-security-token\nUNSIGNED-PAYLOAD",
            to_base64(&md5(&part))
        )
    );
    assert_eq!(header(&req, "content-length"), Some("1000"));
    for bad in [0, 10_001] {
        assert!(rq::upload_part(&e, "data", "k", id, bad, &payload).is_err());
    }
    assert!(rq::upload_part(&e, "data", "k", "", 1, &payload).is_err());
    assert!(rq::upload_part(&e, "data", "k", id, 1, &PayloadDescriptor::unsigned(5 * (1 << 30) + 1, [0; 16])).is_err());

    let spec = rq::upload_part_copy(&e, "data", "k", id, 2, "src", "a b", Some(ByteRange::new(5 << 20, 5 << 20).unwrap()), Some("e")).unwrap();
    assert_eq!(
        spec.headers,
        vec![
            ("x-amz-copy-source".to_string(), "src/a%20b".to_string()),
            ("x-amz-copy-source-range".to_string(), "bytes=5242880-10485759".to_string()),
            ("x-amz-copy-source-if-match".to_string(), "\"e\"".to_string()),
        ]
    );
    assert_signed_like_sigv4(spec, "us-east-1", 0);

    let parts = vec![
        CompletedPart { part_number: 1, etag: "\"a54357aff0632cce46d942af68356b38\"".into(), checksum_sha256: None },
        CompletedPart { part_number: 2, etag: "0c78aef83f66abc1fa1e8477f296d394".into(), checksum_sha256: Some("q1w2==".into()) },
    ];
    let spec = rq::complete_multipart_upload(&e, "data", "k", id, &parts).unwrap();
    assert_eq!(spec.url, "http://127.0.0.1:9000/data/k?uploadId=2~iCw_lDY8VoGbKR1PaA%2F%2B%3Dx");
    assert_eq!(
        String::from_utf8(spec.body.clone()).unwrap(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Part><PartNumber>1</PartNumber><ETag>&quot;a54357aff0632cce46d942af68356b38&quot;</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>&quot;0c78aef83f66abc1fa1e8477f296d394&quot;</ETag>\
         <ChecksumSHA256>q1w2==</ChecksumSHA256></Part></CompleteMultipartUpload>"
    );
    assert_signed_like_sigv4(spec, "us-east-1", 0);
    let mut out_of_order = parts.clone();
    out_of_order.swap(0, 1);
    assert!(rq::complete_multipart_upload(&e, "data", "k", id, &out_of_order).unwrap_err().to_string().contains("ascending"));
    let mut twice = parts.clone();
    twice[1].part_number = 1;
    assert!(rq::complete_multipart_upload(&e, "data", "k", id, &twice).is_err());
    assert!(rq::complete_multipart_upload(&e, "data", "k", id, &[]).is_err());
    let mut no_etag = parts.clone();
    no_etag[0].etag = "\"\"".into();
    assert!(rq::complete_multipart_upload(&e, "data", "k", id, &no_etag).is_err());

    let spec = rq::abort_multipart_upload(&e, "data", "k", id).unwrap();
    assert_eq!((spec.method, spec.url.as_str()), ("DELETE", "http://127.0.0.1:9000/data/k?uploadId=2~iCw_lDY8VoGbKR1PaA%2F%2B%3Dx"));
    assert_signed_like_sigv4(spec, "us-east-1", 0);

    let spec = rq::list_parts(&e, "data", "k", id, Some(1000), Some(1000)).unwrap();
    assert_eq!(spec.url, "http://127.0.0.1:9000/data/k?uploadId=2~iCw_lDY8VoGbKR1PaA%2F%2B%3Dx&max-parts=1000&part-number-marker=1000");
    assert_signed_like_sigv4(spec, "us-east-1", 0);

    let params = ListMultipartUploads {
        prefix: Some("p/".into()),
        delimiter: None,
        key_marker: Some("p/a b".into()),
        upload_id_marker: Some("x+y".into()),
        max_uploads: Some(10),
        encoding_type_url: true,
    };
    let spec = rq::list_multipart_uploads(&e, "data", &params).unwrap();
    assert_eq!(
        spec.url,
        "http://127.0.0.1:9000/data?uploads&prefix=p%2F&key-marker=p%2Fa%20b&upload-id-marker=x%2By&max-uploads=10&encoding-type=url"
    );
    let (_, canonical) = assert_signed_like_sigv4(spec, "us-east-1", 0);
    assert!(canonical.contains("\nencoding-type=url&key-marker=p%2Fa%20b&max-uploads=10&prefix=p%2F&upload-id-marker=x%2By&uploads=\n"));
}

#[test]
fn clock_offset_moves_the_signing_time() {
    let spec = rq::delete_object(&path_endpoint(), "data", "k").unwrap();
    let (req, _) = assert_signed_like_sigv4(spec, "us-east-1", -3600);
    assert_eq!(header(&req, "x-amz-date"), Some("20240501T110000Z"));
    let mut r = requests();
    r.set_clock_offset(60);
    assert_eq!(r.clock_offset(), 60);
    let req = r.head_bucket("data", NOW).unwrap();
    assert_eq!(header(&req, "x-amz-date"), Some("20240501T120100Z"));
}

#[test]
fn convenience_methods_sign_the_same_specs() {
    let mut r = requests();
    let e = path_endpoint();
    let direct = |spec: RequestSpec| requests().sign(spec, NOW).unwrap();
    let payload = PayloadDescriptor::unsigned(3, md5(b"abc"));
    assert_eq!(r.list_objects_v2("data", &ListObjectsV2::default(), NOW).unwrap(), direct(rq::list_objects_v2(&e, "data", &ListObjectsV2::default()).unwrap()));
    assert_eq!(r.head_object("data", "k", &GetOptions::default(), NOW).unwrap(), direct(rq::head_object(&e, "data", "k", &GetOptions::default()).unwrap()));
    assert_eq!(r.get_object("data", "k", &GetOptions::default(), NOW).unwrap(), direct(rq::get_object(&e, "data", "k", &GetOptions::default()).unwrap()));
    assert_eq!(
        r.put_object("data", "k", &payload, &PutOptions::default(), NOW).unwrap(),
        direct(rq::put_object(&e, "data", "k", &payload, &PutOptions::default()).unwrap())
    );
    assert_eq!(r.delete_object("data", "k", NOW).unwrap(), direct(rq::delete_object(&e, "data", "k").unwrap()));
    assert_eq!(r.delete_objects("data", &["a"], true, NOW).unwrap(), direct(rq::delete_objects(&e, "data", &["a"], true).unwrap()));
    assert_eq!(r.create_bucket("data", None, NOW).unwrap(), direct(rq::create_bucket(&e, "data", None).unwrap()));
    assert_eq!(r.delete_bucket("data", NOW).unwrap(), direct(rq::delete_bucket(&e, "data").unwrap()));
    assert_eq!(r.head_bucket("data", NOW).unwrap(), direct(rq::head_bucket(&e, "data").unwrap()));
    assert_eq!(
        r.copy_object(("s", "a"), ("data", "b"), &CopyOptions::default(), NOW).unwrap(),
        direct(rq::copy_object(&e, "s", "a", "data", "b", &CopyOptions::default()).unwrap())
    );
    assert_eq!(
        r.create_multipart_upload("data", "k", &PutOptions::default(), NOW).unwrap(),
        direct(rq::create_multipart_upload(&e, "data", "k", &PutOptions::default()).unwrap())
    );
    assert_eq!(r.upload_part("data", "k", "u", 1, &payload, NOW).unwrap(), direct(rq::upload_part(&e, "data", "k", "u", 1, &payload).unwrap()));
    assert_eq!(
        r.upload_part_copy(("data", "k"), "u", 1, ("s", "a"), None, None, NOW).unwrap(),
        direct(rq::upload_part_copy(&e, "data", "k", "u", 1, "s", "a", None, None).unwrap())
    );
    let parts = [CompletedPart { part_number: 1, etag: "e".into(), checksum_sha256: None }];
    assert_eq!(
        r.complete_multipart_upload("data", "k", "u", &parts, NOW).unwrap(),
        direct(rq::complete_multipart_upload(&e, "data", "k", "u", &parts).unwrap())
    );
    assert_eq!(r.abort_multipart_upload("data", "k", "u", NOW).unwrap(), direct(rq::abort_multipart_upload(&e, "data", "k", "u").unwrap()));
    assert_eq!(r.list_parts("data", "k", "u", None, None, NOW).unwrap(), direct(rq::list_parts(&e, "data", "k", "u", None, None).unwrap()));
    assert_eq!(
        r.list_multipart_uploads("data", &ListMultipartUploads::default(), NOW).unwrap(),
        direct(rq::list_multipart_uploads(&e, "data", &ListMultipartUploads::default()).unwrap())
    );
}

#[test]
fn credentials_without_a_session_token_and_bad_credentials() {
    let mut r = S3Requests::new(path_endpoint(), Credentials { session_token: None, ..credentials() }).unwrap();
    let req = r.head_bucket("data", NOW).unwrap();
    assert_eq!(header(&req, "x-amz-security-token"), None);
    assert!(header(&req, "authorization").unwrap().contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
    let err = S3Requests::new(path_endpoint(), Credentials { secret_access_key: String::new(), ..credentials() }).err().unwrap();
    assert!(err.to_string().contains("secret access key is empty"));
    let err = r.set_credentials(Credentials { access_key_id: "a b".into(), ..credentials() }).unwrap_err();
    assert!(!err.to_string().contains("wJalrXUtnFEMI"));
}
