//! RFC 3339 timestamps as STS servers write them: `2024-01-01T12:00:00Z`
//! (AWS, MinIO), with microseconds (moto) or nanoseconds (Ceph RGW), or
//! with a numeric offset. Strict: no missing offset, no missing seconds, no
//! empty fraction; 0–9 fractional digits, which are dropped (whole seconds).

use lakeport_calendar::{parse_date_time, DateTimeForm};

/// Unix seconds of an RFC 3339 date-time, or `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    parse_date_time(text, DateTimeForm::Rfc3339)
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
