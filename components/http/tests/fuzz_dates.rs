//! A deterministic mutation fuzzer for HTTP dates (`Date`,
//! `Last-Modified`, `X-Rucio-Auth-Token-Expires`) in all three forms:
//! parsing never panics, and a date it accepts is one: written back as an
//! IMF-fixdate, it reads as the same second.
//!
//! `LAKEPORT_FUZZ_ITERATIONS` and `LAKEPORT_FUZZ_SEED` change the run.

use lakeport_calendar::civil_from_days;
use lakeport_http::date::parse_http_date;
use lakeport_testkit::fuzz;

const SEEDS: &[&str] = &[
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT",
    "Sun Nov  6 08:49:37 1994",
    "Wed, 01 May 2024 12:00:00 GMT",
    "Mon, 30 Nov 2026 12:00:00 UTC",
    "Thu, 29 Feb 2024 23:59:60 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Thursday, 01-Jan-70 00:00:00 GMT",
];

const TOKENS: &[&str] = &[
    " ", "  ", ",", "-", ":", "\t", "GMT", "UTC", "+0000", "Z", "Feb", "feb", "Sep", "Sept", "29", "31", "00", "60", "61", "99",
    "24", "1900", "2100", "0000", "10000", "99999", "-0001", "4294967295", "4294967296", "18446744073709551616", "\u{a0}",
    "\u{2003}", "٣",
];

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// An IMF-fixdate (the weekday is not checked, so any will do).
fn imf_fixdate(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!("Sun, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT", MONTHS[m as usize - 1], s / 3600, s / 60 % 60, s % 60)
}

#[test]
fn fuzz_http_date_never_panics() {
    let seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut accepted = 0u64;
    fuzz("http date", &seeds, TOKENS, (100_000, 0x4854_5450_4441_5445), |input, _| {
        let text = String::from_utf8_lossy(input);
        if let Some(t) = parse_http_date(&text) {
            accepted += 1;
            let (year, ..) = civil_from_days(t.div_euclid(86_400));
            // Four-digit years in the preferred form, any u32 in the others.
            assert!((0..=4_294_967_296).contains(&year), "{text:?} is year {year}");
            if year <= 9999 {
                assert_eq!(parse_http_date(&imf_fixdate(t)), Some(t), "{text:?} as {}", imf_fixdate(t));
            }
        }
    });
    assert!(accepted > 1_000, "only {accepted} dates survived mutation");
}
