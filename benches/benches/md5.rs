//! MD5 throughput of the spans a transfer hashes (one per part), over a
//! file in the page cache, the way the host computes them:
//! - `md5_crate_one_by_one`: the md-5 crate, span after span (how the
//!   host hashed before the lanes; parts then ran on several threads, but
//!   each core hashes at this rate);
//! - `host_lanes`: `lakeport::file_md5::md5_of_span` for every span at
//!   once, hashed side by side in SIMD lanes.
//!
//! Both must give the same digests (else the run panics). 16 spans of
//! 4 MiB: as many parts as an AVX-512 worker has lanes.

use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use md5::Digest as _;

const SPANS: u64 = 16;
const SPAN: u64 = 4 << 20;

fn md5_crate(file: &std::fs::File, offset: u64, len: u64) -> [u8; 16] {
    let mut hasher = md5::Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        let want = buf.len().min((len - done) as usize);
        file.read_exact_at(&mut buf[..want], offset + done).unwrap();
        hasher.update(&buf[..want]);
        done += want as u64;
    }
    hasher.finalize().into()
}

fn lanes(file: &std::fs::File) -> Vec<[u8; 16]> {
    let pending: Vec<_> = (0..SPANS)
        .map(|i| lakeport::file_md5::md5_of_span(file.try_clone().unwrap(), "bench".into(), i * SPAN, SPAN))
        .collect();
    pending.into_iter().map(|p| p.blocking_recv().unwrap().unwrap()).collect()
}

fn bench(c: &mut Criterion) {
    let mut tmp = tempfile::NamedTempFile::new().unwrap();
    let data: Vec<u8> = (0..SPANS * SPAN).map(|i| ((i * 2_654_435_761) >> 13) as u8).collect();
    tmp.write_all(&data).unwrap();
    let file = tmp.reopen().unwrap();
    let one_by_one = || (0..SPANS).map(|i| md5_crate(&file, i * SPAN, SPAN)).collect::<Vec<_>>();
    assert_eq!(one_by_one(), lanes(&file), "the lanes must give the md-5 crate's digests");

    let mut group = c.benchmark_group("md5_of_parts");
    group.throughput(Throughput::Bytes(SPANS * SPAN));
    group.sample_size(10);
    group.bench_function("md5_crate_one_by_one", |b| b.iter(|| black_box(one_by_one())));
    group.bench_function("host_lanes", |b| b.iter(|| black_box(lanes(&file))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
