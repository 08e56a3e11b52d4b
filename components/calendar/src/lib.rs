//! Calendar arithmetic for timestamps (proleptic Gregorian, UTC), in one
//! place for every format lakeport reads or writes: `X-Amz-Date`, RFC 3339
//! from STS, HTTP dates and ISO 8601 from S3. The days-since-1970
//! arithmetic and the one ISO 8601 / RFC 3339 reader ([`parse_date_time`])
//! are here; the other formats stay with their crates.
#![no_std]

/// Whether `year` has a 29 February.
pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Years [`unix_seconds`] takes, either side of year 0: far beyond any
/// timestamp's (parsers read at most ten digits), and near enough that
/// the day and second counts cannot overflow.
pub const MAX_YEAR: i64 = 10_000_000_000;

/// Days since 1970-01-01 of a date (month 1–12, day 1–31, |year| up to
/// [`MAX_YEAR`]; none of these checked).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The last second RFC 3339's four-digit years can write: 9999-12-31T23:59:59Z.
pub const MAX_RFC3339_SECONDS: i64 = 253_402_300_799;

/// UTC (year, month, day, hour, minute, second) of `secs` since the epoch.
pub fn civil_from_unix(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400) as u32;
    (year, month, day, in_day / 3600, in_day / 60 % 60, in_day % 60)
}

/// Seconds since the epoch of a valid date and time of day, else `None`.
/// A leap second (`:60`) counts as the next second, as clocks do.
pub fn unix_seconds(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<i64> {
    let valid = (-MAX_YEAR..=MAX_YEAR).contains(&year) && (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month) && hour < 24 && minute < 60 && second <= 60;
    valid.then(|| days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

/// The ISO 8601 date-times lakeport reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateTimeForm {
    /// RFC 3339 exactly, as STS servers write `Expiration`: `T`, 1–9
    /// fraction digits, and a zone (`Z` or `±HH:MM`).
    Rfc3339,
    /// As S3 servers write `LastModified`, `Initiated` and `ServerTime`:
    /// besides RFC 3339, a space for `T`, any number of fraction digits,
    /// no zone (read as UTC, some servers omit it), surrounding whitespace.
    S3,
}

/// Exactly `n` ASCII digits at `s[at..]`.
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    part.iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

fn is(s: &[u8], at: usize, expected: &[u8]) -> Option<()> {
    s.get(at).filter(|b| expected.contains(b)).map(|_| ())
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` in `form`
/// (fractions dropped; a leap second counts as the next second), or `None`.
pub fn parse_date_time(text: &str, form: DateTimeForm) -> Option<i64> {
    let lenient = form == DateTimeForm::S3;
    let s = if lenient { text.trim() } else { text }.as_bytes();
    let (year, month, day) = (digits(s, 0, 4)?, digits(s, 5, 2)?, digits(s, 8, 2)?);
    is(s, 4, b"-")?;
    is(s, 7, b"-")?;
    is(s, 10, if lenient { b"Tt " } else { b"Tt" })?;
    let (hour, minute, second) = (digits(s, 11, 2)?, digits(s, 14, 2)?, digits(s, 17, 2)?);
    is(s, 13, b":")?;
    is(s, 16, b":")?;
    let mut at = 19;
    if s.get(at) == Some(&b'.') {
        let fraction = s[at + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if fraction == 0 || (!lenient && fraction > 9) {
            return None;
        }
        at += 1 + fraction;
    }
    let offset = match s.get(at..)? {
        b"Z" | b"z" => 0,
        b"" if lenient => 0,
        [sign @ (b'+' | b'-'), zone @ ..] if zone.len() == 5 && zone[2] == b':' => {
            let (oh, om) = (digits(zone, 0, 2)?, digits(zone, 3, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    Some(unix_seconds(i64::from(year), month, day, hour, minute, second)? - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_in_both_forms() {
        use DateTimeForm::{Rfc3339, S3};
        let base = 1_704_110_400; // 2024-01-01T12:00:00Z
        for text in ["2024-01-01T12:00:00Z", "2024-01-01t12:00:00.123456789z", "2024-01-01T13:30:00.5+01:30", "2024-01-01T06:15:00-05:45"] {
            assert_eq!(parse_date_time(text, Rfc3339), Some(base), "{text}");
            assert_eq!(parse_date_time(text, S3), Some(base), "{text}");
        }
        // What only S3's form takes.
        for text in ["2024-01-01T12:00:00", "2024-01-01 12:00:00Z", " 2024-01-01T12:00:00.1234567890Z "] {
            assert_eq!(parse_date_time(text, Rfc3339), None, "{text:?}");
            assert_eq!(parse_date_time(text, S3), Some(base), "{text:?}");
        }
        assert_eq!(parse_date_time("2016-12-31T23:59:60Z", Rfc3339), Some(1_483_228_800));
        for bad in ["", "2024-01-01", "2024-01-01T12:00:00.Z", "2024-01-01T12:00:00+0100", "2024-01-01T12:00:00+24:00", "2023-02-29T12:00:00Z", "2024-01-01T12:00:00 UTC", "２０２４-01-01T12:00:00Z"] {
            assert_eq!(parse_date_time(bad, S3), None, "{bad:?}");
            assert_eq!(parse_date_time(bad, Rfc3339), None, "{bad:?}");
        }
    }

    #[test]
    fn times_of_day() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_from_unix(MAX_RFC3339_SECONDS), (9999, 12, 31, 23, 59, 59));
        assert_eq!(civil_from_unix(-1), (1969, 12, 31, 23, 59, 59));
        assert_eq!(civil_from_unix(1_369_353_600 + 3661), (2013, 5, 24, 1, 1, 1));
    }

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(unix_seconds(2013, 5, 24, 0, 0, 0), Some(1_369_353_600));
        assert_eq!(unix_seconds(2023, 2, 29, 0, 0, 0), None);
        assert_eq!(unix_seconds(2024, 2, 29, 23, 59, 60), Some(1_709_251_200));
        // Years whose seconds overflow an i64 are no dates (they overflowed).
        assert_eq!(unix_seconds(7_885_385_481_164_165_137, 8, 29, 10, 14, 25), None);
        assert_eq!(unix_seconds(i64::MIN, 1, 1, 0, 0, 0), None);
        assert_eq!(unix_seconds(MAX_YEAR, 12, 31, 23, 59, 59), Some(days_from_civil(MAX_YEAR + 1, 1, 1) * 86_400 - 1));
    }

    #[test]
    fn days_round_trip_over_four_centuries() {
        for days in -200_000..200_000 {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
