//! Outgoing HTTP for components: only to the hosts a profile names, over TLS
//! that trusts the system CA store plus an optional extra bundle
//! (`--ca-file`), as curl does. Everything else is refused before any
//! connection is made, and the component reports the host it was denied.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::log;

/// One origin a component may reach: scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHost {
    tls: bool,
    host: String,
    port: u16,
}

impl AllowedHost {
    /// From a URL (`https://iam.example/`): its scheme, host and effective port.
    pub fn from_url(url: &str) -> Result<Self> {
        let uri: http::Uri = url.parse().with_context(|| format!("'{url}' is not a valid URL"))?;
        let host = uri.host().ok_or_else(|| anyhow!("'{url}' has no host"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(anyhow!("'{url}' must be an http or https URL")),
        };
        Ok(AllowedHost { tls, host: normalize_host(host), port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }) })
    }

    fn matches(&self, tls: bool, host: &str, port: u16) -> bool {
        self.tls == tls && self.host == host && self.port == port
    }

    /// This machine by name or address: where plain http carries nothing
    /// across a network, and where a name may resolve to loopback.
    fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.ends_with(".localhost") || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    fn origin(&self) -> String {
        format!("{}://{}:{}", if self.tls { "https" } else { "http" }, self.host, self.port)
    }
}

/// Why a resolved address may not be connected to, if it may not:
/// link-local addresses (cloud metadata services answer there, with
/// credentials) never; loopback only when the configured host is this
/// machine, so a name cannot be pointed at local services by DNS.
fn refused_address(ip: IpAddr, loopback_configured: bool) -> Option<&'static str> {
    let ip = ip.to_canonical();
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        Some("a link-local address")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some("not a host address")
    } else if ip.is_loopback() && !loopback_configured {
        Some("this machine, though the configured host is not")
    } else {
        None
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_matches(['[', ']']).trim_end_matches('.').to_ascii_lowercase()
}

/// Timeouts for one request. A request never times out as a whole (a
/// large part over a slow link may take hours): until its answer begins it
/// fails only when its connection moves no byte either way for
/// [`IDLE_TIMEOUT`] (wasi:http's first-byte timeout is taken as this idle
/// limit), then when its answer body stalls for the between-bytes timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a request waiting for its answer looks at its connection.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// How long a kept-alive connection waits for its next request. Servers
/// close idle ones after a few seconds to minutes; a request sent just as
/// one does fails, so only connections idle for less than the shortest
/// common limit are reused. Requests of one transfer follow each other
/// within milliseconds.
const KEEP_IDLE_FOR: Duration = Duration::from_secs(4);
/// Idle connections kept per endpoint: above the most requests in flight.
const MAX_IDLE_PER_ENDPOINT: usize = 64;

type Sender = hyper::client::conn::http1::SendRequest<WasiBody>;
/// TLS or not, host, port.
type Endpoint = (bool, String, u16);

/// An HTTP/1.1 connection: its request sender and its byte activity.
struct Connection {
    sender: Sender,
    activity: Arc<Activity>,
}

/// When a connection last moved a byte, either way: the clock of the idle
/// timeout.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    /// The socket, to see how much of what was written the kernel still
    /// holds: on a slow link a request body sits in the send buffer (megabytes
    /// on a fast LAN's autotuned socket) long after the last write.
    socket: std::os::fd::RawFd,
}

impl Activity {
    fn new(socket: std::os::fd::RawFd) -> Self {
        Activity { started: Instant::now(), last_ms: AtomicU64::new(0), socket }
    }

    fn touch(&self) {
        self.last_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }

    /// Bytes written to the socket and not yet acknowledged by the peer.
    #[cfg(target_os = "linux")]
    fn unacknowledged(&self) -> Option<i32> {
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ writes one int; the socket is open while its connection lives.
        let ok = unsafe { libc::ioctl(self.socket, libc::TIOCOUTQ, &mut queued) } == 0;
        ok.then_some(queued)
    }

    #[cfg(not(target_os = "linux"))]
    fn unacknowledged(&self) -> Option<i32> {
        None
    }
}

/// Waits for the answer to a request sent on a connection, failing only
/// when the connection has moved nothing for `idle`: bytes written, read,
/// or drained from the socket's send buffer all count as progress.
async fn answer_unless_idle<F, T>(answer: F, activity: &Activity, idle: Duration) -> std::result::Result<T, Error>
where
    F: Future<Output = T>,
{
    let mut answer = std::pin::pin!(answer);
    activity.touch();
    let mut queued = activity.unacknowledged();
    loop {
        let wait = idle.saturating_sub(activity.idle_for()).clamp(Duration::from_millis(1), IDLE_CHECK);
        if let Ok(answered) = tokio::time::timeout(wait, answer.as_mut()).await {
            return Ok(answered);
        }
        let now_queued = activity.unacknowledged();
        if now_queued != queued {
            queued = now_queued;
            activity.touch();
        }
        if activity.idle_for() >= idle {
            return Err(Error::ConnectionReadTimeout);
        }
    }
}

/// Connections whose last response is fully read, by endpoint:
/// the next request to the same endpoint reuses one, without a new TCP
/// and TLS handshake.
#[derive(Default)]
struct IdleConnections(Mutex<HashMap<Endpoint, Vec<(Connection, Instant)>>>);

impl IdleConnections {
    fn take(&self, endpoint: &Endpoint) -> Option<Connection> {
        let mut idle = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.get_mut(endpoint)?;
        while let Some((connection, since)) = kept.pop() {
            if since.elapsed() < KEEP_IDLE_FOR && connection.sender.is_ready() {
                return Some(connection);
            }
        }
        None
    }

    /// Keeps the connection once its response is read to the end; one the
    /// server or a partly read body closes is let go.
    fn give_back(self: Arc<Self>, endpoint: Endpoint, mut connection: Connection) {
        tokio::spawn(async move {
            if connection.sender.ready().await.is_err() {
                return;
            }
            let mut idle = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let kept = idle.entry(endpoint).or_default();
            kept.retain(|(connection, since)| since.elapsed() < KEEP_IDLE_FOR && !connection.sender.is_closed());
            if kept.len() < MAX_IDLE_PER_ENDPOINT {
                kept.push((connection, Instant::now()));
            }
        });
    }
}

/// What one component instance may reach.
pub struct EgressPolicy {
    allowed: Vec<AllowedHost>,
    extra_ca: Option<PathBuf>,
    /// Built on the first https request: reading the system store costs
    /// milliseconds that a cached `lakeport creds` should not pay.
    tls: OnceLock<std::result::Result<Arc<rustls::ClientConfig>, String>>,
    idle: Arc<IdleConnections>,
}

impl EgressPolicy {
    pub fn new(allowed: Vec<AllowedHost>, extra_ca: Option<PathBuf>) -> Self {
        EgressPolicy { allowed, extra_ca, tls: OnceLock::new(), idle: Arc::default() }
    }

    /// [`EgressPolicy::new`] for a component that sends tokens or
    /// passwords: plain http only to this machine (a local test server),
    /// unless the profile says `allow_insecure_http = true`.
    pub fn for_secrets(allowed: Vec<AllowedHost>, extra_ca: Option<PathBuf>, allow_insecure_http: bool) -> Result<Self> {
        if let Some(plain) = allowed.iter().find(|a| !a.tls && !a.is_loopback()).filter(|_| !allow_insecure_http) {
            return Err(anyhow!(
                "{} is plain http: tokens and passwords would cross the network unencrypted; use https, or set allow_insecure_http = true in the profile",
                plain.origin()
            ));
        }
        Ok(Self::new(allowed, extra_ca))
    }

    /// The allowed origin `host:port` over TLS or not belongs to, if any.
    fn allowed(&self, tls: bool, host: &str, port: u16) -> Option<&AllowedHost> {
        let host = normalize_host(host);
        self.allowed.iter().find(|a| a.matches(tls, &host, port))
    }

    pub fn allowed_hosts(&self) -> impl Iterator<Item = String> + '_ {
        self.allowed.iter().map(AllowedHost::origin)
    }

    fn tls(&self) -> std::result::Result<Arc<rustls::ClientConfig>, String> {
        self.tls.get_or_init(|| tls_config(self.extra_ca.as_deref()).map_err(|e| format!("{e:#}"))).clone()
    }

    async fn send(
        self: Arc<Self>,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> std::result::Result<(http::Response<WasiBody>, Box<dyn Future<Output = std::result::Result<(), Error>> + Send>), Error> {
        let uri = request.uri().clone();
        let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_string();
        let use_tls = uri.scheme() == Some(&Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
        let Some(origin) = self.allowed(use_tls, &host, port) else {
            let scheme = if use_tls { "https" } else { "http" };
            log::verbose(format_args!("denied an outgoing request to {scheme}://{host}:{port} (allowed: {})", self.allowed_hosts().collect::<Vec<_>>().join(", ")));
            return Err(Error::HttpRequestDenied);
        };
        let loopback_configured = origin.is_loopback();
        let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(CONNECT_TIMEOUT);
        let idle_timeout = options.and_then(|o| o.first_byte_timeout).unwrap_or(IDLE_TIMEOUT);
        let between_bytes = options.and_then(|o| o.between_bytes_timeout).unwrap_or(BETWEEN_BYTES_TIMEOUT).max(Duration::from_millis(1));

        // The request line carries only the path; the authority is in Host.
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;

        let endpoint = (use_tls, normalize_host(&host), port);
        let mut connection = match self.idle.take(&endpoint) {
            Some(connection) => connection,
            None => self.connect(&host, port, use_tls, loopback_configured, connect_timeout).await?,
        };
        // Method and path only: queries may carry upload IDs or, in
        // presigned URLs, signatures.
        let method = request.method().clone();
        let path = uri.path().to_string();
        let response = answer_unless_idle(connection.sender.send_request(request), &connection.activity, idle_timeout)
            .await
            .inspect_err(|_| log::verbose(format_args!("{method} {host}:{port}{path}: nothing moved for {} s", idle_timeout.as_secs())))?
            .map_err(|e| {
                log::verbose(format_args!("{method} {host}:{port}{path} failed: {e}"));
                Error::from(e)
            })?;
        log::verbose(format_args!("{method} {host}:{port}{path}: {}", response.status().as_u16()));
        self.idle.clone().give_back(endpoint, connection);
        let response = response.map(|body| in_bursts(StallGuard::new(body, between_bytes)).boxed_unsync());
        // The connection outlives this exchange; its errors reach the
        // component through the response body.
        Ok((response, Box::new(async { Ok(()) })))
    }

    /// A new connection, over TLS for https, driven by its own task.
    async fn connect(&self, host: &str, port: u16, use_tls: bool, loopback_configured: bool, connect_timeout: Duration) -> std::result::Result<Connection, Error> {
        let bare_host = host.trim_matches(['[', ']']).to_string();
        let connecting = async {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((bare_host.as_str(), port)).await.map_err(|e| connect_error(host, port, e))?.collect();
            let mut last = Error::DnsError { rcode: Some("no address".into()), info_code: None };
            for address in addresses {
                if let Some(why) = refused_address(address.ip(), loopback_configured) {
                    log::verbose(format_args!("not connecting to {host}:{port} at {}: {why}", address.ip()));
                    last = Error::HttpRequestDenied;
                    continue;
                }
                match TcpStream::connect(address).await {
                    Ok(tcp) => return Ok(tcp),
                    Err(e) => last = connect_error(host, port, e),
                }
            }
            Err(last)
        };
        let tcp = tokio::time::timeout(connect_timeout, connecting).await.map_err(|_| Error::ConnectionTimeout)??;
        let _ = tcp.set_nodelay(true);
        log::verbose(format_args!("connected to {host}:{port} ({})", tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default()));
        let activity = Arc::new(Activity::new(std::os::fd::AsRawFd::as_raw_fd(&tcp)));
        let tcp = QuickAck { tcp, activity: activity.clone(), read_since_write: 0 };
        let sender = if use_tls {
            let config = self.tls().map_err(|e| Error::InternalError(Some(e)))?;
            let name = ServerName::try_from(bare_host).map_err(|_| Error::HttpRequestUriInvalid)?;
            let stream = tokio::time::timeout(connect_timeout, tokio_rustls::TlsConnector::from(config).connect(name, tcp))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            handshake(stream).await?
        } else {
            handshake(tcp).await?
        };
        Ok(Connection { sender, activity })
    }
}

/// A TCP connection that acknowledges what it read at once, and notes
/// each byte moved in its [`Activity`]. A server that leaves Nagle's
/// algorithm on (s3s-fs does) holds each small write of an answer until
/// the one before is acknowledged, and Linux delays that acknowledgement
/// by up to 40 ms once a connection is past its first exchanges: on a
/// kept-alive connection nearly every small answer would wait that long.
///
/// Only the first [`QUICK_ACK_BYTES`] read after each write (a request) are
/// acknowledged at once: past them an answer is bulk, and prompt ACKs would
/// release such a server's writes one small segment per round trip (s3s-fs
/// writes 4 KiB at a time: a 1 GiB body then costs its reader 250,000
/// reads and wakeups), where delayed ones let Nagle gather them.
struct QuickAck {
    tcp: TcpStream,
    activity: Arc<Activity>,
    /// Bytes read since the last write.
    read_since_write: usize,
}

const QUICK_ACK_BYTES: usize = 64 << 10;

impl QuickAck {
    fn ack_now(&self) {
        #[cfg(target_os = "linux")]
        let _ = socket2::SockRef::from(&self.tcp).set_tcp_quickack(true);
    }

    fn wrote(&mut self) {
        self.read_since_write = 0;
        self.activity.touch();
    }
}

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if matches!(polled, Poll::Ready(Ok(()))) && read > 0 {
            if self.read_since_write < QUICK_ACK_BYTES {
                self.ack_now();
            }
            self.read_since_write = self.read_since_write.saturating_add(read);
            self.activity.touch();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote();
        }
        polled
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// HTTP/1.1 over a connected stream; the connection is driven by its own
/// task until it closes.
async fn handshake<S>(stream: S) -> std::result::Result<Sender, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(Error::from)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            log::verbose(format_args!("a connection ended: {e}"));
        }
    });
    Ok(sender)
}

fn connect_error(host: &str, port: u16, e: std::io::Error) -> Error {
    log::verbose(format_args!("connecting to {host}:{port} failed: {e}"));
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
        std::io::ErrorKind::TimedOut => Error::ConnectionTimeout,
        // Name resolution failures surface as "other" errors from getaddrinfo.
        _ if e.to_string().contains("lookup") || e.to_string().contains("resolve") || e.to_string().contains("Name or service") => {
            Error::DnsError { rcode: Some("name not found".into()), info_code: None }
        }
        _ => Error::Connect(e),
    }
}

/// Fails a response body that stops arriving for longer than the timeout,
/// so a stalled server cannot hang a component forever.
struct StallGuard {
    inner: hyper::body::Incoming,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl StallGuard {
    fn new(inner: hyper::body::Incoming, timeout: Duration) -> Self {
        StallGuard { inner, timeout, sleep: Box::pin(tokio::time::sleep(timeout)) }
    }
}

impl http_body::Body for StallGuard {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<std::result::Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + self.timeout;
                self.sleep.as_mut().reset(deadline);
                Poll::Ready(frame.map(|f| f.map_err(Error::from)))
            }
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Answer bytes handed on together, at most: a burst is gathered while
/// frames keep coming, up to this size.
const BURST_BYTES: usize = 256 << 10;
/// How long a burst waits for more frames once it holds some.
const BURST_LULL: Duration = Duration::from_millis(2);

/// An answer body handed to the component in bursts. A server that writes
/// in small pieces (s3s-fs: 4 KiB) makes the connection read a few KiB at
/// a time, and each piece would wake the component's thread on its own (a
/// context switch per 8 KiB, most of a download's CPU time). A task beside
/// the connection gathers frames until BURST_BYTES, the body's end, an
/// error, or a BURST_LULL without a frame, and passes them on as one.
fn in_bursts<B>(mut body: B) -> Bursts
where
    B: http_body::Body<Data = Bytes, Error = Error> + Send + Unpin + 'static,
{
    let (bursts, receiver) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let mut held = bytes::BytesMut::new();
        let mut lull = Box::pin(tokio::time::sleep(BURST_LULL));
        loop {
            // The next frame; `None` when a lull ends a burst first.
            let next = std::future::poll_fn(|cx| match Pin::new(&mut body).poll_frame(cx) {
                Poll::Ready(frame) => Poll::Ready(Some(frame)),
                Poll::Pending if !held.is_empty() && lull.as_mut().poll(cx).is_ready() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            })
            .await;
            let (last, after) = match next {
                Some(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if held.is_empty() {
                            lull.as_mut().reset(tokio::time::Instant::now() + BURST_LULL);
                        }
                        held.extend_from_slice(&data);
                        if held.len() < BURST_BYTES {
                            continue;
                        }
                        (false, None)
                    }
                    // Trailers end the body.
                    Err(trailers) => (true, Some(Ok(trailers))),
                },
                Some(Some(Err(e))) => (true, Some(Err(e))),
                Some(None) => (true, None),
                None => (false, None),
            };
            if !held.is_empty() && bursts.send(Ok(http_body::Frame::data(held.split().freeze()))).await.is_err() {
                return;
            }
            if let Some(frame) = after {
                let _ = bursts.send(frame).await;
            }
            if last {
                return;
            }
        }
    });
    Bursts { frames: receiver }
}

/// The receiving end of [`in_bursts`]; it ends when the task does.
struct Bursts {
    frames: tokio::sync::mpsc::Receiver<std::result::Result<http_body::Frame<Bytes>, Error>>,
}

impl http_body::Body for Bursts {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<std::result::Result<http_body::Frame<Bytes>, Error>>> {
        self.frames.poll_recv(cx)
    }
}

/// The system's trusted CAs plus, optionally, a PEM bundle of extra ones
/// (research infrastructures often run their own CA).
pub fn tls_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    log::verbose(format_args!("TLS: {added} CA certificates from the system store"));
    if let Some(path) = extra_ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read the CA file {}", path.display()))?
            .collect::<std::result::Result<_, _>>()
            .with_context(|| format!("the CA file {} is not a PEM certificate bundle", path.display()))?;
        if certs.is_empty() {
            return Err(anyhow!("the CA file {} holds no certificates", path.display()));
        }
        let (ok, bad) = roots.add_parsable_certificates(certs);
        if ok == 0 {
            return Err(anyhow!("none of the {bad} certificates in {} could be used", path.display()));
        }
        log::verbose(format_args!("TLS: {ok} CA certificates from {}", path.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The hooks wasi:http calls for each outgoing request of one instance.
pub struct Egress {
    policy: Arc<EgressPolicy>,
}

impl Egress {
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        Egress { policy }
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = std::result::Result<(), Error>> + Send>,
    ) -> Box<
        dyn Future<Output = std::result::Result<(http::Response<WasiBody>, Box<dyn Future<Output = std::result::Result<(), Error>> + Send>), Error>>
            + Send,
    > {
        Box::new(self.policy.clone().send(request, options))
    }

    /// Certificate problems get their own code, so the component can say
    /// "not trusted: pass --ca-file" rather than a generic TLS failure.
    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> ErrorCode {
        log::verbose(format_args!("TLS error: {err}"));
        let certificate = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented));
        if certificate {
            ErrorCode::TlsCertificateError
        } else {
            ErrorCode::TlsProtocolError
        }
    }
}

/// A healthchecks.io-style ping: `GET url`, from the host itself (it is a
/// signal about lakeport, not a protocol step of a component), through the
/// same connection code, timeouts and TLS trust as components' requests.
/// Returns the HTTP status.
pub fn ping(url: &str, extra_ca: Option<&Path>) -> Result<u16> {
    let uri: http::Uri = url.parse().with_context(|| format!("the ping URL '{url}' is not valid"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(anyhow!("the ping URL '{url}' must be http or https"));
    }
    let authority = uri.authority().map(|a| a.to_string()).ok_or_else(|| anyhow!("the ping URL '{url}' has no host"))?;
    let policy = Arc::new(EgressPolicy::new(vec![AllowedHost::from_url(url)?], extra_ca.map(Path::to_path_buf)));
    let body = http_body_util::Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync();
    let request = http::Request::get(uri)
        .header("Host", &authority)
        .header("User-Agent", concat!("lakeport/", env!("CARGO_PKG_VERSION")))
        .body(body)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the ping")?;
    runtime.block_on(async move {
        match policy.send(request, None).await {
            Ok((response, _connection)) => Ok(response.status().as_u16()),
            Err(Error::ConnectionRefused | Error::ConnectionTimeout | Error::DnsError { .. } | Error::Connect(_)) => {
                Err(anyhow!("ping: cannot connect to {authority}"))
            }
            Err(e) => Err(anyhow!("ping: the request to {authority} failed: {e}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn link_local_addresses_are_never_reached_and_loopback_only_when_configured() {
        for metadata in ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254"] {
            assert!(refused_address(ip(metadata), true).is_some(), "{metadata}");
        }
        assert!(refused_address(ip("127.0.0.1"), false).is_some());
        assert!(refused_address(ip("::1"), false).is_some());
        assert!(refused_address(ip("127.0.0.1"), true).is_none());
        assert!(refused_address(ip("0.0.0.0"), true).is_some());
        assert!(refused_address(ip("192.0.2.7"), false).is_none());
        assert!(refused_address(ip("2001:db8::7"), false).is_none());
    }

    #[test]
    fn allowed_origins_match_scheme_host_and_port() {
        let policy = EgressPolicy::new(vec![AllowedHost::from_url("https://IAM.example./x").unwrap()], None);
        assert!(policy.allowed(true, "iam.example", 443).is_some());
        assert!(policy.allowed(false, "iam.example", 443).is_none(), "plain http to an https origin");
        assert!(policy.allowed(true, "iam.example", 8443).is_none());
        assert!(policy.allowed(true, "other.example", 443).is_none());
    }

    #[test]
    fn secrets_go_over_plain_http_only_to_this_machine_unless_allowed() {
        let origins = |urls: &[&str]| urls.iter().map(|u| AllowedHost::from_url(u).unwrap()).collect::<Vec<_>>();
        assert!(EgressPolicy::for_secrets(origins(&["https://iam.example", "http://127.0.0.1:8080", "http://localhost:9"]), None, false).is_ok());
        let err = EgressPolicy::for_secrets(origins(&["https://iam.example", "http://sts.example:8000"]), None, false).err().unwrap();
        assert!(err.to_string().contains("http://sts.example:8000 is plain http") && err.to_string().contains("allow_insecure_http"), "{err}");
        assert!(EgressPolicy::for_secrets(origins(&["http://sts.example:8000"]), None, true).is_ok());
    }
}
