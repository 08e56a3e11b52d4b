//! The AWS SigV4 signing test suite (the `v4` cases shipped in the sources
//! of the `aws-sigv4` crate) and AWS's published S3 examples, all signed by
//! the sigv4 component through the host, in header and query form, and the
//! aws-chunked example: all read from the shared vectors
//! (tests/vectors/sigv4.json) that the JavaScript package's tests read too.
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

use serde_json::{json, Map, Value};

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
/// signed request (2015) and it ships no signature: the shared vectors keep
/// it by hand, with the signature from aws-sigv4's own test.
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

// The shared vectors (tests/vectors/sigv4.json) are what every binding is
// tested with: this file drives them through the component from Rust, the
// JavaScript package's tests (bindings/js/test) through jco. Their
// `aws-sigv4-suite` cases are derived from the suite's files (checked by
// `shared_vectors_hold_the_aws_suite`, rewritten with
// LAKEPORT_UPDATE_VECTORS=1); the other cases (AWS's S3 examples) are kept
// by hand in the file.

const SUITE_SOURCE: &str = "aws-sigv4-suite";

fn vectors_path() -> PathBuf {
    support::workspace_root().join("tests").join("vectors").join("sigv4.json")
}

fn read_vectors() -> Value {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// One case of the shared file from one suite vector in one form.
fn suite_case(vector: &Vector, dir: &Path, location: &str) -> Value {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok().map(|s| s.trim_end_matches('\n').to_string());
    let mut expected = Map::new();
    for (key, file) in [("canonical_request", "canonical-request"), ("string_to_sign", "string-to-sign"), ("signature", "signature")] {
        if let Some(text) = read(&format!("{location}-{file}.txt")) {
            expected.insert(key.into(), text.into());
        }
    }
    let (_, expected_path, expected_headers, _) = parse_request(&read(&format!("{location}-signed-request.txt")).unwrap());
    if location == "header" {
        let auth = expected_headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.trim());
        expected.insert("authorization".into(), auth.into());
    } else {
        // Compared decoded: the suite writes `ሴ` where the wire has `%E1%88%B4`.
        expected.insert("query".into(), json!(query_params(&expected_path)));
    }
    let payload = match &vector.request.payload {
        Payload::Empty => json!({"kind": "empty"}),
        Payload::Bytes(body) => json!({"kind": "utf8", "text": String::from_utf8(body.clone()).unwrap()}),
        other => panic!("{}: the suite has no {other:?} payloads", vector.name),
    };
    json!({
        "name": format!("{} ({location})", vector.name),
        "source": SUITE_SOURCE,
        "form": location,
        "request": {
            "method": vector.request.method,
            "url": vector.request.url,
            "headers": vector.request.headers,
            "payload": payload,
        },
        "credentials": {
            "access_key_id": vector.credentials.access_key_id,
            "secret_access_key": vector.credentials.secret_access_key,
            "session_token": vector.credentials.session_token,
        },
        "options": {
            "region": vector.region,
            "service": vector.service,
            "amz_date": vector.amz_date,
            "presign_expires": (location == "query").then_some(vector.expires),
            "normalize_path": vector.normalize,
            "sign_body": vector.sign_body,
            "sign_session_token": vector.sign_session_token,
        },
        "expected": expected,
    })
}

fn suite_cases() -> Vec<Value> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(suite_dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    let mut cases = Vec::new();
    let mut skipped = Vec::new();
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
            if dir.join(format!("{location}-signed-request.txt")).exists() {
                cases.push(suite_case(&vector, dir, location));
            }
        }
    }
    assert_eq!(skipped.len(), SKIPPED.len(), "a skipped vector is missing from the suite");
    // 36 vectors in both forms, minus the 3 skipped, plus header-only double-url-encode.
    assert!(cases.len() >= 67, "only {} suite cases: is the suite complete?", cases.len());
    cases
}

#[test]
fn shared_vectors_hold_the_aws_suite() {
    let mut doc = read_vectors();
    let derived = suite_cases();
    let cases = doc["cases"].as_array().expect("a `cases` array");
    let kept: Vec<Value> = cases.iter().filter(|c| c["source"] != SUITE_SOURCE).cloned().collect();
    let held: Vec<Value> = cases.iter().filter(|c| c["source"] == SUITE_SOURCE).cloned().collect();
    if std::env::var_os("LAKEPORT_UPDATE_VECTORS").is_some_and(|v| v == "1") {
        doc["cases"] = Value::Array(derived.into_iter().chain(kept).collect());
        let mut text = serde_json::to_string_pretty(&doc).unwrap();
        text.push('\n');
        std::fs::write(vectors_path(), text).unwrap();
        return;
    }
    assert_eq!(held.len(), derived.len(), "the shared vectors hold another number of suite cases: rerun with LAKEPORT_UPDATE_VECTORS=1");
    for (held, derived) in held.iter().zip(&derived) {
        assert_eq!(held, derived, "a suite case differs from the suite's files: rerun with LAKEPORT_UPDATE_VECTORS=1");
    }
    assert!(kept.iter().any(|c| c["form"] == "streaming"), "the aws-chunked example is missing");
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("`{key}` is not a string in {v}"))
}

fn case_payload(p: &Value) -> Payload {
    match text(p, "kind") {
        "empty" => Payload::Empty,
        "utf8" => Payload::Bytes(text(p, "text").as_bytes().to_vec()),
        "precomputed" => Payload::Precomputed(text(p, "value").into()),
        "unsigned" => Payload::UnsignedPayload,
        other => panic!("unknown payload kind {other}"),
    }
}

fn case_request(case: &Value) -> SignableRequest {
    let r = &case["request"];
    SignableRequest {
        method: text(r, "method").into(),
        url: text(r, "url").into(),
        headers: serde_json::from_value(r["headers"].clone()).unwrap(),
        payload: case_payload(&r["payload"]),
    }
}

fn case_credentials(case: &Value) -> Credentials {
    let c = &case["credentials"];
    Credentials {
        access_key_id: text(c, "access_key_id").into(),
        secret_access_key: text(c, "secret_access_key").into(),
        session_token: c["session_token"].as_str().map(Into::into),
    }
}

fn case_options(case: &Value) -> SignOptions {
    let o = &case["options"];
    SignOptions {
        region: text(o, "region").into(),
        service: text(o, "service").into(),
        time: SigningTime::AmzDate(text(o, "amz_date").into()),
        presign_expires: o["presign_expires"].as_u64().map(|n| n as u32),
        normalize_path: o["normalize_path"].as_bool().unwrap(),
        sign_body: o["sign_body"].as_bool().unwrap(),
        sign_session_token: o["sign_session_token"].as_bool().unwrap(),
    }
}

/// What a signed request shows, under the keys the vectors use.
fn outputs(signed: &SignedRequest, expected: &Value) -> Map<String, Value> {
    let wanted: Vec<String> = expected["headers"].as_object().map(|h| h.keys().cloned().collect()).unwrap_or_default();
    let headers: Map<String, Value> = signed
        .headers
        .iter()
        .filter(|(n, _)| wanted.contains(&n.to_ascii_lowercase()))
        .map(|(n, v)| (n.to_ascii_lowercase(), Value::from(v.as_str())))
        .collect();
    let mut out = Map::new();
    out.insert("canonical_request".into(), signed.canonical_request.as_str().into());
    out.insert("string_to_sign".into(), signed.string_to_sign.as_str().into());
    out.insert("signature".into(), signed.signature.as_str().into());
    out.insert("signed_headers".into(), signed.signed_headers.as_str().into());
    out.insert("authorization".into(), signed.authorization.as_deref().into());
    out.insert("url".into(), signed.url.as_str().into());
    out.insert("query".into(), json!(query_params(&signed.url)));
    out.insert("headers".into(), headers.into());
    out
}

/// The first line of a framed chunk, without its CRLF.
fn chunk_header(framed: &[u8]) -> String {
    let end = framed.windows(2).position(|w| w == b"\r\n").unwrap_or(framed.len());
    String::from_utf8_lossy(&framed[..end]).into_owned()
}

/// Signs one case as its form says and returns its outputs.
fn run_case(sigv4: &mut Sigv4, case: &Value) -> Result<Map<String, Value>, String> {
    let (request, credentials, options) = (case_request(case), case_credentials(case), case_options(case));
    let expected = &case["expected"];
    match text(case, "form") {
        "header" | "query" => sigv4.sign(&request, &credentials, &options).map(|s| outputs(&s, expected)).map_err(|e| format!("{e:?}")),
        "streaming" => {
            let stream = &case["stream"];
            let (decoded, chunk_size) = (stream["decoded_length"].as_u64().unwrap(), stream["chunk_size"].as_u64().unwrap() as u32);
            let fill = text(stream, "fill").as_bytes()[0];
            let signer = sigv4.signer(&credentials).unwrap();
            let (signed, chunks) = sigv4.start_streaming(&signer, &request, &options, decoded, chunk_size).map_err(|e| format!("{e:?}"))?;
            let mut out = outputs(&signed, expected);
            let (mut headers, mut framed_length, mut left) = (Vec::new(), 0, decoded);
            while left > 0 {
                let n = left.min(chunk_size as u64);
                let framed = sigv4.sign_chunk(&chunks, &vec![fill; n as usize]).map_err(|e| format!("{e:?}"))?;
                headers.push(chunk_header(&framed));
                framed_length += framed.len();
                left -= n;
            }
            let last = sigv4.finish_chunks(&chunks).map_err(|e| format!("{e:?}"))?;
            framed_length += last.len();
            out.insert("chunks".into(), json!(headers));
            out.insert("final_chunk".into(), String::from_utf8(last).unwrap().into());
            out.insert("framed_length".into(), framed_length.into());
            sigv4.drop_chunk_signer(chunks).unwrap();
            sigv4.drop_signer(signer).unwrap();
            Ok(out)
        }
        other => panic!("unknown form {other}"),
    }
}

/// Each key of the case's `expected` that `actual` does not equal.
fn mismatches(case: &Value, actual: &Map<String, Value>) -> Vec<String> {
    let name = text(case, "name");
    case["expected"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(key, want)| actual.get(key.as_str()) != Some(want))
        .map(|(key, want)| format!("{name}: {key}\n  expected: {want}\n  actual:   {}", actual.get(key).unwrap_or(&Value::Null)))
        .collect()
}

#[test]
fn shared_vectors_through_the_component() {
    let runtime = runtime();
    let mut sigv4 = Sigv4::new(&runtime).unwrap();
    let doc = read_vectors();
    let cases = doc["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let name = text(case, "name");
        match run_case(&mut sigv4, case) {
            Ok(actual) => failures.extend(mismatches(case, &actual)),
            Err(e) => failures.push(format!("{name}: error {e}")),
        }
    }
    eprintln!("checked {} cases from {}", cases.len(), vectors_path().display());
    assert!(cases.len() >= 74, "only {} cases: is the file complete?", cases.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
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

// `wasmtime run --invoke` with WAVE arguments (the WebAssembly Value
// Encoding the wasmtime CLI reads and prints) on the exported sigv4.wasm:
// the header and query cases of the shared vectors, one call each. The
// streaming case needs a resource kept between calls, which one `--invoke`
// cannot hold.

/// A WAVE string literal.
fn wave_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn wave_option(value: Option<String>) -> String {
    value.map_or("none".into(), |v| format!("some({v})"))
}

/// The `--invoke` expression that calls the sigv4 interface's `sign`.
fn wave_sign_call(request: &SignableRequest, credentials: &Credentials, options: &SignOptions) -> String {
    let headers: Vec<String> = request.headers.iter().map(|(n, v)| format!("({}, {})", wave_string(n), wave_string(v))).collect();
    let payload = match &request.payload {
        Payload::Empty => "empty".to_string(),
        Payload::Bytes(b) => format!("bytes([{}])", b.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")),
        Payload::Precomputed(h) => format!("precomputed({})", wave_string(h)),
        Payload::UnsignedPayload => "unsigned-payload".to_string(),
    };
    let time = match &options.time {
        SigningTime::UnixSeconds(t) => format!("unix-seconds({t})"),
        SigningTime::AmzDate(d) => format!("amz-date({})", wave_string(d)),
    };
    format!(
        "sign({{method: {}, url: {}, headers: [{}], payload: {payload}}}, \
         {{access-key-id: {}, secret-access-key: {}, session-token: {}}}, \
         {{region: {}, service: {}, time: {time}, presign-expires: {}, normalize-path: {}, sign-body: {}, sign-session-token: {}}})",
        wave_string(&request.method),
        wave_string(&request.url),
        headers.join(", "),
        wave_string(&credentials.access_key_id),
        wave_string(&credentials.secret_access_key),
        wave_option(credentials.session_token.as_deref().map(wave_string)),
        wave_string(&options.region),
        wave_string(&options.service),
        wave_option(options.presign_expires.map(|n| n.to_string())),
        options.normalize_path,
        options.sign_body,
        options.sign_session_token,
    )
}

/// Reads the WAVE value wasmtime prints into JSON: records as objects,
/// lists and tuples as arrays, `some(x)` as x, `none` as null, other
/// variant cases as `{case: payload}` (a case without one as its name).
struct WaveReader<'a> {
    text: &'a str,
    at: usize,
}

impl WaveReader<'_> {
    fn parse(text: &str) -> Result<Value, String> {
        let mut reader = WaveReader { text, at: 0 };
        let value = reader.value()?;
        reader.skip_space();
        if reader.at != text.len() {
            return Err(format!("text after the value at {}", reader.at));
        }
        Ok(value)
    }

    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn skip_space(&mut self) {
        self.at = self.text.len() - self.rest().trim_start().len();
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_space();
        if !self.rest().starts_with(c) {
            return Err(format!("expected '{c}' at {}: {:.30}", self.at, self.rest()));
        }
        self.at += c.len_utf8();
        Ok(())
    }

    /// After an item of a sequence: true at its end (`close`), consumed.
    fn next_or_end(&mut self, close: char) -> Result<bool, String> {
        self.skip_space();
        if self.rest().starts_with(',') {
            self.at += 1;
            self.skip_space();
        }
        if self.rest().starts_with(close) {
            self.at += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn sequence(&mut self, close: char) -> Result<Value, String> {
        let mut items = Vec::new();
        while !self.next_or_end(close)? {
            items.push(self.value()?);
        }
        Ok(Value::Array(items))
    }

    fn word(&mut self) -> &str {
        let start = self.at;
        let len = self.rest().find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '%' || c == '.')).unwrap_or(self.rest().len());
        self.at += len;
        &self.text[start..self.at]
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect('"')?;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some(c @ ('"' | '\'' | '\\')) => out.push(c),
                    Some('u') => {
                        let hex: String = chars.by_ref().map(|(_, c)| c).skip(1).take_while(|c| *c != '}').collect();
                        out.push(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).ok_or("a bad \\u escape")?);
                    }
                    other => return Err(format!("unknown escape {other:?}")),
                },
                c => out.push(c),
            }
        }
        Err("an unterminated string".into())
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_space();
        match self.rest().chars().next() {
            Some('"') => Ok(Value::String(self.string()?)),
            Some('[') => {
                self.at += 1;
                self.sequence(']')
            }
            Some('(') => {
                self.at += 1;
                self.sequence(')')
            }
            Some('{') => {
                self.at += 1;
                let mut record = Map::new();
                while !self.next_or_end('}')? {
                    let field = self.word().to_string();
                    self.expect(':')?;
                    record.insert(field, self.value()?);
                }
                Ok(Value::Object(record))
            }
            Some(_) => {
                let word = self.word().to_string();
                if word.is_empty() {
                    return Err(format!("unexpected text at {}: {:.30}", self.at, self.rest()));
                }
                if let Ok(n) = word.parse::<i64>() {
                    return Ok(n.into());
                }
                let payload = if self.rest().starts_with('(') {
                    self.at += 1;
                    let v = self.value()?;
                    self.expect(')')?;
                    Some(v)
                } else {
                    None
                };
                Ok(match (word.as_str(), payload) {
                    ("true", None) => true.into(),
                    ("false", None) => false.into(),
                    ("none", None) => Value::Null,
                    ("some", Some(v)) => v,
                    (case, Some(v)) => json!({ case: v }),
                    (case, None) => case.into(),
                })
            }
            None => Err("the value ends early".into()),
        }
    }
}

/// The `ok` record of what `wasmtime run --invoke 'sign(...)'` printed.
fn signed_from_wave(printed: &str) -> Result<SignedRequest, String> {
    let value = WaveReader::parse(printed.trim())?;
    let ok = value.get("ok").ok_or_else(|| format!("not ok: {value}"))?;
    let field = |name: &str| ok[name].as_str().map(String::from).ok_or_else(|| format!("no string `{name}` in {ok}"));
    let headers = ok["headers"]
        .as_array()
        .ok_or("no headers")?
        .iter()
        .map(|pair| match (pair[0].as_str(), pair[1].as_str()) {
            (Some(n), Some(v)) => Ok((n.to_string(), v.to_string())),
            _ => Err(format!("a header is not a pair of strings: {pair}")),
        })
        .collect::<Result<_, String>>()?;
    Ok(SignedRequest {
        method: field("method")?,
        url: field("url")?,
        headers,
        signature: field("signature")?,
        canonical_request: field("canonical-request")?,
        string_to_sign: field("string-to-sign")?,
        signed_headers: field("signed-headers")?,
        authorization: ok["authorization"].as_str().map(String::from),
        payload_hash: field("payload-hash")?,
    })
}

/// `wasmtime run --invoke CALL sigv4.wasm`: stdout, or the failure.
fn wasmtime_invoke(sigv4_wasm: &Path, call: &str) -> Result<String, String> {
    let out = Command::new(support::wasmtime())
        .args(["run", "--invoke", call])
        .arg(sigv4_wasm)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run wasmtime: {e}"))?;
    if !out.status.success() {
        return Err(format!("wasmtime failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

#[test]
fn shared_vectors_through_wasmtime_run_invoke() {
    let dir = tempfile::tempdir().unwrap();
    support::export_components(dir.path());
    let sigv4_wasm = dir.path().join("sigv4.wasm");
    let doc = read_vectors();
    let cases: Vec<&Value> = doc["cases"].as_array().unwrap().iter().filter(|c| matches!(text(c, "form"), "header" | "query")).collect();
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    for case in &cases {
        let call = wave_sign_call(&case_request(case), &case_credentials(case), &case_options(case));
        match wasmtime_invoke(&sigv4_wasm, &call).and_then(|printed| signed_from_wave(&printed)) {
            Ok(signed) => failures.extend(mismatches(case, &outputs(&signed, &case["expected"]))),
            Err(e) => failures.push(format!("{}: {e}\n  call: {call}", text(case, "name"))),
        }
    }
    eprintln!("checked {} cases through wasmtime run --invoke in {:.1?}", cases.len(), started.elapsed());
    assert!(cases.len() >= 70, "only {} header and query cases", cases.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
