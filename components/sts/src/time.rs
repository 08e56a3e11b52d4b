//! RFC 3339 timestamps as STS servers write them: `2024-01-01T12:00:00Z`
//! (AWS, MinIO), with microseconds (moto) or nanoseconds (Ceph RGW), or
//! with a numeric offset. Strict: no missing offset, no missing seconds, no
//! empty fraction; 0–9 fractional digits, which are dropped (whole seconds).

use lakeport_calendar::{days_from_civil, days_in_month};

/// Exactly `n` ASCII digits at `s[at..]`.
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    part.iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

fn byte(s: &[u8], at: usize, expected: &[u8]) -> Option<()> {
    s.get(at).filter(|b| expected.contains(b)).map(|_| ())
}

/// Unix seconds of an RFC 3339 date-time, or `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let s = text.as_bytes();
    let year = digits(s, 0, 4)?;
    byte(s, 4, b"-")?;
    let month = digits(s, 5, 2)?;
    byte(s, 7, b"-")?;
    let day = digits(s, 8, 2)?;
    byte(s, 10, b"Tt")?;
    let hour = digits(s, 11, 2)?;
    byte(s, 13, b":")?;
    let minute = digits(s, 14, 2)?;
    byte(s, 16, b":")?;
    let second = digits(s, 17, 2)?;
    let mut at = 19;
    if s.get(at) == Some(&b'.') {
        let fraction = s[at + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&fraction) {
            return None;
        }
        at += 1 + fraction;
    }
    let offset = match s.get(at..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] if s.len() == at + 6 => {
            let oh = digits(s, at + 1, 2)?;
            byte(s, at + 3, b":")?;
            let om = digits(s, at + 4, 2)?;
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
    let year = i64::from(year);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // A leap second (:60) counts as the first second of the next minute.
    let local = days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(local - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_and_offsets() {
        let base = 1_704_110_400; // 2024-01-01T12:00:00Z
        for text in [
            "2024-01-01T12:00:00Z",
            "2024-01-01T12:00:00.1Z",
            "2024-01-01T12:00:00.123Z",
            "2024-01-01T12:00:00.123456Z",
            "2024-01-01T12:00:00.123456789Z",
            "2024-01-01t12:00:00.999999999z",
            "2024-01-01T13:00:00+01:00",
            "2024-01-01T13:30:00.5+01:30",
            "2024-01-01T06:15:00-05:45",
            "2024-01-01T12:00:00+00:00",
            "2024-01-01T12:00:00-00:00",
            "2024-01-02T11:59:00+23:59",
        ] {
            assert_eq!(parse_rfc3339(text), Some(base), "{text}");
        }
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_rfc3339("2016-12-31T23:59:60Z"), Some(1_483_228_800));
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59Z"), Some(253_402_300_799));
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for text in [
            "",
            "2024-01-01",
            "2024-01-01T12:00:00",
            "2024-01-01T12:00Z",
            "2024-01-01 12:00:00Z",
            "2024-01-01T12:00:00.Z",
            "2024-01-01T12:00:00.1234567890Z",
            "2024-01-01T12:00:00ZZ",
            "2024-01-01T12:00:00+0100",
            "2024-01-01T12:00:00+01",
            "2024-01-01T12:00:00+24:00",
            "2024-01-01T12:00:00+01:60",
            "2024-13-01T12:00:00Z",
            "2024-00-01T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-04-31T12:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T12:60:00Z",
            "2024-01-01T12:00:61Z",
            "+2024-01-01T12:00:00Z",
            "2024-1-01T12:00:00Z",
            "２０２４-01-01T12:00:00Z",
            " 2024-01-01T12:00:00Z",
            "2024-01-01T12:00:00Z ",
            "1704110400",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text:?}");
        }
    }
}
