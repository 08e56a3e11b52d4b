//! A test-only TCP proxy on 127.0.0.1 between lakeport and an S3 server
//! that misbehaves on purpose, within a budget: it resets some connections
//! (after reading the request head, so the client is mid-request), answers
//! others with 503 `SlowDown`, can flip a byte in response bodies, can lose
//! the answer to a request the server carried out, can cut GET bodies
//! short, and can slow every request down. It records the request line of
//! every request it forwarded, so tests can see what was (not) sent. Its faults are per
//! connection, so every answer it passes on says `Connection: close`: the
//! client sends one request per connection through it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Reset every n-th connection.
    pub reset_every: Option<usize>,
    /// Answer every n-th connection with 503 SlowDown.
    pub unavailable_every: Option<usize>,
    /// Stop misbehaving after this many faults (0: no limit).
    pub max_faults: usize,
    /// Flip one byte in the body of every successful GET answer.
    pub corrupt_get_bodies: bool,
    /// Wait this long before forwarding each request.
    pub delay_ms: u64,
    /// Forward the first request whose request line contains this text,
    /// let the server answer it, then close the client's connection
    /// instead of passing the answer on: the request took effect, the
    /// client never learns it.
    pub lose_answer_to: Option<&'static str>,
    /// Close the connection after this many bytes of the body of a
    /// successful GET answer (short of its Content-Length).
    pub cut_get_bodies_after: Option<usize>,
}

pub struct FaultProxy {
    pub endpoint: String,
    forwarded: Arc<Mutex<Vec<String>>>,
    injected: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`host:port`).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let forwarded = Arc::new(Mutex::new(Vec::new()));
        let injected = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, log, count, halt) = (upstream.to_string(), forwarded.clone(), injected.clone(), stop.clone());
        thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                if halt.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (upstream, log, count) = (upstream.clone(), log.clone(), count.clone());
                thread::spawn(move || handle(n + 1, client, &upstream, faults, &log, &count));
            }
        });
        FaultProxy { endpoint, forwarded, injected, stop }
    }

    /// Request lines (`PUT /bucket/key?partNumber=2&uploadId=… HTTP/1.1`) forwarded so far.
    pub fn forwarded(&self) -> Vec<String> {
        self.forwarded.lock().unwrap().clone()
    }

    pub fn faults_injected(&self) -> usize {
        self.injected.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

fn take_fault(faults: &Faults, count: &AtomicUsize) -> bool {
    let n = count.fetch_add(1, Ordering::Relaxed);
    if faults.max_faults > 0 && n >= faults.max_faults {
        count.fetch_sub(1, Ordering::Relaxed);
        return false;
    }
    true
}

/// Reads up to the end of the request head; returns everything read.
fn read_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(buf);
        }
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn handle(n: usize, mut client: TcpStream, upstream: &str, faults: Faults, log: &Mutex<Vec<String>>, count: &AtomicUsize) {
    let Some(head) = read_head(&mut client) else { return };
    let request_line = String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\r').unwrap_or(0)]).into_owned();
    if faults.reset_every.is_some_and(|k| n % k == 0) && take_fault(&faults, count) {
        // SO_LINGER 0: close with RST, mid-request.
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
        drop(client);
        return;
    }
    if faults.unavailable_every.is_some_and(|k| n % k == 0) && take_fault(&faults, count) {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.write_all(answer.as_bytes());
        let _ = client.shutdown(Shutdown::Write);
        // Let the client finish sending (or give up) before closing.
        let mut sink = [0u8; 65536];
        let _ = client.set_read_timeout(Some(Duration::from_secs(2)));
        while matches!(client.read(&mut sink), Ok(k) if k > 0) {}
        return;
    }
    if faults.delay_ms > 0 {
        thread::sleep(Duration::from_millis(faults.delay_ms));
    }
    let Ok(mut server) = TcpStream::connect(upstream) else { return };
    log.lock().unwrap().push(request_line.clone());
    if server.write_all(&head).is_err() {
        return;
    }
    let (mut client_read, mut server_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upload = thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(Shutdown::Write);
    });
    let lose_answer = faults.lose_answer_to.is_some_and(|t| request_line.contains(t)) && take_fault(&faults, count);
    let corrupt = faults.corrupt_get_bodies && request_line.starts_with("GET ");
    let mut cut_after = faults.cut_get_bodies_after.filter(|_| request_line.starts_with("GET "));
    // The answer's head is held until complete, to add `Connection: close`.
    let mut answer_head: Option<Vec<u8>> = Some(Vec::new());
    let mut flip_next = false;
    let mut chunk = vec![0u8; 65536];
    loop {
        let k = match server.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(k) => k,
        };
        if lose_answer {
            // The server has answered: the request is done. Close the
            // client's connection (both halves: a clone of it is still
            // reading the request side) before any answer byte.
            let _ = client.shutdown(Shutdown::Both);
            let _ = upload.join();
            return;
        }
        let mut data = chunk[..k].to_vec();
        if let Some(head) = &mut answer_head {
            head.extend_from_slice(&data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let ok = head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.1 206");
            let body = head.split_off(end + 4);
            head.truncate(end + 2);
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            if client.write_all(head).is_err() {
                break;
            }
            answer_head = None;
            // Errors pass through untouched.
            flip_next = corrupt && ok;
            if !ok || !cut_after.is_some_and(|_| take_fault(&faults, count)) {
                cut_after = None;
            }
            data = body;
        }
        if let Some(left) = cut_after {
            if data.len() >= left {
                let _ = client.write_all(&data[..left]);
                break;
            }
            cut_after = Some(left - data.len());
        }
        if flip_next && !data.is_empty() {
            data[0] ^= 0x01;
            flip_next = false;
            count.fetch_add(1, Ordering::Relaxed);
        }
        if client.write_all(&data).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = upload.join();
}
