//! Coverage-guided fuzzing of the STS answer parser. Needs nightly Rust and
//! cargo-fuzz; from the repository root:
//!
//!     cargo install cargo-fuzz
//!     mkdir -p fuzz/corpus/sts_parse
//!     cp components/sts/tests/fixtures/*.xml components/sts/tests/fixtures/*.html fuzz/corpus/sts_parse/
//!     cargo +nightly fuzz run --fuzz-dir fuzz sts_parse fuzz/corpus/sts_parse -- -max_total_time=600
//!
//! The input is the response body, read as three answers (a success status
//! with STS's content type, a refusal without one, a proxy error with HTML).
//! On stable Rust, `cargo test -p lakeport-sts --test fuzz_parser` runs a
//! seeded mutation fuzzer from the same fixtures.

#![no_main]

use libfuzzer_sys::fuzz_target;

use lakeport_sts::parse_assume_role_response;

fuzz_target!(|body: &[u8]| {
    for (status, content_type) in [(200, Some("text/xml")), (403, None), (502, Some("text/html"))] {
        match parse_assume_role_response(status, content_type, body) {
            Ok(c) => {
                assert!((200..300).contains(&status));
                for key in [&c.access_key_id, &c.secret_access_key, &c.session_token] {
                    assert!(!key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic()));
                }
                // Debug output does not depend on the secrets.
                let mut other = c.clone();
                other.secret_access_key = "s".into();
                other.session_token = "t".into();
                assert_eq!(format!("{c:?}"), format!("{other:?}"));
            }
            Err(e) => {
                let _ = (e.to_string(), e.message_with_hint());
            }
        }
    }
});
