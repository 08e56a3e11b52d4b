//! Concurrent HTTP over `wasi:http` for a single-threaded component: a
//! tiny executor ([`block_on`]) whose futures wait on WASI pollables, and
//! an async [`send`] whose request body and response body move in pieces.
//! Many requests are in flight at once; while all wait, the component
//! sleeps in one `wasi:io/poll.poll` over everything they wait for.
//!
//! Pollables are children of the streams and futures they watch: a
//! pollable must be dropped before its parent. [`wait`] owns the pollable
//! and drops it as soon as it is ready or the waiting future is dropped.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wasip2::io::poll::{poll, Pollable};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

use crate::{split_url, HttpError, HttpRequest, HttpResponse, TransportKind};

const SECOND_NS: u64 = 1_000_000_000;
/// Most bytes asked of an input stream per read.
const READ_CHUNK: u64 = 1 << 20;

struct Registered {
    pollable: Pollable,
    waker: Waker,
    ready: Rc<Cell<bool>>,
}

thread_local! {
    static REGISTERED: RefCell<Vec<Registered>> = const { RefCell::new(Vec::new()) };
}

/// Waits until `pollable` is ready.
pub fn wait(pollable: Pollable) -> Wait {
    Wait { pollable: Some(pollable), ready: Rc::new(Cell::new(false)), registered: false }
}

pub struct Wait {
    pollable: Option<Pollable>,
    ready: Rc<Cell<bool>>,
    registered: bool,
}

impl Future for Wait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.ready.get() {
            return Poll::Ready(());
        }
        if let Some(pollable) = self.pollable.take() {
            if pollable.ready() {
                self.ready.set(true);
                return Poll::Ready(());
            }
            let ready = self.ready.clone();
            REGISTERED.with(|r| r.borrow_mut().push(Registered { pollable, waker: cx.waker().clone(), ready }));
            self.registered = true;
        }
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        // A cancelled wait takes its pollable out of the reactor now, before
        // the stream it watches can be dropped.
        if self.registered && !self.ready.get() {
            REGISTERED.with(|r| r.borrow_mut().retain(|e| !Rc::ptr_eq(&e.ready, &self.ready)));
        }
    }
}

/// Sleeps for `ms` milliseconds without blocking other futures.
pub async fn sleep_ms(ms: u64) {
    if ms > 0 {
        wait(wasip2::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000))).await;
    }
}

/// Runs `future` to completion, sleeping in `wasi:io/poll.poll` whenever
/// everything it runs waits for I/O.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        let waiting = REGISTERED.with(|r| std::mem::take(&mut *r.borrow_mut()));
        assert!(!waiting.is_empty(), "a future is pending without waiting for anything");
        let ready: Vec<u32> = {
            let refs: Vec<&Pollable> = waiting.iter().map(|e| &e.pollable).collect();
            poll(&refs)
        };
        let mut still = Vec::with_capacity(waiting.len());
        for (i, entry) in waiting.into_iter().enumerate() {
            if ready.contains(&(i as u32)) {
                entry.ready.set(true);
                let waker = entry.waker;
                drop(entry.pollable);
                waker.wake();
            } else {
                still.push(entry);
            }
        }
        // Futures polled above may have registered new waits meanwhile.
        REGISTERED.with(|r| r.borrow_mut().extend(still));
    }
}

fn method(m: &str) -> Method {
    match m {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

fn transport(kind: TransportKind, message: String) -> HttpError {
    HttpError::Transport { kind, message }
}

/// Describes a `wasi:http` error code in words that say what to do.
pub fn describe(code: &ErrorCode, host: &str) -> HttpError {
    use TransportKind as K;
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied { host: host.to_string() },
        ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => transport(K::Dns, format!("cannot resolve {host}: check the URL")),
        ErrorCode::ConnectionRefused => {
            transport(K::Refused, format!("{host} refused the connection: is the server running and the port right?"))
        }
        ErrorCode::ConnectionTimeout => transport(K::Timeout, format!("connecting to {host} timed out")),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            transport(K::Timeout, format!("{host} stopped answering (timeout)"))
        }
        ErrorCode::ConnectionTerminated | ErrorCode::HttpResponseIncomplete | ErrorCode::ConnectionLimitReached => {
            transport(K::Reset, format!("{host} closed the connection before answering completely"))
        }
        ErrorCode::TlsCertificateError => transport(
            K::TlsCertificate,
            format!("the TLS certificate of {host} is not trusted: if it uses its own CA, pass its certificate with --ca-file"),
        ),
        ErrorCode::TlsProtocolError | ErrorCode::TlsAlertReceived(_) => transport(K::Other, format!("the TLS handshake with {host} failed")),
        ErrorCode::InternalError(Some(m)) if m.contains("reset") || m.contains("closed") || m.contains("broken pipe") => {
            transport(K::Reset, format!("the connection to {host} was reset"))
        }
        other => transport(K::Other, format!("the request to {host} failed: {other:?}")),
    }
}

fn stream_failure(e: StreamError, host: &str, doing: &str) -> HttpError {
    match e {
        StreamError::Closed => transport(TransportKind::Reset, format!("{host} closed the connection while {doing}")),
        StreamError::LastOperationFailed(e) => {
            let detail = e.to_debug_string();
            match wasip2::http::types::http_error_code(&e) {
                Some(code) => describe(&code, host),
                None => transport(TransportKind::Reset, format!("{doing} {host} failed: {detail}")),
            }
        }
    }
}

/// Writes all of `bytes`, waiting whenever the host's buffer is full.
async fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), StreamError> {
    while !bytes.is_empty() {
        let permit = stream.check_write()?;
        if permit == 0 {
            wait(stream.subscribe()).await;
            continue;
        }
        let n = (permit as usize).min(bytes.len());
        stream.write(&bytes[..n])?;
        bytes = &bytes[n..];
    }
    // No flush: the host passes each write on at once, and once the last
    // byte of a body with Content-Length is taken, the stream may already
    // report itself closed.
    Ok(())
}

/// Moves `len` bytes from `input` (a file the host streams) into `out`
/// without copying them into the component.
async fn splice_all(out: &OutputStream, input: &InputStream, mut len: u64) -> Result<(), StreamError> {
    while len > 0 {
        let permit = out.check_write()?;
        if permit == 0 {
            wait(out.subscribe()).await;
            continue;
        }
        match out.splice(input, permit.min(len))? {
            0 => wait(input.subscribe()).await,
            n => len -= n,
        }
    }
    Ok(())
}

/// A failure while splicing between a network stream and a local one (the
/// host's stream of a file). `local_ok` says whether the local stream still
/// works when probed after the failure: if it does, the network's side
/// failed (a connection cut in the middle of a body reaches the guest as an
/// I/O error without an HTTP error code), and that is retried as a reset.
fn splice_failure(e: StreamError, host: &str, doing: &str, local_ok: bool) -> HttpError {
    match e {
        StreamError::LastOperationFailed(ref error) if !local_ok && wasip2::http::types::http_error_code(error).is_none() => {
            HttpError::Local(error.to_debug_string())
        }
        e => stream_failure(e, host, doing),
    }
}

/// What a request carries.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    Bytes(&'a [u8]),
    /// `len` bytes the host streams (from a file): spliced, never copied
    /// into the component.
    Stream { stream: &'a InputStream, len: u64 },
}

impl Body<'_> {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::Stream { len, .. } => *len,
        }
    }
}

/// A response whose body has not been read yet.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    host: String,
    // Dropped in this order: the stream, then its body, then the response.
    stream: Option<InputStream>,
    body: Option<IncomingBody>,
    _response: IncomingResponse,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        let Some(stream) = &self.stream else { return Ok(None) };
        loop {
            match stream.read(READ_CHUNK) {
                Ok(bytes) if bytes.is_empty() => wait(stream.subscribe()).await,
                Ok(bytes) => return Ok(Some(bytes)),
                Err(StreamError::Closed) => {
                    self.stream = None;
                    return Ok(None);
                }
                Err(e) => {
                    self.stream = None;
                    return Err(stream_failure(e, &self.host, "reading the answer from"));
                }
            }
        }
    }

    /// Splices the body into `out` (a file the host writes) without
    /// copying it into the component, up to `limit` bytes; the bytes moved.
    pub async fn splice_into(&mut self, out: &OutputStream, limit: u64) -> Result<u64, HttpError> {
        let Some(stream) = &self.stream else { return Ok(0) };
        let mut moved = 0;
        while moved < limit {
            let permit = out.check_write().map_err(|e| splice_failure(e, &self.host, "storing the answer from", false))?;
            if permit == 0 {
                wait(out.subscribe()).await;
                continue;
            }
            match out.splice(stream, permit.min(limit - moved)) {
                Ok(0) => wait(stream.subscribe()).await,
                Ok(n) => moved += n,
                Err(StreamError::Closed) => {
                    self.stream = None;
                    break;
                }
                Err(e) => {
                    self.stream = None;
                    let local_ok = out.check_write().is_ok();
                    return Err(splice_failure(e, &self.host, "reading the answer from", local_ok));
                }
            }
        }
        Ok(moved)
    }

    /// The whole response, refusing bodies larger than `limit` bytes.
    pub async fn read_all(mut self, limit: usize) -> Result<HttpResponse, HttpError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() > limit {
                return Err(transport(TransportKind::Other, format!("the answer from {} is larger than {limit} bytes", self.host)));
            }
        }
        Ok(HttpResponse { status: self.status, headers: std::mem::take(&mut self.headers), body })
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        self.stream.take();
        self.body.take();
    }
}

/// Sends `request`, its body in pieces as the host takes them, and returns
/// once the answer's head has arrived.
pub async fn send(request: &HttpRequest) -> Result<Response, HttpError> {
    send_body(request, Body::Bytes(&request.body)).await
}

/// [`send`] with `body` in place of the request's own (which stays empty):
/// a large part is sent from where it is, never copied into the request.
pub async fn send_body(request: &HttpRequest, body_data: Body<'_>) -> Result<Response, HttpError> {
    let invalid_url = || transport(TransportKind::Other, format!("'{}' is not an http(s) URL", request.url));
    let (scheme, authority, path) = split_url(&request.url).ok_or_else(invalid_url)?;
    let host = authority.to_string();
    let mut fields: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
    // A body of known size goes out with Content-Length, not chunked:
    // servers such as moto read a form body only when its length is given,
    // and s3s wants one on every request that may carry a body.
    let has_body = body_data.len() > 0 || !matches!(request.method, "GET" | "HEAD" | "OPTIONS");
    if has_body && !fields.iter().any(|(n, _)| n == "content-length") {
        fields.push(("content-length".into(), body_data.len().to_string().into_bytes()));
    }
    let invalid = |what: &str| transport(TransportKind::Other, format!("invalid request {what} for {}", request.url));
    let headers = Fields::from_list(&fields).map_err(|e| transport(TransportKind::Other, format!("invalid request header: {e:?}")))?;
    let outgoing = OutgoingRequest::new(headers);
    outgoing.set_method(&method(request.method)).map_err(|_| invalid("method"))?;
    outgoing.set_scheme(Some(&if scheme == "https" { Scheme::Https } else { Scheme::Http })).map_err(|_| invalid("scheme"))?;
    outgoing.set_authority(Some(authority)).map_err(|_| invalid("host"))?;
    outgoing.set_path_with_query(Some(if path.is_empty() { "/" } else { path })).map_err(|_| invalid("path"))?;
    let body = outgoing.body().map_err(|_| invalid("body"))?;

    // lakeport's host takes the first-byte timeout as a limit on a
    // connection moving no byte either way (a slow link's large part is
    // never cut off for taking long); other hosts may take it literally.
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(15 * SECOND_NS));
    let _ = options.set_first_byte_timeout(Some(120 * SECOND_NS));
    let _ = options.set_between_bytes_timeout(Some(120 * SECOND_NS));
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(|e| describe(&e, &host))?;

    // A body write fails when the request itself failed (denied, refused,
    // answered early): then the response future holds the reason.
    let sending = "sending the request body to";
    let written = match body.write() {
        Ok(stream) => {
            let result = match body_data {
                Body::Bytes(bytes) => write_all(&stream, bytes).await.map_err(|e| stream_failure(e, &host, sending)),
                Body::Stream { stream: input, len } => {
                    // A file that still reads is not what failed.
                    splice_all(&stream, input, len).await.map_err(|e| splice_failure(e, &host, sending, input.read(0).is_ok()))
                }
            };
            drop(stream);
            result
        }
        Err(()) => Err(stream_failure(StreamError::Closed, &host, sending)),
    };
    // A local file that could not be read fails the request, whatever the
    // server makes of the cut body.
    if let Err(HttpError::Local(message)) = &written {
        return Err(HttpError::Local(message.clone()));
    }
    let finished = OutgoingBody::finish(body, None);
    let response = response_of(&future, &host).await;
    let response = match (response, written, finished) {
        (Err(e), _, _) => return Err(e),
        (Ok(r), Ok(()), Ok(())) => r,
        // The server answered before taking the whole body (an early 4xx):
        // its answer says more than the broken write.
        (Ok(r), _, _) if r.status() >= 400 => r,
        (Ok(_), Err(e), _) => return Err(e),
        (Ok(_), Ok(()), Err(code)) => return Err(describe(&code, &host)),
    };
    let status = response.status();
    let headers =
        response.headers().entries().into_iter().map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned())).collect();
    let unreadable = || transport(TransportKind::Other, format!("cannot read the body from {host}"));
    let incoming = response.consume().map_err(|_| unreadable())?;
    let stream = incoming.stream().map_err(|_| unreadable())?;
    Ok(Response { status, headers, host, stream: Some(stream), body: Some(incoming), _response: response })
}

async fn response_of(future: &FutureIncomingResponse, host: &str) -> Result<IncomingResponse, HttpError> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(describe(&code, host)),
            Some(Err(())) => return Err(transport(TransportKind::Other, format!("the response from {host} was already taken"))),
            None => wait(future.subscribe()).await,
        }
    }
}
