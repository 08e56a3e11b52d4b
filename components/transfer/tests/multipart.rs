//! Part-size planning at the edges, the upload state machine under a
//! simulated parallel driver with failures, and resume reconciliation.

use std::collections::BTreeMap;

use lakeport_transfer::digest::{md5, to_hex, Md5};
use lakeport_transfer::etag::multipart_etag;
use lakeport_transfer::multipart::*;
use lakeport_transfer::parse::ListedPart;
use lakeport_transfer::retry::{Jitter, RetryDecision, RetryPolicy};
use lakeport_transfer::{Addressing, Credentials, S3Endpoint, S3Error, S3Requests, TransferError, TransportKind};

const MB: u64 = 1 << 20;

fn plan(size: Option<u64>) -> UploadPlan {
    plan_upload(size, &UploadOptions::default()).unwrap()
}

fn parts_of(p: UploadPlan) -> PartPlan {
    match p {
        UploadPlan::Multipart(p) => p,
        other => panic!("expected parts, got {other:?}"),
    }
}

#[test]
fn small_objects_go_in_one_put() {
    assert_eq!(plan(Some(0)), UploadPlan::Single { size: 0 });
    assert_eq!(plan(Some(1)), UploadPlan::Single { size: 1 });
    assert_eq!(plan(Some(DEFAULT_MULTIPART_THRESHOLD)), UploadPlan::Single { size: DEFAULT_MULTIPART_THRESHOLD });
    let p = parts_of(plan(Some(DEFAULT_MULTIPART_THRESHOLD + 1)));
    assert_eq!((p.part_size(), p.part_count()), (DEFAULT_PART_SIZE, Some(2)));
    assert_eq!(p.part(2), Some(PartSpan { number: 2, offset: DEFAULT_PART_SIZE, length: 1 }));
    // A threshold above 5 GiB is capped: one PUT carries no more.
    let big = UploadOptions { part_size: None, multipart_threshold: 100 << 30 };
    assert!(matches!(plan_upload(Some(MAX_SINGLE_PUT), &big).unwrap(), UploadPlan::Single { .. }));
    assert!(matches!(plan_upload(Some(MAX_SINGLE_PUT + 1), &big).unwrap(), UploadPlan::Multipart(_)));
    // A bad requested part size is reported even for a small file.
    let tiny = UploadOptions { part_size: Some(MB), ..Default::default() };
    assert!(plan_upload(Some(10), &tiny).unwrap_err().to_string().contains("minimum of 5 MiB"));
}

#[test]
fn exactly_one_part_size_and_one_more_byte() {
    let options = UploadOptions { part_size: Some(8 * MB), multipart_threshold: 0 };
    let p = parts_of(plan_upload(Some(8 * MB), &options).unwrap());
    assert_eq!(p.part_count(), Some(1));
    assert_eq!(p.part(1), Some(PartSpan { number: 1, offset: 0, length: 8 * MB }));
    assert_eq!(p.part(2), None);
    let p = parts_of(plan_upload(Some(8 * MB + 1), &options).unwrap());
    assert_eq!(p.part_count(), Some(2));
    assert_eq!(p.part(2).unwrap().length, 1);
    assert_eq!(p.part(0), None);
    // Zero bytes always go in one PUT; forced into parts, they are one empty part.
    assert_eq!(plan_upload(Some(0), &options).unwrap(), UploadPlan::Single { size: 0 });
    let p = PartPlan::new(8 * MB, Some(0)).unwrap();
    assert_eq!((p.part_count(), p.part(1).unwrap().length), (Some(1), 0));
}

#[test]
fn five_tebibytes_fit_in_ten_thousand_parts() {
    let p = parts_of(plan(Some(MAX_OBJECT_SIZE)));
    assert!(p.part_count().unwrap() <= MAX_PARTS);
    assert_eq!(p.part_size() % MB, 0);
    assert_eq!(p.part_size(), 525 * MB);
    let last = p.part(p.part_count().unwrap()).unwrap();
    assert_eq!(last.offset + last.length, MAX_OBJECT_SIZE);
    assert!(plan_upload(Some(MAX_OBJECT_SIZE + 1), &UploadOptions::default()).unwrap_err().to_string().contains("5 TiB"));
    // Automatic sizes stay at the default until 10,000 of them are not enough.
    assert_eq!(choose_part_size(DEFAULT_PART_SIZE * 10_000, None).unwrap(), DEFAULT_PART_SIZE);
    assert_eq!(choose_part_size(DEFAULT_PART_SIZE * 10_000 + 1, None).unwrap(), DEFAULT_PART_SIZE + MB);
}

#[test]
fn requested_part_sizes_are_honoured_or_refused_clearly() {
    assert_eq!(choose_part_size(1 << 30, Some(100 * MB)).unwrap(), 100 * MB);
    assert_eq!(choose_part_size(1 << 30, Some(5 * MB)).unwrap(), 5 * MB);
    assert!(choose_part_size(1 << 30, Some(5 * MB - 1)).unwrap_err().to_string().contains("minimum of 5 MiB"));
    assert!(choose_part_size(1 << 30, Some(MAX_PART_SIZE + 1)).unwrap_err().to_string().contains("maximum of 5 GiB"));
    let err = choose_part_size(100 << 30, Some(5 * MB)).unwrap_err().to_string();
    assert!(err.contains("20480 parts") && err.contains("use at least 11 MiB"), "{err}");
    assert_eq!(choose_part_size(MAX_PART_SIZE * 2, Some(MAX_PART_SIZE)).unwrap(), MAX_PART_SIZE);
}

#[test]
fn unknown_length_uses_stream_parts() {
    let p = parts_of(plan(None));
    assert_eq!((p.part_size(), p.total_size(), p.part_count()), (STREAM_PART_SIZE, None, None));
    assert_eq!(p.max_object_size(), 625 << 30);
    assert_eq!(p.part(3), Some(PartSpan { number: 3, offset: 2 * STREAM_PART_SIZE, length: STREAM_PART_SIZE }));
    assert_eq!(p.memory_bound(4), 4 * STREAM_PART_SIZE);
    let bigger = parts_of(plan_upload(None, &UploadOptions { part_size: Some(MAX_PART_SIZE), ..Default::default() }).unwrap());
    assert_eq!(bigger.max_object_size(), MAX_OBJECT_SIZE);
    assert!(plan_upload(None, &UploadOptions { part_size: Some(MB), ..Default::default() }).is_err());
}

fn upload(size: u64, part_size: u64, in_flight: usize) -> MultipartUpload {
    MultipartUpload::new("upload-1", PartPlan::new(part_size, Some(size)).unwrap(), in_flight, RetryPolicy::default()).unwrap()
}

fn etag_of(n: u32) -> String {
    format!("\"{}\"", to_hex(&md5(format!("part {n}").as_bytes())))
}

#[test]
fn the_parts_to_send_are_those_next_part_to_send_gives_next() {
    let mut up = upload(6 * 5 * MB + 3, 5 * MB, 2);
    let ahead: Vec<u32> = up.parts_to_send(4).iter().map(|p| p.number).collect();
    assert_eq!(ahead, [1, 2, 3, 4]);
    let a = up.next_part_to_send().unwrap();
    let b = up.next_part_to_send().unwrap();
    assert_eq!(up.parts_to_send(10).iter().map(|p| p.number).collect::<Vec<_>>(), [3, 4, 5, 6, 7]);
    assert_eq!(up.parts_to_send(10).last().unwrap().length, 3, "the last part is the remainder");
    up.part_done(a.number, &etag_of(a.number)).unwrap();
    // A part put back goes out again, before the later ones.
    up.release_part(b.number).unwrap();
    let next = up.parts_to_send(1)[0];
    assert_eq!(next.number, b.number);
    assert_eq!(next, up.next_part_to_send().unwrap());
    // A pipe's parts are not known ahead.
    let pipe = MultipartUpload::new("u", PartPlan::new(5 * MB, None).unwrap(), 2, RetryPolicy::default()).unwrap();
    assert!(pipe.parts_to_send(4).is_empty());
}

#[test]
fn parts_go_out_in_order_within_the_in_flight_bound() {
    let mut up = upload(5 * 5 * MB + 3, 5 * MB, 2);
    let a = up.next_part_to_send().unwrap();
    let b = up.next_part_to_send().unwrap();
    assert_eq!((a.number, b.number), (1, 2));
    assert_eq!(up.next_part_to_send(), None, "two in flight at most");
    assert_eq!(up.in_flight(), 2);
    // Done out of order.
    up.part_done(2, &etag_of(2)).unwrap();
    assert_eq!(up.next_part_to_send().unwrap().number, 3);
    assert!(!up.is_complete());
    assert!(up.completed_parts().unwrap_err().to_string().contains("1 of 6 parts"));
    up.part_done(3, &etag_of(3)).unwrap();
    up.part_done(1, &etag_of(1)).unwrap();
    for n in 4..=6 {
        let p = up.next_part_to_send().unwrap();
        assert_eq!(p.number, n);
        up.part_done(n, &etag_of(n)).unwrap();
    }
    assert_eq!(up.next_part_to_send(), None);
    assert!(up.is_complete());
    assert_eq!(up.bytes_done(), 5 * 5 * MB + 3);
    let parts = up.completed_parts().unwrap();
    assert_eq!(parts.iter().map(|p| p.part_number).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(parts[3].etag, etag_of(4));
    // The expected ETag of the object, from the parts' MD5s.
    let digests: Vec<Md5> = (1..=6).map(|n| md5(format!("part {n}").as_bytes())).collect();
    assert_eq!(up.expected_etag(), Some(multipart_etag(&digests)));
    // The CompleteMultipartUpload request lists them in order.
    let mut requests = S3Requests::new(
        S3Endpoint::new("http://127.0.0.1:9000", "us-east-1", Addressing::Path).unwrap(),
        Credentials { access_key_id: "AK".into(), secret_access_key: "SK".into(), session_token: None },
    )
    .unwrap();
    let req = up.complete_request(&mut requests, "data", "big", 1_714_564_800).unwrap();
    assert_eq!(req.method, "POST");
    assert!(req.url.ends_with("/data/big?uploadId=upload-1"));
    let body = String::from_utf8(req.body).unwrap();
    let positions: Vec<usize> = (1..=6).map(|n| body.find(&format!("<PartNumber>{n}</PartNumber>")).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn misuse_is_reported() {
    let mut up = upload(10 * MB, 5 * MB, 4);
    assert!(matches!(up.part_done(1, "\"e\""), Err(TransferError::Usage(_))));
    let p = up.next_part_to_send().unwrap();
    assert!(matches!(up.part_done(p.number, "\"\""), Err(TransferError::InvalidResponse { .. })));
    up.part_done(p.number, "\"e\"").unwrap();
    assert!(matches!(up.part_done(p.number, "\"e\""), Err(TransferError::Usage(_))));
    assert!(up.release_part(7).is_err());
    assert!(matches!(up.input_ended(3), Err(TransferError::Usage(_))));
    let mut requests = S3Requests::new(
        S3Endpoint::new("http://h", "r", Addressing::Path).unwrap(),
        Credentials { access_key_id: "AK".into(), secret_access_key: "SK".into(), session_token: None },
    )
    .unwrap();
    assert!(up.complete_request(&mut requests, "data", "k", 0).is_err());
    assert!(MultipartUpload::new("", PartPlan::new(5 * MB, Some(1)).unwrap(), 1, RetryPolicy::default()).is_err());
    assert!(MultipartUpload::new("u", PartPlan::new(5 * MB, Some(1)).unwrap(), 0, RetryPolicy::default()).is_err());
}

#[test]
fn failures_retry_the_same_part_or_fail_the_upload() {
    let policy = RetryPolicy { max_attempts: 3, base_delay_ms: 100, max_delay_ms: 1000 };
    let mut up = MultipartUpload::new("u", PartPlan::new(5 * MB, Some(15 * MB)).unwrap(), 1, policy).unwrap();
    let p = up.next_part_to_send().unwrap();
    let slow_down = TransferError::from(S3Error::new(503, "SlowDown", "Please reduce your request rate."));
    assert_eq!(up.part_failed(p.number, &slow_down, 0, 42), RetryDecision::Retry { after_ms: 42 });
    // The part is still in flight: nothing new goes out meanwhile.
    assert_eq!(up.next_part_to_send(), None);
    let reset = TransferError::Transport { kind: TransportKind::ConnectionReset, message: "reset".into() };
    assert!(matches!(up.part_failed(p.number, &reset, 0, 7), RetryDecision::Retry { .. }));
    assert_eq!(up.part_failed(p.number, &reset, 0, 7), RetryDecision::GiveUp);
    assert_eq!(up.failure(), Some(&reset));
    assert_eq!(up.next_part_to_send(), None);
    assert!(!up.is_complete());

    // A permanent error gives up at once; released parts go out again.
    let mut up = upload(15 * MB, 5 * MB, 2);
    let a = up.next_part_to_send().unwrap();
    up.release_part(a.number).unwrap();
    assert_eq!(up.next_part_to_send().unwrap().number, a.number);
    let gone = TransferError::from(S3Error::new(404, "NoSuchUpload", ""));
    assert_eq!(up.part_failed(a.number, &gone, 0, 0), RetryDecision::GiveUp);
    assert!(up.failure().is_some());
    // A failure report for a part that is not out fails the upload as a bug.
    let mut up = upload(15 * MB, 5 * MB, 2);
    assert_eq!(up.part_failed(2, &gone, 0, 0), RetryDecision::GiveUp);
    assert!(matches!(up.failure(), Some(TransferError::Usage(_))));
}

#[test]
fn stream_of_unknown_length() {
    let part = 5 * MB;
    let mut up = MultipartUpload::new("u", PartPlan::new(part, None).unwrap(), 2, RetryPolicy::default()).unwrap();
    let a = up.next_part_to_send().unwrap();
    let b = up.next_part_to_send().unwrap();
    assert_eq!((a.number, a.length, b.number, b.offset), (1, part, 2, part));
    up.part_done(1, "\"e1\"").unwrap();
    assert!(!up.is_complete(), "the size is not known yet");
    // The driver read 100 bytes for part 2, then the input ended.
    up.input_ended(part + 100).unwrap();
    assert_eq!(up.plan().part_count(), Some(2));
    assert_eq!(up.next_part_to_send(), None);
    up.part_done(2, "\"e2\"").unwrap();
    assert!(up.is_complete());
    assert_eq!(up.bytes_done(), part + 100);

    // The input ended exactly at a part boundary: the part read empty is dropped.
    let mut up = MultipartUpload::new("u", PartPlan::new(part, None).unwrap(), 2, RetryPolicy::default()).unwrap();
    let a = up.next_part_to_send().unwrap();
    let b = up.next_part_to_send().unwrap();
    up.part_done(a.number, "\"e1\"").unwrap();
    up.input_ended(part).unwrap();
    assert_eq!(up.in_flight(), 0, "part {} was dropped", b.number);
    assert!(up.is_complete());
    assert_eq!(up.completed_parts().unwrap().len(), 1);
}

#[test]
fn stream_longer_than_ten_thousand_parts_fails_clearly() {
    let mut up = MultipartUpload::new("u", PartPlan::new(5 * MB, None).unwrap(), 1, RetryPolicy::default()).unwrap();
    for n in 1..=MAX_PARTS {
        let p = up.next_part_to_send().unwrap();
        assert_eq!(p.number, n);
        up.part_done(n, "\"e\"").unwrap();
    }
    assert_eq!(up.next_part_to_send(), None);
    let err = up.failure().unwrap().to_string();
    assert!(err.contains("longer than 10000 parts of 5 MiB") && err.contains("larger part size"), "{err}");
}

/// A fake S3 server that stores parts and fails some requests; the driver
/// follows the documented contract.
#[test]
fn simulated_parallel_driver_with_failures() {
    let data: Vec<u8> = (0..(23 * MB + 12_345)).map(|i| (i % 251) as u8).collect();
    let part_size = 5 * MB;
    let policy = RetryPolicy { max_attempts: 6, base_delay_ms: 10, max_delay_ms: 100 };
    let mut up = MultipartUpload::new("sim", PartPlan::new(part_size, Some(data.len() as u64)).unwrap(), 3, policy).unwrap();
    let mut rng = Jitter::new(99);
    let mut server: BTreeMap<u32, String> = BTreeMap::new();
    let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
    let (mut sends, mut failures) = (0, 0);
    let mut failed_once = std::collections::HashSet::new();
    let mut max_seen = 0;
    loop {
        while let Some(p) = up.next_part_to_send() {
            out.push((p.number, data[p.offset as usize..(p.offset + p.length) as usize].to_vec()));
        }
        max_seen = max_seen.max(out.len());
        assert!(out.len() <= 3);
        if up.is_complete() || up.failure().is_some() {
            break;
        }
        // Answer a random request in flight.
        let i = (rng.next_u64() % out.len() as u64) as usize;
        let (n, bytes) = out.swap_remove(i);
        sends += 1;
        // Odd parts fail their first attempt; any attempt may fail.
        let first_try_of_odd = n % 2 == 1 && failed_once.insert(n);
        if first_try_of_odd || rng.next_u64().is_multiple_of(4) {
            failures += 1;
            let err = TransferError::from(S3Error::new(500, "InternalError", ""));
            match up.part_failed(n, &err, 0, rng.next_u64()) {
                RetryDecision::Retry { after_ms } => {
                    assert!(after_ms <= 100);
                    out.push((n, bytes));
                }
                other => panic!("{other:?}"),
            }
        } else {
            let etag = format!("\"{}\"", to_hex(&md5(&bytes)));
            server.insert(n, etag.clone());
            up.part_done(n, &etag).unwrap();
        }
    }
    assert!(up.is_complete(), "{:?}", up.failure());
    assert_eq!(max_seen, 3);
    assert!(failures >= 3);
    assert_eq!(sends, 5 + failures);
    let parts = up.completed_parts().unwrap();
    assert_eq!(parts.len(), 5);
    assert!(parts.iter().all(|p| server[&p.part_number] == p.etag));
    let digests: Vec<Md5> = data.chunks(part_size as usize).map(md5).collect();
    assert_eq!(up.expected_etag().unwrap(), multipart_etag(&digests));
}

fn listed(n: u32, data: &[u8]) -> ListedPart {
    ListedPart { part_number: n, etag: format!("\"{}\"", to_hex(&md5(data))), size: data.len() as u64, last_modified: None }
}

#[test]
fn resume_keeps_matching_parts_and_never_resends_them() {
    let part = 5 * MB as usize;
    let data: Vec<u8> = (0..(4 * part + 10)).map(|i| (i % 13) as u8).collect();
    let chunk = |n: u32| &data[(n as usize - 1) * part..((n as usize) * part).min(data.len())];
    let plan = PartPlan::new(part as u64, Some(data.len() as u64)).unwrap();
    let mut stale = listed(3, chunk(3));
    stale.etag = format!("\"{}\"", to_hex(&md5(b"what was there before")));
    let server = vec![listed(1, chunk(1)), stale, listed(5, chunk(5)), listed(4, chunk(4))];
    let mut hashed = Vec::new();
    let (mut up, report) = MultipartUpload::resume("u", plan, &server, 4, RetryPolicy::default(), |span| {
        hashed.push(span.number);
        Some(md5(&data[span.offset as usize..(span.offset + span.length) as usize]))
    })
    .unwrap();
    assert_eq!(report, ResumeReport { kept: vec![1, 4, 5], replaced: vec![3], missing: vec![2] });
    hashed.sort();
    assert_eq!(hashed, [1, 3, 4, 5], "only listed parts are read for hashing");
    assert_eq!(up.parts_done(), 3);
    let mut sent = Vec::new();
    while let Some(p) = up.next_part_to_send() {
        sent.push(p.number);
    }
    assert_eq!(sent, [2, 3], "kept parts are not sent again");
    for n in sent {
        up.part_done(n, &format!("\"{}\"", to_hex(&md5(chunk(n))))).unwrap();
    }
    assert!(up.is_complete());
    let digests: Vec<Md5> = (1..=5).map(|n| md5(chunk(n))).collect();
    assert_eq!(up.expected_etag(), Some(multipart_etag(&digests)));
    assert_eq!(up.completed_parts().unwrap()[0].etag, server[0].etag);
}

#[test]
fn resume_resends_what_it_cannot_check() {
    let part = 5 * MB as usize;
    let data = vec![1u8; 2 * part];
    let plan = PartPlan::new(part as u64, Some(data.len() as u64)).unwrap();
    // An SSE-KMS-style ETag (not an MD5) and an unreadable local part.
    let mut kms = listed(1, &data[..part]);
    kms.etag = "\"b1946ac92492d2347c6235b4d2611184-1\"".into();
    let server = vec![kms, listed(2, &data[part..])];
    let (mut up, report) = MultipartUpload::resume("u", plan, &server, 4, RetryPolicy::default(), |span| {
        (span.number != 2).then(|| md5(&data[..part]))
    })
    .unwrap();
    assert_eq!(report.replaced, [1, 2]);
    assert!(report.kept.is_empty() && report.missing.is_empty());
    assert_eq!(up.next_part_to_send().unwrap().number, 1);
    assert_eq!(up.next_part_to_send().unwrap().number, 2);
}

#[test]
fn resume_refuses_a_different_layout() {
    let part = 5 * MB;
    let plan = PartPlan::new(part, Some(3 * part)).unwrap();
    let any = |_: &PartSpan| Some([0u8; 16]);
    let wrong_size = vec![ListedPart { part_number: 1, etag: "\"e\"".into(), size: 8 * MB, last_modified: None }];
    let err = MultipartUpload::resume("u", plan, &wrong_size, 4, RetryPolicy::default(), any).unwrap_err();
    assert!(matches!(err, TransferError::Integrity(_)));
    assert!(err.to_string().contains("part 1 on the server has 8388608 bytes") && err.to_string().contains("part size"), "{err}");
    let too_many = vec![ListedPart { part_number: 4, etag: "\"e\"".into(), size: 1, last_modified: None }];
    let err = MultipartUpload::resume("u", plan, &too_many, 4, RetryPolicy::default(), any).unwrap_err().to_string();
    assert!(err.contains("has part 4") && err.contains("only 3 parts"), "{err}");
    let twice = vec![
        ListedPart { part_number: 1, etag: "\"e\"".into(), size: part, last_modified: None },
        ListedPart { part_number: 1, etag: "\"e\"".into(), size: part, last_modified: None },
    ];
    assert!(MultipartUpload::resume("u", plan, &twice, 4, RetryPolicy::default(), any).unwrap_err().to_string().contains("twice"));
    let stream = PartPlan::new(part, None).unwrap();
    assert!(MultipartUpload::resume("u", stream, &[], 4, RetryPolicy::default(), any).unwrap_err().to_string().contains("stdin"));
    // The part size an upload was started with.
    assert_eq!(infer_part_size(&twice), Some(part));
    assert_eq!(infer_part_size(&[]), None);
}

/// An upload of three parts whose ETags are the MD5s of "part N", all stored.
fn stored_upload() -> (MultipartUpload, u64, String) {
    let size = 2 * 5 * MB + 7;
    let mut up = upload(size, 5 * MB, 3);
    while let Some(span) = up.next_part_to_send() {
        up.part_done(span.number, &etag_of(span.number)).unwrap();
    }
    assert!(up.is_complete());
    let digests: Vec<Md5> = (1..=3).map(|n| md5(format!("part {n}").as_bytes())).collect();
    (up, size, multipart_etag(&digests))
}

fn head(size: u64, etag: Option<&str>) -> lakeport_transfer::parse::ObjectMetadata {
    lakeport_transfer::parse::ObjectMetadata { content_length: size, etag: etag.map(str::to_string), ..Default::default() }
}

#[test]
fn a_completion_without_etag_is_checked_by_head() {
    let (up, size, expected) = stored_upload();
    // Ceph RGW 16.2: `<ETag></ETag>` says nothing; HEAD must.
    assert_eq!(up.check_completed("k", None).unwrap(), None);
    assert_eq!(up.check_completed("k", Some(&format!("\"{expected}\""))).unwrap().as_deref(), Some(expected.as_str()));
    let wrong = up.check_completed("k", Some("\"00000000000000000000000000000000-3\"")).unwrap_err();
    assert!(matches!(wrong, TransferError::Integrity(_)) && wrong.to_string().contains("upload it again"));

    assert_eq!(up.check_assembled("k", &head(size, Some(&format!("\"{expected}\"")))).unwrap(), expected);
    // An opaque ETag (SSE, a gateway) can only be checked by size.
    assert_eq!(up.check_assembled("k", &head(size, Some("\"opaque\""))).unwrap(), "opaque");
    let short = up.check_assembled("k", &head(size - 1, Some(&format!("\"{expected}\"")))).unwrap_err();
    assert!(short.to_string().contains(&format!("{} bytes where {size}", size - 1)), "{short}");
    let replaced = up.check_assembled("k", &head(size, Some("\"11111111111111111111111111111111-3\""))).unwrap_err();
    assert!(replaced.to_string().contains("another upload may have replaced it"), "{replaced}");
}

#[test]
fn only_a_plain_refusal_of_completion_rules_out_a_completed_object() {
    let reset = TransferError::Transport { kind: TransportKind::ConnectionReset, message: "reset".into() };
    let timeout = TransferError::Transport { kind: TransportKind::Timeout, message: "timed out".into() };
    let refused = TransferError::Transport { kind: TransportKind::ConnectionRefused, message: "refused".into() };
    let denied = TransferError::Transport { kind: TransportKind::Denied, message: "denied".into() };
    let unreadable = TransferError::InvalidResponse { status: 200, message: "not XML".into() };
    for uncertain in [reset, timeout, refused, unreadable, S3Error::new(500, "InternalError", "").into(), S3Error::new(404, "NoSuchUpload", "").into()] {
        assert!(completion_uncertain(&uncertain, 1), "{uncertain:?}");
    }
    for certain in [denied, S3Error::new(400, "InvalidPart", "").into(), S3Error::new(403, "AccessDenied", "").into()] {
        assert!(!completion_uncertain(&certain, 1), "{certain:?}");
        // After a retry, an earlier attempt may have completed it: s3s-fs
        // answers the second completion of a finished upload AccessDenied.
        assert!(completion_uncertain(&certain, 2), "{certain:?} on a retry");
    }
}
