//! Reading `AssumeRoleWithWebIdentity` answers: the credentials of a
//! success, the error document of a refusal, and a plain description of
//! anything else (a proxy's HTML page, an empty or truncated body).
//!
//! Dialects: AWS (`AssumedRoleUser/AssumedRoleId`), Ceph RGW
//! (`AssumeRoleId`, nanosecond `Expiration`, `SubjectFromWebIdentityToken`,
//! `Audience`, `Provider`, `PackedPolicySize`, errors as a bare `<Error>`),
//! MinIO (empty `Arn`/`AssumeRoleId`), moto (microseconds). Elements are
//! matched by local name under their parent, so namespaces and prefixes,
//! element order and unknown elements do not matter.
//!
//! Error messages never quote the body: a misbehaving server or proxy may
//! echo the web identity token, and a half-parsed success holds secrets.

use std::fmt;


use lakeport_xml::{clean, describe_answer, looks_like_html, trim_xml, Element};

use crate::error::StsError;
use crate::time::parse_rfc3339;

/// Temporary credentials from STS. `Debug` hides the secret key and the
/// session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Unix seconds (fractions dropped).
    pub expiration: i64,
    /// `AssumedRoleUser/AssumedRoleId` (AWS, moto) or `AssumeRoleId` (RGW, MinIO).
    pub assumed_role_id: Option<String>,
    pub assumed_role_arn: Option<String>,
    /// `SubjectFromWebIdentityToken`.
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub provider: Option<String>,
    pub packed_policy_size: Option<u32>,
    pub request_id: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .field("assumed_role_id", &self.assumed_role_id)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .field("subject", &self.subject)
            .field("audience", &self.audience)
            .field("provider", &self.provider)
            .field("packed_policy_size", &self.packed_policy_size)
            .field("request_id", &self.request_id)
            .finish()
    }
}

/// Longest server error message kept (some services append stack traces).
const MAX_MESSAGE_CHARS: usize = 1000;
const MAX_CODE_CHARS: usize = 128;

/// Root elements worth naming when an answer holds no credentials: they
/// say which service actually answered.
const KNOWN_ROOTS: &[(&str, &str)] = &[
    ("ListAllMyBucketsResult", "an S3 bucket listing: sts_endpoint points at S3, or the server did not take the request for STS"),
    ("ListBucketResult", "an S3 object listing: check sts_endpoint"),
    ("AssumeRoleWithWebIdentityResponse", "an AssumeRoleWithWebIdentityResponse"),
    ("AssumeRoleResponse", "an AssumeRoleResponse"),
];

#[derive(Default)]
struct Fields {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    expiration: Option<String>,
    assumed_role_id: Option<String>,
    assumed_role_arn: Option<String>,
    subject: Option<String>,
    audience: Option<String>,
    provider: Option<String>,
    packed_policy_size: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    request_id: Option<String>,
    saw_error: bool,
    root: Option<&'static str>,
}

enum Malformed {
    /// The input ended inside the document.
    Truncated,
    /// Not well-formed, or not a single element.
    Invalid,
    /// Two values for one credential field.
    Duplicate(&'static str),
}

fn first(slot: &mut Option<String>, text: String) {
    if slot.is_none() && !text.is_empty() {
        *slot = Some(text);
    }
}

fn unique(slot: &mut Option<String>, text: String, name: &'static str) -> Result<(), Malformed> {
    if slot.is_some() {
        return Err(Malformed::Duplicate(name));
    }
    *slot = Some(text);
    Ok(())
}


impl Fields {
    fn element(&mut self, parent: Option<&str>, name: &str, text: String) -> Result<(), Malformed> {
        let text = trim_xml(&text).to_string();
        match (parent.unwrap_or(""), name) {
            ("Credentials", "AccessKeyId") => unique(&mut self.access_key_id, text, "AccessKeyId")?,
            ("Credentials", "SecretAccessKey") => unique(&mut self.secret_access_key, text, "SecretAccessKey")?,
            ("Credentials", "SessionToken") => unique(&mut self.session_token, text, "SessionToken")?,
            ("Credentials", "Expiration") => unique(&mut self.expiration, text, "Expiration")?,
            ("AssumedRoleUser", "Arn") => first(&mut self.assumed_role_arn, text),
            ("AssumedRoleUser", "AssumedRoleId" | "AssumeRoleId") => first(&mut self.assumed_role_id, text),
            (p, "SubjectFromWebIdentityToken") if p.ends_with("Result") => first(&mut self.subject, text),
            (p, "Audience") if p.ends_with("Result") => first(&mut self.audience, text),
            (p, "Provider") if p.ends_with("Result") => first(&mut self.provider, text),
            (p, "PackedPolicySize") if p.ends_with("Result") => first(&mut self.packed_policy_size, text),
            ("Error", "Code") => first(&mut self.error_code, text),
            ("Error", "Message") => first(&mut self.error_message, text),
            (_, "RequestId" | "RequestID") => first(&mut self.request_id, text),
            (_, "Error") => self.saw_error = true,
            _ => {}
        }
        Ok(())
    }
}


fn known_root(name: &str) -> Option<&'static str> {
    KNOWN_ROOTS.iter().find(|(n, _)| *n == name).map(|(_, what)| *what)
}

/// Reads the document and hands every element, with its parent's name, to
/// [`Fields::element`] in the order the elements close.
fn read_document(text: &str) -> Result<Fields, Malformed> {
    let root = lakeport_xml::parse_document(text).map_err(|e| match e {
        lakeport_xml::Malformed::Truncated => Malformed::Truncated,
        lakeport_xml::Malformed::Invalid | lakeport_xml::Malformed::TooLarge => Malformed::Invalid,
    })?;
    let mut fields = Fields { root: known_root(&root.name), ..Fields::default() };
    visit(&mut fields, None, &root)?;
    Ok(fields)
}

fn visit(fields: &mut Fields, parent: Option<&str>, element: &Element) -> Result<(), Malformed> {
    for child in &element.children {
        visit(fields, Some(&element.name), child)?;
    }
    fields.element(parent, &element.name, element.text.clone())
}

/// What a status without an STS answer suggests.
fn status_hint(status: u16) -> &'static str {
    match status {
        200..=299 => "check that sts_endpoint is the STS service",
        300..=399 => "a redirect: set sts_endpoint to the final URL (often https:// instead of http://)",
        401 | 403 => "the endpoint or a proxy in front of it refused the request: check sts_endpoint",
        404 | 405 => "nothing answers STS requests there: check sts_endpoint",
        413 | 414 | 431 => "the request was too large for the server or a proxy",
        429 => "too many requests: wait a little and try again",
        502..=504 => "a proxy or load balancer could not reach the STS service: try again later, or check sts_endpoint",
        500..=599 => "the server failed: try again later",
        _ => "check sts_endpoint",
    }
}

fn invalid(status: u16, content_type: Option<&str>, what: &str, hint: &str) -> StsError {
    StsError::InvalidResponse(format!("the STS endpoint answered {} with {what}; {hint}", describe_answer(status, content_type)))
}

/// A credential that goes into HTTP headers: visible ASCII only. Servers
/// that wrap long base64 tokens over lines get the line breaks removed.
fn credential(value: Option<String>) -> Option<Result<String, ()>> {
    let v: String = value?.chars().filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n')).collect();
    if v.is_empty() {
        return None;
    }
    Some(if v.bytes().all(|b| b.is_ascii_graphic()) { Ok(v) } else { Err(()) })
}

/// Timestamps are quoted in errors only when they cannot be anything else.
fn quotable_timestamp(s: &str) -> bool {
    s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit() || b"-:.TtZz+ ".contains(&b))
}

/// Reads an `AssumeRoleWithWebIdentity` answer: the status, the
/// `Content-Type` header if any, and the body.
pub fn parse_assume_role_response(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<Credentials, StsError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(status, content_type, "an empty body", status_hint(status)));
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(invalid(status, content_type, "a body that is not UTF-8 text", status_hint(status)));
    };
    let trimmed = text.trim_start();
    if looks_like_html(content_type, trimmed) {
        return Err(invalid(status, content_type, "an HTML page instead of STS XML (often a proxy's error page)", status_hint(status)));
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return Err(invalid(status, content_type, "JSON instead of STS XML", status_hint(status)));
    }
    if !trimmed.starts_with('<') {
        return Err(invalid(status, content_type, "a body that is not XML", status_hint(status)));
    }
    let fields = match read_document(trimmed) {
        Ok(f) => f,
        Err(Malformed::Truncated) => {
            return Err(invalid(
                status,
                content_type,
                "truncated XML (the answer ended early)",
                "try again; if it persists, check proxies between here and the STS service",
            ))
        }
        Err(Malformed::Invalid) => return Err(invalid(status, content_type, "malformed XML", status_hint(status))),
        Err(Malformed::Duplicate(name)) => {
            return Err(invalid(
                status,
                content_type,
                &format!("XML that holds more than one {name}"),
                "the STS service or a proxy is misbehaving",
            ))
        }
    };

    let request_id = fields.request_id.as_deref().map(|r| clean(r, MAX_CODE_CHARS));
    if fields.error_code.is_some() || (fields.saw_error && fields.error_message.is_some()) {
        return Err(StsError::Sts {
            code: fields.error_code.as_deref().map_or_else(|| "UnknownError".to_string(), |c| clean(c, MAX_CODE_CHARS)),
            message: fields.error_message.as_deref().map(|m| clean(m, MAX_MESSAGE_CHARS)).unwrap_or_default(),
            status,
            request_id,
        });
    }
    if !(200..300).contains(&status) {
        return Err(invalid(status, content_type, "XML that holds no STS error", status_hint(status)));
    }

    let access_key_id = credential(fields.access_key_id);
    let secret_access_key = credential(fields.secret_access_key);
    let session_token = credential(fields.session_token);
    let expiration = fields.expiration.filter(|e| !e.is_empty());
    if access_key_id.is_none() && secret_access_key.is_none() && session_token.is_none() && expiration.is_none() {
        let what = match fields.root {
            Some(root) => format!("XML without credentials ({root})"),
            None => "XML without credentials or an STS error".to_string(),
        };
        return Err(invalid(status, content_type, &what, status_hint(status)));
    }
    let missing: Vec<&str> = [
        ("AccessKeyId", access_key_id.is_none()),
        ("SecretAccessKey", secret_access_key.is_none()),
        ("SessionToken", session_token.is_none()),
        ("Expiration", expiration.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(n, _)| *n)
    .collect();
    if !missing.is_empty() {
        return Err(StsError::InvalidResponse(format!(
            "the STS answer ({}) has credentials without {}; the STS service or a proxy is misbehaving",
            describe_answer(status, content_type),
            missing.join(", ")
        )));
    }
    let unusable =
        |name: &str| StsError::InvalidResponse(format!("the STS answer's {name} holds characters that cannot be sent in HTTP headers"));
    let access_key_id = access_key_id.unwrap_or(Err(())).map_err(|()| unusable("AccessKeyId"))?;
    let secret_access_key = secret_access_key.unwrap_or(Err(())).map_err(|()| unusable("SecretAccessKey"))?;
    let session_token = session_token.unwrap_or(Err(())).map_err(|()| unusable("SessionToken"))?;
    let expiration_text = expiration.unwrap_or_default();
    let expiration = parse_rfc3339(&expiration_text).ok_or_else(|| {
        StsError::InvalidResponse(if quotable_timestamp(&expiration_text) {
            format!("the STS answer's Expiration '{expiration_text}' is not an RFC 3339 timestamp")
        } else {
            "the STS answer's Expiration is not an RFC 3339 timestamp".to_string()
        })
    })?;
    let optional = |v: Option<String>| v.map(|s| clean(&s, MAX_MESSAGE_CHARS)).filter(|s| !s.is_empty());
    Ok(Credentials {
        access_key_id,
        secret_access_key,
        session_token,
        expiration,
        assumed_role_id: optional(fields.assumed_role_id),
        assumed_role_arn: optional(fields.assumed_role_arn),
        subject: optional(fields.subject),
        audience: optional(fields.audience),
        provider: optional(fields.provider),
        packed_policy_size: fields.packed_policy_size.and_then(|p| p.parse().ok()),
        request_id,
    })
}

/// [`parse_assume_role_response`] on a whole [`lakeport_http::HttpResponse`].
pub fn parse_http_response(response: &lakeport_http::HttpResponse) -> Result<Credentials, StsError> {
    parse_assume_role_response(response.status, response.header("content-type"), &response.body)
}
