//! The `gateway-component` world: `wasi:http/incoming-handler` in, the
//! issuer and the S3 backend out through `wasi:http/outgoing-handler`,
//! configuration from `wasi:config/store`. Only I/O lives here: every
//! decision is [`crate::authenticate`], [`crate::proxy::decide`],
//! [`crate::dav::Operation::step`] and [`crate::proxy::respond`].
//!
//! An instance may serve many requests one after another (hosts reuse
//! instances): the configuration, the issuer's `jwks_uri` and its keys are
//! kept in the instance between them.

lakeport_http::component_world!("gateway-component", {
    "wasi:http/incoming-handler@0.2.12": generate,
    "wasi:config/store@0.2.0-rc.1": generate,
    "wasi:keyvalue/store@0.2.0-draft": generate,
    "wasi:keyvalue/atomics@0.2.0-draft": generate,
});

use std::cell::RefCell;

// No wasi:cli imports from std's panic path (see lakeport-no-cli).
use lakeport_no_cli as _;

use exports::wasi::http::incoming_handler::Guest;
use lakeport_http::{aio, HttpRequest};
use wasi::config::store;
use wasi::keyvalue::{atomics, store as kv};
use wasip2::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

use crate::challenge::{bearer_token, Credentials};
use crate::backend_keys::{self, KeyCache, Lease, SharedEntry};
use crate::jwt::{Claims, TokenError};
use crate::keys::{CachePolicy, JwksCache};
use crate::dav::{self, Operation, Step};
use crate::upload::{self, Upload};
use crate::proxy::{self, Action, BackendKeys, ClientRequest, Config, KeySource, LocalAnswer};
use crate::{authenticate, Authentication, Validation};

/// Discovery documents and JWKS are small.
const MAX_KEYS_DOCUMENT: usize = 1 << 20;

struct Issuer {
    jwks_uri: Option<String>,
    keys: JwksCache,
    /// Why the last fetch of its keys failed, for the 503 that follows.
    last_error: Option<String>,
}

thread_local! {
    static CONFIG: RefCell<Option<Result<Config, String>>> = const { RefCell::new(None) };
    static ISSUER: RefCell<Issuer> = RefCell::new(Issuer { jwks_uri: None, keys: JwksCache::new(CachePolicy::default()), last_error: None });
    static CALLER_KEYS: RefCell<KeyCache> = RefCell::new(KeyCache::new());
}

/// The keys to sign this caller's request with: the static ones, or the
/// caller's own from STS (cached; one STS call per caller while they last).
struct SigningKeys {
    keys: lakeport_sigv4::Credentials,
    source: KeySource,
    /// Unix seconds; none for service keys.
    expires: Option<i64>,
}

fn backend_keys(config: &Config, claims: &Claims, token: &str) -> Result<SigningKeys, LocalAnswer> {
    let (endpoint, role_arn, duration_seconds) = match &config.keys {
        BackendKeys::Static(keys) => return Ok(SigningKeys { keys: keys.clone(), source: KeySource::Static, expires: None }),
        BackendKeys::Sts { endpoint, role_arn, duration_seconds } => (endpoint, role_arn, *duration_seconds),
    };
    let subject = claims.sub.as_deref().ok_or_else(|| LocalAnswer::invalid_token(config, &TokenError::MissingClaim("sub")))?;
    let now = lakeport_http::unix_now();
    if let Some((keys, expires)) = CALLER_KEYS.with(|c| c.borrow().get(&config.issuer, subject, now)) {
        return Ok(SigningKeys { keys, source: KeySource::Instance, expires: Some(expires) });
    }
    let fetch = || assume_role(config, endpoint, role_arn, duration_seconds, subject, token);
    let ((keys, expiration), source) = match SharedKeys::open(&config.issuer, subject, role_arn) {
        Some(shared) => shared.get_or_fetch(now, fetch)?,
        // No shared store to be had: this instance's cache alone.
        None => (fetch()?, KeySource::Sts),
    };
    CALLER_KEYS.with(|c| c.borrow_mut().store(&config.issuer, subject, keys.clone(), expiration, now));
    Ok(SigningKeys { keys, source, expires: Some(expiration) })
}

/// AssumeRoleWithWebIdentity with the caller's token: their keys and when
/// those expire (Unix seconds).
fn assume_role(
    config: &Config,
    endpoint: &str,
    role_arn: &str,
    duration_seconds: Option<u32>,
    subject: &str,
    token: &str,
) -> Result<(lakeport_sigv4::Credentials, i64), LocalAnswer> {
    let request = lakeport_sts::AssumeRoleRequest {
        subject: Some(subject.to_string()),
        duration_seconds,
        ..lakeport_sts::AssumeRoleRequest::new(endpoint, role_arn, token)
    };
    let refused = |e: lakeport_sts::StsError| match e {
        e @ lakeport_sts::StsError::Sts { .. } => {
            let mut a = LocalAnswer::text(403, format!("the backend's STS refused this token: {}", e.message_with_hint()));
            a.headers.push(("www-authenticate".into(), crate::challenge::invalid_token(&config.realm, &"the backend's STS refused this token")));
            a
        }
        lakeport_sts::StsError::InvalidInput(m) => LocalAnswer::misconfigured(&m),
        e => LocalAnswer::bad_gateway(&format!("the STS service: {e}")),
    };
    let http = request.http_request().map_err(refused)?;
    let response = lakeport_http::send(&http).map_err(|e| LocalAnswer::bad_gateway(&format!("the STS service: {e}")))?;
    let credentials = request.parse_response(&response).map_err(refused)?;
    let keys = lakeport_sigv4::Credentials {
        access_key_id: credentials.access_key_id,
        secret_access_key: credentials.secret_access_key,
        session_token: Some(credentials.session_token),
    };
    Ok((keys, credentials.expiration))
}

/// A caller's keys in the host's shared `wasi:keyvalue` store. Any error
/// of the store only costs sharing: the caller is still served.
struct SharedKeys {
    bucket: kv::Bucket,
    name: String,
}

impl SharedKeys {
    fn open(issuer: &str, subject: &str, role_arn: &str) -> Option<SharedKeys> {
        let bucket = kv::open("").ok()?;
        Some(SharedKeys { bucket, name: backend_keys::shared_name(issuer, subject, role_arn) })
    }

    fn fresh(&self, now: i64) -> Option<(lakeport_sigv4::Credentials, i64)> {
        SharedEntry::fresh(&self.bucket.get(&self.name).ok()??, now)
    }

    fn get_or_fetch(
        &self,
        now: i64,
        fetch: impl Fn() -> Result<(lakeport_sigv4::Credentials, i64), LocalAnswer>,
    ) -> Result<((lakeport_sigv4::Credentials, i64), KeySource), LocalAnswer> {
        if let Some(found) = self.fresh(now) {
            return Ok((found, KeySource::Shared));
        }
        let lease = backend_keys::lease_name(&self.name);
        // Without atomics the store cannot say who leads: everyone does.
        let role = atomics::increment(&self.bucket, &lease, 1).map_or(Lease::Lead, Lease::from_count);
        if role == Lease::Wait {
            let mut waited = 0;
            while waited < Lease::WAIT_MS {
                wasip2::clocks::monotonic_clock::subscribe_duration(Lease::POLL_MS * 1_000_000).block();
                waited += Lease::POLL_MS;
                if let Some(found) = self.fresh(lakeport_http::unix_now()) {
                    return Ok((found, KeySource::Shared));
                }
                if !self.bucket.exists(&lease).unwrap_or(false) {
                    break; // the leader is done and stored nothing: STS refused it
                }
            }
        }
        let fetched = fetch();
        if let Ok((keys, expiration)) = &fetched {
            let _ = self.bucket.set(&self.name, &SharedEntry::new(keys, *expiration).to_bytes());
        }
        let _ = self.bucket.delete(&lease);
        Ok((fetched?, KeySource::Sts))
    }
}

fn config() -> Result<Config, String> {
    CONFIG.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                Config::read(|key| {
                    store::get(key).map_err(|e| match e {
                        store::Error::Upstream(m) | store::Error::Io(m) => m,
                    })
                })
            })
            .clone()
    })
}

fn method_name(m: &Method) -> String {
    match m {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(o) => o.clone(),
    }
}

/// Sends an answer that needs no backend body.
fn answer(out: ResponseOutparam, a: LocalAnswer, extra: &[(String, String)]) {
    let mut fields: Vec<(String, Vec<u8>)> = a.headers.into_iter().map(|(n, v)| (n, v.into_bytes())).collect();
    fields.extend(extra.iter().map(|(n, v)| (n.clone(), v.clone().into_bytes())));
    if a.status != 204 {
        fields.push(("content-length".into(), a.body.len().to_string().into_bytes()));
    }
    let Ok(headers) = Fields::from_list(&fields) else {
        ResponseOutparam::set(out, Err(wasip2::http::types::ErrorCode::InternalError(Some("invalid answer headers".into()))));
        return;
    };
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(a.status);
    let body = response.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        let _ = stream.blocking_write_and_flush(a.body.as_bytes());
    }
    let _ = OutgoingBody::finish(body, None);
}

/// Fetches a small JSON document from the issuer. A request that got no
/// answer is sent once more at once: a kept-alive connection the issuer
/// closed as it was reused is no reason to refuse callers for a minute.
fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let get = || aio::block_on(async { aio::send(&HttpRequest::get(url.to_string())).await?.read_all(MAX_KEYS_DOCUMENT).await });
    let response = get().or_else(|_| get()).map_err(|e| e.to_string())?;
    if response.status != 200 {
        return Err(format!("{url} answered {}", response.status));
    }
    Ok(response.body)
}

/// The issuer's `jwks_uri`, from its discovery document (kept once found).
fn jwks_uri(config: &Config, issuer: &mut Issuer) -> Result<String, String> {
    if let Some(uri) = &issuer.jwks_uri {
        return Ok(uri.clone());
    }
    let document = fetch(&config.discovery_url())?;
    let value: serde_json::Value = serde_json::from_slice(&document).map_err(|_| "the discovery document is not JSON".to_string())?;
    let uri = value.get("jwks_uri").and_then(|v| v.as_str()).ok_or("the discovery document has no jwks_uri")?.to_string();
    issuer.jwks_uri = Some(uri.clone());
    Ok(uri)
}

/// Verifies the token, fetching the issuer's keys when the cache asks.
fn verify(config: &Config, token: &str) -> Authentication {
    ISSUER.with(|issuer| {
        let mut issuer = issuer.borrow_mut();
        let validation = Validation { issuer: &config.issuer, audience: &config.audience, leeway_secs: proxy::LEEWAY_SECS, now: lakeport_http::unix_now() };
        // The cache asks for at most one fetch per interval, so two rounds
        // settle every case.
        for _ in 0..2 {
            match authenticate(token, &validation, &mut issuer.keys) {
                Authentication::FetchKeys => {
                    // A failed fetch stores nothing: the lookup that asked for
                    // it was recorded, so the next one says the keys are
                    // unavailable (or keeps the old ones) instead of fetching again.
                    match jwks_uri(config, &mut issuer).and_then(|uri| fetch(&uri)) {
                        Ok(document) => {
                            if let Err(e) = issuer.keys.store(&document, lakeport_http::unix_now()) {
                                issuer.last_error = Some(format!("the issuer's JWKS: {e}"));
                            }
                        }
                        Err(e) => issuer.last_error = Some(e),
                    }
                }
                done => return done,
            }
        }
        Authentication::KeysUnavailable
    })
}

struct Component;

impl Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let config = match config() {
            Ok(c) => c,
            Err(message) => return answer(out, LocalAnswer::misconfigured(&message), &[]),
        };
        let method = method_name(&request.method());
        if method == "OPTIONS" {
            return answer(out, dav::options(), &[]);
        }
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".into());
        let headers = request.headers().entries();
        let host = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("host")).and_then(|(_, v)| String::from_utf8(v.clone()).ok());
        let authority = request.authority().or(host);
        let client = ClientRequest { method: &method, path_with_query: &path_with_query, authority: authority.as_deref(), headers: &headers };

        // The token decides before the body is touched, so a client that
        // waits for `100 Continue` never uploads a refused body.
        let (token, claims) = match bearer_token(client.header("authorization")) {
            Credentials::None => return answer(out, LocalAnswer::missing_token(&config), &[]),
            Credentials::Malformed => return answer(out, LocalAnswer::malformed_token(&config), &[]),
            Credentials::Bearer(token) => match verify(&config, token) {
                Authentication::Valid(claims) => (token, claims),
                Authentication::Invalid(e) => return answer(out, LocalAnswer::invalid_token(&config, &e), &[]),
                Authentication::KeysUnavailable | Authentication::FetchKeys => {
                    let why = ISSUER.with(|i| i.borrow().last_error.clone());
                    return answer(out, LocalAnswer::keys_unavailable(why.as_deref()), &[]);
                }
            },
        };
        // For the host's access log (`lakeport serve` removes it; other
        // hosts pass it on: a hash, not the subject).
        let mut log = vec![(proxy::SUBJECT_HASH_HEADER.to_string(), proxy::subject_hash(&claims))];
        // Authorised first: a refused request costs no STS call.
        let action = match proxy::decide(&config, &client, &claims) {
            Ok(a) => a,
            Err(a) => return answer(out, a, &log),
        };
        let signing = match backend_keys(&config, &claims, token) {
            Ok(k) => k,
            Err(a) => return answer(out, a, &log),
        };
        log.push((proxy::KEY_SOURCE_HEADER.to_string(), signing.source.as_str().to_string()));
        let keys = &signing.keys;
        match action {
            Action::Forward(plan) => {
                if let Some(head) = plan.existence_check() {
                    match exists(&config, keys, head) {
                        Ok(false) => {}
                        Ok(true) => return answer(out, plan.exists_answer(&config).expect("a create-only PUT"), &log),
                        Err(a) => return answer(out, a, &log),
                    }
                }
                let now = lakeport_http::unix_now();
                let backend = match plan.redirect(&config, keys, signing.expires, now) {
                    Some(redirect) => return answer(out, redirect.unwrap_or_else(|refused| refused), &log),
                    None => plan.sign(&config, keys, now),
                };
                match backend {
                    Ok(backend) => forward(&config, request, out, &backend, &log),
                    Err(a) => answer(out, a, &log),
                }
            }
            Action::Dav(mut operation) => answer(out, run(&config, keys, &mut operation), &log),
            Action::Upload(operation) => answer(out, upload(&config, keys, request, operation), &log),
        }
    }
}

/// Whether the backend has the object `head` (a signed HEAD) asks for.
fn exists(config: &Config, keys: &lakeport_sigv4::Credentials, head: proxy::Plan) -> Result<bool, LocalAnswer> {
    let backend = head.sign(config, keys, lakeport_http::unix_now())?;
    let http = HttpRequest { method: backend.method, url: backend.url, headers: backend.headers, body: Vec::new() };
    match aio::block_on(aio::send(&http)) {
        Ok(r) if r.status == 404 => Ok(false),
        Ok(r) if r.status < 300 => Ok(true),
        Ok(r) => Err(LocalAnswer::bad_gateway(&format!("the backend answered {} to a HEAD of the object", r.status))),
        Err(e) => Err(LocalAnswer::bad_gateway(&e.to_string())),
    }
}

/// Runs a WebDAV operation: its backend requests one after another, each
/// answer read whole (bounded), until it has the client's answer.
fn run(config: &Config, keys: &lakeport_sigv4::Credentials, operation: &mut Operation) -> LocalAnswer {
    let mut reply = None;
    loop {
        let (plan, body) = match operation.step(reply.take()) {
            Step::Answer(a) => return a,
            Step::Send(plan) => (plan, Vec::new()),
            Step::SendWith(plan, body) => (plan, body),
        };
        let backend = match plan.sign(config, keys, lakeport_http::unix_now()) {
            Ok(b) => b,
            Err(a) => return a,
        };
        let http = HttpRequest { method: backend.method, url: backend.url, headers: backend.headers, body };
        match aio::block_on(async { aio::send(&http).await?.read_all(dav::MAX_REPLY_BYTES).await }) {
            Ok(r) => reply = Some(dav::Reply { status: r.status, headers: r.headers, body: r.body }),
            Err(e) => return LocalAnswer::bad_gateway(&e.to_string()),
        }
    }
}

/// Reads the client's body into `part` until it holds
/// [`upload::PART_BYTES`] or the body ends (`Ok(true)`).
fn read_part(stream: &wasip2::io::streams::InputStream, part: &mut Vec<u8>) -> Result<bool, String> {
    while part.len() < upload::PART_BYTES {
        match stream.blocking_read((upload::PART_BYTES - part.len()).min(1 << 16) as u64) {
            Ok(bytes) => part.extend_from_slice(&bytes),
            Err(wasip2::io::streams::StreamError::Closed) => return Ok(true),
            Err(wasip2::io::streams::StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
    Ok(false)
}

/// Runs a `PUT` of unknown length: the client's body read one part at a
/// time into one buffer, each part sent before the next is read.
fn upload(config: &Config, keys: &lakeport_sigv4::Credentials, request: IncomingRequest, mut operation: Upload) -> LocalAnswer {
    let Ok(body) = request.consume() else { return LocalAnswer::bad_gateway("the request body could not be read") };
    let Ok(stream) = body.stream() else { return LocalAnswer::bad_gateway("the request body could not be read") };
    let mut part: Vec<u8> = Vec::new();
    let mut event = upload::Event::Start;
    loop {
        let (plan, body) = match operation.step(event) {
            upload::Step::Answer(a) => return a,
            upload::Step::ReadPart => {
                part.clear();
                event = match read_part(&stream, &mut part) {
                    Ok(last) => upload::Event::Part { bytes: part.len(), last },
                    Err(e) => upload::Event::ClientFailed(e),
                };
                continue;
            }
            upload::Step::Send(plan, body) => (plan, body),
        };
        let backend = match plan.sign(config, keys, lakeport_http::unix_now()) {
            Ok(b) => b,
            Err(a) => return a,
        };
        let (bytes, is_part) = match body {
            upload::Body::Bytes(b) => (b, false),
            upload::Body::Part => (Vec::new(), true),
            upload::Body::None => (Vec::new(), false),
        };
        let http = HttpRequest { method: backend.method, url: backend.url, headers: backend.headers, body: bytes };
        let payload = aio::Body::Bytes(if is_part { &part } else { &http.body });
        event = match aio::block_on(async { aio::send_body(&http, payload).await?.read_all(dav::MAX_REPLY_BYTES).await }) {
            Ok(r) => upload::Event::Reply(dav::Reply { status: r.status, headers: r.headers, body: r.body }),
            // Unreachable: answered as a 502 of the backend's, which
            // aborts an upload under way.
            Err(_) => upload::Event::Reply(dav::Reply { status: 502, ..Default::default() }),
        };
    }
}

/// Sends the backend request (the client's body spliced through for a
/// PUT) and streams the backend's answer to the client.
fn forward(config: &Config, request: IncomingRequest, out: ResponseOutparam, backend: &proxy::BackendRequest, extra: &[(String, String)]) {
    let http = HttpRequest { method: backend.method, url: backend.url.clone(), headers: backend.headers.clone(), body: Vec::new() };
    // Declared before the response so that it outlives it: the stream is
    // a child of the body, the body of the request.
    let incoming = match backend.body_length {
        Some(_) => match request.consume() {
            Ok(body) => Some(body),
            Err(()) => return answer(out, LocalAnswer::bad_gateway("the request body could not be read"), extra),
        },
        None => None,
    };
    let body_stream = match &incoming {
        Some(body) => match body.stream() {
            Ok(s) => Some(s),
            Err(()) => return answer(out, LocalAnswer::bad_gateway("the request body could not be read"), extra),
        },
        None => None,
    };
    let sent = aio::block_on(async {
        match (&body_stream, backend.body_length) {
            (Some(stream), Some(len)) => aio::send_body(&http, aio::Body::Stream { stream, len }).await,
            _ => aio::send(&http).await,
        }
    });
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => return answer(out, LocalAnswer::bad_gateway(&e.to_string()), extra),
    };
    let (status, headers) = match proxy::respond(config, backend, response.status, &response.headers) {
        Ok(h) => h,
        Err(a) => return answer(out, a, extra),
    };
    let mut fields: Vec<(String, Vec<u8>)> = headers.into_iter().map(|(n, v)| (n, v.into_bytes())).collect();
    fields.extend(extra.iter().map(|(n, v)| (n.clone(), v.clone().into_bytes())));
    let Ok(headers) = Fields::from_list(&fields) else {
        return answer(out, LocalAnswer::bad_gateway("the backend's answer headers are invalid"), extra);
    };
    let outgoing = OutgoingResponse::new(headers);
    let _ = outgoing.set_status_code(status);
    if backend.method == "HEAD" {
        // No body at all: the host keeps the backend's Content-Length and
        // sends none of the bytes it announces.
        ResponseOutparam::set(out, Ok(outgoing));
        return;
    }
    let body = outgoing.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(outgoing));
    let Ok(stream) = body.write() else { return };
    // Spliced host-side: the bytes never enter the component, and the
    // host's bounded buffers pace the backend to the client.
    let moved = aio::block_on(response.splice_into(&stream, u64::MAX));
    drop(stream);
    if moved.is_ok() {
        let _ = OutgoingBody::finish(body, None);
    }
    // On failure the body is dropped unfinished: the host cuts the
    // client's connection rather than end a short body as if complete.
}

export!(Component);
