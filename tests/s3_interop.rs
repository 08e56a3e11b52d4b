//! Interoperability with S3 servers that check SigV4 strictly: requests
//! signed by `lakeport sign` / `lakeport presign` and by the library's
//! aws-chunked streaming signer, sent to `rclone serve s3` and `s3s-fs`
//! started by each test on a free port.
//!
//! Every test starts its own server, so they are independent. They assert on
//! status codes and bytes, never on timing.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lakeport::runtime::Runtime;
use lakeport::sigv4::{Credentials, Payload, SignOptions, SignableRequest, Sigv4, SigningTime};
use lakeport::instance::ComponentError;
use support::{amz_date, curl_get, pattern, send_signed, write_file, Lakeport, Peer, Refused, Reply, ACCESS_KEY, REGION, SECRET_KEY};

const BUCKET: &str = "lakeport-test";

/// Signs `method url` with lakeport and sends it with `body` (whose file is
/// given to `--body-file` when the body is not empty).
fn signed_request(lakeport: &Lakeport, method: &str, url: &str, body: &[u8]) -> Reply {
    if body.is_empty() {
        send_signed(&lakeport.sign(method, url, &[]), body)
    } else {
        let dir = tempfile::tempdir().unwrap();
        let file = write_file(dir.path(), "body", body);
        let signed = lakeport.sign(method, url, &["--body-file", file.to_str().unwrap()]);
        send_signed(&signed, body)
    }
}

fn make_bucket(lakeport: &Lakeport, peer: &Peer, bucket: &str) {
    signed_request(lakeport, "PUT", &peer.url(&format!("/{bucket}")), b"").expect_status(200, "create bucket");
}

/// The `<Key>` values of a ListObjectsV2 answer. Keys used here contain no
/// characters that XML escapes.
fn listed_keys(xml: &str) -> Vec<String> {
    xml.split("<Key>").skip(1).filter_map(|rest| rest.split_once("</Key>").map(|(k, _)| k.to_string())).collect()
}

fn list(lakeport: &Lakeport, peer: &Peer, bucket: &str, query: &str) -> Vec<String> {
    let reply = signed_request(lakeport, "GET", &peer.url(&format!("/{bucket}?list-type=2{query}")), b"");
    reply.expect_status(200, "ListObjectsV2");
    let xml = reply.text();
    assert!(xml.contains("<ListBucketResult"), "not a ListObjectsV2 answer: {xml}");
    listed_keys(&xml)
}

fn error_code(reply: &Reply) -> String {
    let text = reply.text();
    text.split_once("<Code>").and_then(|(_, rest)| rest.split_once("</Code>")).map(|(code, _)| code.to_string()).unwrap_or_default()
}

// ---------------------------------------------------------------- rclone

#[test]
fn rclone_accepts_a_signed_object_lifecycle() {
    let peer = Peer::rclone();
    let lp = Lakeport::new();
    make_bucket(&lp, &peer, BUCKET);

    let data = pattern(100 * 1024 + 7, 1);
    let url = peer.url(&format!("/{BUCKET}/reports/2026/run-1.bin"));
    signed_request(&lp, "PUT", &url, &data).expect_status(200, "PUT object with --body-file");

    let got = signed_request(&lp, "GET", &url, b"");
    got.expect_status(200, "GET object");
    assert!(got.body == data, "GET returned {} bytes that differ from the {} uploaded", got.body.len(), data.len());

    let head = signed_request(&lp, "HEAD", &url, b"");
    head.expect_status(200, "HEAD object");
    assert_eq!(head.header("content-length"), Some(data.len().to_string().as_str()), "HEAD Content-Length");

    assert_eq!(list(&lp, &peer, BUCKET, "&prefix=reports/"), vec!["reports/2026/run-1.bin".to_string()]);
    assert_eq!(list(&lp, &peer, BUCKET, "&prefix=nothing-here/"), Vec::<String>::new());

    signed_request(&lp, "DELETE", &url, b"").expect_status(204, "DELETE object");
    let gone = signed_request(&lp, "GET", &url, b"");
    gone.expect_status(404, "GET after DELETE");
    assert_eq!(error_code(&gone), "NoSuchKey", "{}", gone.text());
    assert!(list(&lp, &peer, BUCKET, "&prefix=reports/").is_empty());
}

#[test]
fn rclone_accepts_an_unsigned_payload_put() {
    let peer = Peer::rclone();
    let lp = Lakeport::new();
    make_bucket(&lp, &peer, BUCKET);

    let data = pattern(40_000, 2);
    let url = peer.url(&format!("/{BUCKET}/unsigned.bin"));
    let signed = lp.sign("PUT", &url, &["--unsigned-payload"]);
    assert_eq!(signed.json["payload_hash"], "UNSIGNED-PAYLOAD");
    assert!(signed.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("x-amz-content-sha256") && v == "UNSIGNED-PAYLOAD"));
    send_signed(&signed, &data).expect_status(200, "PUT with UNSIGNED-PAYLOAD");

    let got = signed_request(&lp, "GET", &url, b"");
    got.expect_status(200, "GET object");
    assert!(got.body == data, "the object read back differs from the one uploaded");
}

#[test]
fn rclone_serves_a_presigned_get_to_curl() {
    let peer = Peer::rclone();
    let lp = Lakeport::new();
    make_bucket(&lp, &peer, BUCKET);
    let data = pattern(12_345, 3);
    let url = peer.url(&format!("/{BUCKET}/shared/file one.bin"));
    signed_request(&lp, "PUT", &url, &data).expect_status(200, "PUT object");

    let presigned = lp.presign("GET", &url, &["--expires", "600"]);
    assert!(presigned.contains("X-Amz-Signature="), "not a presigned URL: {presigned}");
    assert!(presigned.contains("/shared/file%20one.bin?"), "path not wire-encoded: {presigned}");
    let (status, body) = curl_get(&presigned);
    assert_eq!(status, 200, "presigned GET: {}", String::from_utf8_lossy(&body));
    assert!(body == data, "presigned GET returned different bytes");
}

#[test]
fn rclone_refuses_an_expired_presigned_url() {
    let peer = Peer::rclone();
    let lp = Lakeport::new();
    make_bucket(&lp, &peer, BUCKET);
    let data = pattern(1000, 4);
    let url = peer.url(&format!("/{BUCKET}/expiring.bin"));
    signed_request(&lp, "PUT", &url, &data).expect_status(200, "PUT object");

    // Signed an hour ago: valid for 2 hours it still works, valid for a minute it has expired.
    let an_hour_ago = amz_date(SystemTime::now() - Duration::from_secs(3600));
    let still_valid = lp.presign("GET", &url, &["--time", &an_hour_ago, "--expires", "7200"]);
    let (status, body) = curl_get(&still_valid);
    assert_eq!(status, 200, "a presigned URL within its validity: {}", String::from_utf8_lossy(&body));
    assert!(body == data);

    let expired = lp.presign("GET", &url, &["--time", &an_hour_ago, "--expires", "60"]);
    let (status, body) = curl_get(&expired);
    let text = String::from_utf8_lossy(&body);
    // rclone answers 400 AccessDenied ("the difference between the request
    // time and the server's time exceeds the maximum allowed"); AWS answers 403.
    assert!((400..500).contains(&status), "an expired presigned URL got HTTP {status}: {text}");
    assert!(text.contains("<Error>") && body != data, "an expired presigned URL returned the object: {text}");
}

#[test]
fn rclone_refuses_a_tampered_presigned_url() {
    let peer = Peer::rclone();
    let lp = Lakeport::new();
    make_bucket(&lp, &peer, BUCKET);
    let secret_data = pattern(2000, 5);
    let public_data = pattern(2000, 6);
    let secret_url = peer.url(&format!("/{BUCKET}/secret.bin"));
    let public_url = peer.url(&format!("/{BUCKET}/public.bin"));
    signed_request(&lp, "PUT", &secret_url, &secret_data).expect_status(200, "PUT secret");
    signed_request(&lp, "PUT", &public_url, &public_data).expect_status(200, "PUT public");

    let presigned = lp.presign("GET", &public_url, &["--expires", "600"]);
    let (status, body) = curl_get(&presigned);
    assert_eq!(status, 200, "the untampered URL must work: {}", String::from_utf8_lossy(&body));
    assert!(body == public_data);

    let flip_last = |s: &str| {
        let mut s = s.to_string();
        let last = s.pop().unwrap();
        s.push(if last == '0' { '1' } else { '0' });
        s
    };
    let tampered = [
        ("another key", presigned.replace("/public.bin?", "/secret.bin?")),
        ("a longer validity", presigned.replace("X-Amz-Expires=600", "X-Amz-Expires=604800")),
        ("a changed signature", flip_last(&presigned)),
        ("an added parameter", presigned.replace("?", "?response-content-type=text%2Fhtml&")),
    ];
    for (what, url) in tampered {
        assert_ne!(url, presigned, "the tampering with {what} changed nothing");
        let (status, body) = curl_get(&url);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 403, "a presigned URL with {what} got HTTP {status}: {text}");
        assert!(text.contains("SignatureDoesNotMatch"), "a presigned URL with {what}: {text}");
        assert!(body != secret_data && body != public_data);
    }
}

#[test]
fn rclone_rejects_a_wrong_secret() {
    let peer = Peer::rclone();
    let lp = Lakeport::new();
    make_bucket(&lp, &peer, BUCKET);
    let url = peer.url(&format!("/{BUCKET}/forged.txt"));
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "body", b"forged");

    let forged = lp.sign_with("PUT", &url, &["--body-file", file.to_str().unwrap()], ACCESS_KEY, "not-the-secret-key-at-all");
    let reply = send_signed(&forged, b"forged");
    reply.expect_status(403, "PUT signed with a wrong secret");
    assert_eq!(error_code(&reply), "SignatureDoesNotMatch", "{}", reply.text());

    let stranger = lp.sign_with("GET", &peer.url(&format!("/{BUCKET}?list-type=2")), &[], "UnknownAccessKey1234", SECRET_KEY);
    let reply = send_signed(&stranger, b"");
    reply.expect_status(403, "a request from an unknown access key");
    assert_eq!(error_code(&reply), "InvalidAccessKeyId", "{}", reply.text());

    // A correctly signed request whose signed header is changed in transit.
    let mut altered = lp.sign("GET", &peer.url(&format!("/{BUCKET}?list-type=2")), &[]);
    let date = altered.headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case("x-amz-date")).expect("X-Amz-Date is sent");
    date.1 = amz_date(SystemTime::now() - Duration::from_secs(60));
    let reply = send_signed(&altered, b"");
    reply.expect_status(403, "a request whose X-Amz-Date changed after signing");

    // Nothing was stored by the forged PUT.
    signed_request(&lp, "GET", &url, b"").expect_status(404, "GET of the forged object");
    assert!(list(&lp, &peer, BUCKET, "").is_empty());
}

/// (path as given to lakeport, the key it names)
const AWKWARD_KEYS: &[(&str, &str)] = &[
    ("with space.txt", "with space.txt"),
    ("plus+sign.txt", "plus+sign.txt"),
    ("per%25cent.txt", "per%cent.txt"),
    ("données/ü ñ.txt", "données/ü ñ.txt"),
    ("tilde~name.txt", "tilde~name.txt"),
    ("sym=,;:@$!()*.txt", "sym=,;:@$!()*.txt"),
    ("hash%23and%3Fquestion.txt", "hash#and?question.txt"),
    ("mix/a b+c%25d~é/日本語.txt", "mix/a b+c%d~é/日本語.txt"),
];

fn round_trip_awkward_keys(peer: &Peer) {
    let lp = Lakeport::new();
    make_bucket(&lp, peer, BUCKET);
    for (i, (path, key)) in AWKWARD_KEYS.iter().enumerate() {
        let data = pattern(300 + i, 100 + i as u32);
        let url = peer.url(&format!("/{BUCKET}/{path}"));
        signed_request(&lp, "PUT", &url, &data).expect_status(200, &format!("PUT {key:?}"));
        let got = signed_request(&lp, "GET", &url, b"");
        got.expect_status(200, &format!("GET {key:?}"));
        assert!(got.body == data, "GET {key:?} returned other bytes");
    }

    let mut listed = list(&lp, peer, BUCKET, "");
    listed.sort();
    let mut expected: Vec<String> = AWKWARD_KEYS.iter().map(|(_, k)| k.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected, "the listing shows the decoded keys");

    // Prefixes in the query string are encoded too.
    assert_eq!(list(&lp, peer, BUCKET, "&prefix=données/"), vec!["données/ü ñ.txt".to_string()]);
    assert_eq!(list(&lp, peer, BUCKET, "&prefix=plus%2B"), vec!["plus+sign.txt".to_string()]);
    assert_eq!(list(&lp, peer, BUCKET, "&prefix=per%25"), vec!["per%cent.txt".to_string()]);

    // And a presigned GET of an awkward key works from curl.
    let (path, _) = AWKWARD_KEYS[7];
    let presigned = lp.presign("GET", &peer.url(&format!("/{BUCKET}/{path}")), &[]);
    let (status, body) = curl_get(&presigned);
    assert_eq!(status, 200, "presigned GET of an awkward key: {}", String::from_utf8_lossy(&body));
    assert!(body == pattern(300 + 7, 107));
}

#[test]
fn rclone_round_trips_awkward_keys() {
    round_trip_awkward_keys(&Peer::rclone());
}

// ---------------------------------------------------------------- s3s-fs

#[test]
fn s3s_fs_round_trips_awkward_keys() {
    round_trip_awkward_keys(&Peer::s3s_fs());
}

#[test]
fn s3s_fs_accepts_signed_put_and_get_and_checks_the_payload_hash() {
    let peer = Peer::s3s_fs();
    let lp = Lakeport::new();
    make_bucket(&lp, &peer, BUCKET);

    let data = pattern(70_000, 7);
    let url = peer.url(&format!("/{BUCKET}/plain.bin"));
    signed_request(&lp, "PUT", &url, &data).expect_status(200, "PUT object");
    let got = signed_request(&lp, "GET", &url, b"");
    got.expect_status(200, "GET object");
    assert!(got.body == data, "GET returned other bytes");

    // A body that is not the one whose hash was signed, to a new key and
    // over the existing one.
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "body", &data);
    let mut other = data.clone();
    other[500] ^= 0x01;
    let mut mismatches = peer.log().matches("Sha256Mismatch").count();
    for (what, target) in [("a new key", peer.url(&format!("/{BUCKET}/swapped.bin"))), ("an existing key", url.clone())] {
        let signed = lp.sign("PUT", &target, &["--body-file", file.to_str().unwrap()]);
        let reply = send_signed(&signed, &other);
        // s3s-fs notices the SHA-256 mismatch while storing and answers 500
        // InternalError (AWS answers 400 XAmzContentSHA256Mismatch); its log
        // says why.
        assert!(reply.status >= 400, "a body not matching the signed hash to {what} was accepted: HTTP {}: {}", reply.status, reply.text());
        let log = peer.log();
        assert!(
            log.matches("Sha256Mismatch").count() > mismatches,
            "a body not matching the signed hash to {what} got HTTP {} without Sha256Mismatch in the s3s-fs log:\n{log}",
            reply.status
        );
        mismatches += 1;
    }
    signed_request(&lp, "GET", &peer.url(&format!("/{BUCKET}/swapped.bin")), b"").expect_status(404, "the mismatched body was stored");
    let got = signed_request(&lp, "GET", &url, b"");
    got.expect_status(200, "GET object after a refused overwrite");
    assert!(got.body == data, "a refused PUT changed the stored object");
    assert_eq!(list(&lp, &peer, BUCKET, ""), vec!["plain.bin".to_string()]);
}

#[test]
fn s3s_fs_rejects_a_wrong_secret() {
    let peer = Peer::s3s_fs();
    let lp = Lakeport::new();
    make_bucket(&lp, &peer, BUCKET);
    let url = peer.url(&format!("/{BUCKET}/forged.txt"));
    let forged = lp.sign_with("PUT", &url, &[], ACCESS_KEY, "not-the-secret-key-at-all");
    let reply = send_signed(&forged, b"");
    reply.expect_status(403, "PUT signed with a wrong secret");
    assert_eq!(error_code(&reply), "SignatureDoesNotMatch", "{}", reply.text());
    signed_request(&lp, "GET", &url, b"").expect_status(404, "GET of the forged object");
}

const CHUNK: u32 = 64 * 1024;

/// What s3s logs when a chunk of an aws-chunked body fails its signature.
const CHUNK_SIGNATURE_MISMATCH: &str = "AwsChunkedStreamError: SignatureMismatch";

/// Uploads `data` as an aws-chunked streaming PUT signed by the library in
/// chunks of `CHUNK` bytes. With `flip_at`, the data byte at that offset is
/// changed after its chunk was signed.
fn streaming_put(peer: &Peer, path: &str, data: &[u8], flip_at: Option<usize>) -> Result<Reply, String> {
    support::isolate_library_cache();
    let runtime = Runtime::new().expect("runtime");
    let mut sigv4 = Sigv4::new(&runtime).expect("sigv4 component");
    let credentials = Credentials { access_key_id: ACCESS_KEY.into(), secret_access_key: SECRET_KEY.into(), session_token: None };
    let signer = sigv4.signer(&credentials).expect("signer");
    let request = SignableRequest {
        method: "PUT".into(),
        url: peer.url(path),
        headers: vec![("Content-Type".into(), "application/octet-stream".into())],
        payload: Payload::Empty,
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let options = SignOptions {
        region: REGION.into(),
        service: "s3".into(),
        time: SigningTime::UnixSeconds(now),
        presign_expires: None,
        normalize_path: true,
        sign_body: false,
        sign_session_token: true,
    };
    let (signed, chunks) = match sigv4.start_streaming(&signer, &request, &options, data.len() as u64, CHUNK).map_err(Refused::refused) {
        Ok(pair) => pair,
        Err(e) => panic!("start_streaming: {}", e.message()),
    };
    assert_eq!(signed.payload_hash, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");

    let mut body = Vec::new();
    for (index, piece) in data.chunks(CHUNK as usize).enumerate() {
        let mut framed = match sigv4.sign_chunk(&chunks, piece).map_err(Refused::refused) {
            Ok(framed) => framed,
            Err(e) => panic!("sign_chunk: {}", e.message()),
        };
        let header_len = framed.windows(2).position(|w| w == b"\r\n").expect("chunk header") + 2;
        assert!(framed.starts_with(format!("{:x};chunk-signature=", piece.len()).as_bytes()));
        assert_eq!(framed.len(), header_len + piece.len() + 2, "framed chunk {index} has its data and CRLF");
        if let Some(at) = flip_at {
            let start = index * CHUNK as usize;
            if (start..start + piece.len()).contains(&at) {
                framed[header_len + at - start] ^= 0x55;
            }
        }
        body.extend_from_slice(&framed);
    }
    match sigv4.finish_chunks(&chunks).map_err(Refused::refused) {
        Ok(last) => body.extend_from_slice(&last),
        Err(e) => panic!("finish_chunks: {}", e.message()),
    }
    sigv4.drop_chunk_signer(chunks).unwrap();
    sigv4.drop_signer(signer).unwrap();

    let content_length = signed.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.clone());
    assert_eq!(content_length, Some(body.len().to_string()), "the signed Content-Length is the framed body's length");
    support::try_send(&signed.method, &signed.url, &signed.headers, &body)
}

#[test]
fn s3s_fs_accepts_an_aws_chunked_streaming_put() {
    let peer = Peer::s3s_fs();
    let lp = Lakeport::new();
    make_bucket(&lp, &peer, BUCKET);

    // Three full 64 KiB chunks and a short last one.
    let data = pattern(200 * 1024, 8);
    let path = format!("/{BUCKET}/streamed/données 1.bin");
    streaming_put(&peer, &path, &data, None).unwrap().expect_status(200, "aws-chunked streaming PUT");

    let got = signed_request(&lp, "GET", &peer.url(&path), b"");
    got.expect_status(200, "GET of the streamed object");
    assert_eq!(got.body.len(), data.len(), "the stored object has the decoded length");
    assert!(got.body == data, "the stored object differs from the data streamed");
    assert_eq!(list(&lp, &peer, BUCKET, "&prefix=streamed/"), vec!["streamed/données 1.bin".to_string()]);
}

#[test]
fn s3s_fs_rejects_a_chunk_tampered_after_signing() {
    let peer = Peer::s3s_fs();
    let lp = Lakeport::new();
    make_bucket(&lp, &peer, BUCKET);

    let original = pattern(200 * 1024, 9);
    let existing = format!("/{BUCKET}/existing.bin");
    streaming_put(&peer, &existing, &original, None).unwrap().expect_status(200, "the first streaming PUT");

    // A byte in the second chunk changes after signing: over the existing
    // object, and to a new key.
    let replacement = pattern(200 * 1024, 10);
    let fresh = format!("/{BUCKET}/fresh.bin");
    for path in [&existing, &fresh] {
        let mismatches_before = peer.log().matches(CHUNK_SIGNATURE_MISMATCH).count();
        // s3s-fs finds the bad chunk signature while it copies the body and
        // answers 500 InternalError (AWS answers 403 SignatureDoesNotMatch),
        // sometimes closing the connection before the rest of the body is
        // sent; neither the status nor the error can say why, so its log must
        // show the mismatch.
        let outcome = match streaming_put(&peer, path, &replacement, Some(CHUNK as usize + 1234)) {
            Ok(reply) => {
                assert!(reply.status >= 400, "a tampered aws-chunked PUT to {path} was accepted: HTTP {}: {}", reply.status, reply.text());
                format!("HTTP {}", reply.status)
            }
            Err(closed) => closed,
        };
        let log = peer.log();
        assert!(
            log.matches(CHUNK_SIGNATURE_MISMATCH).count() > mismatches_before,
            "a tampered aws-chunked PUT to {path} got {outcome} without a chunk signature mismatch in the s3s-fs log:\n{log}"
        );
    }

    let got = signed_request(&lp, "GET", &peer.url(&existing), b"");
    got.expect_status(200, "GET of the existing object");
    assert!(got.body == original, "a refused streaming PUT changed the stored object");
    signed_request(&lp, "GET", &peer.url(&fresh), b"").expect_status(404, "GET of the refused new object");
    assert_eq!(list(&lp, &peer, BUCKET, ""), vec!["existing.bin".to_string()]);
}
