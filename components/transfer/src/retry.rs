//! When to try a request again, and how long to wait first.
//!
//! Transient failures (no answer, a reset connection, timeouts, HTTP
//! 500/502/503/504, 429, `SlowDown`, `RequestTimeout`, `InternalError`)
//! are retried with exponential backoff and full jitter: the wait is drawn
//! uniformly from `0..=min(max_delay, base × 2^(n-1))` before the n-th
//! retry, so parallel workers that failed together do not return together.
//! The random value is passed in, which keeps this deterministic in tests.
//!
//! `RequestTimeTooSkewed` is retried once, signed with the server's clock;
//! `ExpiredToken` once, after the caller renews the credentials. Every
//! other refusal is final: repeating it cannot change the answer.

use crate::error::{S3ErrorKind, TransferError, TransportKind};
use crate::time::parse_http_date;

pub use lakeport_http::retry::{Jitter, RetryPolicy};

/// What kind of failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// Worth repeating after a pause.
    Transient,
    /// The request was signed with a clock too far from the server's.
    ClockSkew,
    /// The temporary credentials expired.
    ExpiredCredentials,
    /// Repeating cannot help.
    Permanent,
}

/// Farthest S3 lets a request's time be from its own (15 minutes).
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// [`classify`], also knowing the local clock: a 403 whose `Date` is further
/// from it than S3 allows is taken for clock skew even without the
/// `RequestTimeTooSkewed` document — a HEAD answer has no body to say so.
pub fn classify_at(error: &TransferError, local_now: i64) -> FailureClass {
    match (classify(error), error.s3()) {
        (FailureClass::Permanent, Some(e)) if e.status == 403 && e.server_time.is_some_and(|t| (t - local_now).abs() > MAX_CLOCK_SKEW_SECS) => {
            FailureClass::ClockSkew
        }
        (class, _) => class,
    }
}

pub fn classify(error: &TransferError) -> FailureClass {
    match error {
        TransferError::Transport { kind: TransportKind::Denied | TransportKind::TlsCertificate, .. } => FailureClass::Permanent,
        TransferError::Transport { .. } => FailureClass::Transient,
        TransferError::InvalidResponse { status, .. } if retryable_status(*status) => FailureClass::Transient,
        TransferError::S3(e) => match e.kind() {
            S3ErrorKind::RequestTimeTooSkewed => FailureClass::ClockSkew,
            S3ErrorKind::ExpiredToken => FailureClass::ExpiredCredentials,
            S3ErrorKind::SlowDown | S3ErrorKind::RequestTimeout | S3ErrorKind::InternalError | S3ErrorKind::ServiceUnavailable => {
                FailureClass::Transient
            }
            _ if retryable_status(e.status) => FailureClass::Transient,
            _ => FailureClass::Permanent,
        },
        _ => FailureClass::Permanent,
    }
}

/// An `InvalidAccessKeyId` answer for keys that already worked in this
/// session: temporary keys the server forgot once they expired (Ceph RGW
/// drops an expired STS session's key), renewed like `ExpiredToken`. Keys
/// that never worked stay a plain refusal: renewing cannot fix a wrong key.
pub fn forgotten_keys_as_expired(error: TransferError, keys_worked: bool) -> TransferError {
    match error {
        TransferError::S3(mut e) if keys_worked && e.kind() == S3ErrorKind::InvalidAccessKeyId => {
            e.message = format!("{} (InvalidAccessKeyId for keys that worked earlier in this transfer)", e.message.trim_end_matches('.'));
            e.code = "ExpiredToken".into();
            TransferError::S3(e)
        }
        e => e,
    }
}

/// Statuses that say "not now" rather than "no".
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// What the caller should do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait, then sign and send the request again.
    Retry { after_ms: u64 },
    /// Set this clock offset (server minus local seconds, see
    /// [`crate::requests::S3Requests::set_clock_offset`]), sign again and
    /// resend at once.
    FixClockAndRetry { offset_secs: i64 },
    /// Get fresh credentials, sign again and resend.
    RenewCredentialsAndRetry,
    /// Report the error.
    GiveUp,
}

/// The attempts of one request so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Failed attempts.
    pub failures: u32,
    pub clock_fixed: bool,
    pub credentials_renewed: bool,
}

/// S3's retry decisions, on the shared [`RetryPolicy`].
pub trait S3Retry {
    /// Decides after a failed attempt. `local_now` is the local clock (Unix
    /// seconds) when the answer came; `random` any random value.
    fn decide(&self, attempts: &mut Attempts, error: &TransferError, local_now: i64, random: u64) -> RetryDecision;

    /// [`S3Retry::decide`] for one piece (part or range) of a transfer that
    /// fails as a whole on [`RetryDecision::GiveUp`]. `attempts` is the
    /// piece's record, or the driver's misuse when it was not in flight;
    /// the transfer's first fatal error is kept in `failure`.
    fn decide_for_piece(
        &self,
        attempts: Result<&mut Attempts, TransferError>,
        failure: &mut Option<TransferError>,
        error: &TransferError,
        local_now: i64,
        random: u64,
    ) -> RetryDecision;
}

impl S3Retry for RetryPolicy {
    fn decide(&self, attempts: &mut Attempts, error: &TransferError, local_now: i64, random: u64) -> RetryDecision {
        attempts.failures += 1;
        match classify_at(error, local_now) {
            FailureClass::ClockSkew if !attempts.clock_fixed => {
                let server = error.s3().and_then(|e| e.server_time);
                match server {
                    Some(server) => {
                        attempts.clock_fixed = true;
                        RetryDecision::FixClockAndRetry { offset_secs: clock_offset(server, local_now) }
                    }
                    None => RetryDecision::GiveUp,
                }
            }
            FailureClass::ExpiredCredentials if !attempts.credentials_renewed => {
                attempts.credentials_renewed = true;
                RetryDecision::RenewCredentialsAndRetry
            }
            FailureClass::Transient if attempts.failures < self.max_attempts => {
                RetryDecision::Retry { after_ms: self.backoff_ms(attempts.failures, random) }
            }
            _ => RetryDecision::GiveUp,
        }
    }

    fn decide_for_piece(
        &self,
        attempts: Result<&mut Attempts, TransferError>,
        failure: &mut Option<TransferError>,
        error: &TransferError,
        local_now: i64,
        random: u64,
    ) -> RetryDecision {
        let decision = match attempts {
            Ok(attempts) => self.decide(attempts, error, local_now, random),
            Err(usage) => {
                failure.get_or_insert(usage);
                return RetryDecision::GiveUp;
            }
        };
        if decision == RetryDecision::GiveUp {
            failure.get_or_insert_with(|| error.clone());
        }
        decision
    }
}

/// Seconds to add to the local clock to match the server's.
pub fn clock_offset(server_time: i64, local_now: i64) -> i64 {
    server_time - local_now
}

/// [`clock_offset`] from an HTTP `Date` header (RFC 1123).
pub fn clock_offset_from_date(date: &str, local_now: i64) -> Option<i64> {
    parse_http_date(date).map(|server| clock_offset(server, local_now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::S3Error;

    fn s3(status: u16, code: &str) -> TransferError {
        TransferError::from(S3Error::new(status, code, ""))
    }

    fn transport(kind: TransportKind) -> TransferError {
        TransferError::Transport { kind, message: "x".into() }
    }

    #[test]
    fn an_unknown_access_key_is_renewed_only_when_it_worked_before() {
        let p = RetryPolicy::default();
        let refused = || s3(403, "InvalidAccessKeyId");
        assert_eq!(p.decide(&mut Attempts::default(), &forgotten_keys_as_expired(refused(), false), 0, 0), RetryDecision::GiveUp);
        let forgotten = forgotten_keys_as_expired(refused(), true);
        assert_eq!(p.decide(&mut Attempts::default(), &forgotten, 0, 0), RetryDecision::RenewCredentialsAndRetry);
        assert!(forgotten.to_string().contains("InvalidAccessKeyId"), "{forgotten}");
        assert_eq!(forgotten_keys_as_expired(s3(403, "AccessDenied"), true), s3(403, "AccessDenied"));
    }

    #[test]
    fn classifies_outcomes() {
        use FailureClass::*;
        for (e, class) in [
            (transport(TransportKind::ConnectionReset), Transient),
            (transport(TransportKind::Timeout), Transient),
            (transport(TransportKind::Dns), Transient),
            (transport(TransportKind::Other), Transient),
            (transport(TransportKind::Denied), Permanent),
            (transport(TransportKind::TlsCertificate), Permanent),
            (s3(503, "SlowDown"), Transient),
            (s3(400, "RequestTimeout"), Transient),
            (s3(500, "InternalError"), Transient),
            (s3(502, "BadGateway"), Transient),
            (s3(504, "GatewayTimeout"), Transient),
            (s3(429, "TooManyRequests"), Transient),
            (s3(403, "RequestTimeTooSkewed"), ClockSkew),
            (s3(400, "ExpiredToken"), ExpiredCredentials),
            (s3(404, "NoSuchKey"), Permanent),
            (s3(403, "AccessDenied"), Permanent),
            (s3(403, "SignatureDoesNotMatch"), Permanent),
            (s3(400, "EntityTooSmall"), Permanent),
            (s3(400, "BadDigest"), Permanent),
            (s3(501, "NotImplemented"), Permanent),
            (TransferError::InvalidResponse { status: 502, message: "html".into() }, Transient),
            (TransferError::InvalidResponse { status: 200, message: "html".into() }, Permanent),
            (TransferError::InvalidInput("x".into()), Permanent),
            (TransferError::Integrity("x".into()), Permanent),
        ] {
            assert_eq!(classify(&e), class, "{e:?}");
        }
    }

    #[test]
    fn backoff_is_full_jitter_within_bounds() {
        let p = RetryPolicy { max_attempts: 10, base_delay_ms: 100, max_delay_ms: 1000 };
        assert_eq!(p.backoff_ms(1, 0), 0);
        assert_eq!(p.backoff_ms(1, 100), 100);
        assert_eq!(p.backoff_ms(1, 101), 0);
        assert_eq!(p.backoff_ms(3, 399), 399);
        assert_eq!(p.backoff_ms(30, u64::MAX), u64::MAX % 1001);
        let mut rng = Jitter::new(7);
        for retry in 1..12 {
            let ceiling = (100u64 << (retry - 1)).min(1000);
            let draws: Vec<u64> = (0..2000).map(|_| p.backoff_ms(retry, rng.next_u64())).collect();
            assert!(draws.iter().all(|&d| d <= ceiling));
            // Spread over the whole window, not clustered at its top.
            assert!(draws.iter().any(|&d| d < ceiling / 4) && draws.iter().any(|&d| d > ceiling * 3 / 4), "retry {retry}");
        }
        // Deterministic for a seed.
        let (mut a, mut b) = (Jitter::new(42), Jitter::new(42));
        assert_eq!((0..5).map(|_| a.next_u64()).collect::<Vec<_>>(), (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn stops_after_max_attempts() {
        let p = RetryPolicy { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 100 };
        let mut a = Attempts::default();
        let e = s3(503, "SlowDown");
        assert!(matches!(p.decide(&mut a, &e, 0, 5), RetryDecision::Retry { after_ms: 5 }));
        assert!(matches!(p.decide(&mut a, &e, 0, 15), RetryDecision::Retry { after_ms: 15 }));
        assert_eq!(p.decide(&mut a, &e, 0, 5), RetryDecision::GiveUp);
        assert_eq!(p.decide(&mut Attempts::default(), &s3(404, "NoSuchKey"), 0, 5), RetryDecision::GiveUp);
    }

    #[test]
    fn a_bodiless_403_far_from_the_server_date_is_clock_skew() {
        let p = RetryPolicy::default();
        let mut head = S3Error::new(403, "Forbidden", "");
        head.server_time = Some(1_714_564_800);
        let e = TransferError::from(head.clone());
        let two_hours_ahead = 1_714_564_800 + 7200;
        assert_eq!(p.decide(&mut Attempts::default(), &e, two_hours_ahead, 0), RetryDecision::FixClockAndRetry { offset_secs: -7200 });
        // Within S3's 15 minutes a 403 is what it says: refused.
        assert_eq!(p.decide(&mut Attempts::default(), &e, 1_714_564_800 + 60, 0), RetryDecision::GiveUp);
        // Fixed once only.
        let mut attempts = Attempts::default();
        p.decide(&mut attempts, &e, two_hours_ahead, 0);
        assert_eq!(p.decide(&mut attempts, &e, two_hours_ahead, 0), RetryDecision::GiveUp);
    }

    #[test]
    fn clock_skew_is_fixed_once_from_the_server_time() {
        let p = RetryPolicy::default();
        let mut a = Attempts::default();
        let mut e = S3Error::new(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.");
        e.server_time = Some(1_714_564_800);
        let e = TransferError::from(e);
        assert_eq!(p.decide(&mut a, &e, 1_714_564_800 - 3600, 0), RetryDecision::FixClockAndRetry { offset_secs: 3600 });
        assert_eq!(p.decide(&mut a, &e, 1_714_564_800, 0), RetryDecision::GiveUp);
        // Without the server's time there is nothing to correct with.
        assert_eq!(p.decide(&mut Attempts::default(), &s3(403, "RequestTimeTooSkewed"), 0, 0), RetryDecision::GiveUp);
    }

    #[test]
    fn expired_credentials_are_renewed_once() {
        let p = RetryPolicy::default();
        let mut a = Attempts::default();
        let e = s3(400, "ExpiredToken");
        assert_eq!(p.decide(&mut a, &e, 0, 0), RetryDecision::RenewCredentialsAndRetry);
        assert_eq!(p.decide(&mut a, &e, 0, 0), RetryDecision::GiveUp);
    }

    #[test]
    fn clock_offset_from_the_date_header() {
        assert_eq!(clock_offset_from_date("Wed, 01 May 2024 12:00:00 GMT", 1_714_564_800 + 900), Some(-900));
        assert_eq!(clock_offset_from_date("Wed, 01 May 2024 12:00:00 GMT", 1_714_564_800), Some(0));
        assert_eq!(clock_offset_from_date("not a date", 0), None);
    }
}
