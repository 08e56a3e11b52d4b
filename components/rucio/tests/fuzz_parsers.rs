//! Deterministic mutation fuzzers for Rucio's answers: JSON documents and
//! error bodies, and `application/x-json-stream` lists (whole, and fed to
//! `JsonLines` in random pieces). They start from answers in Rucio's
//! formats, mutate them with a fixed seed and iteration count, and check
//! that parsing returns a value or an error without panicking, and that a
//! list reads the same however its bytes are cut.
//!
//! `LAKEPORT_FUZZ_ITERATIONS` and `LAKEPORT_FUZZ_SEED` change a run.

use lakeport_http::HttpResponse;
use lakeport_rucio::*;
use lakeport_testkit::fuzz;

const TOKENS: &[&str] = &[
    "\"", "{", "}", "[", "]", ":", ",", "\\", "\\u0000", "\\ud800", "\n", "\r\n", "\n\n", " ", "null", "true", "-1", "1e309",
    "18446744073709551616", "\u{feff}", "\u{fffd}", "{\"a\":", "[[", "\"state\":\"STUCK\",", "\"state\":\"BROKEN\",",
    "\"type\":\"CONTAINER\",", "\"type\":\"UNKNOWN\",", "\"bytes\":", "\"rses\":{\"X\":[\"s3://h/b/k\"]},", "\"expires_at\":",
    "\"Mon, 30 Nov 2026 12:00:00 UTC\"", "\"Sun, 06 Nov 99999 08:49:37 GMT\"", "\"ExceptionClass\":", "\"ExceptionMessage\":",
];

const DIDS: &str = "{\"scope\": \"user.jdoe\", \"name\": \"run42.h5\", \"type\": \"FILE\", \"bytes\": 1048576, \"length\": null, \"adler32\": \"0a1b2c3d\", \"md5\": \"5d41402abc4b2a76b9719d911017c592\"}\n{\"scope\": \"user.jdoe\", \"name\": \"run42\", \"type\": \"DATASET\", \"bytes\": null, \"length\": 3}\n{\"scope\": \"user.jdoe\", \"name\": \"all runs\", \"did_type\": \"CONTAINER\"}\n";
const REPLICAS: &str = "{\"adler32\": \"0a1b2c3d\", \"name\": \"run42.h5\", \"rses\": {\"SITE-A\": [\"s3://rgw.site-a.example:443/rucio/user.jdoe/3c/7a/run42.h5\"], \"SITE-B\": [\"https://s3.site-b.example/data/user.jdoe/run42.h5\"]}, \"space_token\": null, \"bytes\": 1048576, \"states\": {\"SITE-A\": \"AVAILABLE\", \"SITE-B\": \"COPYING\"}, \"pfns\": {}, \"scope\": \"user.jdoe\", \"md5\": null}\n";
const RULES: &str = "{\"id\": \"7b1a2c3d4e5f60718293a4b5c6d7e8f9\", \"account\": \"jdoe\", \"scope\": \"user.jdoe\", \"name\": \"run42\", \"state\": \"REPLICATING\", \"rse_expression\": \"SITE-B\", \"copies\": 1, \"expires_at\": \"Mon, 30 Nov 2026 12:00:00 UTC\", \"locks_ok_cnt\": 1, \"locks_replicating_cnt\": 2, \"locks_stuck_cnt\": 0, \"grouping\": \"DATASET\", \"activity\": \"User Subscriptions\", \"created_at\": \"Wed, 01 May 2024 12:00:00 UTC\"}\n{\"id\": \"11aa\", \"account\": \"root\", \"scope\": \"user.jdoe\", \"name\": \"run42\", \"state\": \"OK\", \"rse_expression\": \"tier=1\", \"copies\": 2, \"expires_at\": null, \"error\": null}\n";

fn seeds() -> Vec<Vec<u8>> {
    [
        DIDS,
        REPLICAS,
        RULES,
        "[\"user.jdoe\", \"mc23_13p6TeV\"]",
        "[\"7b1a2c3d4e5f60718293a4b5c6d7e8f9\"]",
        "{\"user.jdoe:run42.h5\": \"s3://rgw.site-a.example:443/rucio/user.jdoe/3c/7a/run42.h5\"}",
        "{\"status\": \"ACTIVE\", \"account\": \"jdoe\", \"account_type\": \"USER\", \"email\": \"jdoe@example.org\", \"suspended_at\": null}",
        "{\"ExceptionClass\": \"DataIdentifierNotFound\", \"ExceptionMessage\": \"Data identifier 'user.jdoe:nope' not found\"}",
        "{\"ExceptionClass\": \"CannotAuthenticate\", \"ExceptionMessage\": \"Cannot authenticate with given credentials\"}",
        "<html><head><title>500 Internal Server Error</title></head><body>mod_wsgi: Traceback</body></html>",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn response(status: u16, body: &[u8]) -> HttpResponse {
    HttpResponse { status, headers: vec![("Content-Type".into(), "application/x-json-stream".into())], body: body.to_vec() }
}

#[test]
fn fuzz_rucio_json_never_panics() {
    fuzz("rucio json", &seeds(), TOKENS, (40_000, 0x5255_4349_4f4a_534e), |body, rng| {
        let status = *rng.pick(&[200, 200, 200, 201, 303, 401, 404, 409, 500]);
        let answer = response(status, body);
        let now = 1_714_564_800;
        match rng.below(7) {
            0 => {
                if let Ok(rules) = parse_list::<Rule>(&answer) {
                    if let Some(rule) = matching_rule(&rules, "jdoe", "SITE-B") {
                        let _ = needs_extension(rule, Some(*rng.pick(&[0, 3600, u64::MAX])), *rng.pick(&[now, i64::MIN, i64::MAX]));
                    }
                }
            }
            1 => {
                if let Ok(replicas) = parse_list::<FileReplicas>(&answer) {
                    for pfn in replicas.iter().flat_map(|r| r.rses.values().flatten()) {
                        let _ = pfn_target(pfn);
                    }
                }
            }
            2 => drop(parse_list::<DidEntry>(&answer)),
            3 => drop(parse_rule_ids(&answer)),
            4 => drop(parse_lfns2pfns(&answer)),
            5 => drop(parse_whoami(&answer)),
            _ => {
                // Errors come from the body or, for HEAD, from the headers.
                let text = String::from_utf8_lossy(body);
                let mut answer = response(status.max(400), body);
                answer.headers.push(("ExceptionClass".into(), text.chars().take(40).collect()));
                answer.headers.push(("ExceptionMessage".into(), text.into_owned()));
                if let RucioError::Server(e) = error_from_response(&answer) {
                    assert!(e.message.chars().count() <= 400 && !e.class.is_empty());
                }
            }
        }
        if let Err(e) = success(&answer) {
            assert!(!e.to_string().is_empty());
        }
    });
}

#[test]
fn fuzz_json_stream_never_panics() {
    fuzz("rucio json-stream", &seeds(), TOKENS, (60_000, 0x4a53_4f4e_5354_524d), |body, rng| {
        let whole = parse_all::<serde_json::Value>(body);
        // The same list in random pieces, as it arrives from the network.
        let mut lines = JsonLines::default();
        let mut pieced: Result<Vec<serde_json::Value>, RucioError> = Ok(Vec::new());
        let mut rest = body;
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at(1 + rng.below(rest.len().min(64)));
            rest = tail;
            match lines.push(piece) {
                Ok(items) => pieced.as_mut().unwrap().extend(items),
                Err(e) => {
                    pieced = Err(e);
                    break;
                }
            }
        }
        if let Ok(items) = &mut pieced {
            match lines.finish() {
                Ok(last) => items.extend(last),
                Err(e) => pieced = Err(e),
            }
        }
        let array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
        if !array {
            assert_eq!(whole.is_ok(), pieced.is_ok(), "whole {whole:?}, pieced {pieced:?}");
            if let (Ok(a), Ok(b)) = (&whole, &pieced) {
                assert_eq!(a, b);
            }
        }
        for err in [whole.err(), pieced.err()].into_iter().flatten() {
            assert!(matches!(err, RucioError::InvalidAnswer(_)), "{err:?}");
        }
    });
}
