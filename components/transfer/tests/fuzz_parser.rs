//! A deterministic mutation fuzzer for the S3 answer parsers, on stable
//! Rust, as part of `cargo test`: it starts from the fixture corpus and
//! applies byte flips, insertions of XML-ish tokens, deletions,
//! truncations, splices between fixtures and element duplications, drawn
//! from a seeded xorshift generator, then hands the result to a random
//! parser with a random status and content type. It checks that parsing
//!
//! - never panics and stays fast (the whole run is timed);
//! - only succeeds for 2xx answers, and successes keep their promises
//!   (a truncated page has its continuation, part numbers are valid);
//! - never shows the session token that the corpus hides in an
//!   `ExpiredToken` document and a proxy page, except inside a server's
//!   own error Message (which is the server's text).
//!
//! `LAKEPORT_FUZZ_ITERATIONS` and `LAKEPORT_FUZZ_SEED` change the run, e.g.
//! `LAKEPORT_FUZZ_ITERATIONS=2000000 cargo test --release -p
//! lakeport-transfer --test fuzz_parser`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use lakeport_testkit::{fixture_corpus, fuzz_settings, mutate, Rng};
use lakeport_transfer::parse::*;
use lakeport_transfer::{ByteRange, HttpResponse, TransferError};

const DEFAULT_ITERATIONS: u64 = 100_000;
const DEFAULT_SEED: u64 = 0x5333_5f46_555a_5a21; // "S3_FUZZ!"
const TOKEN: &str = "FwoGZXIvYXdzEBcaDSECRETSESSIONTOKEN0123456789";

const TOKENS: &[&str] = &[
    "<", ">", "/", "&", ";", "=", "\"", "'", " ", "\n", "\0", "\u{fffd}", "&amp;", "&#0;", "&#x110000;", "&#65;", "&#34;",
    "&lt;", "&unknown;", "<![CDATA[", "]]>", "<!--", "-->", "<?xml version=\"1.0\"?>", "<!DOCTYPE x>", "<Error>", "</Error>",
    "<Code>", "</Code>", "<Message>", "</Message>", "<Contents>", "</Contents>", "<Key>", "</Key>", "<Size>", "</Size>",
    "<IsTruncated>true</IsTruncated>", "<NextContinuationToken>", "</NextContinuationToken>", "<Part>", "</Part>",
    "<PartNumber>", "</PartNumber>", "<ETag>", "</ETag>", "<UploadId>", "</UploadId>", "<EncodingType>url</EncodingType>",
    "%", "%FF", "%2", "+", "18446744073709551616", "-1", "10001", "0", "<x:Key xmlns:x=\"u\">", "<html>", "<!doctype html>",
    "\u{feff}", "\r\n", "          ",
];

const STATUSES: &[u16] = &[200, 200, 200, 200, 200, 200, 204, 206, 301, 400, 403, 404, 409, 412, 416, 500, 502, 503];
const CONTENT_TYPES: &[Option<&str>] =
    &[None, Some("application/xml"), Some("text/xml"), Some("text/html"), Some("text/html; charset=utf-8"), Some("application/json"), Some("")];

fn corpus() -> Vec<(String, Vec<u8>)> {
    fixture_corpus(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"), &["xml", "html"], 30)
}

fn matching_parser(body: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(body);
    let roots = [
        "<ListBucketResult",
        "<InitiateMultipartUploadResult",
        "<CompleteMultipartUploadResult",
        "<ListParts",
        "<ListMultipartUploadsResult",
        "<CopyObjectResult",
        "<CopyPartResult",
        "<DeleteResult",
    ];
    roots.iter().position(|r| text.contains(r))
}

/// Runs one parser; returns whether it succeeded, and all the text it produced.
fn run(parser: usize, response: &HttpResponse) -> (Result<(), TransferError>, String) {
    fn text<T: std::fmt::Debug>(r: Result<T, TransferError>) -> (Result<(), TransferError>, String) {
        let s = match &r {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("{e} {e:?}"),
        };
        (r.map(|_| ()), s)
    }
    match parser {
        0 => {
            let r = parse_list_objects_v2(response);
            if let Ok(page) = &r {
                assert!(!page.is_truncated || page.next_continuation_token.is_some());
                assert!(page.objects.iter().all(|o| !o.key.is_empty()));
            }
            text(r)
        }
        1 => text(parse_create_multipart_upload(response)),
        2 => text(parse_complete_multipart_upload(response)),
        3 => {
            let r = parse_list_parts(response);
            if let Ok(page) = &r {
                assert!(page.parts.iter().all(|p| (1..=10_000).contains(&p.part_number)));
                assert!(!page.is_truncated || page.next_part_number_marker.is_some());
            }
            text(r)
        }
        4 => text(parse_list_multipart_uploads(response)),
        5 => text(parse_copy_object(response)),
        6 => text(parse_upload_part_copy(response)),
        7 => text(parse_delete_objects(response)),
        8 => text(parse_get_object(response, Some(ByteRange { start: 0, end: 99 }))),
        _ => text(Err::<(), _>(error_from_response(response, false))),
    }
}

#[test]
fn parsers_survive_mutated_answers() {
    let (iterations, seed) = fuzz_settings(DEFAULT_ITERATIONS, DEFAULT_SEED);
    let corpus = corpus();
    let bodies: Vec<Vec<u8>> = corpus.iter().map(|(_, body)| body.clone()).collect();
    assert!(corpus.iter().any(|(_, body)| String::from_utf8_lossy(body).contains(TOKEN)), "the corpus hides no token");

    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let (mut ok, mut refused, mut invalid) = (0u64, 0u64, 0u64);
    for iteration in 0..iterations {
        let (name, original) = rng.pick(&corpus);
        let mut body = original.clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut body, TOKENS, &bodies, &mut rng);
        }
        let status = *rng.pick(STATUSES);
        let mut headers = Vec::new();
        if let Some(ct) = rng.pick(CONTENT_TYPES) {
            headers.push(("Content-Type".to_string(), ct.to_string()));
        }
        if rng.below(4) == 0 {
            headers.push(("Content-Length".to_string(), rng.pick(&["100", "0", "x", "18446744073709551616"]).to_string()));
            headers.push(("Content-Range".to_string(), rng.pick(&["bytes 0-99/1000", "bytes 5-1/2", "bytes */10"]).to_string()));
        }
        let response = HttpResponse { status, headers, body };
        // Mostly the parser the document was written for, so that mutations
        // reach deep into it; sometimes any other.
        let parser = match matching_parser(original) {
            Some(p) if rng.below(4) != 0 => p,
            _ => rng.below(10),
        };
        let describe = || {
            format!(
                "iteration {iteration} (seed {seed}), {name}, parser {parser}, status {status}, body {:?}",
                String::from_utf8_lossy(&response.body)
            )
        };
        let (result, text) =
            catch_unwind(AssertUnwindSafe(|| run(parser, &response))).unwrap_or_else(|_| panic!("a parser panicked at {}", describe()));
        match result {
            Ok(()) => {
                ok += 1;
                assert!((200..300).contains(&status), "success from HTTP {status} at {}", describe());
            }
            Err(TransferError::S3(e)) => {
                refused += 1;
                // Only the server's own Message and identifiers may carry what
                // it chose to write there: blank them, and nothing may remain.
                let mut blank = e.clone();
                blank.message.clear();
                blank.code = "Code".into();
                blank.request_id = None;
                blank.region = None;
                blank.endpoint = None;
                let rest = format!("{blank} {blank:?}");
                assert!(!rest.contains(TOKEN), "{text} at {}", describe());
            }
            Err(_) => {
                invalid += 1;
                assert!(!text.contains(TOKEN), "the error {text:?} shows the token at {}", describe());
            }
        }
    }
    let elapsed = started.elapsed();
    println!("{iterations} mutated answers in {:.2} s: {ok} parsed, {refused} S3 errors, {invalid} invalid", elapsed.as_secs_f64());
    if iterations == DEFAULT_ITERATIONS {
        assert!(elapsed.as_secs() < 10, "the default run took {elapsed:?}");
    }
    if iterations >= 10_000 {
        assert!(ok > 0 && refused > 0 && invalid > 0, "{ok} / {refused} / {invalid}");
    }
}
