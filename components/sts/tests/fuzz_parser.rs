//! A deterministic mutation fuzzer for the STS answer parser, on stable
//! Rust, as part of `cargo test`: it starts from the fixture corpus and
//! applies byte flips, insertions of XML-ish tokens, deletions,
//! truncations, splices between fixtures and element duplications, drawn
//! from a seeded xorshift generator, and checks that the parser
//!
//! - never panics;
//! - only returns credentials for a 2xx answer, with non-empty keys that
//!   can go into HTTP headers;
//! - never puts a secret of the corpus into an error that is not the
//!   server's own error document (those quote the server's Code/Message).
//!
//! `LAKEPORT_FUZZ_ITERATIONS` and `LAKEPORT_FUZZ_SEED` change the run
//! (e.g. a long run: `LAKEPORT_FUZZ_ITERATIONS=10000000 cargo test --release
//! -p lakeport-sts --test fuzz_parser`). With nightly and cargo-fuzz, the
//! coverage-guided target is `fuzz/fuzz_targets/sts_parse.rs`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use lakeport_sts::{parse_assume_role_response, StsError};
use lakeport_testkit::{fixture_corpus, fuzz_settings, mutate, Rng};

const DEFAULT_ITERATIONS: u64 = 200_000;
const DEFAULT_SEED: u64 = 0x5354_535f_4655_5a5a; // "STS_FUZZ"

const TOKENS: &[&str] = &[
    "<",
    ">",
    "/",
    "&",
    ";",
    "=",
    "\"",
    "'",
    " ",
    "\n",
    "\0",
    "\u{fffd}",
    "&amp;",
    "&#0;",
    "&#x110000;",
    "&#65;",
    "&lt;",
    "&unknown;",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE x>",
    "<Credentials>",
    "</Credentials>",
    "<AccessKeyId>",
    "</AccessKeyId>",
    "<SecretAccessKey>",
    "</SecretAccessKey>",
    "<SessionToken>",
    "</SessionToken>",
    "<Expiration>",
    "</Expiration>",
    "<Error>",
    "</Error>",
    "<Code>",
    "</Code>",
    "<Message>",
    "</Message>",
    "<x:Credentials xmlns:x=\"u\">",
    "Z",
    "+01:00",
    "-23:59",
    ".123456789",
    ".1234567890",
    "T",
    "9999",
    "0000",
    "60",
    "<html>",
    "<!doctype html>",
    "\u{feff}",
    "\r\n",
];

const STATUSES: &[u16] = &[200, 200, 200, 201, 204, 301, 400, 403, 404, 500, 502, 503];
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("text/xml"),
    Some("application/xml"),
    Some("text/html"),
    Some("text/html; charset=utf-8"),
    Some("application/json"),
    Some(""),
];

fn corpus() -> Vec<(String, Vec<u8>)> {
    fixture_corpus(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"), &["xml", "html"], 10)
}

#[test]
fn parser_survives_mutated_answers() {
    let (iterations, seed) = fuzz_settings(DEFAULT_ITERATIONS, DEFAULT_SEED);
    let corpus = corpus();
    let bodies: Vec<Vec<u8>> = corpus.iter().map(|(_, body)| body.clone()).collect();

    // The secrets in the corpus: no invalid-response error may show them.
    let mut secrets = Vec::new();
    for (name, body) in &corpus {
        if let Ok(c) = parse_assume_role_response(200, Some("text/xml"), body) {
            secrets.push(c.secret_access_key);
            secrets.push(c.session_token);
            assert!(!name.contains("error"), "{name} parsed as credentials");
        }
    }
    assert!(secrets.len() >= 8, "the success fixtures did not parse");

    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let (mut accepted, mut refused, mut invalid) = (0u64, 0u64, 0u64);
    for iteration in 0..iterations {
        let mut input = rng.pick(&corpus).1.clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut input, TOKENS, &bodies, &mut rng);
        }
        let status = *rng.pick(STATUSES);
        let content_type = *rng.pick(CONTENT_TYPES);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let result = parse_assume_role_response(status, content_type, &input);
            let text = match &result {
                Ok(c) => format!("{c:?}"),
                Err(e) => format!("{e} {e:?} {}", e.message_with_hint()),
            };
            (result, text)
        }));
        let describe = || {
            format!("iteration {iteration} (seed {seed}), status {status}, {content_type:?}, input {:?}", String::from_utf8_lossy(&input))
        };
        let (result, text) = outcome.unwrap_or_else(|_| panic!("the parser panicked at {}", describe()));
        match result {
            Ok(c) => {
                accepted += 1;
                assert!((200..300).contains(&status), "credentials from a non-2xx answer at {}", describe());
                for key in [&c.access_key_id, &c.secret_access_key, &c.session_token] {
                    assert!(!key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic()), "unusable key {key:?} at {}", describe());
                }
                // Debug output does not depend on the secrets.
                let mut other = c.clone();
                other.secret_access_key = "s".into();
                other.session_token = "t".into();
                assert_eq!(text, format!("{other:?}"), "Debug shows a secret at {}", describe());
            }
            Err(StsError::Sts { .. }) => refused += 1,
            Err(_) => {
                invalid += 1;
                for s in &secrets {
                    assert!(!text.contains(s.as_str()), "the error {text:?} reveals a secret at {}", describe());
                }
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{iterations} mutated answers in {:.2} s: {accepted} credentials, {refused} STS errors, {invalid} invalid responses",
        elapsed.as_secs_f64()
    );
    // Every kind of outcome should turn up, or the mutations are too timid or too wild.
    if iterations >= 10_000 {
        assert!(accepted > 0 && refused > 0 && invalid > 0, "{accepted} / {refused} / {invalid}");
    }
}
