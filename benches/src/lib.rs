//! The request set of the SigV4 benchmark, and adapters that turn each
//! request into the input of every signer under test: the sigv4 component
//! through the host, the native `lakeport-sigv4` core and `aws-sigv4`.
//! botocore gets the same set as JSON (see [`cases_json`]).
//!
//! Every case is signed at one fixed time so that the signers can be checked
//! to agree byte for byte before anything is timed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

/// 2024-01-15T12:00:00Z.
pub const SIGNING_UNIX: i64 = 1_705_320_000;
pub const SIGNING_AMZ_DATE: &str = "20240115T120000Z";
pub const REGION: &str = "eu-west-1";
pub const SERVICE: &str = "s3";

pub const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A made-up STS session token of realistic length (they run 600-1000+
/// characters of base64).
pub fn session_token() -> String {
    let mut t = String::from("IQoJb3JpZ2luX2VjEJr//////////wEaCWV1LXdlc3QtMSJHMEUCIQD");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // A fixed pseudo-random fill, so every run signs the same bytes.
    let mut x: u32 = 0x9e37_79b9;
    while t.len() < 860 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        t.push(alphabet[(x % 64) as usize] as char);
    }
    t.push_str("==");
    t
}

/// What goes into the payload hash.
#[derive(Clone, Debug)]
pub enum Body {
    /// No body.
    Empty,
    /// A body whose SHA-256 the caller computed beforehand (the native
    /// signers and the component get the hash; botocore, which always hashes
    /// the body itself, gets these bytes).
    Precomputed { sha256: String, bytes: Vec<u8> },
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub method: &'static str,
    /// Absolute URL as sent on the wire (already percent-encoded).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Query signing (a presigned URL) valid for this many seconds.
    pub presign_expires: Option<u32>,
    pub session_token: Option<String>,
}

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// Realistic S3 requests: a ranged GET, a PUT with a precomputed payload
/// hash, a session token and user metadata, a ListObjectsV2 with query
/// parameters, and a presigned GET.
pub fn cases() -> Vec<Case> {
    let bucket = format!("https://lakeport-bench-data.s3.{REGION}.amazonaws.com");
    let csv: Vec<u8> = (0..200)
        .flat_map(|i| format!("{i},2024-01-15T12:{:02}:00Z,sensor-{},{}.{}\n", i % 60, i % 7, 20 + i % 13, i % 10).into_bytes())
        .collect();
    let csv_sha = lakeport_sigv4::payload_sha256(&csv);
    vec![
        Case {
            name: "get_range",
            method: "GET",
            url: format!("{bucket}/warehouse/events/date%3D2024-01-15/part-00017-c000.snappy.parquet"),
            headers: vec![h("Range", "bytes=4194304-8388607"), h("User-Agent", "lakeport/0.1.0")],
            body: Body::Empty,
            presign_expires: None,
            session_token: None,
        },
        Case {
            name: "put_precomputed_token",
            method: "PUT",
            url: format!("{bucket}/uploads/2024/01/15/readings%20batch-0042.csv"),
            headers: vec![
                h("Content-Type", "text/csv"),
                h("Content-Length", &csv.len().to_string()),
                h("x-amz-meta-source", "sensor-gateway-eu-7"),
                h("x-amz-meta-batch-id", "0042  of   0128"),
                h("x-amz-storage-class", "STANDARD_IA"),
            ],
            body: Body::Precomputed { sha256: csv_sha, bytes: csv },
            presign_expires: None,
            session_token: Some(session_token()),
        },
        Case {
            name: "list_objects_v2",
            method: "GET",
            url: format!(
                "{bucket}/?list-type=2&prefix=warehouse%2Fevents%2Fdate%3D2024-01-15%2F&delimiter=%2F&max-keys=1000\
                 &continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2FwmR5a%2BTfcQ%3D&encoding-type=url"
            ),
            headers: vec![h("Accept", "application/xml")],
            body: Body::Empty,
            presign_expires: None,
            session_token: None,
        },
        Case {
            name: "presign_get",
            method: "GET",
            url: format!("{bucket}/exports/report-2024-01.pdf?response-content-disposition=attachment%3B%20filename%3D%22report.pdf%22"),
            headers: vec![],
            body: Body::Empty,
            presign_expires: Some(3600),
            session_token: None,
        },
    ]
}

// ---- the sigv4 component through the host ----

pub mod host {
    use super::*;
    pub use lakeport::sigv4::{Credentials, Payload, SignOptions, SignableRequest, SigningTime};

    pub fn credentials(case: &Case) -> Credentials {
        Credentials {
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SECRET_ACCESS_KEY.into(),
            session_token: case.session_token.clone(),
        }
    }

    pub fn request(case: &Case) -> SignableRequest {
        SignableRequest {
            method: case.method.into(),
            url: case.url.clone(),
            headers: case.headers.clone(),
            payload: match &case.body {
                Body::Empty => Payload::Empty,
                Body::Precomputed { sha256, .. } => Payload::Precomputed(sha256.clone()),
            },
        }
    }

    pub fn options(case: &Case) -> SignOptions {
        SignOptions {
            region: REGION.into(),
            service: SERVICE.into(),
            time: SigningTime::UnixSeconds(SIGNING_UNIX),
            presign_expires: case.presign_expires,
            normalize_path: true,
            sign_body: false,
            sign_session_token: true,
        }
    }
}

// ---- the native lakeport-sigv4 core ----

pub mod native {
    use super::*;
    pub use lakeport_sigv4::{Credentials, Payload, SignOptions, SignableRequest, SigningTime};

    pub fn credentials(case: &Case) -> Credentials {
        Credentials {
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SECRET_ACCESS_KEY.into(),
            session_token: case.session_token.clone(),
        }
    }

    pub fn request(case: &Case) -> SignableRequest {
        SignableRequest {
            method: case.method.into(),
            url: case.url.clone(),
            headers: case.headers.clone(),
            payload: match &case.body {
                Body::Empty => Payload::Empty,
                Body::Precomputed { sha256, .. } => Payload::Precomputed(sha256.clone()),
            },
        }
    }

    pub fn options(case: &Case) -> SignOptions {
        SignOptions {
            presign_expires: case.presign_expires,
            ..SignOptions::s3(REGION, SigningTime::UnixSeconds(SIGNING_UNIX))
        }
    }
}

// ---- aws-sigv4 (the AWS SDK for Rust's signer) ----

pub mod aws {
    use super::*;
    use std::borrow::Cow;

    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningError, SigningParams,
        SigningSettings, UriPathNormalizationMode,
    };
    use aws_sigv4::sign::v4;
    pub use aws_smithy_runtime_api::client::identity::Identity;

    pub fn identity(case: &Case) -> Identity {
        aws_credential_types::Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, case.session_token.clone(), None, "bench").into()
    }

    /// S3's settings, as the SDK's S3 client uses them: `x-amz-content-sha256`
    /// sent, the path encoded once and never normalized.
    pub fn settings(case: &Case) -> SigningSettings {
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        if let Some(expires) = case.presign_expires {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(expires.into()));
        }
        settings
    }

    pub fn signing_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(SIGNING_UNIX as u64)
    }

    pub fn params<'a>(case: &Case, identity: &'a Identity) -> SigningParams<'a> {
        v4::SigningParams::builder()
            .identity(identity)
            .region(REGION)
            .name(SERVICE)
            .time(signing_time())
            .settings(settings(case))
            .build()
            .expect("complete signing params")
            .into()
    }

    pub fn body(case: &Case) -> SignableBody<'_> {
        match (&case.body, case.presign_expires) {
            // Presigned S3 URLs sign UNSIGNED-PAYLOAD.
            (_, Some(_)) => SignableBody::UnsignedPayload,
            (Body::Empty, None) => SignableBody::Bytes(&[]),
            (Body::Precomputed { sha256, .. }, None) => SignableBody::Precomputed(sha256.clone()),
        }
    }

    /// Signs one case; returns the signature.
    pub fn sign(case: &Case, params: &SigningParams<'_>) -> Result<String, SigningError> {
        let request = SignableRequest::new(
            case.method,
            Cow::Borrowed(case.url.as_str()),
            case.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            body(case),
        )?;
        let (_instructions, signature) = aws_sigv4::http_request::sign(request, params)?.into_parts();
        Ok(signature)
    }
}

/// The request set as JSON, with the signature every signer must produce,
/// for the botocore benchmark.
pub fn cases_json(cases: &[Case], signatures: &[String]) -> serde_json::Value {
    let list: Vec<_> = cases
        .iter()
        .zip(signatures)
        .map(|(c, sig)| {
            let (payload_sha256, body) = match &c.body {
                Body::Empty => (None, String::new()),
                Body::Precomputed { sha256, bytes } => (Some(sha256.clone()), String::from_utf8(bytes.clone()).expect("text body")),
            };
            json!({
                "name": c.name,
                "method": c.method,
                "url": c.url,
                "headers": c.headers,
                "body": body,
                "payload_sha256": payload_sha256,
                "presign_expires": c.presign_expires,
                "session_token": c.session_token,
                "signature": sig,
            })
        })
        .collect();
    json!({
        "amz_date": SIGNING_AMZ_DATE,
        "region": REGION,
        "service": SERVICE,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "cases": list,
    })
}
