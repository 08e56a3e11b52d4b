//! The two timestamp forms S3 answers carry: HTTP dates (`Date`,
//! `Last-Modified`, parsed in [`lakeport_http::date`]) and ISO 8601
//! (`LastModified` in listings, `ServerTime`).

use lakeport_calendar::{parse_date_time, DateTimeForm};
pub use lakeport_http::date::parse_http_date;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to Unix seconds
/// (fractions dropped), as S3 writes `LastModified`, `Initiated` and
/// `ServerTime`. A missing zone is read as UTC (some servers omit it).
pub fn parse_iso8601(s: &str) -> Option<i64> {
    parse_date_time(s, DateTimeForm::S3)
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
