//! A deterministic mutation fuzzer for download planning from what HEAD
//! answers: mutated header blocks of real HEAD answers (Ceph RGW, MinIO,
//! AWS, moto) go through `parse_head_object`, and whatever it accepts
//! (sizes up to 2^64 - 1, plain and multipart ETags with any part count, a
//! noted or HEAD-given part size of any value) goes into `DownloadPlan`
//! with a range size that may be absent, 0, 1 or huge. It checks that
//! nothing panics and that a plan keeps its promises: its ranges cover
//! exactly `0..size`, in order, without gaps or overlap; every hashed part
//! size divides the range size and cuts the object into the ETag's part
//! count; and the download state machine runs it to a verdict.
//!
//! `LAKEPORT_FUZZ_ITERATIONS` and `LAKEPORT_FUZZ_SEED` change the run.

use lakeport_testkit::{fuzz, mutate, Rng};
use lakeport_transfer::download::*;
use lakeport_transfer::etag::{etag_kind, EtagKind};
use lakeport_transfer::parse::{parse_head_object, ObjectMetadata};
use lakeport_transfer::retry::RetryPolicy;
use lakeport_transfer::HttpResponse;

const MIB: u64 = 1 << 20;

/// HEAD answers as servers send them (status line left out).
const HEADS: &[&str] = &[
    // Ceph RGW, a multipart upload by lakeport (part size noted).
    "Content-Length: 104857600\r\nAccept-Ranges: bytes\r\nLast-Modified: Wed, 01 May 2024 12:00:00 GMT\r\nx-rgw-object-type: Normal\r\nETag: \"9b2cf535f27731c974343645a3985328-7\"\r\nx-amz-meta-lakeport-part-size: 16777216\r\nx-amz-request-id: tx00000b4c1f7a3e2d1b9c6-0066321a40-1014-default\r\nContent-Type: application/octet-stream\r\nDate: Wed, 01 May 2024 12:00:01 GMT\r\n",
    // MinIO, a single PUT.
    "Accept-Ranges: bytes\r\nContent-Length: 5242880\r\nContent-Type: binary/octet-stream\r\nETag: \"5d41402abc4b2a76b9719d911017c592\"\r\nLast-Modified: Wed, 01 May 2024 12:00:00 GMT\r\nServer: MinIO\r\nStrict-Transport-Security: max-age=31536000; includeSubDomains\r\nVary: Origin\r\nX-Amz-Id-2: dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8\r\nX-Amz-Request-Id: 17CB3F6E1E7B1A2C\r\nx-amz-meta-owner: jdoe\r\n",
    // AWS, HEAD with partNumber=1 of a 3-part upload by awscli (8 MiB parts).
    "x-amz-id-2: ef8yU9AS1ed4OpIszj7UDNEHGran\r\nx-amz-request-id: 318BC8BC143432E5\r\nDate: Wed, 01 May 2024 12:00:00 GMT\r\nLast-Modified: Tue, 30 Apr 2024 09:13:07 GMT\r\nETag: \"d41d8cd98f00b204e9800998ecf8427e-3\"\r\nx-amz-mp-parts-count: 3\r\nContent-Range: bytes 0-8388607/20971520\r\nAccept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\nContent-Length: 8388608\r\nServer: AmazonS3\r\n",
    // moto, an empty object.
    "content-type: binary/octet-stream\r\ncontent-md5: 1B2M2Y8AsgTpgAmY7PhCfg==\r\netag: \"d41d8cd98f00b204e9800998ecf8427e\"\r\nlast-modified: Wed, 01 May 2024 12:00:00 GMT\r\ncontent-length: 0\r\nx-amz-version-id: null\r\naccept-ranges: bytes\r\n",
    // RGW, a multipart upload of one part.
    "Content-Length: 3145728\r\nETag: \"c4ca4238a0b923820dcc509a6f75849b-1\"\r\nAccept-Ranges: bytes\r\n",
    // An SSE-KMS object: the ETag is no MD5.
    "Content-Length: 1073741824\r\nETag: \"b0a8b3e1f9ad7c3b3d1e0c9a6a2b7d11ed8\"\r\nx-amz-server-side-encryption: aws:kms\r\nx-amz-storage-class: STANDARD_IA\r\n",
];

const TOKENS: &[&str] = &[
    "\r\n", ": ", ":", " ", "\"", "W/", "-", "-0", "-1", "-2", "-10000", "-10001", "-4294967296", "Content-Length: ",
    "Content-Length: 18446744073709551615\r\n", "Content-Length: 5497558138880\r\n", "Content-Length: 0\r\n",
    "ETag: \"9b2cf535f27731c974343645a3985328-1\"\r\n", "ETag: \"9b2cf535f27731c974343645a3985328-10000\"\r\n",
    "x-amz-meta-lakeport-part-size: 0\r\n", "x-amz-meta-lakeport-part-size: 1\r\n", "x-amz-meta-lakeport-part-size: ",
    "x-amz-mp-parts-count: 0\r\n", "x-amz-mp-parts-count: ", "Content-Range: bytes 0-0/", "Content-Range: bytes */0\r\n",
    "18446744073709551615", "18446744073709551616", "4294967295", "5242880", "16777216",
];

const RANGE_SIZES: &[Option<u64>] = &[None, None, None, Some(0), Some(1), Some(5 * MIB), Some(16 * MIB), Some(u64::MAX)];

/// A header block as an answer: one `Name: value` a line.
fn answer(status: u16, block: &[u8]) -> HttpResponse {
    let text = String::from_utf8_lossy(block);
    let headers = text
        .split('\n')
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    HttpResponse { status, headers, body: Vec::new() }
}

fn head(block: &[u8], rng: &mut Rng) -> Option<ObjectMetadata> {
    let status = *rng.pick(&[200, 200, 200, 200, 206, 304, 403, 404]);
    parse_head_object(&answer(status, block)).ok()
}

/// A part size as a download may learn it: noted in the metadata, or the
/// length of part 1 from a second HEAD (driver filters left out: any value
/// a server could send).
fn known_part_size(meta: &ObjectMetadata, blocks: &[Vec<u8>], rng: &mut Rng) -> Option<u64> {
    match rng.below(3) {
        0 => None,
        1 => meta.metadata.iter().find(|(n, _)| n == "lakeport-part-size").and_then(|(_, v)| v.parse().ok()),
        _ => {
            let mut block = rng.pick(blocks).clone();
            mutate(&mut block, TOKENS, blocks, rng);
            head(&block, rng).map(|m| m.content_length)
        }
    }
}

fn check_plan(plan: &DownloadPlan, size: u64, etag: Option<&str>) {
    assert_eq!(plan.size, size);
    assert!(plan.range_size > 0);
    let count = u64::from(plan.range_count());
    let expected = u128::from(size).div_ceil(u128::from(plan.range_size)).max(1);
    assert_eq!(u128::from(count), expected, "{size} bytes in ranges of {}", plan.range_size);
    // The ranges tile 0..size: checked whole for modest counts, else at the ends.
    let indexes: Vec<u64> = if count <= 5_000 { (0..count).collect() } else { vec![0, 1, count / 2, count - 2, count - 1] };
    for &i in &indexes {
        let i = u32::try_from(i).unwrap();
        let (offset, length) = plan.span(i);
        assert_eq!(u128::from(offset), u128::from(i) * u128::from(plan.range_size));
        assert!(length > 0 || size == 0, "range {i} is empty");
        assert!(u128::from(offset) + u128::from(length) <= u128::from(size));
        if u64::from(i) + 1 < count {
            assert_eq!(length, plan.range_size);
        } else {
            assert_eq!(offset + length, size, "the last range ends at the end");
        }
        match plan.range(i) {
            None => assert_eq!(count, 1),
            Some(r) => assert_eq!((r.start, r.end), (offset, offset + length - 1)),
        }
    }
    assert_eq!(plan.span(plan.range_count().saturating_add(1)).1, 0, "nothing after the last range");
    if let EtagCheck::PartMd5s { part_sizes, .. } = &plan.etag_check {
        let Some(EtagKind::Multipart { parts, .. }) = etag.map(etag_kind) else { panic!("part MD5s without a multipart ETag") };
        for &p in part_sizes {
            assert!(p > 0 && plan.range_size.is_multiple_of(p), "part size {p}, range size {}", plan.range_size);
            assert_eq!(size.div_ceil(p).max(1), u64::from(parts), "part size {p} does not make {parts} parts of {size} bytes");
        }
    }
}

/// Runs the plan's state machine with digests of the right lengths (no
/// data: only lengths and layouts are under test), in a shuffled order.
fn run_download(plan: &DownloadPlan, rng: &mut Rng) {
    let mut download = RangedDownload::new(plan.clone(), RetryPolicy::default());
    let mut out = Vec::new();
    loop {
        while let Some(range) = download.next_range() {
            assert!(download.in_flight() <= plan.max_in_flight);
            out.push(range);
        }
        if out.is_empty() {
            break;
        }
        let range = out.swap_remove(rng.below(out.len()));
        let spans = digest_spans(plan, range.length);
        assert!(spans.len() <= 10_002, "{} digests for one range", spans.len());
        assert!(spans.iter().all(|&(start, len)| start + len <= range.length));
        let digest = range_digest(plan, range.length, &vec![[0u8; 16]; spans.len()]).unwrap();
        download.range_done(range.index, digest).unwrap();
    }
    assert!(download.is_complete());
    assert_eq!(download.done_prefix_end(), plan.size);
    let _ = download.verify(None);
}

#[test]
fn fuzz_download_plan_never_panics() {
    let blocks: Vec<Vec<u8>> = HEADS.iter().map(|h| h.as_bytes().to_vec()).collect();
    let (mut planned, mut refused) = (0u64, 0u64);
    fuzz("download plan", &blocks, TOKENS, (30_000, 0x444f_574e_504c_414e), |block, rng| {
        let Some(meta) = head(block, rng) else { return };
        let size = meta.object_size();
        let options = DownloadOptions {
            range_size: *rng.pick(RANGE_SIZES),
            max_in_flight: *rng.pick(&[0, 1, 4, 64]),
            known_part_size: known_part_size(&meta, &blocks, rng),
        };
        match DownloadPlan::new(size, meta.etag.as_deref(), &options) {
            Ok(plan) => {
                planned += 1;
                check_plan(&plan, size, meta.etag.as_deref());
                if plan.range_count() <= 200 {
                    run_download(&plan, rng);
                }
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    });
    println!("{planned} plans, {refused} refused");
    assert!(planned > 1_000 && refused > 100, "{planned} / {refused}");
}
