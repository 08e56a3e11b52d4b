//! The signing time: `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`) and its date part.

use alloc::format;
use alloc::string::String;

/// A validated UTC timestamp at one-second precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmzDate {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

fn digits(s: &str) -> Option<u32> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

impl AmzDate {
    /// Parses `YYYYMMDDTHHMMSSZ`, checking every field's range.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("bad time '{s}': expected YYYYMMDDTHHMMSSZ in UTC, e.g. 20130524T000000Z");
        let b = s.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return Err(bad());
        }
        let field = |r: core::ops::Range<usize>| digits(&s[r]).ok_or_else(bad);
        let date = AmzDate {
            year: field(0..4)?,
            month: field(4..6)?,
            day: field(6..8)?,
            hour: field(9..11)?,
            minute: field(11..13)?,
            second: field(13..15)?,
        };
        let valid = (1970..=9999).contains(&date.year)
            && (1..=12).contains(&date.month)
            && date.day >= 1
            && date.day <= lakeport_calendar::days_in_month(i64::from(date.year), date.month)
            && date.hour < 24
            && date.minute < 60
            && date.second < 60;
        if valid {
            Ok(date)
        } else {
            Err(bad())
        }
    }

    /// From seconds since the Unix epoch.
    pub fn from_unix(secs: i64) -> Result<Self, String> {
        if !(0..=253_402_300_799).contains(&secs) {
            return Err(format!("time {secs} is outside 1970..9999"));
        }
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = lakeport_calendar::civil_from_days(secs.div_euclid(86_400));
        let year = year as u32;
        Ok(AmzDate { year, month, day, hour: rem / 3600, minute: rem / 60 % 60, second: rem % 60 })
    }

    /// `YYYYMMDDTHHMMSSZ`
    pub fn amz_date(&self) -> String {
        let mut text = *b"00000000T000000Z";
        self.put_date(&mut text[..8]);
        put_digits(&mut text[9..11], self.hour);
        put_digits(&mut text[11..13], self.minute);
        put_digits(&mut text[13..15], self.second);
        ascii(&text)
    }

    /// `YYYYMMDD`, the date in the credential scope.
    pub fn scope_date(&self) -> String {
        let mut text = *b"00000000";
        self.put_date(&mut text);
        ascii(&text)
    }

    // Digits are written directly: core::fmt's padding machinery showed up
    // in profiles of every signature.
    fn put_date(&self, out: &mut [u8]) {
        put_digits(&mut out[..4], self.year);
        put_digits(&mut out[4..6], self.month);
        put_digits(&mut out[6..8], self.day);
    }
}

/// `value` as zero-padded decimal filling `out` (values fit by construction).
fn put_digits(out: &mut [u8], mut value: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn ascii(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let d = AmzDate::parse("20150830T123600Z").unwrap();
        assert_eq!(d.amz_date(), "20150830T123600Z");
        assert_eq!(d.scope_date(), "20150830");
    }

    #[test]
    fn rejects_bad_times() {
        for bad in ["", "20150830T123600", "20150230T000000Z", "20151301T000000Z", "2015083OT123600Z", "20150830T246000Z", "20150830 123600Z", "+0150830T123600Z"] {
            assert!(AmzDate::parse(bad).is_err(), "{bad}");
        }
        assert!(AmzDate::parse("20160229T235959Z").is_ok());
        assert!(AmzDate::parse("21000229T000000Z").is_err());
    }

    #[test]
    fn converts_unix_seconds() {
        assert_eq!(AmzDate::from_unix(0).unwrap().amz_date(), "19700101T000000Z");
        assert_eq!(AmzDate::from_unix(1_440_938_160).unwrap().amz_date(), "20150830T123600Z");
        assert_eq!(AmzDate::from_unix(1_369_353_600).unwrap().amz_date(), "20130524T000000Z");
        assert_eq!(AmzDate::from_unix(951_782_400).unwrap().amz_date(), "20000229T000000Z");
        assert!(AmzDate::from_unix(-1).is_err());
    }
}
