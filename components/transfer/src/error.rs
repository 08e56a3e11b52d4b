//! Typed errors. Every message says what to do; none quotes a response
//! body (a proxy page or a half-read answer may echo credentials), only the
//! `Code` and `Message` of the server's own S3 error document.

use std::fmt;

/// Why a request got no HTTP answer. The bindings map `wasi:http` error
/// codes to these; [`crate::retry`] decides from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// The host's egress policy refused the host: never retried.
    Denied,
    /// The name did not resolve.
    Dns,
    ConnectionRefused,
    /// The connection was reset or closed before the answer was complete.
    ConnectionReset,
    Timeout,
    /// The TLS certificate is not trusted: retrying cannot help.
    TlsCertificate,
    /// Anything else (a TLS handshake failure, an I/O error).
    Other,
}

/// The S3 error codes this crate gives advice for. [`S3Error::code`] keeps
/// the server's exact code; this is the family it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3ErrorKind {
    NoSuchBucket,
    NoSuchKey,
    /// A 404 answer to HEAD, which has no body to say what is missing.
    NotFound,
    NoSuchUpload,
    AccessDenied,
    InvalidAccessKeyId,
    SignatureDoesNotMatch,
    ExpiredToken,
    InvalidToken,
    RequestTimeTooSkewed,
    SlowDown,
    RequestTimeout,
    InternalError,
    ServiceUnavailable,
    EntityTooSmall,
    EntityTooLarge,
    InvalidPart,
    InvalidPartOrder,
    BucketNotEmpty,
    BucketAlreadyOwnedByYou,
    BucketAlreadyExists,
    InvalidBucketName,
    InvalidLocationConstraint,
    InvalidRange,
    PreconditionFailed,
    /// The body did not match its Content-MD5 or SHA-256.
    BadDigest,
    /// The bucket lives in another region or behind another endpoint.
    WrongRegion,
    QuotaExceeded,
    NotImplemented,
    Other,
}

impl S3ErrorKind {
    /// The family of an S3 error code (AWS, Ceph RGW, MinIO spellings).
    pub fn from_code(code: &str) -> Self {
        use S3ErrorKind::*;
        match code {
            "NoSuchBucket" => NoSuchBucket,
            "NoSuchKey" => NoSuchKey,
            "NotFound" => NotFound,
            "NoSuchUpload" => NoSuchUpload,
            "AccessDenied" | "Forbidden" | "AllAccessDisabled" => AccessDenied,
            "InvalidAccessKeyId" => InvalidAccessKeyId,
            "SignatureDoesNotMatch" => SignatureDoesNotMatch,
            "ExpiredToken" | "TokenRefreshRequired" => ExpiredToken,
            "InvalidToken" => InvalidToken,
            "RequestTimeTooSkewed" => RequestTimeTooSkewed,
            "SlowDown" | "Throttling" | "ThrottlingException" | "TooManyRequests" | "RequestLimitExceeded" => SlowDown,
            "RequestTimeout" => RequestTimeout,
            "InternalError" | "InternalFailure" => InternalError,
            "ServiceUnavailable" | "XMinioServerNotInitialized" => ServiceUnavailable,
            "EntityTooSmall" => EntityTooSmall,
            "EntityTooLarge" => EntityTooLarge,
            "InvalidPart" => InvalidPart,
            "InvalidPartOrder" => InvalidPartOrder,
            "BucketNotEmpty" => BucketNotEmpty,
            "BucketAlreadyOwnedByYou" => BucketAlreadyOwnedByYou,
            "BucketAlreadyExists" => BucketAlreadyExists,
            "InvalidBucketName" => InvalidBucketName,
            "InvalidLocationConstraint" | "IllegalLocationConstraintException" => InvalidLocationConstraint,
            "InvalidRange" => InvalidRange,
            "PreconditionFailed" => PreconditionFailed,
            "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch" => BadDigest,
            "PermanentRedirect" | "AuthorizationHeaderMalformed" => WrongRegion,
            "QuotaExceeded" => QuotaExceeded,
            "NotImplemented" => NotImplemented,
            _ => Other,
        }
    }
}

/// An S3 refusal: the server's error document, or for a HEAD (which has no
/// body) the code S3 SDKs derive from the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Error {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    /// The server's clock (Unix seconds): `ServerTime` of a
    /// `RequestTimeTooSkewed` document, else the answer's `Date` header.
    pub server_time: Option<i64>,
    /// The bucket's region, from `x-amz-bucket-region` or `<Region>`.
    pub region: Option<String>,
    /// `<Endpoint>` of a `PermanentRedirect`.
    pub endpoint: Option<String>,
}

impl S3Error {
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        S3Error {
            status,
            code: code.into(),
            message: message.into(),
            request_id: None,
            server_time: None,
            region: None,
            endpoint: None,
        }
    }

    pub fn kind(&self) -> S3ErrorKind {
        S3ErrorKind::from_code(&self.code)
    }

    /// What to do about this refusal, if known.
    pub fn hint(&self) -> Option<String> {
        use S3ErrorKind::*;
        let hint = match self.kind() {
            NoSuchBucket => "the bucket does not exist: check the bucket name and the endpoint, or create the bucket first",
            NoSuchKey => "no object has this key: keys are case-sensitive; list the prefix to see what exists",
            NotFound => "the bucket or object does not exist: check the name (keys are case-sensitive)",
            NoSuchUpload => {
                "the multipart upload no longer exists (completed, aborted, or removed by a lifecycle rule): start the upload again"
            }
            AccessDenied => {
                "these credentials may not do this here: check the bucket policy and your role (a session policy can narrow temporary credentials)"
            }
            InvalidAccessKeyId => {
                "the server does not know this access key: the credentials belong to another endpoint, or temporary credentials expired; get fresh credentials"
            }
            SignatureDoesNotMatch => {
                "check the secret key and the region; a proxy that rewrites the path or headers also breaks signatures"
            }
            ExpiredToken => "the temporary credentials have expired: get fresh credentials and try again",
            InvalidToken => "the session token is not valid for this endpoint: get fresh credentials for it",
            RequestTimeTooSkewed => "this machine's clock is too far from the server's: synchronise it (NTP)",
            SlowDown => "the server is throttling requests: use fewer parallel transfers, wait and try again",
            RequestTimeout => "the body was not sent in time: try again, with fewer parallel transfers on a slow link",
            InternalError | ServiceUnavailable => "the server failed: try again later",
            EntityTooSmall => "every part but the last must be at least 5 MiB: use a larger part size",
            EntityTooLarge => "the object or part is larger than the server allows: use multipart with smaller parts",
            InvalidPart => "a part is missing or its ETag does not match the uploaded part: send that part again",
            InvalidPartOrder => "the parts must be listed in ascending order of part number",
            BucketNotEmpty => "delete the objects (and unfinished multipart uploads) in the bucket first",
            BucketAlreadyOwnedByYou => "you already own this bucket: nothing to do",
            BucketAlreadyExists => "bucket names are shared by all users of this server: choose another name",
            InvalidBucketName => "use 3-63 characters: lowercase letters, digits, '.' and '-', starting and ending with a letter or digit",
            InvalidLocationConstraint => {
                "the region does not match the server's: on Ceph RGW the region is the zonegroup name (often 'default')"
            }
            InvalidRange => "the requested byte range is outside the object: check its size",
            PreconditionFailed => "the object changed since it was looked at: start the transfer again",
            BadDigest => "the data arrived damaged or changed while being sent: try again, and make sure the source is not being modified",
            WrongRegion => {
                return Some(match (&self.region, &self.endpoint) {
                    (Some(r), _) => format!("the bucket is in region '{r}': set the region to it"),
                    (None, Some(e)) => format!("the bucket must be reached through '{e}': set the endpoint (and region) to it"),
                    (None, None) => "the bucket is in another region or behind another endpoint: check region and endpoint".into(),
                })
            }
            QuotaExceeded => "the bucket or user quota is exhausted: delete data or ask the administrators for more",
            NotImplemented => "this server does not support the operation",
            Other if self.status >= 500 => "the server failed: try again later",
            Other => return None,
        };
        Some(hint.into())
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3 refused (HTTP {}, {})", self.status, self.code)?;
        let message = self.message.trim_end_matches('.');
        match (message.is_empty(), self.hint()) {
            (false, Some(h)) => write!(f, ": {message}; {h}")?,
            (false, None) => write!(f, ": {message}")?,
            (true, Some(h)) => write!(f, ": {h}")?,
            (true, None) => {}
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Input that cannot work: a bad bucket name, URL, part size, key.
    InvalidInput(String),
    /// No HTTP answer (mapped from the bindings' transport errors).
    Transport { kind: TransportKind, message: String },
    /// An answer that is not what S3 says: a proxy's HTML page, an empty or
    /// truncated body, XML missing a required element.
    InvalidResponse { status: u16, message: String },
    /// S3 refused (boxed: the error document is large, the other variants small).
    S3(Box<S3Error>),
    /// Data that does not match: sizes, ETags, a resumed upload's parts.
    Integrity(String),
    /// A transfer state machine used out of order (a bug in the driver).
    Usage(String),
    /// Reading the local source or writing the local destination failed.
    LocalIo(String),
}

impl TransferError {
    pub fn s3(&self) -> Option<&S3Error> {
        match self {
            TransferError::S3(e) => Some(e),
            _ => None,
        }
    }

    /// The bucket or object does not exist (`NoSuchKey`, `NoSuchBucket`,
    /// or a 404 answer to HEAD).
    pub fn is_not_found(&self) -> bool {
        self.s3().is_some_and(|e| matches!(e.kind(), S3ErrorKind::NoSuchKey | S3ErrorKind::NoSuchBucket | S3ErrorKind::NotFound))
    }

    /// The HTTP status of an answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            TransferError::S3(e) => Some(e.status),
            TransferError::InvalidResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<S3Error> for TransferError {
    fn from(e: S3Error) -> Self {
        TransferError::S3(Box::new(e))
    }
}

impl From<&lakeport_http::HttpError> for TransferError {
    fn from(e: &lakeport_http::HttpError) -> Self {
        use lakeport_http::{HttpError, TransportKind as K};
        match e {
            HttpError::Denied { host } => TransferError::Transport {
                kind: TransportKind::Denied,
                message: format!("requests to {host} are not allowed for this profile: check the endpoint URL"),
            },
            HttpError::Transport { kind, message } => {
                let kind = match kind {
                    K::Dns => TransportKind::Dns,
                    K::Refused => TransportKind::ConnectionRefused,
                    K::Reset => TransportKind::ConnectionReset,
                    K::Timeout => TransportKind::Timeout,
                    K::TlsCertificate => TransportKind::TlsCertificate,
                    K::Other => TransportKind::Other,
                };
                TransferError::Transport { kind, message: message.clone() }
            }
            HttpError::Local(message) => TransferError::LocalIo(message.clone()),
        }
    }
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::InvalidInput(m)
            | TransferError::Integrity(m)
            | TransferError::Usage(m)
            | TransferError::LocalIo(m)
            | TransferError::InvalidResponse { message: m, .. }
            | TransferError::Transport { message: m, .. } => f.write_str(m),
            TransferError::S3(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TransferError {}

pub type Result<T, E = TransferError> = std::result::Result<T, E>;

pub(crate) fn invalid_input(message: impl Into<String>) -> TransferError {
    TransferError::InvalidInput(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_hints_and_request_ids() {
        let mut e = S3Error::new(404, "NoSuchKey", "The specified key does not exist.");
        e.request_id = Some("tx0001".into());
        assert_eq!(
            e.to_string(),
            "S3 refused (HTTP 404, NoSuchKey): The specified key does not exist; no object has this key: \
             keys are case-sensitive; list the prefix to see what exists [request id tx0001]"
        );
        assert_eq!(S3Error::new(400, "Odd", "").to_string(), "S3 refused (HTTP 400, Odd)");
        assert!(S3Error::new(503, "Odd", "x").to_string().ends_with("try again later"));
        let mut e = S3Error::new(301, "PermanentRedirect", "");
        e.region = Some("eu-central-1".into());
        assert!(e.to_string().contains("region 'eu-central-1'"));
    }

    #[test]
    fn kinds_cover_server_spellings() {
        assert_eq!(S3ErrorKind::from_code("Forbidden"), S3ErrorKind::AccessDenied);
        assert_eq!(S3ErrorKind::from_code("XAmzContentSHA256Mismatch"), S3ErrorKind::BadDigest);
        assert_eq!(S3ErrorKind::from_code("TokenRefreshRequired"), S3ErrorKind::ExpiredToken);
        assert_eq!(S3ErrorKind::from_code("nosuchkey"), S3ErrorKind::Other);
        assert!(TransferError::from(S3Error::new(404, "NotFound", "")).is_not_found());
        assert!(!TransferError::from(S3Error::new(404, "NoSuchUpload", "")).is_not_found());
    }

    #[test]
    fn http_errors_map_to_transport_kinds() {
        let e = TransferError::from(&lakeport_http::HttpError::Denied { host: "s3.example".into() });
        assert!(matches!(e, TransferError::Transport { kind: TransportKind::Denied, .. }));
        assert!(e.to_string().contains("s3.example") && e.to_string().contains("endpoint"));
        let reset = lakeport_http::HttpError::Transport { kind: lakeport_http::TransportKind::Reset, message: "closed".into() };
        assert!(matches!(TransferError::from(&reset), TransferError::Transport { kind: TransportKind::ConnectionReset, .. }));
        let tls = lakeport_http::HttpError::Transport { kind: lakeport_http::TransportKind::TlsCertificate, message: "untrusted".into() };
        assert!(matches!(TransferError::from(&tls), TransferError::Transport { kind: TransportKind::TlsCertificate, .. }));
    }
}
