//! A deterministic mutation fuzzer for the ISO 8601 timestamps of S3
//! answers (`LastModified`, `Initiated`, `ServerTime`): parsing never
//! panics, and a timestamp it accepts is one: written back in UTC, it
//! reads as the same second, and it lies in years 0000–9999 give or take
//! the offset.
//!
//! `LAKEPORT_FUZZ_ITERATIONS` and `LAKEPORT_FUZZ_SEED` change the run.

use lakeport_calendar::civil_from_days;
use lakeport_testkit::fuzz;
use lakeport_transfer::time::parse_iso8601;

const SEEDS: &[&str] = &[
    "2024-05-01T12:00:00.000Z",
    "2024-05-01T14:00:00.123456789+02:00",
    "2009-10-12T17:50:30.000Z",
    "2024-02-29T23:59:60Z",
    "9999-12-31T23:59:59.999999-23:59",
    "0000-01-01T00:00:00+23:59",
    "2024-05-01 12:00:00",
];

const TOKENS: &[&str] = &[
    "-", ":", ".", "T", "t", " ", "Z", "z", "+", "+99:99", "+24:00", "-00:00", "+0100", "+01", "60", "61", "99", "00", "13", "29",
    "10000", "-2024", "+2024", ".000000000000000000000000000000000001", "\u{ff12}", "\u{2212}", "٣",
];

#[test]
fn fuzz_iso8601_never_panics() {
    let seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut accepted = 0u64;
    fuzz("iso 8601", &seeds, TOKENS, (100_000, 0x4953_4f38_3630_3121), |input, _| {
        let text = String::from_utf8_lossy(input);
        if let Some(t) = parse_iso8601(&text) {
            accepted += 1;
            let (first, last) = (-62_167_219_200 - 86_400, 253_402_300_800 + 86_400); // 0000-01-01, 10000-01-01, ± a day
            assert!((first..last).contains(&t), "{text:?} is {t}");
            let (y, m, d) = civil_from_days(t.div_euclid(86_400));
            let s = t.rem_euclid(86_400);
            if (0..=9999).contains(&y) {
                let utc = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60);
                assert_eq!(parse_iso8601(&utc), Some(t), "{text:?} as {utc}");
            }
        }
    });
    assert!(accepted > 1_000, "only {accepted} timestamps survived mutation");
}
