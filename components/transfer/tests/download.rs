//! Ranged download plans, per-range hashing, and what the ETag can prove.

use lakeport_transfer::digest::{md5, to_hex, Md5};
use lakeport_transfer::download::*;
use lakeport_transfer::etag::multipart_etag;
use lakeport_transfer::retry::{RetryDecision, RetryPolicy};
use lakeport_transfer::{ByteRange, S3Error, TransferError};

const MB: u64 = 1 << 20;

fn data(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

fn multipart_etag_of(data: &[u8], part: u64) -> String {
    let digests: Vec<Md5> = data.chunks(part as usize).map(md5).collect();
    format!("\"{}\"", multipart_etag(&digests))
}

/// Runs a download through its state machine, feeding each range to a
/// hasher in uneven pieces and in a shuffled order.
fn download(plan: DownloadPlan, object: &[u8], damage: Option<usize>) -> (RangedDownload, u32) {
    let mut d = RangedDownload::new(plan.clone(), RetryPolicy::default());
    let mut fetched = 0;
    let mut pending = Vec::new();
    loop {
        while let Some(r) = d.next_range() {
            assert!(d.in_flight() <= plan.max_in_flight);
            pending.push(r);
        }
        let Some(r) = pending.pop() else { break };
        fetched += 1;
        let mut bytes = object[r.offset as usize..(r.offset + r.length) as usize].to_vec();
        if let Some(at) = damage {
            if (r.offset as usize..(r.offset + r.length) as usize).contains(&at) {
                bytes[at - r.offset as usize] ^= 1;
            }
        }
        let mut h = RangeHasher::new(&plan);
        for piece in bytes.chunks(777_777) {
            h.update(piece);
        }
        d.range_done(r.index, h.finish()).unwrap();
    }
    assert!(d.is_complete());
    (d, fetched)
}

#[test]
fn plans_for_single_part_etags() {
    let plan = DownloadPlan::new(40 * MB, Some("\"5d41402abc4b2a76b9719d911017c592\""), &DownloadOptions::default()).unwrap();
    assert_eq!((plan.range_size, plan.range_count()), (DEFAULT_RANGE_SIZE, 3));
    assert_eq!(plan.etag_check, EtagCheck::WholeMd5);
    assert_eq!(plan.range(2), Some(ByteRange { start: 32 * MB, end: 40 * MB - 1 }));
    assert_eq!(plan.range(3), None);
    let options = plan.get_options(1);
    assert_eq!(options.range, Some(ByteRange { start: 16 * MB, end: 32 * MB - 1 }));
    assert_eq!(options.if_match.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
    // One range: a plain GET, no Range header (an empty object would fail with one).
    for size in [0, 1, DEFAULT_RANGE_SIZE] {
        let plan = DownloadPlan::new(size, None, &DownloadOptions::default()).unwrap();
        assert_eq!((plan.range_count(), plan.range(0)), (1, None), "{size}");
        assert_eq!(plan.span(0), (0, size));
    }
    let plan = DownloadPlan::new(DEFAULT_RANGE_SIZE + 1, None, &DownloadOptions::default()).unwrap();
    assert_eq!(plan.range(1), Some(ByteRange { start: DEFAULT_RANGE_SIZE, end: DEFAULT_RANGE_SIZE }));
    assert!(DownloadPlan::new(1, None, &DownloadOptions { max_in_flight: 0, ..Default::default() }).is_err());
    assert!(DownloadPlan::new(1, None, &DownloadOptions { range_size: Some(0), ..Default::default() }).is_err());
}

#[test]
fn candidate_part_sizes_most_likely_first() {
    // lakeport's own 16 MiB parts, then common sizes that give 7 parts.
    assert_eq!(candidate_part_sizes(100 * MB, 7, 3), [16 * MB, 15 * MB]);
    // awscli's 8 MiB parts.
    assert_eq!(candidate_part_sizes(20 * MB, 3, 3), [8 * MB, 7 * MB]);
    // 5 TiB in lakeport's automatic 525 MiB parts.
    assert_eq!(candidate_part_sizes(5 << 40, 9987, 1), [525 * MB]);
    assert!(candidate_part_sizes(100, 0, 3).is_empty());
    assert!(candidate_part_sizes(100, 10_001, 3).is_empty());
    // Every candidate reproduces the part count.
    for (size, n) in [(123_456_789u64, 12u32), (5 * MB + 1, 2), (1 << 30, 64)] {
        for p in candidate_part_sizes(size, n, 10) {
            assert_eq!(size.div_ceil(p), u64::from(n), "{size} {n} {p}");
        }
    }
}

#[test]
fn multipart_etag_verified_by_a_guessed_layout() {
    let object = data(23 * MB + 12_345);
    let etag = multipart_etag_of(&object, 5 * MB);
    let plan = DownloadPlan::new(object.len() as u64, Some(&etag), &DownloadOptions::default()).unwrap();
    assert_eq!(plan.hashed_part_sizes(), [5 * MB]);
    assert_eq!(plan.range_size, 15 * MB, "a multiple of the guessed part size");
    let (d, fetched) = download(plan, &object, None);
    assert_eq!(fetched, 2);
    assert_eq!(d.verify(None).unwrap(), Verification::MultipartEtag { part_size: 5 * MB, parts: 5 });

    // Damaged data does not reproduce it; with a guessed layout that proves only the size.
    let plan = DownloadPlan::new(object.len() as u64, Some(&etag), &DownloadOptions::default()).unwrap();
    let (d, _) = download(plan, &object, Some(17 * MB as usize));
    assert_eq!(d.verify(None).unwrap(), Verification::SizeOnlyMultipart { parts: 5 });
    // With the part size known for certain, it is an error.
    let certain = DownloadOptions { known_part_size: Some(5 * MB), ..Default::default() };
    let plan = DownloadPlan::new(object.len() as u64, Some(&etag), &certain).unwrap();
    assert_eq!(plan.etag_check, EtagCheck::PartMd5s { part_sizes: vec![5 * MB], certain: true });
    let (d, _) = download(plan.clone(), &object, Some(3));
    assert!(matches!(d.verify(None), Err(TransferError::Integrity(_))));
    let (d, _) = download(plan, &object, None);
    assert_eq!(d.verify(None).unwrap(), Verification::MultipartEtag { part_size: 5 * MB, parts: 5 });
}

#[test]
fn unguessable_layouts_and_opaque_etags_verify_the_size() {
    // Parts of 6 MiB + 12345 bytes: no common size, no whole MiB.
    let object = data(20 * MB);
    let etag = multipart_etag_of(&object, 6 * MB + 12_345);
    let plan = DownloadPlan::new(object.len() as u64, Some(&etag), &DownloadOptions::default()).unwrap();
    let (d, _) = download(plan, &object, None);
    assert_eq!(d.verify(None).unwrap(), Verification::SizeOnlyMultipart { parts: 4 });
    for etag in [None, Some("\"opaque-etag\""), Some("W/\"x\"")] {
        let plan = DownloadPlan::new(object.len() as u64, etag, &DownloadOptions::default()).unwrap();
        assert_eq!(plan.etag_check, EtagCheck::None);
        let (d, _) = download(plan, &object, None);
        assert_eq!(d.verify(None).unwrap(), Verification::SizeOnly);
    }
}

#[test]
fn single_part_etags_need_the_whole_md5() {
    let small = data(3 * MB);
    let etag = format!("\"{}\"", to_hex(&md5(&small)));
    let plan = DownloadPlan::new(small.len() as u64, Some(&etag), &DownloadOptions::default()).unwrap();
    let (d, fetched) = download(plan.clone(), &small, None);
    assert_eq!(fetched, 1);
    assert_eq!(d.verify(None).unwrap(), Verification::Md5, "one range: its MD5 is the object's");
    let (d, _) = download(plan, &small, Some(10));
    assert!(d.verify(None).unwrap_err().to_string().contains("damaged"));

    let big = data(40 * MB);
    let etag = format!("\"{}\"", to_hex(&md5(&big)));
    let plan = DownloadPlan::new(big.len() as u64, Some(&etag), &DownloadOptions::default()).unwrap();
    let (d, fetched) = download(plan, &big, None);
    assert_eq!(fetched, 3);
    assert_eq!(d.verify(None).unwrap(), Verification::SizeOnly, "ranges in parallel: no whole MD5 of their own");
    assert_eq!(d.verify(Some(md5(&big))).unwrap(), Verification::Md5);
    assert!(matches!(d.verify(Some(md5(b"other"))), Err(TransferError::Integrity(_))));
}

#[test]
fn verify_download_directly() {
    let object = data(12 * MB);
    let etag = multipart_etag_of(&object, 8 * MB);
    let digests = |p: u64| PartDigests { part_size: p, md5s: object.chunks(p as usize).map(md5).collect() };
    let guesses = [digests(5 * MB), digests(8 * MB)];
    assert_eq!(check_multipart_etag(&etag, object.len() as u64, &guesses), Some(8 * MB));
    assert_eq!(check_multipart_etag(&etag, object.len() as u64, &guesses[..1]), None);
    assert_eq!(check_multipart_etag("\"5d41402abc4b2a76b9719d911017c592\"", 1, &guesses), None);
    assert_eq!(
        verify_download(object.len() as u64, Some(&etag), object.len() as u64, None, &guesses, false).unwrap(),
        Verification::MultipartEtag { part_size: 8 * MB, parts: 2 }
    );
    let err = verify_download(100, Some(&etag), 99, None, &guesses, false).unwrap_err();
    assert!(err.to_string().contains("received 99 bytes, but the object has 100"));
    // A one-part multipart upload: md5(md5(data))-1, checked from the whole MD5.
    let one = format!("\"{}\"", multipart_etag(&[md5(&object)]));
    assert_eq!(
        verify_download(object.len() as u64, Some(&one), object.len() as u64, Some(md5(&object)), &[], false).unwrap(),
        Verification::MultipartEtag { part_size: object.len() as u64, parts: 1 }
    );
}

#[test]
fn range_hasher_chunks_align_with_parts() {
    let plan = DownloadPlan::new(30 * MB, Some(&format!("\"{}-6\"", "0".repeat(32))), &DownloadOptions::default()).unwrap();
    assert_eq!(plan.hashed_part_sizes()[0], 5 * MB);
    let bytes = data(plan.range_size);
    let mut h = RangeHasher::new(&plan);
    h.update(&bytes[..1]);
    h.update(&bytes[1..(7 * MB) as usize]);
    h.update(&bytes[(7 * MB) as usize..]);
    let digest = h.finish();
    assert_eq!(digest.length, plan.range_size);
    assert_eq!(digest.md5, Some(md5(&bytes)));
    let expected: Vec<Md5> = bytes.chunks(5 * MB as usize).map(md5).collect();
    assert_eq!(digest.chunk_md5s, vec![(5 * MB, expected)]);
}

#[test]
fn failed_ranges_are_fetched_again_or_fail_the_download() {
    let policy = RetryPolicy { max_attempts: 2, base_delay_ms: 10, max_delay_ms: 10 };
    let plan = DownloadPlan::new(40 * MB, None, &DownloadOptions { max_in_flight: 2, ..Default::default() }).unwrap();
    let mut d = RangedDownload::new(plan.clone(), policy);
    let a = d.next_range().unwrap();
    let b = d.next_range().unwrap();
    assert_eq!((a.index, b.index, d.next_range()), (0, 1, None));
    let busy = TransferError::from(S3Error::new(503, "SlowDown", ""));
    assert_eq!(d.range_failed(a.index, &busy, 0, 3), RetryDecision::Retry { after_ms: 3 });
    assert_eq!(d.next_range(), None, "the retried range keeps its slot");
    // A short range is refused; the driver releases it to fetch again.
    let short = RangeDigest { length: 5, md5: Some(md5(b"12345")), chunk_md5s: vec![] };
    assert!(matches!(d.range_done(b.index, short), Err(TransferError::Integrity(_))));
    d.release_range(b.index).unwrap();
    assert_eq!(d.next_range().unwrap().index, 1);
    assert!(d.verify(None).is_err(), "not complete");
    let changed = TransferError::from(S3Error::new(412, "PreconditionFailed", ""));
    assert_eq!(d.range_failed(a.index, &changed, 0, 0), RetryDecision::GiveUp);
    assert_eq!(d.failure(), Some(&changed));
    assert_eq!(d.next_range(), None);
    assert!(d.release_range(9).is_err());
}

/// Digests computed elsewhere from `digest_spans` (the host hashing the
/// file a range was written to) equal those a RangeHasher makes of the
/// bytes, for known, guessed and no part sizes, in full and short ranges;
/// an object MD5 over several ranges hashes nothing per range.
#[test]
fn digests_of_spans_equal_the_range_hasher() {
    let object = data(45 * MB + 12_345);
    let plans = [
        DownloadPlan::new(object.len() as u64, Some(&multipart_etag_of(&object, 8 * MB)), &DownloadOptions::default()).unwrap(),
        DownloadPlan::new(
            object.len() as u64,
            Some(&multipart_etag_of(&object, 5 * MB)),
            &DownloadOptions { known_part_size: Some(5 * MB), range_size: Some(15 * MB), ..DownloadOptions::default() },
        )
        .unwrap(),
        DownloadPlan::new(object.len() as u64, Some(&format!("\"{}\"", to_hex(&md5(&object)))), &DownloadOptions::default()).unwrap(),
    ];
    assert!(plans[0].range_md5_needed() && plans[1].range_md5_needed() && !plans[2].range_md5_needed());
    for plan in &plans {
        assert!(plan.range_count() > 1);
        for index in [0, plan.range_count() - 1] {
            let (offset, length) = plan.span(index);
            let bytes = &object[offset as usize..(offset + length) as usize];
            let mut hasher = RangeHasher::new(plan);
            hasher.update(bytes);
            let spans = digest_spans(plan, length);
            let whole_spans = spans.iter().filter(|s| **s == (0, length)).count();
            assert_eq!(whole_spans, usize::from(plan.range_md5_needed()), "no span twice");
            let md5s: Vec<Md5> = spans.iter().map(|&(at, len)| md5(&bytes[at as usize..(at + len) as usize])).collect();
            assert_eq!(range_digest(plan, length, &md5s).unwrap(), hasher.finish());
            if !md5s.is_empty() {
                assert!(range_digest(plan, length, &md5s[1..]).is_err());
            }
        }
    }
}

#[test]
fn the_done_prefix_grows_only_over_ranges_done_from_the_first() {
    let object = data(40 * MB + 5);
    let plan = DownloadPlan::new(object.len() as u64, None, &DownloadOptions { max_in_flight: 3, ..Default::default() }).unwrap();
    let mut d = RangedDownload::new(plan.clone(), RetryPolicy::default());
    let ranges: Vec<_> = std::iter::from_fn(|| d.next_range()).collect();
    assert_eq!(ranges.len(), 3);
    let digest = |r: &RangeToFetch| {
        let mut h = RangeHasher::new(&plan);
        h.update(&object[r.offset as usize..(r.offset + r.length) as usize]);
        h.finish()
    };
    assert_eq!(d.done_prefix_end(), 0);
    // The last and the middle range first: nothing from the start yet.
    d.range_done(2, digest(&ranges[2])).unwrap();
    d.range_done(1, digest(&ranges[1])).unwrap();
    assert_eq!(d.done_prefix_end(), 0);
    // The first one closes the gap: the prefix is the whole object.
    d.range_done(0, digest(&ranges[0])).unwrap();
    assert_eq!(d.done_prefix_end(), object.len() as u64);
}

#[test]
fn landed_ranges_make_room_for_more_and_are_done_only_with_their_digest() {
    let object = data(40 * MB + 5);
    let plan = DownloadPlan::new(object.len() as u64, None, &DownloadOptions { max_in_flight: 2, ..Default::default() }).unwrap();
    let mut d = RangedDownload::new(plan.clone(), RetryPolicy::default());
    let first: Vec<_> = std::iter::from_fn(|| d.next_range()).collect();
    assert_eq!(first.len(), 2);
    let digest = |r: &RangeToFetch| {
        let mut h = RangeHasher::new(&plan);
        h.update(&object[r.offset as usize..(r.offset + r.length) as usize]);
        h.finish()
    };
    // Stored, digest to come: no longer in flight, so the third range may go.
    d.range_landed(first[0].index).unwrap();
    assert_eq!(d.in_flight(), 1);
    let third = d.next_range().expect("a landed range frees its place");
    assert_eq!(third.index, 2);
    // A landed range is not done: the prefix and completion wait for its digest.
    assert_eq!(d.done_prefix_end(), 0);
    assert!(matches!(d.range_landed(first[0].index), Err(TransferError::Usage(_))), "landed twice");
    d.range_done(first[1].index, digest(&first[1])).unwrap();
    d.range_done(third.index, digest(&third)).unwrap();
    assert!(!d.is_complete());
    d.range_done(first[0].index, digest(&first[0])).unwrap();
    assert_eq!(d.done_prefix_end(), object.len() as u64);
    assert!(d.is_complete());
    assert!(d.verify(None).is_ok());
    // A landed range's digest is still checked against its length.
    let mut d = RangedDownload::new(plan.clone(), RetryPolicy::default());
    let r = d.next_range().unwrap();
    d.range_landed(r.index).unwrap();
    let mut short = RangeHasher::new(&plan);
    short.update(&object[..10]);
    assert!(matches!(d.range_done(r.index, short.finish()), Err(TransferError::Integrity(_))));
}

#[test]
fn plans_survive_what_a_head_answer_may_say() {
    let etag = "\"9b2cf535f27731c974343645a3985328-7\"";
    // A part size of 0 (from `x-amz-meta-lakeport-part-size: 0` or an
    // empty part 1) divided by zero; one that does not make the ETag's 7
    // parts was taken for certain and failed good data as damaged.
    for known in [0, 1, 5 * MB, 100 * MB] {
        let plan = DownloadPlan::new(100 * MB, Some(etag), &DownloadOptions { known_part_size: Some(known), ..Default::default() }).unwrap();
        assert_eq!(plan.etag_check, EtagCheck::PartMd5s { part_sizes: vec![16 * MB], certain: false }, "{known}");
    }
    // A one-part ETag on an object of 2^64 - 1 bytes overflowed the guess
    // of the smallest whole-MiB part size.
    let huge = DownloadPlan::new(u64::MAX, Some("\"9b2cf535f27731c974343645a3985328-1\""), &DownloadOptions::default()).unwrap();
    // Sizes beyond 2^32 ranges wrapped the range count (2^63 bytes: 0
    // ranges, a download that ends at once); the default range size grows instead.
    for size in [u64::MAX, 1 << 63, 5 << 40, 17 << 40] {
        let plan = DownloadPlan::new(size, None, &DownloadOptions::default()).unwrap();
        assert!(u64::from(plan.range_count()) <= MAX_RANGES && plan.range_size.is_multiple_of(MB), "{size}");
        let last = plan.range_count() - 1;
        assert_eq!(plan.span(last).0 + plan.span(last).1, size, "{size}");
    }
    assert_eq!(DownloadPlan::new(5 << 40, None, &DownloadOptions::default()).unwrap().range_size, DEFAULT_RANGE_SIZE);
    assert_eq!(huge.range_count() as u64, MAX_RANGES);
    // A range size chosen by the user that needs too many ranges is refused, saying what works.
    let err = DownloadPlan::new(5 << 40, None, &DownloadOptions { range_size: Some(1 << 20), ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("use a part size of at least 5242880 bytes"), "{err}");
}
