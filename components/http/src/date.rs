//! HTTP dates (RFC 9110 §5.6.7), as servers send them in `Date`,
//! `Last-Modified` and, from Rucio, `X-Rucio-Auth-Token-Expires`.

use lakeport_calendar::{civil_from_unix, unix_seconds};

/// A non-empty run of ASCII digits as a number (no sign, no spaces).
pub fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn month_number(name: &str) -> Option<u32> {
    MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name)).map(|i| i as u32 + 1)
}

fn clock(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split(':');
    let (h, m, sec) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || h.len() != 2 || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    Some((digits(h)?, digits(m)?, digits(sec)?))
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
            unix_seconds(i64::from(digits(year)?), month_number(month)?, digits(day)?, h, m, sec)
        }
        [_, date, time, "GMT"] => {
            let mut d = date.split('-');
            let (day, month, year) = (d.next()?, d.next()?, d.next()?);
            let (h, m, sec) = clock(time)?;
            let year = i64::from(digits(year)?);
            // RFC 9110: a two-digit year more than 50 years ahead is in the past century.
            let year = if year < 50 { 2000 + year } else if year < 100 { 1900 + year } else { year };
            unix_seconds(year, month_number(month)?, digits(day)?, h, m, sec)
        }
        [_, month, day, time, year] => {
            let (h, m, sec) = clock(time)?;
            unix_seconds(i64::from(digits(year)?), month_number(month)?, digits(day)?, h, m, sec)
        }
        _ => None,
    }
}

/// Unix seconds as the preferred HTTP date form (RFC 9110 §5.6.7, the
/// RFC 1123 form WebDAV's `getlastmodified` uses): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn format_http_date(secs: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let (year, month, day, h, m, s) = civil_from_unix(secs);
    let weekday = WEEKDAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
    format!("{weekday}, {day:02} {} {year:04} {h:02}:{m:02}:{s:02} GMT", MONTHS[month as usize - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_preferred_form() {
        assert_eq!(format_http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        for t in [0, 951_782_400, 1_765_000_000] {
            assert_eq!(parse_http_date(&format_http_date(t)), Some(t));
        }
    }

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
}
