//! The two timestamp forms S3 answers carry: HTTP dates (`Date`,
//! `Last-Modified`) and ISO 8601 (`LastModified` in listings, `ServerTime`).

use lakeport_calendar::unix_seconds;

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name)).map(|i| i as u32 + 1)
}

fn clock(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split(':');
    let (h, m, sec) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || h.len() != 2 || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    Some((number(h)?, number(m)?, number(sec)?))
}

/// Parses an HTTP date (RFC 9110 §5.6.7) to Unix seconds: the preferred
/// `Sun, 06 Nov 1994 08:49:37 GMT`, and the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime forms, which recipients
/// must accept. The weekday is not checked.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    match parts.as_slice() {
        [_, day, month, year, time, "GMT" | "UTC"] if s.contains(',') => {
            let (h, m, sec) = clock(time)?;
            (year.len() == 4).then_some(())?;
            unix_seconds(i64::from(number(year)?), month_number(month)?, number(day)?, h, m, sec)
        }
        [_, date, time, "GMT"] => {
            let mut d = date.split('-');
            let (day, month, year) = (d.next()?, d.next()?, d.next()?);
            let (h, m, sec) = clock(time)?;
            let year = i64::from(number(year)?);
            // RFC 9110: a two-digit year more than 50 years ahead is in the past century.
            let year = if year < 50 { 2000 + year } else if year < 100 { 1900 + year } else { year };
            unix_seconds(year, month_number(month)?, number(day)?, h, m, sec)
        }
        [_, month, day, time, year] => {
            let (h, m, sec) = clock(time)?;
            unix_seconds(i64::from(number(year)?), month_number(month)?, number(day)?, h, m, sec)
        }
        _ => None,
    }
}

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
    fn http_dates_in_all_three_forms() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert_eq!(parse_http_date("Wed, 01 May 2024 12:00:00 GMT"), Some(1_714_564_800));
        for bad in ["", "Sun, 06 Nov 1994 08:49:37", "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 8:49:37 GMT", "yesterday"] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

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
