//! What the gateway does with one request once it has the token's claims:
//! the configuration it runs with, the decision (a local answer, or a
//! backend request), the signed S3 request, and which of the backend's
//! answer headers reach the client. No I/O: the component moves the bytes.
//!
//! Headers cross in both directions by allowlist, so the client's
//! `Authorization`, cookies and hop-by-hop headers never reach the
//! backend, and the backend's `Set-Cookie`, `x-amz-*` internals and
//! connection headers never reach the client.

use lakeport_sigv4::encoding::uri_encode_into;
use lakeport_sigv4::{Credentials as S3Keys, Payload, SignOptions, SignableRequest, SigningTime};
use sha2::{Digest, Sha256};

use crate::challenge;
use crate::dav::{self, Operation};
use crate::upload::Upload;
use crate::jwt::{Claims, TokenError};
use crate::scopes::{self, Denied, ResourcePath};

/// The realm named in `WWW-Authenticate` when none is configured.
pub const DEFAULT_REALM: &str = "lakeport";

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;

/// The response header that carries [`subject_hash`] to a host that logs
/// it; `lakeport serve` removes it before the answer leaves.
pub const SUBJECT_HASH_HEADER: &str = "lakeport-subject-hash";

/// The response header that says where the backend keys came from, for
/// the same host's access log ([`KeySource::as_str`]); removed like
/// [`SUBJECT_HASH_HEADER`].
pub const KEY_SOURCE_HEADER: &str = "lakeport-key-source";

/// Where the keys a request was signed with came from: cache hit or miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// The configured service keys.
    Static,
    /// The caller's keys, kept in this instance.
    Instance,
    /// The caller's keys, from the host's shared store (another instance
    /// fetched them).
    Shared,
    /// The caller's keys, fetched from STS for this request (a miss).
    Sts,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Static => "static",
            KeySource::Instance => "hit",
            KeySource::Shared => "hit-shared",
            KeySource::Sts => "miss",
        }
    }
}

/// Request headers passed to the backend (lowercase): ranges,
/// conditionals and what describes a body. Everything else stays behind.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "content-type",
    "content-length",
    "content-md5",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

/// What describes an object's content, kept by an upload in parts.
const CONTENT_HEADERS: &[&str] = &["content-type", "content-encoding", "content-disposition", "content-language", "cache-control", "expires"];

/// Backend answer headers passed to the client (lowercase).
const FORWARDED_RESPONSE_HEADERS: &[&str] = &[
    "content-length",
    "content-type",
    "content-range",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "etag",
    "last-modified",
    "accept-ranges",
];

/// Who decides whether a valid token may do what it asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authorization {
    /// The token's WLCG storage scopes ([`scopes::authorize`]).
    WlcgScopes,
    /// Any valid token passes; the backend decides.
    Backend,
}

/// The gateway's configuration, as read from `wasi:config/store`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub issuer: String,
    pub audience: String,
    pub authorization: Authorization,
    pub realm: String,
    /// The S3 endpoint, `http(s)://host[:port][/base]`, no trailing slash.
    pub s3_endpoint: String,
    pub region: String,
    pub keys: BackendKeys,
    /// Answer GET (and PUT that may overwrite) with `307` to a presigned
    /// backend URL, so the bytes bypass the gateway.
    pub redirect: bool,
}

/// What the gateway signs backend requests with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendKeys {
    /// One set of service keys for every caller.
    Static(S3Keys),
    /// Each caller's own temporary keys: `AssumeRoleWithWebIdentity` at
    /// `endpoint` with the caller's token (see [`crate::backend_keys`]).
    Sts { endpoint: String, role_arn: String, duration_seconds: Option<u32> },
}

impl Config {
    /// Reads the configuration through `get` (a config store lookup). The
    /// error names the key and says what to set; it never quotes a secret.
    pub fn read(mut get: impl FnMut(&str) -> Result<Option<String>, String>) -> Result<Config, String> {
        let mut value = |key: &str| -> Result<Option<String>, String> {
            Ok(get(key).map_err(|e| format!("reading the gateway setting '{key}': {e}"))?.filter(|v| !v.trim().is_empty()))
        };
        let required = |key: &str, v: Option<String>| v.ok_or_else(|| format!("the gateway setting '{key}' is missing: set it in the gateway's configuration"));
        let issuer = required("issuer", value("issuer")?)?;
        let audience = required("audience", value("audience")?)?;
        let authorization = match value("authorization")?.as_deref() {
            None | Some("wlcg-scopes") => Authorization::WlcgScopes,
            Some("backend") => Authorization::Backend,
            Some(other) => {
                return Err(format!("the gateway setting 'authorization' is '{}': use 'wlcg-scopes' or 'backend'", crate::jwt::printable(other)))
            }
        };
        let s3_endpoint = required("s3_endpoint", value("s3_endpoint")?)?;
        if lakeport_http::split_url(&s3_endpoint).is_none() || s3_endpoint.contains('?') {
            return Err("the gateway setting 's3_endpoint' is not an http(s) URL: set it to e.g. https://s3.example/".into());
        }
        let keys = match (value("sts_endpoint")?, value("access_key_id")?) {
            (Some(_), Some(_)) => return Err("the gateway has both 'sts_endpoint' and 'access_key_id': keep one".into()),
            (Some(endpoint), None) => {
                let duration_seconds = match value("duration_seconds")? {
                    None => None,
                    Some(d) => Some(d.trim().parse::<u32>().map_err(|_| "the gateway setting 'duration_seconds' is not a number of seconds".to_string())?),
                };
                BackendKeys::Sts { endpoint, role_arn: required("role_arn", value("role_arn")?)?, duration_seconds }
            }
            (None, access_key_id) => BackendKeys::Static(S3Keys {
                access_key_id: required("access_key_id", access_key_id)?,
                secret_access_key: required("secret_access_key", value("secret_access_key")?)?,
                session_token: value("session_token")?,
            }),
        };
        Ok(Config {
            issuer,
            audience,
            authorization,
            realm: value("realm")?.unwrap_or_else(|| DEFAULT_REALM.into()),
            s3_endpoint: s3_endpoint.trim_end_matches('/').to_string(),
            region: value("region")?.unwrap_or_else(|| "us-east-1".into()),
            keys,
            redirect: match value("redirect")?.as_deref().map(str::trim) {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err("the gateway setting 'redirect' must be true or false".into()),
            },
        })
    }

    /// The issuer's OIDC discovery document.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'))
    }
}

/// An answer the gateway gives itself, without asking the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// One line of text saying what happened (never a token or secret).
    pub body: String,
}

impl LocalAnswer {
    /// An answer of `status` with one line of text.
    pub fn text(status: u16, body: impl Into<String>) -> LocalAnswer {
        LocalAnswer { status, headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())], body: body.into() + "\n" }
    }

    /// `401` without credentials (RFC 6750 §3.1).
    pub fn missing_token(config: &Config) -> LocalAnswer {
        let mut a = LocalAnswer::text(401, "this gateway needs an 'Authorization: Bearer <token>' header");
        a.headers.push(("www-authenticate".into(), challenge::missing_token(&config.realm)));
        a
    }

    /// `401` for a refused token, the reason in the challenge and the body.
    pub fn invalid_token(config: &Config, reason: &dyn std::fmt::Display) -> LocalAnswer {
        let mut a = LocalAnswer::text(401, format!("invalid token: {reason}"));
        a.headers.push(("www-authenticate".into(), challenge::invalid_token(&config.realm, reason)));
        a
    }

    /// `401` for an `Authorization: Bearer` value that is no token.
    pub fn malformed_token(config: &Config) -> LocalAnswer {
        LocalAnswer::invalid_token(config, &TokenError::Malformed("the Authorization header holds no bearer token"))
    }

    /// `503`: the issuer's keys could not be fetched; the token may be fine.
    /// `why` is the last fetch's failure (about the issuer, which every
    /// token names: nothing of the caller's).
    pub fn keys_unavailable(why: Option<&str>) -> LocalAnswer {
        let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
        let mut a = LocalAnswer::text(503, format!("the token issuer's keys cannot be fetched just now{why}: try again later"));
        a.headers.push(("retry-after".into(), "60".into()));
        a
    }

    /// A refusal of [`scopes::authorize`] (403 names the missing scope).
    pub fn denied(config: &Config, denied: &Denied) -> LocalAnswer {
        let mut a = LocalAnswer::text(denied.status(), denied.to_string());
        match denied {
            Denied::MissingScope { scope } => a.headers.push(("www-authenticate".into(), challenge::insufficient_scope(&config.realm, scope))),
            Denied::Method(_) => a.headers.push(("allow".into(), dav::ALLOW.into())),
            _ => {}
        }
        a
    }

    /// `500`: the gateway cannot work as configured (said in one line).
    pub fn misconfigured(message: &str) -> LocalAnswer {
        LocalAnswer::text(500, format!("the gateway is misconfigured: {message}"))
    }

    /// `502`: the backend could not be reached.
    pub fn bad_gateway(message: &str) -> LocalAnswer {
        LocalAnswer::text(502, format!("the storage backend did not answer: {message}"))
    }
}

/// What to send to the backend for an authorised request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendRequest {
    pub method: &'static str,
    pub url: String,
    /// Signed headers, `host` left to the HTTP client (it sets the authority).
    pub headers: Vec<(String, String)>,
    /// The client's body is streamed to the backend with this length.
    pub body_length: Option<u64>,
    /// A `PUT` allowed by `storage.create` alone: the backend's `412`
    /// means the object exists and `storage.modify` was needed.
    pub only_if_absent: Option<String>,
}

/// The request as the component read it.
#[derive(Clone, Debug)]
pub struct ClientRequest<'a> {
    pub method: &'a str,
    /// Path and query as sent.
    pub path_with_query: &'a str,
    /// The authority the client addressed (`host[:port]`): a WebDAV
    /// `Destination` URL must name it.
    pub authority: Option<&'a str>,
    pub headers: &'a [(String, Vec<u8>)],
}

impl ClientRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// An authorised request, not yet signed: the backend keys may still have
/// to be fetched for the caller, and only for a request that may pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    method: &'static str,
    resource: ResourcePath,
    /// Query parameters, unencoded (a listing's).
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body_length: Option<u64>,
    only_if_absent: Option<String>,
}

impl Plan {
    /// A bodiless backend request of a WebDAV operation ([`dav`]).
    pub(crate) fn backend(method: &'static str, resource: ResourcePath, query: Vec<(String, String)>, headers: Vec<(String, String)>) -> Plan {
        Plan { method, resource, query, headers, body_length: None, only_if_absent: None }
    }

    /// `METHOD /path?query` as sent (tests read the plans made).
    #[cfg(test)]
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.method, path_and_query(&self.resource, &self.query))
    }

    #[cfg(test)]
    pub(crate) fn has_header(&self, name: &str, value: &str) -> bool {
        self.headers.iter().any(|(n, v)| n == name && v == value)
    }

    #[cfg(test)]
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The signed backend request, with `keys` at `now` (Unix seconds).
    pub fn sign(self, config: &Config, keys: &S3Keys, now: i64) -> Result<BackendRequest, LocalAnswer> {
        let signable = SignableRequest { method: self.method.into(), url: self.url(config), headers: self.headers, payload: Payload::UnsignedPayload };
        let signed = lakeport_sigv4::sign(&signable, keys.clone(), &SignOptions::s3(&config.region, SigningTime::UnixSeconds(now)))
            .map_err(|e| LocalAnswer::misconfigured(&format!("cannot sign the backend request: {e}")))?;
        let headers = signed.headers.into_iter().filter(|(n, _)| !n.eq_ignore_ascii_case("host")).collect();
        Ok(BackendRequest { method: self.method, url: signed.url, headers, body_length: self.body_length, only_if_absent: self.only_if_absent })
    }

    /// For a create-only `PUT` of more than [`EXISTENCE_CHECK_ABOVE`]
    /// bytes: a `HEAD` of the target to send first. A backend refuses
    /// `If-None-Match: *` as soon as it has the headers and may then reset
    /// the connection under the body still coming, which loses its `412`;
    /// an object found by the `HEAD` is refused before any byte is sent.
    /// The `If-None-Match: *` still guards against a race with a writer.
    pub fn existence_check(&self) -> Option<Plan> {
        let large = self.body_length.is_some_and(|len| len > EXISTENCE_CHECK_ABOVE);
        (self.method == "PUT" && self.only_if_absent.is_some() && large).then(|| Plan::backend("HEAD", self.resource.clone(), Vec::new(), Vec::new()))
    }

    /// The answer when [`Plan::existence_check`] found the object.
    pub fn exists_answer(&self, config: &Config) -> Option<LocalAnswer> {
        let scope = self.only_if_absent.clone()?;
        Some(LocalAnswer::denied(config, &Denied::MissingScope { scope }))
    }

    /// The backend URL, unsigned.
    fn url(&self, config: &Config) -> String {
        format!("{}{}", config.s3_endpoint, path_and_query(&self.resource, &self.query))
    }
}

/// Bodies up to this size are sent with `If-None-Match: *` alone.
pub const EXISTENCE_CHECK_ABOVE: u64 = 64 * 1024;

/// The longest a redirect's presigned URL is valid: long enough to start
/// a transfer, short enough that a leaked URL soon stops working.
pub const REDIRECT_MAX_SECS: i64 = 900;

impl Plan {
    /// With `redirect = true`: a `307` to a presigned backend URL for a GET,
    /// or a PUT that may overwrite (a create-only PUT needs
    /// `If-None-Match: *`, which a presigned URL cannot make the client
    /// send, so the gateway carries it). The URL is valid for
    /// [`REDIRECT_MAX_SECS`] at most and never past the keys' expiry
    /// (`keys_expire`, Unix seconds; none for service keys) less a minute;
    /// with less left than that the request is proxied instead.
    pub fn redirect(&self, config: &Config, keys: &S3Keys, keys_expire: Option<i64>, now: i64) -> Option<Result<LocalAnswer, LocalAnswer>> {
        let redirected = self.method == "GET" || (self.method == "PUT" && self.only_if_absent.is_none());
        if !config.redirect || !redirected {
            return None;
        }
        let expires = keys_expire.map_or(REDIRECT_MAX_SECS, |e| e.saturating_sub(now + 60)).min(REDIRECT_MAX_SECS);
        if expires < 1 {
            return None;
        }
        let signable = SignableRequest { method: self.method.into(), url: self.url(config), headers: Vec::new(), payload: Payload::UnsignedPayload };
        let options = SignOptions { presign_expires: Some(expires as u32), ..SignOptions::s3(&config.region, SigningTime::UnixSeconds(now)) };
        Some(match lakeport_sigv4::sign(&signable, keys.clone(), &options) {
            Ok(signed) => {
                let mut a = LocalAnswer::text(307, format!("the object is at the Location given, for {expires} s"));
                a.headers.push(("location".into(), signed.url));
                // The URL is a credential for a while: nobody keeps it.
                a.headers.push(("cache-control".into(), "no-store".into()));
                Ok(a)
            }
            Err(e) => Err(LocalAnswer::misconfigured(&format!("cannot presign the backend URL: {e}"))),
        })
    }
}

/// What to do for an authenticated request.
#[derive(Debug)]
pub enum Action {
    /// One backend request, its answer streamed back ([`plan`]).
    Forward(Plan),
    /// A WebDAV operation: several backend requests, then a local answer.
    Dav(Operation),
    /// A `PUT` of unknown length, sent in parts.
    Upload(Upload),
}

/// Decides an authenticated request: a backend request to stream through,
/// a WebDAV operation, or the answer to give instead.
pub fn decide(config: &Config, request: &ClientRequest<'_>, claims: &Claims) -> Result<Action, LocalAnswer> {
    let path = request.path_with_query.split_once('?').map_or(request.path_with_query, |(p, _)| p);
    match request.method {
        "PROPFIND" => {
            let depth_one = match request.header("depth").map(str::trim) {
                Some("0") => false,
                Some("1") => true,
                _ => return Err(dav::infinite_depth()),
            };
            let (resource, _) = authorized(config, request, claims)?;
            Ok(Action::Dav(Operation::propfind(&resource, depth_one)))
        }
        "MKCOL" => {
            if request.header("content-length").is_some_and(|l| l.trim() != "0") || request.header("transfer-encoding").is_some() {
                return Err(LocalAnswer::text(415, "MKCOL with a body is not served: send none"));
            }
            let (resource, grant) = authorized(config, request, claims)?;
            Ok(Action::Dav(Operation::mkcol(&resource, grant.only_if_absent)))
        }
        "COPY" | "MOVE" => {
            let value = request.header("destination").ok_or_else(|| LocalAnswer::denied(config, &Denied::MissingDestination))?;
            let destination = dav::destination(value, request.authority)?;
            let (source, grant) = authorized(config, request, claims)?;
            let overwrite = !request.header("overwrite").is_some_and(|o| o.trim().eq_ignore_ascii_case("F"));
            let if_exists = grant.only_if_absent.then(|| LocalAnswer::denied(config, &Denied::MissingScope { scope: format!("storage.modify:{destination}") }));
            Ok(Action::Dav(Operation::transfer(&source, &destination, request.method == "MOVE", overwrite, if_exists)))
        }
        "PUT" if request.header("transfer-encoding").is_some() || request.header("content-length").is_none() => {
            let (resource, grant) = authorized(config, request, claims)?;
            if resource.key().is_none() {
                return Err(LocalAnswer::text(405, "buckets are not created through this gateway: name an object, /BUCKET/KEY"));
            }
            let mut headers = Vec::new();
            for (name, value) in request.headers {
                let name = name.to_ascii_lowercase();
                if CONTENT_HEADERS.contains(&name.as_str()) {
                    let value = std::str::from_utf8(value).map_err(|_| LocalAnswer::text(400, format!("the {name} header is not text")))?;
                    headers.push((name, value.to_string()));
                }
            }
            let if_exists = grant.only_if_absent.then(|| LocalAnswer::denied(config, &Denied::MissingScope { scope: format!("storage.modify:{resource}") }));
            Ok(Action::Upload(Upload::new(resource, headers, if_exists)))
        }
        "DELETE" if path.ends_with('/') => {
            let (resource, _) = authorized(config, request, claims)?;
            Ok(Action::Dav(Operation::delete_tree(&resource)))
        }
        _ => plan(config, request, claims).map(Action::Forward),
    }
}

/// The request's normalised path once the profile allows the method on it
/// (and, for `COPY`/`MOVE`, on its `Destination`), with what was granted.
fn authorized(config: &Config, request: &ClientRequest<'_>, claims: &Claims) -> Result<(ResourcePath, scopes::Grant), LocalAnswer> {
    let (path, query) = request.path_with_query.split_once('?').unwrap_or((request.path_with_query, ""));
    if !query.is_empty() {
        // S3 sub-resources (`?acl`, `?uploads`, `?versionId`) are not
        // covered by any storage scope: refuse them rather than guess.
        return Err(LocalAnswer::text(400, "query parameters are not served by this gateway: remove them from the URL"));
    }
    let grant = match config.authorization {
        Authorization::WlcgScopes => {
            let scopes = scopes::parse_scopes(&claims.scope);
            scopes::authorize(request.method, path, None, request.header("destination"), &scopes).map_err(|d| LocalAnswer::denied(config, &d))?
        }
        Authorization::Backend => scopes::Grant { only_if_absent: false },
    };
    let resource = scopes::normalize_path(path).map_err(|e| LocalAnswer::denied(config, &Denied::BadPath(e)))?;
    if resource.bucket().is_none() {
        return Err(LocalAnswer::text(400, "the path names no bucket: use /BUCKET/KEY"));
    }
    Ok((resource, grant))
}

/// The single backend request for `GET`, `HEAD`, `PUT` and `DELETE` of an
/// object, or the answer to give instead.
pub fn plan(config: &Config, request: &ClientRequest<'_>, claims: &Claims) -> Result<Plan, LocalAnswer> {
    let method: &'static str = match request.method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        other => return Err(LocalAnswer::denied(config, &Denied::Method(other.to_string()))),
    };
    let (resource, grant) = authorized(config, request, claims)?;
    if resource.key().is_none() && method != "HEAD" && method != "GET" {
        return Err(LocalAnswer::text(405, "buckets are not created or deleted through this gateway: name an object, /BUCKET/KEY"));
    }
    let body_length = if method == "PUT" {
        if request.header("transfer-encoding").is_some() {
            return Err(LocalAnswer::text(411, "a PUT of unknown length is sent in parts by decide, not as one request: send the length"));
        }
        let length = request.header("content-length").ok_or_else(|| LocalAnswer::text(411, "a PUT needs a Content-Length header"))?;
        Some(length.trim().parse::<u64>().map_err(|_| LocalAnswer::text(400, "the Content-Length header is not a number"))?)
    } else {
        None
    };

    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in request.headers {
        let name = name.to_ascii_lowercase();
        if !FORWARDED_REQUEST_HEADERS.contains(&name.as_str()) || (name == "content-length" && body_length.is_none()) {
            continue;
        }
        if name == "if-none-match" && grant.only_if_absent {
            continue;
        }
        let value = std::str::from_utf8(value).map_err(|_| LocalAnswer::text(400, format!("the {name} header is not text")))?;
        headers.push((name, value.to_string()));
    }
    let only_if_absent = grant.only_if_absent.then(|| format!("storage.modify:{resource}"));
    if only_if_absent.is_some() {
        headers.push(("if-none-match".into(), "*".into()));
    }

    Ok(Plan { method, resource, query: Vec::new(), headers, body_length, only_if_absent })
}

/// `/{bucket}/{key}?{query}`, each segment and value encoded once by
/// SigV4's rules.
fn path_and_query(resource: &ResourcePath, query: &[(String, String)]) -> String {
    let mut url = String::new();
    for segment in resource.segments() {
        url.push('/');
        uri_encode_into(&mut url, segment.as_bytes(), false);
    }
    for (i, (name, value)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        uri_encode_into(&mut url, name.as_bytes(), false);
        url.push('=');
        uri_encode_into(&mut url, value.as_bytes(), false);
    }
    url
}

/// The client's answer for the backend's: its status (a `412` of a
/// create-only `PUT` becomes the `403` it means) and allowed headers.
/// `Err` is an answer to give instead, with no backend body.
pub fn respond(config: &Config, backend: &BackendRequest, status: u16, headers: &[(String, String)]) -> Result<(u16, Vec<(String, String)>), LocalAnswer> {
    if status == 412 {
        if let Some(scope) = &backend.only_if_absent {
            return Err(LocalAnswer::denied(config, &Denied::MissingScope { scope: scope.clone() }));
        }
    }
    let forwarded = headers
        .iter()
        .filter(|(n, _)| FORWARDED_RESPONSE_HEADERS.iter().any(|f| n.eq_ignore_ascii_case(f)))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    Ok((status, forwarded))
}

/// A stable, non-reversible name for the token's subject in access logs:
/// the first 16 hex digits of SHA-256 over issuer and subject.
pub fn subject_hash(claims: &Claims) -> String {
    let mut h = Sha256::new();
    h.update(claims.iss.as_deref().unwrap_or("").as_bytes());
    h.update([0]);
    h.update(claims.sub.as_deref().unwrap_or("").as_bytes());
    h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(authorization: &str) -> Config {
        let values = [
            ("issuer", "https://iam.example/"),
            ("audience", "object"),
            ("authorization", authorization),
            ("s3_endpoint", "http://127.0.0.1:9000/"),
            ("region", "default"),
            ("access_key_id", "AKID"),
            ("secret_access_key", "SECRET"),
        ];
        Config::read(|k| Ok(values.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))).unwrap()
    }

    fn static_keys(c: &Config) -> S3Keys {
        match &c.keys {
            BackendKeys::Static(k) => k.clone(),
            BackendKeys::Sts { .. } => panic!("static keys expected"),
        }
    }

    fn claims(scope: &str) -> Claims {
        Claims { iss: Some("https://iam.example/".into()), sub: Some("alice".into()), scope: scope.split(' ').map(String::from).collect(), ..Claims::default() }
    }

    fn headers(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect()
    }

    fn plan_for(method: &str, path: &str, hdrs: &[(&str, &str)], scope: &str) -> Result<BackendRequest, LocalAnswer> {
        let h = headers(hdrs);
        let c = config("wlcg-scopes");
        plan(&c, &ClientRequest { method, path_with_query: path, authority: Some("gw.example"), headers: &h }, &claims(scope))?.sign(&c, &static_keys(&c), 1_750_000_000)
    }

    fn names(request: &BackendRequest) -> Vec<&str> {
        request.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn a_large_create_only_put_checks_for_the_object_first() {
        let c = config("wlcg-scopes");
        let put = |len: &str, scope: &str| {
            let h = headers(&[("content-length", len)]);
            plan(&c, &ClientRequest { method: "PUT", path_with_query: "/bkt/x", authority: Some("gw.example"), headers: &h }, &claims(scope)).unwrap()
        };
        let large = put("1000000", "storage.create:/bkt");
        let head = large.existence_check().expect("a HEAD first");
        assert_eq!(head.describe(), "HEAD /bkt/x");
        let refused = large.exists_answer(&c).unwrap();
        assert_eq!(refused.status, 403);
        assert!(refused.body.contains("storage.modify:/bkt/x"), "{}", refused.body);
        // Small bodies, and tokens that may overwrite anyway: no check.
        assert!(put("65536", "storage.create:/bkt").existence_check().is_none());
        assert!(put("1000000", "storage.create:/bkt storage.modify:/bkt").existence_check().is_none());
    }

    #[test]
    fn redirects_presign_gets_and_overwriting_puts_for_no_longer_than_the_keys() {
        let mut c = config("wlcg-scopes");
        let h = headers(&[("range", "bytes=0-9")]);
        let get = ClientRequest { method: "GET", path_with_query: "/bkt/dir/a%20b", authority: Some("gw.example"), headers: &h };
        let keys = static_keys(&c);
        let now = 1_750_000_000;
        let p = plan(&c, &get, &claims("storage.read:/ storage.modify:/")).unwrap();
        assert!(p.redirect(&c, &keys, None, now).is_none(), "redirect is off by default");
        c.redirect = true;
        let a = p.redirect(&c, &keys, None, now).unwrap().unwrap();
        assert_eq!(a.status, 307);
        let location = &a.headers.iter().find(|(n, _)| n == "location").unwrap().1;
        assert!(location.starts_with("http://127.0.0.1:9000/bkt/dir/a%20b?") && location.contains("X-Amz-Expires=900"), "{location}");
        assert!(location.contains("X-Amz-Signature=") && !location.contains(&keys.secret_access_key), "{location}");
        // STS keys with 10 minutes left: the URL lasts 9.
        let a = p.redirect(&c, &keys, Some(now + 600), now).unwrap().unwrap();
        assert!(a.headers.iter().any(|(n, v)| n == "location" && v.contains("X-Amz-Expires=540")), "{:?}", a.headers);
        // Less than a minute left: proxied instead.
        assert!(p.redirect(&c, &keys, Some(now + 59), now).is_none());

        let empty = headers(&[("content-length", "3")]);
        let put = |path| ClientRequest { method: "PUT", path_with_query: path, authority: Some("gw.example"), headers: &empty };
        // May overwrite: redirected. Create only: the gateway carries it.
        let overwrite = plan(&c, &put("/bkt/x"), &claims("storage.create:/ storage.modify:/")).unwrap();
        assert_eq!(overwrite.redirect(&c, &keys, None, now).unwrap().unwrap().status, 307);
        let create_only = plan(&c, &put("/bkt/x"), &claims("storage.create:/")).unwrap();
        assert!(create_only.redirect(&c, &keys, None, now).is_none());
        let delete = plan(&c, &ClientRequest { method: "DELETE", path_with_query: "/bkt/x", authority: Some("gw.example"), headers: &empty }, &claims("storage.modify:/")).unwrap();
        assert!(delete.redirect(&c, &keys, None, now).is_none());

        let err = Config::read(|k| Ok(match k { "redirect" => Some("yes"), "authorization" => Some("backend"), "s3_endpoint" => Some("http://h/"), "sts_endpoint" => None, _ => Some("x") }.map(String::from))).unwrap_err();
        assert!(err.contains("'redirect' must be true or false"), "{err}");
    }

    #[test]
    fn reads_its_configuration_and_names_what_is_missing() {
        let c = config("backend");
        assert_eq!(c.authorization, Authorization::Backend);
        assert_eq!(c.s3_endpoint, "http://127.0.0.1:9000");
        assert_eq!(c.discovery_url(), "https://iam.example/.well-known/openid-configuration");
        let err = Config::read(|k| Ok((k != "audience").then(|| "x".to_string()))).unwrap_err();
        assert!(err.contains("'audience' is missing"), "{err}");
        let err = Config::read(|k| Ok(Some(if k == "authorization" { "anyone" } else { "http://h/" }.to_string()))).unwrap_err();
        assert!(err.contains("'wlcg-scopes' or 'backend'"), "{err}");
        let err = Config::read(|k| Ok(Some(match k { "s3_endpoint" => "ftp://h/", "authorization" => "backend", _ => "SECRET" }.to_string()))).unwrap_err();
        assert!(err.contains("s3_endpoint") && !err.contains("SECRET"), "{err}");

        let sts = |k: &str| match k {
            "sts_endpoint" => Some("https://sts.example/"),
            "role_arn" => Some("arn:aws:iam:::role/IAMaccess"),
            "duration_seconds" => Some("3600"),
            "s3_endpoint" => Some("https://s3.example/"),
            "issuer" | "audience" => Some("x"),
            _ => None,
        };
        let c = Config::read(|k| Ok(sts(k).map(String::from))).unwrap();
        assert_eq!(
            c.keys,
            BackendKeys::Sts { endpoint: "https://sts.example/".into(), role_arn: "arn:aws:iam:::role/IAMaccess".into(), duration_seconds: Some(3600) }
        );
        let err = Config::read(|k| Ok(sts(k).or((k == "access_key_id").then_some("AKID")).map(String::from))).unwrap_err();
        assert!(err.contains("keep one"), "{err}");
        let err = Config::read(|k| Ok(sts(k).filter(|_| k != "role_arn").map(String::from))).unwrap_err();
        assert!(err.contains("'role_arn' is missing"), "{err}");
    }

    #[test]
    fn forwards_ranges_and_conditionals_but_never_credentials_cookies_or_hop_by_hop() {
        let hdrs = [
            ("Authorization", "Bearer eyJ.secret.token"),
            ("Cookie", "session=1"),
            ("Connection", "keep-alive, X-Private"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authorization", "Basic x"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
            ("X-Private", "1"),
            ("X-Amz-Security-Token", "forged"),
            ("Range", "bytes=0-9"),
            ("If-None-Match", "\"etag\""),
            ("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"),
        ];
        let r = plan_for("GET", "/bkt/dir/a%20b", &hdrs, "storage.read:/bkt").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.url, "http://127.0.0.1:9000/bkt/dir/a%20b");
        let n = names(&r);
        for gone in ["cookie", "connection", "keep-alive", "proxy-authorization", "te", "upgrade", "x-private", "x-amz-security-token"] {
            assert!(!n.iter().any(|h| h.eq_ignore_ascii_case(gone)), "{gone} reached the backend: {n:?}");
        }
        let auth = r.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("authorization")).unwrap();
        assert!(auth.1.starts_with("AWS4-HMAC-SHA256 Credential=AKID/") && !auth.1.contains("eyJ"), "{}", auth.1);
        assert!(auth.1.contains("range") && auth.1.contains("if-none-match"), "{}", auth.1);
        assert!(r.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("x-amz-content-sha256") && v == "UNSIGNED-PAYLOAD"), "{:?}", r.headers);
        assert!(r.headers.contains(&("range".into(), "bytes=0-9".into())));
        assert_eq!(r.body_length, None);
        assert!(!n.contains(&"content-length"));
    }

    #[test]
    fn a_put_streams_with_the_clients_length_and_a_create_only_put_may_not_overwrite() {
        let r = plan_for("PUT", "/bkt/new", &[("Content-Length", "5"), ("Content-Type", "text/plain"), ("If-None-Match", "\"x\"")], "storage.create:/bkt").unwrap();
        assert_eq!(r.body_length, Some(5));
        assert!(r.headers.contains(&("content-length".into(), "5".into())), "{:?}", r.headers);
        assert!(r.headers.contains(&("if-none-match".into(), "*".into())), "{:?}", r.headers);
        assert_eq!(r.headers.iter().filter(|(n, _)| n == "if-none-match").count(), 1);
        assert_eq!(r.only_if_absent.as_deref(), Some("storage.modify:/bkt/new"));
        let denied = respond(&config("wlcg-scopes"), &r, 412, &[]).unwrap_err();
        assert_eq!(denied.status, 403);
        assert!(denied.body.contains("storage.modify:/bkt/new"), "{}", denied.body);

        let r = plan_for("PUT", "/bkt/old", &[("Content-Length", "5")], "storage.modify:/bkt").unwrap();
        assert_eq!(r.only_if_absent, None);
        assert!(!r.headers.iter().any(|(n, _)| n == "if-none-match"));
        assert_eq!(respond(&config("wlcg-scopes"), &r, 412, &[]).unwrap().0, 412);

        assert_eq!(plan_for("PUT", "/bkt/x", &[], "storage.modify:/bkt").unwrap_err().status, 411);
        assert_eq!(plan_for("PUT", "/bkt/x", &[("Transfer-Encoding", "chunked")], "storage.modify:/bkt").unwrap_err().status, 411);
        assert_eq!(plan_for("PUT", "/bkt/x", &[("Content-Length", "-1")], "storage.modify:/bkt").unwrap_err().status, 400);
    }

    #[test]
    fn refusals_name_the_missing_scope() {
        let cases = [
            ("PUT", "/bkt/a", "storage.read:/bkt", 403, "storage.create:/bkt/a"),
            ("GET", "/other/a", "storage.read:/bkt", 403, "storage.read:/other/a"),
            ("GET", "/bkt/data2/f", "storage.read:/bkt/data", 403, "storage.read:/bkt/data2/f"),
            ("DELETE", "/bkt/a", "storage.create:/bkt", 403, "storage.modify:/bkt/a"),
            ("GET", "/bkt/data/../x", "storage.read:/bkt/data", 403, "outside the token's scope"),
            ("GET", "/bkt/data/%2e%2e/x", "storage.read:/bkt/data", 403, "outside the token's scope"),
            ("POST", "/bkt/a", "storage.modify:/bkt", 405, "POST"),
            ("GET", "/bkt/a?acl", "storage.read:/bkt", 400, "query"),
            ("DELETE", "/bkt", "storage.modify:/bkt", 405, "name an object"),
        ];
        for (method, path, scope, status, says) in cases {
            let a = plan_for(method, path, &[("Content-Length", "1")], scope).unwrap_err();
            assert_eq!(a.status, status, "{method} {path}: {}", a.body);
            assert!(a.body.contains(says), "{method} {path}: {}", a.body);
            if status == 403 && !says.contains("outside") {
                let challenge = &a.headers.iter().find(|(n, _)| n == "www-authenticate").unwrap().1;
                assert!(challenge.contains("insufficient_scope") && challenge.contains(says), "{challenge}");
            }
        }
        assert!(plan_for("GET", "/bkt/data/f", &[], "storage.read:/bkt/data").is_ok());
    }

    #[test]
    fn decide_routes_webdav_methods_unknown_lengths_and_collection_deletes() {
        let c = config("wlcg-scopes");
        let all = claims("storage.read:/bkt storage.create:/bkt storage.modify:/bkt");
        let run = |method: &str, path: &str, hdrs: &[(&str, &str)]| {
            let h = headers(hdrs);
            match decide(&c, &ClientRequest { method, path_with_query: path, authority: Some("gw.example"), headers: &h }, &all) {
                Ok(Action::Forward(_)) => "forward".to_string(),
                Ok(Action::Dav(_)) => "dav".to_string(),
                Ok(Action::Upload(_)) => "upload".to_string(),
                Err(a) => a.status.to_string(),
            }
        };
        assert_eq!(run("PUT", "/bkt/a", &[("Content-Length", "3")]), "forward");
        assert_eq!(run("PUT", "/bkt/a", &[("Transfer-Encoding", "chunked")]), "upload");
        assert_eq!(run("PUT", "/bkt/a", &[]), "upload");
        assert_eq!(run("PUT", "/bkt", &[]), "405");
        assert_eq!(run("DELETE", "/bkt/a", &[]), "forward");
        assert_eq!(run("DELETE", "/bkt/d/", &[]), "dav");
        assert_eq!(run("PROPFIND", "/bkt/d/", &[("Depth", "1")]), "dav");
        assert_eq!(run("PROPFIND", "/bkt/d/", &[("Depth", "infinity")]), "403");
        assert_eq!(run("PROPFIND", "/bkt/d/", &[]), "403");
        assert_eq!(run("MKCOL", "/bkt/d/", &[]), "dav");
        assert_eq!(run("MKCOL", "/bkt/d/", &[("Content-Length", "5")]), "415");
        assert_eq!(run("COPY", "/bkt/a", &[("Destination", "http://gw.example/bkt/b")]), "dav");
        assert_eq!(run("MOVE", "/bkt/a", &[("Destination", "http://other.example/bkt/b")]), "502");
        assert_eq!(run("MOVE", "/bkt/a", &[]), "400");
        assert_eq!(run("LOCK", "/bkt/a", &[]), "405");
    }

    #[test]
    fn the_backend_profile_passes_any_valid_token_but_still_normalises_paths() {
        let h = headers(&[]);
        let c = config("backend");
        let req = |path| ClientRequest { method: "DELETE", path_with_query: path, authority: None, headers: &h };
        assert!(plan(&c, &req("/bkt/a"), &claims("")).is_ok());
        assert_eq!(plan(&c, &req("/bkt/%2e%2e/a"), &claims("")).unwrap_err().status, 403);
        assert_eq!(plan(&c, &req("/bkt/a%2fb"), &claims("")).unwrap_err().status, 400);
    }

    #[test]
    fn answers_keep_only_content_headers() {
        let r = plan_for("GET", "/bkt/a", &[], "storage.read:/bkt").unwrap();
        let backend = [
            ("Content-Length", "10"),
            ("Content-Range", "bytes 0-9/20"),
            ("ETag", "\"e\""),
            ("Set-Cookie", "a=b"),
            ("Connection", "close"),
            ("x-amz-request-id", "1"),
            ("Last-Modified", "Sat, 01 Jan 2000 00:00:00 GMT"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()));
        let (status, h) = respond(&config("wlcg-scopes"), &r, 206, &backend).unwrap();
        assert_eq!(status, 206);
        let n: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(n, ["content-length", "content-range", "etag", "last-modified"]);
    }

    #[test]
    fn challenges_quote_no_token_and_subjects_are_hashed() {
        let c = config("wlcg-scopes");
        let a = LocalAnswer::invalid_token(&c, &TokenError::WrongAudience);
        assert_eq!(a.status, 401);
        assert!(a.headers.iter().any(|(n, v)| n == "www-authenticate" && v.contains("error=\"invalid_token\"")));
        let m = LocalAnswer::missing_token(&c);
        assert_eq!(m.headers.iter().find(|(n, _)| n == "www-authenticate").unwrap().1, "Bearer realm=\"lakeport\"");
        let h = subject_hash(&claims(""));
        assert_eq!(h.len(), 16);
        assert!(!h.contains("alice"));
        assert_ne!(h, subject_hash(&Claims { sub: Some("bob".into()), ..claims("") }));
    }
}
