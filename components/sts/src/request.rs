//! The `AssumeRoleWithWebIdentity` request: an unsigned form POST (the
//! token is the proof of identity), and the role session name derived from
//! the profile or the token's subject.

use std::fmt;

use lakeport_http::{split_url, HttpRequest, HttpResponse};

use crate::error::StsError;
use crate::response::{parse_http_response, Credentials};

pub const ACTION: &str = "AssumeRoleWithWebIdentity";
pub const API_VERSION: &str = "2011-06-15";
/// AWS STS limits for `DurationSeconds` (15 minutes to 12 hours); a role's
/// own maximum may be lower, and the service says so when it is.
pub const MIN_DURATION_SECONDS: u32 = 900;
pub const MAX_DURATION_SECONDS: u32 = 43_200;
/// moto routes unsigned STS calls by this content type (it accepts the
/// charset suffix); AWS SDKs send exactly this.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// Used when neither the profile nor the token's subject gives a name.
pub const FALLBACK_SESSION_NAME: &str = "lakeport";
const MAX_SESSION_NAME: usize = 64;

/// What to ask STS for. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AssumeRoleRequest {
    /// The STS endpoint URL (`https://sts.amazonaws.com/`, RGW's S3 URL).
    pub endpoint: String,
    pub role_arn: String,
    /// The OIDC token (access or ID token, as the STS service expects).
    pub web_identity_token: String,
    /// An explicit session name (the profile's `session_name`).
    pub session_name: Option<String>,
    /// The token's `sub` claim, used for the session name when no explicit
    /// one is given.
    pub subject: Option<String>,
    pub duration_seconds: Option<u32>,
    /// A session policy (IAM policy JSON) further limiting the role.
    pub policy: Option<String>,
    pub provider_id: Option<String>,
}

impl fmt::Debug for AssumeRoleRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRoleRequest")
            .field("endpoint", &self.endpoint)
            .field("role_arn", &self.role_arn)
            .field("web_identity_token", &"<redacted>")
            .field("session_name", &self.session_name)
            .field("subject", &self.subject)
            .field("duration_seconds", &self.duration_seconds)
            .field("policy", &self.policy)
            .field("provider_id", &self.provider_id)
            .finish()
    }
}

fn allowed_in_session_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '=' | ',' | '.' | '@' | '-')
}

/// Keeps `[A-Za-z0-9_=,.@-]`; each run of other characters becomes one `-`
/// (dropped at the ends); at most 64 characters.
fn sanitize_session_name(raw: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in raw.chars() {
        if allowed_in_session_name(c) {
            if gap && !out.is_empty() {
                out.push('-');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
        if out.len() >= MAX_SESSION_NAME {
            break;
        }
    }
    out.truncate(MAX_SESSION_NAME);
    out
}

/// The `RoleSessionName`: the explicit value if it has any usable
/// character, else the token's subject, else `lakeport`; sanitised to what
/// Ceph RGW accepts (2–64 characters of `[A-Za-z0-9_=,.@-]`, a subset of
/// AWS's). A 1-character result gets a `lakeport-` prefix. Deterministic:
/// the same inputs always name the session the same way.
pub fn session_name(explicit: Option<&str>, subject: Option<&str>) -> String {
    for candidate in [explicit, subject].into_iter().flatten() {
        let name = sanitize_session_name(candidate);
        match name.len() {
            0 => continue,
            1 => return format!("{FALLBACK_SESSION_NAME}-{name}"),
            _ => return name,
        }
    }
    FALLBACK_SESSION_NAME.to_string()
}

/// `application/x-www-form-urlencoded` with RFC 3986 escaping: only
/// `A-Za-z0-9-_.~` stay as they are, a space is `%20`. Ceph RGW decodes STS
/// bodies without turning `+` into a space, so `+` is never used for one.
pub fn encode_form(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(name, &mut out);
        out.push('=');
        percent_encode(value, &mut out);
    }
    out
}

fn percent_encode(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl AssumeRoleRequest {
    /// A request with only the required parts.
    pub fn new(endpoint: impl Into<String>, role_arn: impl Into<String>, web_identity_token: impl Into<String>) -> Self {
        AssumeRoleRequest {
            endpoint: endpoint.into(),
            role_arn: role_arn.into(),
            web_identity_token: web_identity_token.into(),
            session_name: None,
            subject: None,
            duration_seconds: None,
            policy: None,
            provider_id: None,
        }
    }

    /// The token as sent: surrounding whitespace (a newline from a token
    /// file) is never part of a JWT.
    fn token(&self) -> &str {
        self.web_identity_token.trim()
    }

    /// Checks what can be checked before asking the server.
    pub fn validate(&self) -> Result<(), StsError> {
        let endpoint = self.endpoint.trim();
        if endpoint.is_empty() {
            return Err(StsError::InvalidInput("no sts_endpoint is set for this profile: set it to the STS service's URL".into()));
        }
        if endpoint.contains('@') {
            // Never echo what may be user:password@.
            return Err(StsError::InvalidInput("sts_endpoint must not contain user information ('user@'): use a plain http(s) URL".into()));
        }
        if split_url(endpoint).is_none() || endpoint.chars().any(|c| c.is_whitespace() || c.is_control() || c == '#') {
            return Err(StsError::InvalidInput(format!(
                "sts_endpoint '{}' is not an http(s) URL (e.g. https://sts.example.org/)",
                endpoint.chars().filter(|c| !c.is_control()).collect::<String>()
            )));
        }
        if self.role_arn.trim().is_empty() {
            return Err(StsError::InvalidInput(
                "no role_arn is set for this profile: set it to the role to assume (e.g. arn:aws:iam::123456789012:role/NAME)".into(),
            ));
        }
        if let Some(d) = self.duration_seconds {
            if !(MIN_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(&d) {
                return Err(StsError::InvalidInput(format!(
                    "duration_seconds is {d}: AWS STS allows {MIN_DURATION_SECONDS} (15 minutes) to {MAX_DURATION_SECONDS} (12 hours), \
                     and the role's own maximum may be lower"
                )));
            }
        }
        if self.token().is_empty() {
            return Err(StsError::InvalidInput("there is no OIDC token to exchange for credentials: log in first".into()));
        }
        Ok(())
    }

    /// The `RoleSessionName` this request sends.
    pub fn role_session_name(&self) -> String {
        session_name(self.session_name.as_deref(), self.subject.as_deref())
    }

    /// The form fields, in the order sent; optional ones only when set.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("Action", ACTION.to_string()),
            ("Version", API_VERSION.to_string()),
            ("RoleArn", self.role_arn.trim().to_string()),
            ("RoleSessionName", self.role_session_name()),
            ("WebIdentityToken", self.token().to_string()),
        ];
        if let Some(d) = self.duration_seconds {
            fields.push(("DurationSeconds", d.to_string()));
        }
        if let Some(p) = non_empty(&self.policy) {
            fields.push(("Policy", p.to_string()));
        }
        if let Some(p) = non_empty(&self.provider_id) {
            fields.push(("ProviderId", p.to_string()));
        }
        fields
    }

    /// The unsigned POST to send.
    pub fn http_request(&self) -> Result<HttpRequest, StsError> {
        self.validate()?;
        let fields = self.form_fields();
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = encode_form(&pairs).into_bytes();
        Ok(HttpRequest {
            method: "POST",
            url: self.endpoint.trim().to_string(),
            // Without Content-Length, wasi:http sends the body chunked, and
            // moto then routes the call to S3 instead of STS.
            headers: vec![
                ("Content-Type".into(), FORM_CONTENT_TYPE.into()),
                ("Content-Length".into(), body.len().to_string()),
                ("Accept".into(), "application/xml".into()),
            ],
            body,
        })
    }

    /// Reads the answer to [`Self::http_request`]; a server that echoes the
    /// token in its error message gets it replaced by `[redacted]`.
    pub fn parse_response(&self, response: &HttpResponse) -> Result<Credentials, StsError> {
        parse_http_response(response).map_err(|e| e.redact(self.token()))
    }
}
