//! The transfer driver against a simulated S3 server: retries, resume, key
//! renewal and verification, checked natively and without real waiting.
//! The end-to-end tests run the same driver in the component against real
//! servers; these reach the faults those servers cannot be made to show.

mod sim_s3;

use lakeport_transfer::driver::{PutRequest, Session, VerifiedBy, DIGESTS_AT_ONCE};
use lakeport_transfer::{S3ErrorKind, TransferError};
use sim_s3::*;

const BUCKET: &str = "data";
const KEY: &str = "big.h5";
const PART: u64 = 5 * MIB;

fn put_request(resume: bool) -> PutRequest<'static> {
    PutRequest { bucket: BUCKET, key: KEY, content_type: None, resume, resume_upload_id: None, keep_on_failure: false }
}

/// Requests of `op` that stored something, by part number.
fn stored_parts(session: &Session<SimExchange>) -> Vec<u32> {
    let mut parts: Vec<u32> = session.exchange().log().iter().filter(|l| l.op == "UploadPart" && l.took_effect).filter_map(|l| l.part).collect();
    parts.sort();
    parts
}

fn s3_code(e: &TransferError) -> Option<S3ErrorKind> {
    e.s3().map(|s| s.kind())
}

// ---- downloads ----

#[test]
fn cut_ranges_are_fetched_again_and_the_download_verifies() {
    for pipe in [false, true] {
        let sim = SimExchange::new(&["AK1"]);
        let object = data(2 * PART + 123);
        sim.store(BUCKET, KEY, object.clone());
        sim.fault(On::RangeFrom(PART), Fault::CutAnswer(1000), 2);
        sim.fault(On::RangeFrom(0), Fault::CutAnswer(0), 1);
        let session = session(sim, "AK1", PART, 2, 3);
        let sink = MemSink { pipe, ..MemSink::default() };
        let done = block_on(session.get(BUCKET, KEY, &sink)).unwrap_or_else(|e| panic!("pipe {pipe}: {e}"));
        assert_eq!((done.size, done.verified_by), (object.len() as u64, VerifiedBy::Md5));
        assert!(sink.committed.get());
        assert!(*sink.data.borrow() == object, "pipe {pipe}: the bytes written are the object's");
        let sim = session.exchange();
        // Three ranges, three of their attempts cut.
        assert_eq!(sim.count("GetObject"), 6);
        // Each attempt at a range first waits: at once, then the backoff.
        let slept = sim.slept_ms.borrow();
        assert_eq!(slept.len(), 6);
        assert!(slept.iter().all(|&ms| ms <= 2 * 250), "waits within the backoff of a first or second retry: {slept:?}");
        assert!(slept.iter().any(|&ms| ms > 0), "retries wait (a jittered backoff, all zero only by a fluke): {slept:?}");
    }
}

#[test]
fn a_range_cut_on_every_attempt_fails_the_download_and_commits_nothing() {
    for pipe in [false, true] {
        let sim = SimExchange::new(&["AK1"]);
        sim.store(BUCKET, KEY, data(2 * PART + 123));
        sim.fault(On::RangeFrom(PART), Fault::CutAnswer(1000), 3);
        let session = session(sim, "AK1", PART, 2, 3);
        let sink = MemSink { pipe, ..MemSink::default() };
        let e = block_on(session.get(BUCKET, KEY, &sink)).err().expect("the download fails");
        assert!(e.to_string().contains(&format!("the answer for {KEY} ended after 1000 of {PART} bytes")), "pipe {pipe}: {e}");
        assert!(!sink.committed.get(), "a failed download is not committed");
        let sim = session.exchange();
        let attempts = sim.log().iter().filter(|l| l.range_start == Some(PART)).count();
        assert_eq!(attempts, 3, "max_attempts attempts at the range, no more");
    }
}

#[test]
fn a_corrupted_range_fails_verification_and_commits_nothing() {
    let sim = SimExchange::new(&["AK1"]);
    sim.store(BUCKET, KEY, data(2 * PART + 123));
    sim.fault(On::RangeFrom(PART), Fault::CorruptByte(77), 1);
    let session = session(sim, "AK1", PART, 2, 3);
    let sink = MemSink::default();
    let e = block_on(session.get(BUCKET, KEY, &sink)).err().expect("the download fails");
    assert!(matches!(e, TransferError::Integrity(_)), "{e:?}");
    assert!(!sink.committed.get());
}

// ---- uploads ----

#[test]
fn an_upload_survives_cut_bodies_and_slowdowns_storing_each_part_once() {
    let sim = SimExchange::new(&["AK1"]);
    sim.fault(On::Part(2), Fault::CutRequest(4096), 2);
    sim.fault(On::Part(3), Fault::SlowDown, 1);
    sim.fault(On::Complete, Fault::SlowDown, 1);
    let session = session(sim, "AK1", PART, 2, 4);
    let source = MemSource::file(data(2 * PART + 4321));
    let done = block_on(session.put(&source, &put_request(false))).unwrap();
    let sim = session.exchange();
    let object = sim.object(BUCKET, KEY).expect("the object exists");
    assert!(object.data == source.data);
    assert_eq!((done.parts, done.etag.as_str()), (3, object.etag.trim_matches('"')));
    assert_eq!(stored_parts(&session), [1, 2, 3]);
    assert_eq!(sim.count("UploadPart"), 3 + 3, "two cut bodies and one SlowDown sent again");
    assert_eq!(sim.count("CompleteMultipartUpload"), 2);
    assert_eq!(source.recorded_uploads.borrow().len(), 1, "the upload ID is noted for --resume");
}

#[test]
fn a_single_put_reset_before_its_answer_is_sent_again() {
    let sim = SimExchange::new(&["AK1"]);
    sim.fault(On::Put, Fault::ResetBeforeAnswer, 2);
    let session = session(sim, "AK1", PART, 2, 3);
    let source = MemSource::file(data(1000));
    let done = block_on(session.put(&source, &put_request(false))).unwrap();
    let sim = session.exchange();
    assert_eq!(sim.count("PutObject"), 3);
    assert_eq!((done.parts, done.etag.as_str()), (0, sim.object(BUCKET, KEY).unwrap().etag.trim_matches('"')));
    assert_eq!(sim.slept_ms.borrow().len(), 2, "a wait before each retry");
}

#[test]
fn keys_expiring_mid_upload_are_renewed_once_for_all_parts_refused_together() {
    let sim = SimExchange::new(&["AK1", "AK2"]);
    // CreateMultipartUpload and part 1 pass; parts 2-4, in flight together, are refused.
    sim.server.borrow_mut().key_limits.push(KeyLimit { access_key_id: "AK1".into(), accepted: 2, refusal: "ExpiredToken" });
    sim.renewals.borrow_mut().push_back(Ok(keys("AK2")));
    let session = session(sim, "AK1", PART, 4, 3);
    let source = MemSource::file(data(3 * PART + 1));
    let done = block_on(session.put(&source, &put_request(false))).unwrap();
    assert_eq!(done.parts, 4);
    let sim = session.exchange();
    assert_eq!(*sim.renewed.borrow(), ["AK1"], "one renewal for the parts refused together");
    let refused: Vec<u32> = sim.log().iter().filter(|l| l.status == 400).filter_map(|l| l.part).collect();
    assert_eq!(refused.len(), 3, "parts 2-4 were in flight together: {refused:?}");
    assert_eq!(stored_parts(&session), [1, 2, 3, 4], "each part stored once");
    let part_1_sent = sim.log().iter().filter(|l| l.part == Some(1)).count();
    assert_eq!(part_1_sent, 1, "a stored part is not sent again");
    assert!(sim.log().iter().filter(|l| l.op == "CompleteMultipartUpload").all(|l| l.access_key_id == "AK2"));
    assert!(sim.object(BUCKET, KEY).unwrap().data == source.data);
}

#[test]
fn a_failed_renewal_says_why_and_the_upload_is_aborted() {
    let sim = SimExchange::new(&["AK1", "AK2"]);
    sim.server.borrow_mut().key_limits.push(KeyLimit { access_key_id: "AK1".into(), accepted: 2, refusal: "ExpiredToken" });
    // The renewal for the parts fails; the one for the abort works.
    sim.renewals.borrow_mut().push_back(Err("the identity provider did not answer".into()));
    sim.renewals.borrow_mut().push_back(Ok(keys("AK2")));
    let session = session(sim, "AK1", PART, 4, 3);
    let source = MemSource::file(data(3 * PART + 1));
    let e = block_on(session.put(&source, &put_request(false))).err().expect("the upload fails");
    let message = e.to_string();
    assert!(message.contains("renewing the credentials failed: the identity provider did not answer"), "{message}");
    assert!(message.contains("the unfinished upload was aborted"), "{message}");
    let sim = session.exchange();
    assert!(sim.server.borrow().uploads.is_empty(), "the upload is gone from the server");
    assert!(sim.object(BUCKET, KEY).is_none());
}

#[test]
fn a_failed_renewal_after_a_lost_completion_leaves_the_upload_alone() {
    let sim = SimExchange::new(&["AK1"]);
    // Create, 2 parts and the completion pass; the completion's answer is lost,
    // and every later request is refused with keys that cannot be renewed.
    sim.server.borrow_mut().key_limits.push(KeyLimit { access_key_id: "AK1".into(), accepted: 4, refusal: "ExpiredToken" });
    sim.fault(On::Complete, Fault::LoseAnswer, 1);
    let session = session(sim, "AK1", PART, 2, 3);
    let source = MemSource::file(data(PART + 10));
    let e = block_on(session.put(&source, &put_request(false))).err().expect("the upload's outcome is unknown");
    assert!(e.to_string().contains("the upload may have completed"), "{e}");
    let sim = session.exchange();
    assert_eq!(sim.count("AbortMultipartUpload"), 0, "an upload that may have completed is never aborted");
    assert!(sim.object(BUCKET, KEY).is_some());
}

#[test]
fn invalid_access_key_renews_only_keys_that_worked() {
    // Keys that worked, then forgotten (Ceph RGW drops expired STS keys).
    let sim = SimExchange::new(&["AK1", "AK2"]);
    sim.server.borrow_mut().key_limits.push(KeyLimit { access_key_id: "AK1".into(), accepted: 2, refusal: "InvalidAccessKeyId" });
    sim.renewals.borrow_mut().push_back(Ok(keys("AK2")));
    let worked = session(sim, "AK1", PART, 2, 3);
    let source = MemSource::file(data(2 * PART));
    block_on(worked.put(&source, &put_request(false))).unwrap();
    assert_eq!(*worked.exchange().renewed.borrow(), ["AK1"]);

    // Keys that never worked: renewing cannot fix a wrong key.
    let sim = SimExchange::new(&["AK2"]);
    sim.renewals.borrow_mut().push_back(Ok(keys("AK2")));
    let session = session(sim, "AK1", PART, 2, 3);
    let e = block_on(session.put(&source, &put_request(false))).err().expect("wrong keys fail");
    assert_eq!(s3_code(&e), Some(S3ErrorKind::InvalidAccessKeyId), "{e:?}");
    assert!(session.exchange().renewed.borrow().is_empty());
    assert_eq!(session.exchange().log().len(), 1, "a refused first request is not repeated");
}

#[test]
fn a_lost_completion_answer_is_settled_by_head_without_abort() {
    let sim = SimExchange::new(&["AK1"]);
    sim.fault(On::Complete, Fault::LoseAnswer, 1);
    let session = session(sim, "AK1", PART, 2, 3);
    let source = MemSource::file(data(2 * PART + 5));
    let done = block_on(session.put(&source, &put_request(false))).unwrap();
    let sim = session.exchange();
    let object = sim.object(BUCKET, KEY).unwrap();
    assert_eq!(done.etag, object.etag.trim_matches('"'));
    assert_eq!(sim.count("HeadObject"), 1, "the object itself settles the outcome");
    assert_eq!(sim.count("AbortMultipartUpload"), 0);
}

#[test]
fn an_empty_completion_etag_is_checked_by_head() {
    let sim = SimExchange::new(&["AK1"]);
    sim.server.borrow_mut().empty_complete_etag = true;
    let session = session(sim, "AK1", PART, 2, 3);
    let source = MemSource::file(data(2 * PART + 5));
    let done = block_on(session.put(&source, &put_request(false))).unwrap();
    let sim = session.exchange();
    assert_eq!(sim.count("HeadObject"), 1);
    assert_eq!(done.etag, sim.object(BUCKET, KEY).unwrap().etag.trim_matches('"'));
}

#[test]
fn resume_keeps_parts_whose_etag_matches_and_sends_the_rest() {
    let source = MemSource::file(data(3 * PART + 99));
    let sim = SimExchange::new(&["AK1"]);
    // An earlier run stored part 1 as it is now, and part 2 from data since changed.
    {
        let first = session(SimExchange::new(&["AK1"]), "AK1", PART, 1, 1);
        first.exchange().fault(On::Part(3), Fault::SlowDown, 1);
        let request = PutRequest { keep_on_failure: true, ..put_request(false) };
        let e = block_on(first.put(&source, &request)).err().expect("the first run fails at part 3");
        assert!(e.to_string().contains("--resume"), "{e}");
        let mut server = first.exchange().server.borrow_mut();
        let upload = server.uploads.values_mut().next().unwrap();
        let part_2 = upload.parts.get_mut(&2).unwrap();
        part_2.0[0] ^= 1;
        part_2.1 = "\"00000000000000000000000000000000\"".into();
        sim.server.borrow_mut().uploads = std::mem::take(&mut server.uploads);
    }
    let session = session(sim, "AK1", PART, 2, 3);
    let done = block_on(session.put(&source, &put_request(true))).unwrap();
    assert_eq!((done.parts, done.parts_kept), (4, 1));
    let sent: Vec<u32> = session.exchange().log().iter().filter(|l| l.op == "UploadPart").filter_map(|l| l.part).collect();
    assert_eq!(sent, [2, 3, 4], "only the parts the server lacks or holds wrongly");
    assert!(session.exchange().object(BUCKET, KEY).unwrap().data == source.data);
}

#[test]
fn clock_skew_is_fixed_once() {
    let sim = SimExchange::new(&["AK1"]);
    sim.server.borrow_mut().clock_ahead_secs = 3600;
    let session = session(sim, "AK1", PART, 3, 3);
    let source = MemSource::file(data(3 * PART));
    block_on(session.put(&source, &put_request(false))).unwrap();
    let log = session.exchange().log();
    let skewed: Vec<&str> = log.iter().filter(|l| l.status == 403).map(|l| l.op).collect();
    assert_eq!(skewed, ["CreateMultipartUpload"], "later requests are signed with the server's clock");
    assert!(log.iter().skip(1).all(|l| l.status / 100 == 2));
}

#[test]
fn a_piped_upload_round_trips_and_its_multipart_etag_verifies_the_download() {
    let sim = SimExchange::new(&["AK1"]);
    sim.fault(On::Part(3), Fault::CutRequest(10), 1);
    let session = session(sim, "AK1", PART, 2, 3);
    let source = MemSource { pipe: true, ..MemSource::file(data(2 * PART + 777)) };
    let done = block_on(session.put(&source, &put_request(false))).unwrap();
    assert_eq!((done.size, done.parts), (2 * PART + 777, 3));
    let sink = MemSink::default();
    let got = block_on(session.get(BUCKET, KEY, &sink)).unwrap();
    assert_eq!(got.verified_by, VerifiedBy::MultipartEtag, "the part size noted at upload makes the ETag checkable");
    assert!(*sink.data.borrow() == source.data);
    assert_eq!(session.exchange().count("HeadObject"), 1, "the noted part size spares a HEAD of part 1");
}

// ---- hashing local data ----


#[test]
fn part_digests_are_asked_for_in_batches_ahead_of_sending() {
    let parts = 2 * DIGESTS_AT_ONCE as u64 + 8;
    let session = session(SimExchange::new(&["AK1"]), "AK1", PART, 2, 3);
    let source = MemSource::file(data(parts * PART));
    block_on(session.put(&source, &put_request(false))).unwrap();
    let asked = source.digests_asked.borrow();
    assert_eq!(asked.len() as u64, parts, "one digest per part, none asked twice: {asked:?}");
    let mut offsets: Vec<u64> = asked.iter().map(|a| a.offset).collect();
    offsets.sort();
    assert_eq!(offsets, (0..parts).map(|n| n * PART).collect::<Vec<_>>());
    // Asked for in batches (those asked between the same two requests):
    // the first before any part went out (only CreateMultipartUpload had),
    // then a batch of the rest (here 8) once 16 parts had gone.
    let mut batches: Vec<(usize, usize)> = Vec::new();
    for a in asked.iter() {
        match batches.last_mut() {
            Some((at, n)) if *at == a.requests_before => *n += 1,
            _ => batches.push((a.requests_before, 1)),
        }
    }
    assert_eq!(batches.iter().map(|b| b.1).collect::<Vec<_>>(), [2 * DIGESTS_AT_ONCE, 8], "{batches:?}");
    assert_eq!(batches[0].0, 1, "the first batch before any part: {batches:?}");
}

#[test]
fn landed_ranges_are_read_back_together_and_the_download_verifies() {
    let parts = DIGESTS_AT_ONCE as u64 + 2;
    let session = session(SimExchange::new(&["AK1"]), "AK1", PART, 2, 3);
    let source = MemSource::file(data(parts * PART));
    block_on(session.put(&source, &put_request(false))).unwrap();
    let sent_before_download = session.exchange().log().len();
    let sink = MemSink::default();
    let got = block_on(session.get(BUCKET, KEY, &sink)).unwrap();
    assert_eq!(got.verified_by, VerifiedBy::MultipartEtag);
    assert!(*sink.data.borrow() == source.data);
    let asked = sink.digests_asked.borrow();
    assert_eq!(asked.len() as u64, parts, "{asked:?}");
    // The first 16 ranges are read back together once they have all
    // landed (while later ones were fetched), the last two at the end.
    let (first, last) = asked.split_at(DIGESTS_AT_ONCE);
    assert!(first.iter().all(|a| a.requests_before == first[0].requests_before), "{asked:?}");
    assert!(first[0].requests_before >= sent_before_download + DIGESTS_AT_ONCE, "{asked:?}");
    assert!(last.iter().all(|a| a.requests_before == session.exchange().log().len()), "{asked:?}");
}
