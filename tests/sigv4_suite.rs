//! The AWS SigV4 signing test suite (the `v4` cases shipped in the sources
//! of the `aws-sigv4` crate) and AWS's published S3 examples, all signed by
//! the sigv4 component through the host, in header and query form.
//!
//! Skipped vectors, and why: `get-space-normalized`, `get-space-unnormalized`
//! and `get-utf8` expect a path encoded once for a non-S3 service, which
//! contradicts `double-encode-path` and `double-url-encode` (and AWS's rule
//! for non-S3 services) where the path is encoded twice. The aws-sigv4 crate
//! skips them too. We follow the double-encoding rule.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use lakeport::instance::ComponentError;
use lakeport::runtime::Runtime;
use support::Refused;
use lakeport::sigv4::{Credentials, Payload, SignOptions, SignableRequest, SignedRequest, Sigv4, SigningTime};

/// A runtime whose compiled cache stays inside the build directory.
fn runtime() -> Runtime {
    Runtime::with_cache_dir(Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compiled"))).unwrap()
}

const SKIPPED: &[&str] = &["get-space-normalized", "get-space-unnormalized", "get-utf8"];
/// Its canonical-request file carries a different date (2021) than its
/// signed request (2015); it has a test of its own below.
const OWN_TEST: &[&str] = &["double-encode-path"];

/// The suite's folder inside the aws-sigv4 crate's sources, found through
/// `cargo metadata` (the crate is a pinned dev-dependency of lakeport-sigv4).
fn suite_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pkg = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "aws-sigv4" && p["version"] == "1.6.4")
        .expect("aws-sigv4 1.6.4 in the dependency graph");
    let manifest = PathBuf::from(pkg["manifest_path"].as_str().unwrap());
    manifest.parent().unwrap().join("aws-signing-test-suite").join("v4")
}

struct Vector {
    name: String,
    request: SignableRequest,
    credentials: Credentials,
    region: String,
    service: String,
    amz_date: String,
    normalize: bool,
    sign_body: bool,
    sign_session_token: bool,
    expires: u32,
}

/// Parses `request.txt`: request line, headers (continuation lines folded
/// into the previous value, as HTTP/1.1 once allowed), blank line, body.
fn parse_request(text: &str) -> (String, String, Vec<(String, String)>, Vec<u8>) {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let method = request_line.split(' ').next().unwrap().to_string();
    // One expected file (double-url-encode) omits the protocol version.
    let end = request_line.rfind(" HTTP/").unwrap_or(request_line.len());
    let path = request_line[method.len() + 1..end].to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push('\n');
            last.1.push_str(line);
        } else {
            let (n, v) = line.split_once(':').unwrap();
            headers.push((n.to_string(), v.to_string()));
        }
    }
    (method, path, headers, body.as_bytes().to_vec())
}

fn load_vector(dir: &Path) -> Vector {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let (method, path, headers, body) = parse_request(&std::fs::read_to_string(dir.join("request.txt")).unwrap());
    let host = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("host")).unwrap().1.trim().to_string();
    let context: serde_json::Value = match std::fs::read_to_string(dir.join("context.json")) {
        Ok(s) => serde_json::from_str(&s).unwrap(),
        // The two double-encoding cases ship without a context; their
        // scope is in their expected output (and in aws-sigv4's own tests).
        Err(_) => {
            let (region, service, ts) = match name.as_str() {
                "double-url-encode" => ("us-east-2", "lambda", "2021-05-11T15:40:45Z"),
                _ => ("us-east-1", "service", "2015-08-30T12:36:00Z"),
            };
            serde_json::json!({
                "credentials": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
                "expiration_in_seconds": 3600, "normalize": true, "region": region, "service": service,
                "sign_body": false, "timestamp": ts
            })
        }
    };
    let creds = &context["credentials"];
    Vector {
        request: SignableRequest {
            method,
            url: format!("https://{host}{path}"),
            headers,
            payload: if body.is_empty() { Payload::Empty } else { Payload::Bytes(body) },
        },
        credentials: Credentials {
            access_key_id: creds["access_key_id"].as_str().unwrap().into(),
            secret_access_key: creds["secret_access_key"].as_str().unwrap().into(),
            session_token: creds["token"].as_str().map(Into::into),
        },
        region: context["region"].as_str().unwrap().into(),
        service: context["service"].as_str().unwrap().into(),
        amz_date: context["timestamp"].as_str().unwrap().replace(['-', ':'], ""),
        normalize: context["normalize"].as_bool().unwrap(),
        sign_body: context["sign_body"].as_bool().unwrap(),
        sign_session_token: !context["omit_session_token"].as_bool().unwrap_or(false),
        expires: context["expiration_in_seconds"].as_u64().unwrap() as u32,
        name,
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Query parameters, decoded, so that `ሴ` and `%E1%88%B4` compare equal.
fn query_params(url: &str) -> BTreeMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn check(vector: &Vector, dir: &Path, location: &str, signed: &SignedRequest) -> Vec<String> {
    let mut failures = Vec::new();
    let mut compare = |what: &str, file: &str, actual: &str| {
        if let Ok(expected) = std::fs::read_to_string(dir.join(file)) {
            if expected.trim_end_matches('\n') != actual {
                failures.push(format!("{} [{location}] {what}:\n  expected: {expected:?}\n  actual:   {actual:?}", vector.name));
            }
        }
    };
    compare("canonical request", &format!("{location}-canonical-request.txt"), &signed.canonical_request);
    compare("string to sign", &format!("{location}-string-to-sign.txt"), &signed.string_to_sign);
    compare("signature", &format!("{location}-signature.txt"), &signed.signature);
    let expected_signed = std::fs::read_to_string(dir.join(format!("{location}-signed-request.txt"))).unwrap();
    let (_, expected_path, expected_headers, _) = parse_request(&expected_signed);
    if location == "header" {
        let expected_auth = expected_headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.trim());
        if expected_auth != signed.authorization.as_deref() {
            failures.push(format!("{} [header] authorization: expected {expected_auth:?}, got {:?}", vector.name, signed.authorization));
        }
    } else if query_params(&expected_path) != query_params(&signed.url) {
        failures.push(format!("{} [query] presigned URL query differs:\n  expected: {expected_path}\n  actual:   {}", vector.name, signed.url));
    }
    failures
}

#[test]
fn aws_sigv4_test_suite_through_the_component() {
    let runtime = runtime();
    let mut sigv4 = Sigv4::new(&runtime).unwrap();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(suite_dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    let (mut failures, mut checked, mut skipped) = (Vec::new(), 0, Vec::new());
    for dir in &dirs {
        let vector = load_vector(dir);
        if SKIPPED.contains(&vector.name.as_str()) {
            skipped.push(vector.name.clone());
            continue;
        }
        if OWN_TEST.contains(&vector.name.as_str()) {
            continue;
        }
        for location in ["header", "query"] {
            if !dir.join(format!("{location}-signed-request.txt")).exists() {
                continue;
            }
            let options = SignOptions {
                region: vector.region.clone(),
                service: vector.service.clone(),
                time: SigningTime::AmzDate(vector.amz_date.clone()),
                presign_expires: (location == "query").then_some(vector.expires),
                normalize_path: vector.normalize,
                sign_body: vector.sign_body,
                sign_session_token: vector.sign_session_token,
            };
            match sigv4.sign(&vector.request, &vector.credentials, &options).map_err(Refused::refused) {
                Ok(signed) => failures.extend(check(&vector, dir, location, &signed)),
                Err(e) => failures.push(format!("{} [{location}]: error {e}", vector.name)),
            }
            checked += 1;
        }
    }
    eprintln!("checked {checked} signatures from {} vectors; skipped {skipped:?}", dirs.len());
    assert_eq!(skipped.len(), SKIPPED.len(), "a skipped vector is missing from the suite");
    // 36 vectors in both forms, minus the 3 skipped, plus header-only double-url-encode.
    assert!(checked >= 67, "only {checked} signatures checked: is the suite complete?");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// `double-encode-path` ships no signature file; its expected signature is
/// in aws-sigv4's own test, made with that crate's test credentials.
#[test]
fn double_encode_path_signature() {
    let runtime = runtime();
    let mut sigv4 = Sigv4::new(&runtime).unwrap();
    let mut vector = load_vector(&suite_dir().join("double-encode-path"));
    vector.credentials = Credentials {
        access_key_id: "ANOTREAL".into(),
        secret_access_key: "notrealrnrELgWzOk3IfjzDKtFBhDby".into(),
        session_token: None,
    };
    let options = SignOptions {
        region: "us-east-1".into(),
        service: "service".into(),
        time: SigningTime::AmzDate("20150830T123600Z".into()),
        presign_expires: None,
        normalize_path: true,
        sign_body: false,
        sign_session_token: true,
    };
    let signed = sigv4.sign(&vector.request, &vector.credentials, &options).unwrap();
    assert_eq!(signed.signature, "57d157672191bac40bae387e48bbe14b15303c001fdbb01f4abf295dccb09705");
    assert!(signed.canonical_request.contains("/test/%40connections/JBDvjfGEIAMCERw%253D"));
}

// AWS's published S3 examples ("Signature Calculations for the Authorization
// Header", "Query String Authentication" and "Transferring Payload in Multiple
// Chunks" in the S3 API reference).

fn aws_example_credentials() -> Credentials {
    Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

fn s3_options(presign_expires: Option<u32>) -> SignOptions {
    SignOptions {
        region: "us-east-1".into(),
        service: "s3".into(),
        time: SigningTime::AmzDate("20130524T000000Z".into()),
        presign_expires,
        normalize_path: true,
        sign_body: false,
        sign_session_token: true,
    }
}

fn request(method: &str, url: &str, headers: &[(&str, &str)], payload: Payload) -> SignableRequest {
    SignableRequest {
        method: method.into(),
        url: url.into(),
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        payload,
    }
}

#[test]
fn aws_s3_header_examples() {
    let runtime = runtime();
    let mut sigv4 = Sigv4::new(&runtime).unwrap();
    let host = "https://examplebucket.s3.amazonaws.com";
    let cases = [
        (
            request("GET", &format!("{host}/test.txt"), &[("Range", "bytes=0-9")], Payload::Empty),
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
        (
            request(
                "PUT",
                &format!("{host}/test$file.text"),
                &[("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                Payload::Bytes(b"Welcome to Amazon S3.".to_vec()),
            ),
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ),
        (
            request("GET", &format!("{host}/?lifecycle"), &[], Payload::Empty),
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            request("GET", &format!("{host}/?max-keys=2&prefix=J"), &[], Payload::Empty),
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ];
    for (req, signed_headers, signature) in cases {
        let signed = sigv4.sign(&req, &aws_example_credentials(), &s3_options(None)).unwrap();
        assert_eq!(signed.signed_headers, signed_headers, "{}", req.url);
        assert_eq!(signed.signature, signature, "{}\n{}", req.url, signed.canonical_request);
    }
}

#[test]
fn aws_s3_presigned_url_example() {
    let runtime = runtime();
    let mut sigv4 = Sigv4::new(&runtime).unwrap();
    let req = request("GET", "https://examplebucket.s3.amazonaws.com/test.txt", &[], Payload::Empty);
    let signed = sigv4.sign(&req, &aws_example_credentials(), &s3_options(Some(86400))).unwrap();
    assert_eq!(signed.signature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    assert_eq!(
        signed.url,
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
    assert!(signed.authorization.is_none());
}

#[test]
fn aws_s3_chunked_upload_example() {
    let runtime = runtime();
    let mut sigv4 = Sigv4::new(&runtime).unwrap();
    let signer = sigv4.signer(&aws_example_credentials()).unwrap();
    let req = request(
        "PUT",
        "https://s3.amazonaws.com/examplebucket/chunkObject.txt",
        &[("x-amz-storage-class", "REDUCED_REDUNDANCY")],
        Payload::Empty,
    );
    let (signed, chunks) = sigv4.start_streaming(&signer, &req, &s3_options(None), 66_560, 65_536).unwrap();
    assert_eq!(signed.signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
    assert_eq!(
        signed.signed_headers,
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class"
    );
    let header = |name: &str| signed.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    assert_eq!(header("content-length"), Some("66824"));
    assert_eq!(header("x-amz-decoded-content-length"), Some("66560"));
    assert_eq!(header("content-encoding"), Some("aws-chunked"));
    assert_eq!(header("x-amz-content-sha256"), Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"));

    let data = vec![b'a'; 66_560];
    let first = sigv4.sign_chunk(&chunks, &data[..65_536]).unwrap();
    let second = sigv4.sign_chunk(&chunks, &data[65_536..]).unwrap();
    let last = sigv4.finish_chunks(&chunks).unwrap();
    let prefix = |framed: &[u8]| String::from_utf8_lossy(&framed[..framed.iter().position(|&b| b == b'\r').unwrap()]).to_string();
    assert_eq!(prefix(&first), "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
    assert_eq!(prefix(&second), "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497");
    assert_eq!(last, b"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
    assert_eq!(first.len() + second.len() + last.len(), 66_824, "framed length equals the announced Content-Length");
    assert!(first.ends_with(b"\r\n") && first[first.len() - 3] == b'a');
    sigv4.drop_chunk_signer(chunks).unwrap();
    sigv4.drop_signer(signer).unwrap();
}

#[test]
fn chunk_signer_rejects_bodies_that_do_not_match_the_announcement() {
    let runtime = runtime();
    let mut sigv4 = Sigv4::new(&runtime).unwrap();
    let signer = sigv4.signer(&aws_example_credentials()).unwrap();
    let req = request("PUT", "https://s3.amazonaws.com/b/k", &[], Payload::Empty);
    let start = |sigv4: &mut Sigv4| sigv4.start_streaming(&signer, &req, &s3_options(None), 20_000, 8192).unwrap().1;

    let chunks = start(&mut sigv4);
    let err = sigv4.sign_chunk(&chunks, &[0; 9000]).unwrap_err().refused();
    assert!(err.message().contains("exceeds the chunk size"), "{err}");
    let chunks = start(&mut sigv4);
    sigv4.sign_chunk(&chunks, &[0; 100]).unwrap_err().refused();
    let chunks = start(&mut sigv4);
    sigv4.sign_chunk(&chunks, &[0; 8192]).unwrap();
    let err = sigv4.finish_chunks(&chunks).unwrap_err().refused();
    assert!(err.message().contains("add up to 8192 bytes, but 20000"), "{err}");
    // Digest form: what callers that hash natively use.
    let chunks = start(&mut sigv4);
    let err = sigv4.sign_chunk_digest(&chunks, 8192, &[0; 31]).unwrap_err().refused();
    assert!(err.message().contains("32 bytes"), "{err}");
    let small = sigv4.start_streaming(&signer, &req, &s3_options(None), 10, 1024).unwrap_err().refused();
    assert!(small.message().contains("minimum"), "{small}");
}

#[test]
fn signer_resource_matches_one_shot_signing() {
    let runtime = runtime();
    let mut sigv4 = Sigv4::new(&runtime).unwrap();
    let signer = sigv4.signer(&aws_example_credentials()).unwrap();
    let req = request("GET", "https://examplebucket.s3.amazonaws.com/test.txt", &[("Range", "bytes=0-9")], Payload::Empty);
    for _ in 0..3 {
        let signed = sigv4.signer_sign(&signer, &req, &s3_options(None)).unwrap();
        assert_eq!(signed.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    }
    // The lean call sends exactly the same URL and headers.
    let signed = sigv4.signer_sign(&signer, &req, &s3_options(None)).unwrap();
    let to_send = sigv4.signer_sign_for_sending(&signer, &req, &s3_options(None)).unwrap();
    assert_eq!((to_send.url, to_send.headers), (signed.url, signed.headers));
    let presigned = sigv4.signer_sign_for_sending(&signer, &req, &s3_options(Some(86_400))).unwrap();
    assert!(presigned.url.contains("X-Amz-Signature="), "{}", presigned.url);
    // A new date derives a new key: the signature changes.
    let mut later = s3_options(None);
    later.time = SigningTime::AmzDate("20130525T000000Z".into());
    let signed = sigv4.signer_sign(&signer, &req, &later).unwrap();
    assert_ne!(signed.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert!(signed.string_to_sign.contains("20130525/us-east-1/s3/aws4_request"));
    // Bad credentials surface on first use, as a typed error, not a trap.
    let bad = sigv4
        .signer(&Credentials { access_key_id: "".into(), secret_access_key: "x".into(), session_token: None })
        .unwrap();
    let err = sigv4.signer_sign(&bad, &req, &s3_options(None)).unwrap_err().refused();
    assert!(err.message().contains("access key"), "{err}");
}

/// Every instance runs under a memory cap and a time limit; exceeding
/// either stops the component with an error that says which, not a crash.
#[test]
fn instances_are_limited_in_memory_and_cpu() {
    use lakeport::runtime::Grant;
    use std::time::Duration;
    let runtime = runtime();
    let req = |body: Vec<u8>| request("PUT", "https://h/b/k", &[], Payload::Bytes(body));

    let small_memory = Grant { max_memory_bytes: 8 << 20, ..Grant::compute_only() };
    let mut sigv4 = Sigv4::with_grant(&runtime, small_memory).unwrap();
    let err = sigv4.sign(&req(vec![7; 16 << 20]), &aws_example_credentials(), &s3_options(None)).unwrap_err();
    assert!(err.to_string().contains("memory cap"), "{err:?}");
    eprintln!("memory: {err}");
    // Within the cap, the same instance type works.
    let mut sigv4 = Sigv4::with_grant(&runtime, small_memory_ok()).unwrap();
    sigv4.sign(&req(vec![7; 1 << 20]), &aws_example_credentials(), &s3_options(None)).unwrap();

    let short_deadline = Grant { time_limit: Duration::from_millis(10), ..Grant::compute_only() };
    let mut sigv4 = Sigv4::with_grant(&runtime, short_deadline).unwrap();
    // Hashing 128 MiB inside wasm takes far longer than 10 ms.
    let hashed = sigv4.payload_sha256(std::io::repeat(1).take_bytes(128 << 20));
    let err = hashed.unwrap_err();
    assert!(err.to_string().contains("time limit"), "{err}");
    eprintln!("cpu: {err}");
}

/// The limit is per call: an instance left idle longer than it keeps working.
#[test]
fn time_limit_is_per_call_not_per_instance() {
    use lakeport::runtime::Grant;
    let runtime = runtime();
    let limit = std::time::Duration::from_millis(300);
    let mut sigv4 = Sigv4::with_grant(&runtime, Grant { time_limit: limit, ..Grant::compute_only() }).unwrap();
    let req = request("GET", "https://examplebucket.s3.amazonaws.com/test.txt", &[("Range", "bytes=0-9")], Payload::Empty);
    for _ in 0..3 {
        std::thread::sleep(limit * 2);
        let signed = sigv4.sign(&req, &aws_example_credentials(), &s3_options(None)).unwrap();
        assert_eq!(signed.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    }
}

fn small_memory_ok() -> lakeport::runtime::Grant {
    lakeport::runtime::Grant { max_memory_bytes: 8 << 20, ..lakeport::runtime::Grant::compute_only() }
}

trait TakeBytes: std::io::Read + Sized {
    fn take_bytes(self, n: u64) -> std::io::Take<Self> {
        std::io::Read::take(self, n)
    }
}
impl<R: std::io::Read> TakeBytes for R {}
