//! Progress of a transfer on a terminal: bytes, rate and time left, redrawn
//! a few times a second on stderr; nothing when stderr is not a terminal.
//! The counts come from the files the host reads and writes for the
//! transfer component.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Progress {
    done: AtomicU64,
    /// 0: unknown (stdin).
    total: AtomicU64,
}

impl Progress {
    pub fn new(total: Option<u64>) -> Arc<Self> {
        Arc::new(Progress { done: AtomicU64::new(0), total: AtomicU64::new(total.unwrap_or(0)) })
    }

    pub fn add(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn add_total(&self, bytes: u64) {
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Human-readable bytes (binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn line(done: u64, total: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = done as f64 / secs;
    let mut out = match total {
        0 => bytes(done),
        t => format!("{} / {} ({:.0}%)", bytes(done.min(t)), bytes(t), 100.0 * done.min(t) as f64 / t as f64),
    };
    out.push_str(&format!("  {}/s", bytes(rate as u64)));
    if total > done && rate > 0.0 {
        let left = ((total - done) as f64 / rate) as u64;
        out.push_str(&format!("  ETA {}:{:02}", left / 60, left % 60));
    }
    out
}

/// Draws the bar until dropped; does nothing unless stderr is a terminal.
pub struct Bar {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Bar {
    pub fn start(progress: Arc<Progress>, quiet: bool) -> Bar {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let text = line(progress.done.load(Ordering::Relaxed), progress.total.load(Ordering::Relaxed), started.elapsed());
                    let _ = write!(std::io::stderr(), "\r\x1b[2K{text}");
                }
                let _ = write!(std::io::stderr(), "\r\x1b[2K");
            })
        });
        Bar { stop, thread }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_bytes_rate_and_eta() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        let l = line(50 << 20, 100 << 20, Duration::from_secs(5));
        assert_eq!(l, "50.0 MiB / 100.0 MiB (50%)  10.0 MiB/s  ETA 0:05");
        assert_eq!(line(1 << 20, 0, Duration::from_secs(1)), "1.0 MiB  1.0 MiB/s");
    }
}
