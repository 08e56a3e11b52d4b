//! The two timestamp forms S3 answers carry: HTTP dates (`Date`,
//! `Last-Modified`, parsed in [`lakeport_http::date`]) and ISO 8601
//! (`LastModified` in listings, `ServerTime`).

use lakeport_calendar::unix_seconds;
use lakeport_http::date::digits as number;
pub use lakeport_http::date::parse_http_date;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to Unix seconds
/// (fractions dropped), as S3 writes `LastModified`, `Initiated` and
/// `ServerTime`. A missing zone is read as UTC (some servers omit it).
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_ascii() || s.len() < 19 {
        return None;
    }
    let b = s.as_bytes();
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = i64::from(number(&s[0..4])?);
    let (month, day) = (number(&s[5..7])?, number(&s[8..10])?);
    let (h, m, sec) = (number(&s[11..13])?, number(&s[14..16])?, number(&s[17..19])?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            let (oh, om) = (number(oh)?, number(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * i64::from(oh * 3600 + om * 60)
        }
    };
    Some(unix_seconds(year, month, day, h, m, sec)? - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_with_fractions_and_offsets() {
        assert_eq!(parse_iso8601("2024-05-01T12:00:00.000Z"), Some(1_714_564_800));
        assert_eq!(parse_iso8601("2024-05-01T12:00:00Z"), Some(1_714_564_800));
        assert_eq!(parse_iso8601("2024-05-01T14:00:00.123456789+02:00"), Some(1_714_564_800));
        assert_eq!(parse_iso8601("2024-05-01T12:00:00"), Some(1_714_564_800));
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        for bad in ["", "2024-05-01", "2024-13-01T00:00:00Z", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00+2:00", "2024-05-01T12:00:00 UTC"] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }
}
