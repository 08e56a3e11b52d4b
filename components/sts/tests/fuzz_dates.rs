//! A deterministic mutation fuzzer for the RFC 3339 `Expiration` of STS
//! answers: parsing never panics, and a timestamp it accepts is one:
//! written back in UTC, it reads as the same second.
//!
//! `LAKEPORT_FUZZ_ITERATIONS` and `LAKEPORT_FUZZ_SEED` change the run.

use lakeport_calendar::civil_from_days;
use lakeport_sts::parse_rfc3339;
use lakeport_testkit::fuzz;

const SEEDS: &[&str] = &[
    "2024-01-01T12:00:00Z",
    "2024-01-01T12:00:00.123456Z",
    "2024-01-01T12:00:00.123456789Z",
    "2024-01-02T11:59:00+23:59",
    "2016-12-31T23:59:60Z",
    "9999-12-31T23:59:59-23:59",
    "0000-01-01T00:00:00+23:59",
];

const TOKENS: &[&str] = &[
    "-", ":", ".", "T", "t", " ", "Z", "z", "+", "+99:99", "+24:00", "-00:00", "+0100", "+01", "60", "61", "99", "00", "13", "29",
    "10000", "-2024", "+2024", ".0000000000", "\u{ff12}", "\u{2212}",
];

#[test]
fn fuzz_rfc3339_never_panics() {
    let seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut accepted = 0u64;
    fuzz("rfc 3339", &seeds, TOKENS, (100_000, 0x5246_4333_3333_3921), |input, _| {
        let text = String::from_utf8_lossy(input);
        if let Some(t) = parse_rfc3339(&text) {
            accepted += 1;
            let (y, m, d) = civil_from_days(t.div_euclid(86_400));
            assert!((-1..=10_000).contains(&y), "{text:?} is year {y}");
            let s = t.rem_euclid(86_400);
            if (0..=9999).contains(&y) {
                let utc = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60);
                assert_eq!(parse_rfc3339(&utc), Some(t), "{text:?} as {utc}");
            }
        }
    });
    assert!(accepted > 1_000, "only {accepted} timestamps survived mutation");
}
