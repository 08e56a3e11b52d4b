//! MD5s of file spans, hashed side by side. S3 wants one MD5 per part
//! (Content-MD5 on upload, the ETag check on download) and parts are
//! independent messages, so a worker thread hashes up to one span per SIMD
//! lane at once (16 with AVX-512, 8 with AVX2): several times the bytes
//! per CPU second of one scalar MD5, which is one long dependency chain.
//! Spans asked for while a worker runs join its lanes at the next chunk.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, OnceLock};

use md5_many::{Md5Many, Md5State};
use tokio::sync::oneshot;

/// Bytes read from each span per round.
const CHUNK: usize = 256 << 10;

pub type Md5Result = Result<[u8; 16], String>;

/// Hashes `len` bytes of `file` from `offset`; the answer arrives on the
/// receiver. Dropping the receiver cancels the work. `name` is for errors.
pub fn md5_of_span(file: File, name: String, offset: u64, len: u64) -> oneshot::Receiver<Md5Result> {
    let (done, receiver) = oneshot::channel();
    hasher().submit(Span { file, name, offset, len, done });
    receiver
}

/// The MD5 of a file's first bytes, kept so that a longer prefix of the
/// same file goes on from it instead of starting over: a download whose
/// ETag is the MD5 of the whole object hashes each complete prefix while
/// later ranges still arrive. Shared by the prefixes of one file, which
/// must not change once hashed.
#[derive(Default)]
pub struct PrefixMd5 {
    state: Md5State,
}

/// The MD5 of the first `len` bytes of `file`, going on from what `prefix`
/// holds (a prefix shorter than that is hashed afresh).
pub fn md5_of_prefix(prefix: Arc<Mutex<PrefixMd5>>, file: File, name: String, len: u64) -> oneshot::Receiver<Md5Result> {
    let (done, receiver) = oneshot::channel();
    // One prefix at a time per file: each goes on from the one before.
    // Whether this one can is known only once the earlier ones are done.
    let hash = move || {
        let mut prefix = prefix.lock().unwrap_or_else(|e| e.into_inner());
        // A prefix that a longer one overtook is hashed afresh, but only if
        // someone still waits for it: a download drops each prefix it asked
        // for once it asks for a longer one.
        if prefix.state.bytes_hashed() > len && done.is_closed() {
            return;
        }
        let mut fresh = Md5State::new();
        let state = if prefix.state.bytes_hashed() <= len { &mut prefix.state } else { &mut fresh };
        let mut lane = Lane { span: Span { file, name, offset: 0, len, done }, hashed: state.bytes_hashed(), buf: Vec::new() };
        let result = loop {
            if lane.hashed == len {
                break Ok(state.finalize());
            }
            if let Err(e) = lane.read_chunk() {
                break Err(e);
            }
            state.update(&lane.buf);
        };
        let _ = lane.span.done.send(result);
    };
    if std::thread::Builder::new().name("lakeport-md5-prefix".into()).spawn(hash).is_err() {
        return already_failed("no thread to hash with");
    }
    receiver
}

fn already_failed(message: &str) -> oneshot::Receiver<Md5Result> {
    let (done, receiver) = oneshot::channel();
    let _ = done.send(Err(message.into()));
    receiver
}

/// What a span that came up short says.
pub fn ended_early(name: &str, at: u64, expected: u64) -> String {
    format!("{name} ended at byte {at} where {expected} bytes were expected: it changed while it was read; try again once it is no longer written to")
}

struct Span {
    file: File,
    name: String,
    offset: u64,
    len: u64,
    done: oneshot::Sender<Md5Result>,
}

struct Hasher {
    engine: Md5Many,
    max_workers: usize,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Span>,
    workers: usize,
}

fn hasher() -> &'static Arc<Hasher> {
    static HASHER: OnceLock<Arc<Hasher>> = OnceLock::new();
    HASHER.get_or_init(|| {
        let max_workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new(Hasher { engine: Md5Many::new(), max_workers, queue: Mutex::default() })
    })
}

impl Hasher {
    fn lanes(&self) -> usize {
        self.engine.lanes().max(1)
    }

    fn submit(self: &Arc<Self>, span: Span) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.waiting.push_back(span);
        // Running workers take waiting spans into free lanes; another
        // worker (another core) only when more wait than one worker holds.
        let more_than_lanes = queue.waiting.len() > self.lanes();
        if queue.workers == 0 || (more_than_lanes && queue.workers < self.max_workers) {
            queue.workers += 1;
            drop(queue);
            let hasher = self.clone();
            if std::thread::Builder::new().name("lakeport-md5".into()).spawn(move || hasher.work()).is_err() {
                // No thread to be had: hash here rather than never answer.
                self.work();
            }
        }
    }

    fn work(&self) {
        let mut lanes: Vec<Lane> = Vec::new();
        let mut states: Vec<Md5State> = Vec::new();
        loop {
            {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                while lanes.len() < self.lanes() {
                    let Some(span) = queue.waiting.pop_front() else { break };
                    lanes.push(Lane { span, hashed: 0, buf: Vec::new() });
                    states.push(Md5State::new());
                }
                if lanes.is_empty() {
                    queue.workers -= 1;
                    return;
                }
            }
            // One chunk of every span, then one SIMD pass over all of them.
            let mut failed: Vec<(usize, String)> = Vec::new();
            for (i, lane) in lanes.iter_mut().enumerate() {
                if let Err(e) = lane.read_chunk() {
                    failed.push((i, e));
                }
            }
            let inputs: Vec<&[u8]> = lanes.iter().map(|l| l.buf.as_slice()).collect();
            self.engine.update_many(&mut states, &inputs);
            for (i, message) in failed.into_iter().rev() {
                let lane = lanes.swap_remove(i);
                states.swap_remove(i);
                let _ = lane.span.done.send(Err(message));
            }
            let mut i = 0;
            while i < lanes.len() {
                let lane = &lanes[i];
                if lane.hashed == lane.span.len || lane.span.done.is_closed() {
                    let lane = lanes.swap_remove(i);
                    let state = states.swap_remove(i);
                    let _ = lane.span.done.send(Ok(state.finalize()));
                } else {
                    i += 1;
                }
            }
        }
    }
}

struct Lane {
    span: Span,
    hashed: u64,
    buf: Vec<u8>,
}

impl Lane {
    /// The span's next chunk into `buf` (empty once the span is done).
    fn read_chunk(&mut self) -> Result<(), String> {
        let want = CHUNK.min((self.span.len - self.hashed) as usize);
        self.buf.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            let at = self.span.offset + self.hashed + filled as u64;
            match self.span.file.read_at(&mut self.buf[filled..], at) {
                Ok(0) => {
                    self.buf.clear();
                    return Err(ended_early(&self.span.name, at, self.span.offset + self.span.len));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.clear();
                    return Err(format!("reading {}: {e}", self.span.name));
                }
            }
        }
        self.hashed += want as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Digest as _;
    use std::io::Write;

    fn file_of(data: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(data).unwrap();
        let file = tmp.reopen().unwrap();
        (tmp, file)
    }

    fn wait(receiver: oneshot::Receiver<Md5Result>) -> Md5Result {
        receiver.blocking_recv().expect("the hasher answers every span")
    }

    #[test]
    fn spans_of_every_length_equal_the_scalar_md5() {
        // More spans than lanes, with lengths around block and chunk edges.
        let data: Vec<u8> = (0..3 * CHUNK + 200).map(|i| (i * 131 + i / 977) as u8).collect();
        let (_tmp, file) = file_of(&data);
        let spans: Vec<(u64, u64)> = [0, 1, 55, 56, 63, 64, 65, 4096, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 77, 3 * CHUNK + 200]
            .iter()
            .enumerate()
            .flat_map(|(i, &len)| [(0u64, len as u64), ((i * 7) as u64, (len.min(data.len() - i * 7)) as u64)])
            .collect();
        let receivers: Vec<_> = spans.iter().map(|&(at, len)| md5_of_span(file.try_clone().unwrap(), "f".into(), at, len)).collect();
        for ((at, len), receiver) in spans.iter().zip(receivers) {
            let expected: [u8; 16] = md5::Md5::digest(&data[*at as usize..(*at + *len) as usize]).into();
            assert_eq!(wait(receiver), Ok(expected), "span {at}+{len}");
        }
    }

    #[test]
    fn growing_prefixes_go_on_from_the_last_one() {
        let data: Vec<u8> = (0..2 * CHUNK + 999).map(|i| (i * 7 + i / 4099) as u8).collect();
        let (_tmp, file) = file_of(&data);
        let prefix = Arc::new(Mutex::new(PrefixMd5::default()));
        let md5_of = |len: usize| -> Md5Result { Ok(md5::Md5::digest(&data[..len]).into()) };
        for len in [0, 64, CHUNK, CHUNK + 5, 2 * CHUNK + 999, 100] {
            let got = wait(md5_of_prefix(prefix.clone(), file.try_clone().unwrap(), "f".into(), len as u64));
            assert_eq!(got, md5_of(len), "prefix of {len}");
        }
        // Asked for at once, a longer one may be hashed first.
        let fresh = Arc::new(Mutex::new(PrefixMd5::default()));
        let lens = [2 * CHUNK + 999, 70, CHUNK, 2 * CHUNK, 1];
        let receivers: Vec<_> = lens.iter().map(|&len| md5_of_prefix(fresh.clone(), file.try_clone().unwrap(), "f".into(), len as u64)).collect();
        for (len, receiver) in lens.iter().zip(receivers) {
            assert_eq!(wait(receiver), md5_of(*len), "prefix of {len} asked for among others");
        }
        // The longest prefix asked for is what a next one starts from.
        assert_eq!(prefix.lock().unwrap().state.bytes_hashed(), (2 * CHUNK + 999) as u64);
    }

    #[test]
    fn a_span_past_the_end_says_the_file_changed() {
        let (_tmp, file) = file_of(b"short");
        let error = wait(md5_of_span(file, "data.bin".into(), 2, 10)).unwrap_err();
        assert!(error.contains("data.bin ended at byte 5 where 12 bytes were expected"), "{error}");
    }
}
