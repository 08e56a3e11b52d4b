//! A test-only HTTP/1.1 proxy on 127.0.0.1 between lakeport and an S3
//! server that misbehaves on purpose, within a budget. It reads each
//! request and each answer by its framing (Content-Length or chunked), so
//! it keeps connections alive as client and server do (it never adds
//! `Connection: close`) and can break any request of a connection, fresh
//! or kept alive: reset it before forwarding, answer 503 `SlowDown`, cut a
//! request or an answer body part way (with a reset, or a clean close short
//! of the announced length), flip a byte of an answer body, lose the answer
//! to a request the server carried out, stall, pace every byte to a slow
//! link, or refuse a session token as expired after some requests. It
//! records the request line of every request it forwarded, so tests can
//! see what was (not) sent.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How a body is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Break {
    /// TCP reset (SO_LINGER 0).
    Reset,
    /// A clean close (FIN), short of the length the head announced.
    Close,
}

/// Cut bodies after `after` bytes, of every `every`-th request (counted
/// over the proxy's life; 0 or 1: each) whose method is `method`.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    pub method: &'static str,
    pub after: usize,
    pub how: Break,
    pub every: usize,
}

impl Cut {
    fn applies(&self, n: usize, method: &str) -> bool {
        self.method == method && n % self.every.max(1) == 0
    }
}

/// Which requests of a connection may be broken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Which {
    #[default]
    Any,
    /// Only the first request of a connection.
    Fresh,
    /// Only requests after the first on their connection.
    KeptAlive,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Reset every n-th request, after reading its head (the client is
    /// mid-request).
    pub reset_every: Option<usize>,
    /// Answer every n-th request with 503 SlowDown.
    pub unavailable_every: Option<usize>,
    /// Stop misbehaving after this many faults (0: no limit).
    pub max_faults: usize,
    /// Which requests body cuts and resets apply to.
    pub which: Which,
    /// Flip one byte in the body of every successful GET answer.
    pub corrupt_get_bodies: bool,
    /// Wait this long before forwarding each request.
    pub delay_ms: u64,
    /// Forward the first request whose request line contains this text,
    /// let the server answer it, then close the client's connection
    /// instead of passing the answer on: the request took effect, the
    /// client never learns it.
    pub lose_answer_to: Option<&'static str>,
    /// Cut the bodies of successful answers to these requests.
    pub cut_answers: Option<Cut>,
    /// Cut the bodies of these requests on their way to the server.
    pub cut_requests: Option<Cut>,
    /// Stop passing a successful answer on after this many body bytes, for
    /// this long, then go on (a stalled server or link); counts as a fault.
    pub stall_answers: Option<(usize, Duration)>,
    /// Every byte, both ways and over all connections, at this rate.
    pub pace_bytes_per_sec: Option<u64>,
    /// The first session token (`x-amz-security-token`) seen is refused
    /// with 400 `ExpiredToken` once this many requests carrying it have
    /// been forwarded.
    pub expire_session_token_after: Option<usize>,
    /// Answer the first request whose request line contains `.0` with `.1`
    /// (a whole HTTP/1.1 answer) instead of forwarding it.
    pub answer_instead: Option<(&'static str, &'static str)>,
    /// In the answers to requests whose request line contains `.0`,
    /// replace `.1` with `.2` in the body (a server that lies).
    pub rewrite_answers: Option<(&'static str, &'static str, &'static str)>,
}

pub struct FaultProxy {
    pub endpoint: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

struct Shared {
    upstream: String,
    faults: Faults,
    forwarded: Mutex<Vec<String>>,
    injected: AtomicUsize,
    requests: AtomicUsize,
    expired_refusals: AtomicUsize,
    answered_instead: AtomicBool,
    session: Mutex<SessionTokens>,
    pace: Mutex<Instant>,
}

#[derive(Default)]
struct SessionTokens {
    first: Option<String>,
    forwarded_with_first: usize,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`host:port`).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            faults,
            forwarded: Mutex::new(Vec::new()),
            injected: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            expired_refusals: AtomicUsize::new(0),
            answered_instead: AtomicBool::new(false),
            session: Mutex::new(SessionTokens::default()),
            pace: Mutex::new(Instant::now()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (accepting, halt) = (shared.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if halt.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let shared = accepting.clone();
                thread::spawn(move || {
                    let _ = serve_connection(client, &shared);
                });
            }
        });
        FaultProxy { endpoint, shared, stop }
    }

    /// Request lines (`PUT /bucket/key?partNumber=2&uploadId=… HTTP/1.1`) forwarded so far.
    pub fn forwarded(&self) -> Vec<String> {
        self.shared.forwarded.lock().unwrap().clone()
    }

    pub fn faults_injected(&self) -> usize {
        self.shared.injected.load(Ordering::Relaxed)
    }

    /// Requests whose head reached the proxy, forwarded or not.
    pub fn requests_seen(&self) -> usize {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Whether the `answer_instead` answer was given.
    pub fn answered_instead(&self) -> bool {
        self.shared.answered_instead.load(Ordering::Relaxed)
    }

    /// Requests answered `ExpiredToken` by the proxy itself.
    pub fn expired_refusals(&self) -> usize {
        self.shared.expired_refusals.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

impl Shared {
    fn take_fault(&self) -> bool {
        let n = self.injected.fetch_add(1, Ordering::Relaxed);
        if self.faults.max_faults > 0 && n >= self.faults.max_faults {
            self.injected.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Waits until `bytes` more may pass at the paced rate.
    fn pace(&self, bytes: usize) {
        let Some(rate) = self.faults.pace_bytes_per_sec else { return };
        let due = {
            let mut next = self.pace.lock().unwrap();
            let now = Instant::now();
            if *next < now {
                *next = now;
            }
            *next += Duration::from_secs_f64(bytes as f64 / rate as f64);
            *next
        };
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
    }
}

/// An HTTP message head: its start line and header fields, as sent.
struct Head {
    raw: Vec<u8>,
    start: String,
    fields: Vec<(String, String)>,
}

impl Head {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.field("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> Option<u64> {
        self.field("content-length").and_then(|v| v.trim().parse().ok())
    }

    fn status(&self) -> u16 {
        self.start.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    fn closes(&self) -> bool {
        self.field("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads a message head; None at a clean end of the connection.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut raw = Vec::new();
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return if raw.is_empty() { Ok(None) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) };
        }
        raw.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
        if text.is_empty() {
            break;
        }
        lines.push(text);
    }
    let start = lines.first().cloned().unwrap_or_default();
    let fields = lines.iter().skip(1).filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    Ok(Some(Head { raw, start, fields }))
}

/// How a body ends.
#[derive(Clone, Copy)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

fn request_framing(head: &Head) -> Framing {
    match (head.chunked(), head.content_length()) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::None,
    }
}

fn answer_framing(head: &Head, method: &str) -> Framing {
    let status = head.status();
    if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        return Framing::None;
    }
    match (head.chunked(), head.content_length()) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::UntilClose,
    }
}

/// What to do to a body on its way.
#[derive(Default)]
struct Tamper {
    /// Stop after this many body bytes (content bytes, not chunk framing).
    cut_after: Option<usize>,
    flip_first: bool,
    stall: Option<(usize, Duration)>,
}

enum Copied {
    Whole,
    /// Stopped at the cut point.
    Cut,
}

/// Moves one body from `from` to `to` by its framing, paced, tampered with.
fn copy_body(from: &mut impl BufRead, to: &mut impl Write, framing: Framing, mut tamper: Tamper, shared: &Shared) -> std::io::Result<Copied> {
    let mut moved = 0usize;
    // Passes `len` content bytes on (all of them, when `len` is None: until the end).
    let pass = |from: &mut dyn BufRead, to: &mut dyn Write, len: Option<u64>, moved: &mut usize, tamper: &mut Tamper| -> std::io::Result<bool> {
        let mut left = len;
        let mut piece = vec![0u8; 16 * 1024];
        loop {
            if left == Some(0) {
                return Ok(true);
            }
            let mut want = left.map_or(piece.len(), |l| (l as usize).min(piece.len()));
            if shared.faults.pace_bytes_per_sec.is_some() {
                want = want.min(1024);
            }
            if let Some(cut) = tamper.cut_after {
                if *moved >= cut {
                    return Ok(false);
                }
                want = want.min(cut - *moved);
            }
            if let Some((at, _)) = tamper.stall {
                if *moved < at {
                    want = want.min(at - *moved);
                }
            }
            let n = from.read(&mut piece[..want])?;
            if n == 0 {
                return if left.is_none() { Ok(true) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) };
            }
            if tamper.flip_first {
                piece[0] ^= 0x01;
                tamper.flip_first = false;
            }
            shared.pace(n);
            to.write_all(&piece[..n])?;
            *moved += n;
            left = left.map(|l| l - n as u64);
            if let Some((at, pause)) = tamper.stall {
                if *moved >= at {
                    to.flush()?;
                    thread::sleep(pause);
                    tamper.stall = None;
                }
            }
        }
    };
    let whole = match framing {
        Framing::None => true,
        Framing::Length(n) => pass(from, to, Some(n), &mut moved, &mut tamper)?,
        Framing::UntilClose => pass(from, to, None, &mut moved, &mut tamper)?,
        Framing::Chunked => loop {
            let mut size_line = Vec::new();
            from.read_until(b'\n', &mut size_line)?;
            let text = String::from_utf8_lossy(&size_line);
            let size = u64::from_str_radix(text.trim().split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
            to.write_all(&size_line)?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut line = Vec::new();
                    from.read_until(b'\n', &mut line)?;
                    to.write_all(&line)?;
                    if line == b"\r\n" || line == b"\n" || line.is_empty() {
                        break;
                    }
                }
                break true;
            }
            if !pass(from, to, Some(size), &mut moved, &mut tamper)? {
                break false;
            }
            let mut crlf = Vec::new();
            from.read_until(b'\n', &mut crlf)?;
            to.write_all(&crlf)?;
        },
    };
    to.flush()?;
    Ok(if whole { Copied::Whole } else { Copied::Cut })
}

fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
    let _ = stream.shutdown(Shutdown::Both);
}

fn break_connection(client: &TcpStream, how: Break) {
    match how {
        Break::Reset => reset(client),
        Break::Close => {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

fn error_answer(status: &str, code: &str, message: &str) -> Vec<u8> {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>");
    format!("HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// Serves one client connection: its requests one after the other, over
/// one server connection, until either side closes.
fn serve_connection(client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let faults = &shared.faults;
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client.try_clone()?;
    let mut server: Option<(BufReader<TcpStream>, TcpStream)> = None;
    let mut on_connection = 0usize;
    loop {
        let Some(head) = read_head(&mut from_client)? else { return Ok(()) };
        on_connection += 1;
        let n = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let method = head.start.split(' ').next().unwrap_or("").to_string();
        let eligible = match faults.which {
            Which::Any => true,
            Which::Fresh => on_connection == 1,
            Which::KeptAlive => on_connection > 1,
        };
        if eligible && faults.reset_every.is_some_and(|k| n % k == 0) && shared.take_fault() {
            reset(&client);
            return Ok(());
        }
        let framing = request_framing(&head);
        if faults.unavailable_every.is_some_and(|k| n % k == 0) && shared.take_fault() {
            copy_body(&mut from_client, &mut std::io::sink(), framing, Tamper::default(), shared)?;
            to_client.write_all(&error_answer("503 Service Unavailable", "SlowDown", "Please reduce your request rate."))?;
            continue;
        }
        if let Some((_, answer)) = faults.answer_instead.filter(|(line, _)| head.start.contains(line)) {
            if !shared.answered_instead.swap(true, Ordering::Relaxed) {
                copy_body(&mut from_client, &mut std::io::sink(), framing, Tamper::default(), shared)?;
                to_client.write_all(answer.as_bytes())?;
                continue;
            }
        }
        if expired(&head, shared) {
            copy_body(&mut from_client, &mut std::io::sink(), framing, Tamper::default(), shared)?;
            shared.expired_refusals.fetch_add(1, Ordering::Relaxed);
            to_client.write_all(&error_answer("400 Bad Request", "ExpiredToken", "The provided token has expired."))?;
            continue;
        }
        if faults.delay_ms > 0 {
            thread::sleep(Duration::from_millis(faults.delay_ms));
        }
        if server.is_none() {
            let stream = TcpStream::connect(&shared.upstream)?;
            server = Some((BufReader::new(stream.try_clone()?), stream));
        }
        let (from_server, to_server) = server.as_mut().unwrap();
        shared.forwarded.lock().unwrap().push(head.start.clone());
        to_server.write_all(&head.raw)?;
        let cut_request = faults
            .cut_requests
            .filter(|c| eligible && c.applies(n, &method) && matches!(framing, Framing::Length(n) if n as usize > c.after) && shared.take_fault());
        let continue_first = head.field("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        let mut answer = None;
        if continue_first {
            let interim = read_head(from_server)?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
            to_client.write_all(&interim.raw)?;
            if interim.status() != 100 {
                answer = Some(interim);
            }
        }
        if answer.is_none() {
            let tamper = Tamper { cut_after: cut_request.map(|c| c.after), ..Tamper::default() };
            if let Copied::Cut = copy_body(&mut from_client, to_server, framing, tamper, shared)? {
                break_connection(&client, cut_request.unwrap().how);
                reset(to_server);
                return Ok(());
            }
        }
        let lose = faults.lose_answer_to.is_some_and(|t| head.start.contains(t));
        let answer = match answer {
            Some(a) => a,
            None => read_head(from_server)?.ok_or(std::io::ErrorKind::UnexpectedEof)?,
        };
        let answer_framing = answer_framing(&answer, &method);
        if lose && shared.take_fault() {
            // The server has answered: the request is done. Close the
            // client's connection before any answer byte.
            copy_body(from_server, &mut std::io::sink(), answer_framing, Tamper::default(), shared)?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        if let Some((_, from, to)) = faults.rewrite_answers.filter(|(line, _, _)| head.start.contains(line)) {
            let mut body = Vec::new();
            copy_body(from_server, &mut body, answer_framing, Tamper::default(), shared)?;
            let body = String::from_utf8_lossy(&body).replace(from, to);
            let mut rewritten = Vec::new();
            for line in String::from_utf8_lossy(&answer.raw).split("\r\n").filter(|l| !l.is_empty()) {
                let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
                if name != "content-length" && name != "transfer-encoding" {
                    rewritten.extend_from_slice(format!("{line}\r\n").as_bytes());
                }
            }
            rewritten.extend_from_slice(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
            to_client.write_all(&rewritten)?;
            continue;
        }
        let ok = matches!(answer.status(), 200 | 206);
        let long_enough = |after: usize| match answer_framing {
            Framing::Length(n) => n as usize > after,
            Framing::Chunked | Framing::UntilClose => true,
            Framing::None => false,
        };
        let cut_answer = faults.cut_answers.filter(|c| eligible && ok && c.applies(n, &method) && long_enough(c.after) && shared.take_fault());
        let tamper = Tamper {
            cut_after: cut_answer.map(|c| c.after),
            flip_first: faults.corrupt_get_bodies && ok && method == "GET" && {
                shared.injected.fetch_add(1, Ordering::Relaxed);
                true
            },
            stall: faults.stall_answers.filter(|(at, _)| ok && long_enough(*at) && shared.take_fault()),
        };
        shared.pace(answer.raw.len());
        to_client.write_all(&answer.raw)?;
        if let Copied::Cut = copy_body(from_server, &mut to_client, answer_framing, tamper, shared)? {
            break_connection(&client, cut_answer.unwrap().how);
            reset(to_server);
            return Ok(());
        }
        if answer.closes() || head.closes() || matches!(answer_framing, Framing::UntilClose) {
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

/// Whether this request carries the session token the proxy now refuses.
fn expired(head: &Head, shared: &Shared) -> bool {
    let Some(after) = shared.faults.expire_session_token_after else { return false };
    let Some(token) = head.field("x-amz-security-token") else { return false };
    let mut session = shared.session.lock().unwrap();
    let first = session.first.get_or_insert_with(|| token.to_string()).clone();
    if token != first {
        return false;
    }
    if session.forwarded_with_first >= after {
        return true;
    }
    session.forwarded_with_first += 1;
    false
}
