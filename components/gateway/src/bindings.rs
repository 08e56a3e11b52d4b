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
});

use std::cell::RefCell;

// No wasi:cli imports from std's panic path (see lakeport-no-cli).
use lakeport_no_cli as _;

use exports::wasi::http::incoming_handler::Guest;
use lakeport_http::{aio, HttpRequest};
use wasi::config::store;
use wasip2::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

use crate::challenge::{bearer_token, Credentials};
use crate::backend_keys::KeyCache;
use crate::jwt::{Claims, TokenError};
use crate::keys::{CachePolicy, JwksCache};
use crate::dav::{self, Operation, Step};
use crate::upload::{self, Upload};
use crate::proxy::{self, Action, BackendKeys, ClientRequest, Config, LocalAnswer};
use crate::{authenticate, Authentication, Validation};

/// Discovery documents and JWKS are small.
const MAX_KEYS_DOCUMENT: usize = 1 << 20;

struct Issuer {
    jwks_uri: Option<String>,
    keys: JwksCache,
}

thread_local! {
    static CONFIG: RefCell<Option<Result<Config, String>>> = const { RefCell::new(None) };
    static ISSUER: RefCell<Issuer> = RefCell::new(Issuer { jwks_uri: None, keys: JwksCache::new(CachePolicy::default()) });
    static CALLER_KEYS: RefCell<KeyCache> = RefCell::new(KeyCache::new());
}

/// The keys to sign this caller's request with: the static ones, or the
/// caller's own from STS (cached; one STS call per caller while they last).
fn backend_keys(config: &Config, claims: &Claims, token: &str) -> Result<lakeport_sigv4::Credentials, LocalAnswer> {
    let (endpoint, role_arn, duration_seconds) = match &config.keys {
        BackendKeys::Static(keys) => return Ok(keys.clone()),
        BackendKeys::Sts { endpoint, role_arn, duration_seconds } => (endpoint, role_arn, *duration_seconds),
    };
    let subject = claims.sub.as_deref().ok_or_else(|| LocalAnswer::invalid_token(config, &TokenError::MissingClaim("sub")))?;
    let now = lakeport_http::unix_now();
    if let Some(keys) = CALLER_KEYS.with(|c| c.borrow().get(&config.issuer, subject, now)) {
        return Ok(keys);
    }
    let request = lakeport_sts::AssumeRoleRequest {
        subject: Some(subject.to_string()),
        duration_seconds,
        ..lakeport_sts::AssumeRoleRequest::new(endpoint.as_str(), role_arn.as_str(), token)
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
    CALLER_KEYS.with(|c| c.borrow_mut().store(&config.issuer, subject, keys.clone(), credentials.expiration, now));
    Ok(keys)
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

/// Fetches a small JSON document from the issuer.
fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let response = aio::block_on(async { aio::send(&HttpRequest::get(url.to_string())).await?.read_all(MAX_KEYS_DOCUMENT).await })
        .map_err(|e| e.to_string())?;
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
                    if let Ok(document) = jwks_uri(config, &mut issuer).and_then(|uri| fetch(&uri)) {
                        let _ = issuer.keys.store(&document, lakeport_http::unix_now());
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
                Authentication::KeysUnavailable | Authentication::FetchKeys => return answer(out, LocalAnswer::keys_unavailable(), &[]),
            },
        };
        // For the host's access log (`lakeport serve` removes it; other
        // hosts pass it on: a hash, not the subject).
        let subject = [(proxy::SUBJECT_HASH_HEADER.to_string(), proxy::subject_hash(&claims))];
        // Authorised first: a refused request costs no STS call.
        let action = match proxy::decide(&config, &client, &claims) {
            Ok(a) => a,
            Err(a) => return answer(out, a, &subject),
        };
        let keys = match backend_keys(&config, &claims, token) {
            Ok(k) => k,
            Err(a) => return answer(out, a, &subject),
        };
        match action {
            Action::Forward(plan) => match plan.sign(&config, &keys, lakeport_http::unix_now()) {
                Ok(backend) => forward(&config, request, out, &backend, &subject),
                Err(a) => answer(out, a, &subject),
            },
            Action::Dav(mut operation) => answer(out, run(&config, &keys, &mut operation), &subject),
            Action::Upload(operation) => answer(out, upload(&config, &keys, request, operation), &subject),
        }
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
