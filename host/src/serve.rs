//! `lakeport serve`: the gateway component behind an HTTP/1.1 server.
//!
//! Each request is handed to an instance of the gateway (a
//! `wasi:http/incoming-handler` call on a blocking thread); instances are
//! kept between requests, so the issuer's keys the component caches serve
//! many requests. The instance's linker holds only the gateway world's
//! imports, its outgoing requests go only to the issuer and the S3
//! endpoint, and its configuration is the values given here, read through
//! `wasi:config/store`. One JSON line per request goes to stderr.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::server::conn::http1;
use wasmtime::Store;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::sync::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::egress::EgressPolicy;
use crate::runtime::{arm_deadline, call_error, Grant, HostState, Runtime};

/// The response header the component names the subject in (hashed); it is
/// logged and removed here, never sent.
const SUBJECT_HASH_HEADER: &str = "lakeport-subject-hash";
/// The response header the component says where the backend keys came
/// from in (cache hit or miss); removed the same way.
const KEY_SOURCE_HEADER: &str = "lakeport-key-source";

/// Instances kept for the next requests; more in flight are made and dropped.
const MAX_IDLE_INSTANCES: usize = 16;

/// How long in-flight requests may finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What `lakeport serve` runs with.
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// The gateway's `wasi:config/store` values.
    pub config: Vec<(String, String)>,
    pub egress: EgressPolicy,
}

struct Gateway {
    runtime: Runtime,
    grant: Grant,
    pre: ProxyPre<HostState>,
    idle: Mutex<Vec<(Store<HostState>, Proxy)>>,
}

type Instance = (Store<HostState>, Proxy);

impl Gateway {
    /// A kept instance, if one is idle: taken without leaving the caller's
    /// thread (a hop to a blocking thread and back costs two context
    /// switches, a good part of a small request).
    fn idle_instance(&self) -> Option<Instance> {
        self.idle.lock().unwrap().pop()
    }

    /// A new instance: compiled code is at hand, but instantiating takes
    /// long enough to belong on a blocking thread.
    fn new_instance(&self) -> Result<Instance> {
        let mut store = self.runtime.store(&self.grant)?;
        let proxy = self.pre.instantiate(&mut store).map_err(|e| call_error("gateway", e))?;
        Ok((store, proxy))
    }

    fn keep(&self, instance: Instance) {
        let mut idle = self.idle.lock().unwrap();
        if idle.len() < MAX_IDLE_INSTANCES {
            idle.push(instance);
        }
    }
}

/// glibc's malloc gives each thread that allocates its own arena (up to
/// eight per core), and each arena keeps the buffers it freed. A request
/// runs on whichever blocking thread is free, so every arena ends up
/// holding a transfer's worth of buffers: with 16 concurrent 1 GiB GETs,
/// two arenas peak at 114 MiB where the default made 131 MiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fewer_malloc_arenas() {
    // Before the server's threads start; a refusal only costs memory.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fewer_malloc_arenas() {}

/// Serves until SIGTERM or SIGINT, then lets in-flight requests finish.
pub fn serve(runtime: Runtime, options: ServeOptions) -> Result<()> {
    fewer_malloc_arenas();
    let grant = Grant {
        // A transfer is one call however large; a stalled one ends by the
        // HTTP timeouts instead.
        time_limit: Duration::from_secs(24 * 3600),
        config: Some(Arc::new(options.config)),
        // Callers' STS keys and the leases on fetching them, for all instances.
        shared_store: Some(Arc::new(crate::shared_store::SharedStore::new())),
        ..Grant::http_to(options.egress)
    };
    let loaded = runtime.load("gateway", grant.clone())?;
    let linker = runtime.linker_for(&loaded)?;
    let pre = linker
        .instantiate_pre(&loaded.component)
        .and_then(ProxyPre::new)
        .map_err(|e| anyhow!("the gateway component cannot be served: {e}"))?;
    let gateway = Arc::new(Gateway { runtime, grant, pre, idle: Mutex::new(Vec::new()) });

    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the server's runtime")?;
    tokio.block_on(accept_loop(gateway, options.listen))
}

async fn accept_loop(gateway: Arc<Gateway>, listen: SocketAddr) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}: is the address free and local?"))?;
    let local = listener.local_addr()?;
    let mut term = signal(SignalKind::terminate()).context("watching for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("watching for SIGINT")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    eprintln!("lakeport: serving the gateway on http://{local}");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let gateway = gateway.clone();
                let mut stop = stop_rx.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(gateway.clone(), req));
                    let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(tcp), service);
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        eprintln!("lakeport: stopping with requests still in flight after {} s", SHUTDOWN_GRACE.as_secs());
    }
    Ok(())
}

/// One access-log line, written when the response body ends or is dropped.
struct AccessLog {
    method: String,
    path: String,
    status: u16,
    subject: Option<String>,
    keys: Option<String>,
    started: Instant,
    bytes: u64,
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        let line = serde_json::json!({
            "time": crate::tokens::rfc3339(lakeport_http::unix_now()),
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "bytes": self.bytes,
            "duration_ms": (self.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            "subject": self.subject,
            "keys": self.keys,
        });
        // One write per line: stderr is unbuffered, and printing the JSON
        // value piece by piece made a dozen writes of each line.
        let mut text = line.to_string();
        text.push('\n');
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
    }
}

/// The response body, counted for the access log.
struct Logged {
    inner: HyperOutgoingBody,
    log: AccessLog,
}

impl Body for Logged {
    type Data = Bytes;
    type Error = <HyperOutgoingBody as Body>::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.log.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn local_error(status: u16, log: AccessLog, message: &str) -> hyper::Response<Logged> {
    use http_body_util::BodyExt;
    let body = http_body_util::Full::new(Bytes::from(format!("{message}\n"))).map_err(|never| match never {}).boxed_unsync();
    let mut log = log;
    log.status = status;
    let mut response = hyper::Response::new(Logged { inner: body, log });
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

async fn handle(gateway: Arc<Gateway>, request: hyper::Request<hyper::body::Incoming>) -> Result<hyper::Response<Logged>, std::convert::Infallible> {
    // The path only: a query may hold a presigned signature.
    let log = AccessLog {
        method: request.method().to_string(),
        path: crate::log::printable(request.uri().path()).into_owned(),
        status: 0,
        subject: None,
        keys: None,
        started: Instant::now(),
        bytes: 0,
    };
    let instance = match gateway.idle_instance() {
        Some(instance) => Ok(Ok(instance)),
        None => {
            let gateway = gateway.clone();
            tokio::task::spawn_blocking(move || gateway.new_instance()).await
        }
    };
    let (mut store, proxy) = match instance {
        Ok(Ok(instance)) => instance,
        Ok(Err(e)) => {
            eprintln!("lakeport: {e:#}");
            return Ok(local_error(500, log, "the gateway could not start an instance"));
        }
        Err(_) => return Ok(local_error(500, log, "the gateway could not start an instance")),
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let prepared = (|| -> wasmtime::Result<_> {
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        Ok((req, out))
    })();
    let (req, out) = match prepared {
        Ok(p) => p,
        Err(e) => return Ok(local_error(400, log, &format!("the request cannot be served: {e}"))),
    };
    let call = tokio::task::spawn_blocking(move || {
        arm_deadline(&mut store);
        let result = proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out);
        match result {
            // Only an instance that finished cleanly serves again.
            Ok(()) => {
                gateway.keep((store, proxy));
                Ok(())
            }
            Err(e) => Err(call_error("gateway", e)),
        }
    });
    match receiver.await {
        Ok(Ok(response)) => {
            let (mut parts, inner) = response.into_parts();
            let mut taken = |name| parts.headers.remove(name).and_then(|v: hyper::header::HeaderValue| v.to_str().ok().map(String::from));
            let mut log = log;
            log.subject = taken(SUBJECT_HASH_HEADER);
            log.keys = taken(KEY_SOURCE_HEADER);
            log.status = parts.status.as_u16();
            Ok(hyper::Response::from_parts(parts, Logged { inner, log }))
        }
        Ok(Err(code)) => Ok(local_error(502, log, &format!("the gateway failed: {code:?}"))),
        Err(_) => {
            let why = match call.await {
                Ok(Err(e)) => format!("{e:#}"),
                _ => "it gave no answer".to_string(),
            };
            eprintln!("lakeport: {why}");
            Ok(local_error(500, log, "the gateway failed to answer"))
        }
    }
}
