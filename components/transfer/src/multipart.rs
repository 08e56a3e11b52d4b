//! Multipart uploads: choosing the part size, and the state of one upload
//! while its parts are sent in parallel, retried, resumed and completed.
//!
//! ## Limits and defaults
//! S3 allows 10,000 parts of 5 MiB to 5 GiB each (the last may be
//! smaller) and objects up to 5 TiB; a single PUT carries up to 5 GiB.
//! Objects above the threshold ([`DEFAULT_MULTIPART_THRESHOLD`]) go in
//! parts of [`DEFAULT_PART_SIZE`], grown (in whole MiB) when 10,000 parts
//! would not hold the object. Input of unknown length (stdin) goes in
//! parts of [`STREAM_PART_SIZE`], which limits it to 10,000 × 64 MiB =
//! 625 GiB; a larger part size raises the limit (and the memory used).
//!
//! ## The driver's contract
//! [`MultipartUpload`] does no I/O; a driver (the component bindings)
//! loops:
//! 1. take parts with [`MultipartUpload::next_part_to_send`] until it
//!    returns `None` (at most `max_in_flight` parts are out at once, so
//!    memory is bounded by `max_in_flight × part_size`); read each part's
//!    bytes, sign an UploadPart and start it;
//! 2. when an answer comes: [`MultipartUpload::part_done`] with the ETag,
//!    or [`MultipartUpload::part_failed`], whose [`RetryDecision`] says to
//!    resend the same bytes (the part stays in flight), or to give up
//!    (the upload is then failed: abort it, or keep it for a resume);
//! 3. when [`MultipartUpload::is_complete`], send
//!    [`MultipartUpload::complete_request`] (parts in order, each once).
//!
//! For input of unknown length, a driver that reads fewer bytes than a
//! part's length has reached the end: it calls
//! [`MultipartUpload::input_ended`] with the total size, which fixes the
//! part count (a part that got no bytes at all is dropped).

use lakeport_http::HttpRequest;

use crate::digest::Md5;
use crate::error::{invalid_input, Result, S3ErrorKind, TransferError, TransportKind};
use crate::etag::{etag_kind, multipart_etag, normalize_etag, EtagKind};
use crate::parse::{ListedPart, ObjectMetadata};
use crate::requests::{CompletedPart, S3Requests};
use crate::retry::{Attempts, RetryDecision, RetryPolicy, S3Retry};

pub use crate::limits::{MAX_OBJECT_SIZE, MAX_PARTS, MAX_PART_SIZE, MAX_SINGLE_PUT, MIB, MIN_PART_SIZE};
pub const DEFAULT_PART_SIZE: u64 = 16 * MIB;
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * MIB;
/// Part size for input of unknown length: up to 625 GiB.
pub const STREAM_PART_SIZE: u64 = 64 * MIB;
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

fn mib(n: u64) -> String {
    if n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

/// How to split an upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadOptions {
    /// A part size the user asked for.
    pub part_size: Option<u64>,
    /// Objects up to this size go in one PUT (capped at 5 GiB).
    pub multipart_threshold: u64,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions { part_size: None, multipart_threshold: DEFAULT_MULTIPART_THRESHOLD }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadPlan {
    /// One PutObject of `size` bytes.
    Single { size: u64 },
    /// A multipart upload; `total_size` is `None` for input of unknown
    /// length (the driver may still send one PUT if the input ends within
    /// the first part and below the threshold).
    Multipart(PartPlan),
}

/// Parts of equal size, the last one shorter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartPlan {
    part_size: u64,
    total_size: Option<u64>,
}

/// One part: its number and where its bytes are in the input. For input of
/// unknown length, `length` is the most to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartSpan {
    pub number: u32,
    pub offset: u64,
    pub length: u64,
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

impl PartPlan {
    /// Checks the part size against S3's limits and the object size.
    pub fn new(part_size: u64, total_size: Option<u64>) -> Result<Self> {
        if part_size < MIN_PART_SIZE {
            return Err(invalid_input(format!("the part size {} is below S3's minimum of 5 MiB", mib(part_size))));
        }
        if part_size > MAX_PART_SIZE {
            return Err(invalid_input(format!("the part size {} is above S3's maximum of 5 GiB", mib(part_size))));
        }
        if let Some(size) = total_size {
            check_object_size(size)?;
            let parts = ceil_div(size, part_size);
            if parts > u64::from(MAX_PARTS) {
                let needed = ceil_div(ceil_div(size, u64::from(MAX_PARTS)), MIB) * MIB;
                return Err(invalid_input(format!(
                    "a part size of {} cuts {size} bytes into {parts} parts; S3 allows {MAX_PARTS}: use at least {}",
                    mib(part_size),
                    mib(needed)
                )));
            }
        }
        Ok(PartPlan { part_size, total_size })
    }

    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    pub fn total_size(&self) -> Option<u64> {
        self.total_size
    }

    /// Parts of a known size (an empty object is one empty part).
    pub fn part_count(&self) -> Option<u32> {
        self.total_size.map(|s| ceil_div(s, self.part_size).max(1) as u32)
    }

    /// The largest object this part size can carry.
    pub fn max_object_size(&self) -> u64 {
        (self.part_size * u64::from(MAX_PARTS)).min(MAX_OBJECT_SIZE)
    }

    /// Part `number` (1-based), if the object has it.
    pub fn part(&self, number: u32) -> Option<PartSpan> {
        if number == 0 || number > MAX_PARTS {
            return None;
        }
        let offset = u64::from(number - 1) * self.part_size;
        match self.total_size {
            None => Some(PartSpan { number, offset, length: self.part_size }),
            Some(_) if number > self.part_count()? => None,
            Some(size) => Some(PartSpan { number, offset, length: (size - offset).min(self.part_size) }),
        }
    }

    /// Memory a driver needs to hold `in_flight` parts.
    pub fn memory_bound(&self, in_flight: usize) -> u64 {
        let largest = self.total_size.map_or(self.part_size, |s| s.min(self.part_size));
        largest.saturating_mul(in_flight as u64)
    }
}

fn check_object_size(size: u64) -> Result<()> {
    if size > MAX_OBJECT_SIZE {
        return Err(invalid_input(format!("{size} bytes is more than S3's largest object (5 TiB)")));
    }
    Ok(())
}

/// The part size for an object of `size` bytes: the requested one if it
/// works, else the default grown to whole MiB until 10,000 parts suffice.
pub fn choose_part_size(size: u64, requested: Option<u64>) -> Result<u64> {
    check_object_size(size)?;
    match requested {
        Some(p) => PartPlan::new(p, Some(size)).map(|_| p),
        None => Ok(DEFAULT_PART_SIZE.max(ceil_div(ceil_div(size, u64::from(MAX_PARTS)), MIB) * MIB)),
    }
}

/// One PUT or parts, for `size` bytes (`None`: unknown length).
pub fn plan_upload(size: Option<u64>, options: &UploadOptions) -> Result<UploadPlan> {
    match size {
        Some(size) => {
            check_object_size(size)?;
            let threshold = options.multipart_threshold.min(MAX_SINGLE_PUT);
            if size <= threshold {
                // A requested part size is still checked: a mistake should not
                // pass silently because this file happens to be small.
                if let Some(p) = options.part_size {
                    PartPlan::new(p, None)?;
                }
                return Ok(UploadPlan::Single { size });
            }
            let part_size = choose_part_size(size, options.part_size)?;
            Ok(UploadPlan::Multipart(PartPlan::new(part_size, Some(size))?))
        }
        None => Ok(UploadPlan::Multipart(PartPlan::new(options.part_size.unwrap_or(STREAM_PART_SIZE), None)?)),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PartState {
    Pending,
    InFlight(Attempts),
    Done { etag: String },
}

/// What a resume found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumeReport {
    /// Parts already on the server with the local data: not sent again.
    pub kept: Vec<u32>,
    /// Parts on the server whose ETag did not match the local data (or
    /// could not be checked): sent again.
    pub replaced: Vec<u32>,
    /// Parts the server does not have.
    pub missing: Vec<u32>,
}

/// The state of one multipart upload (see the module docs for the driver's
/// contract).
#[derive(Clone, Debug)]
pub struct MultipartUpload {
    upload_id: String,
    plan: PartPlan,
    /// Index `n - 1` is part `n`; grows as parts of a stream are handed out.
    parts: Vec<PartState>,
    max_in_flight: usize,
    retry: RetryPolicy,
    failure: Option<TransferError>,
}

impl MultipartUpload {
    pub fn new(upload_id: &str, plan: PartPlan, max_in_flight: usize, retry: RetryPolicy) -> Result<Self> {
        if upload_id.is_empty() {
            return Err(invalid_input("the multipart upload ID is empty"));
        }
        if max_in_flight == 0 {
            return Err(invalid_input("at least one part must be allowed in flight"));
        }
        let known = plan.part_count().unwrap_or(0) as usize;
        Ok(MultipartUpload {
            upload_id: upload_id.to_string(),
            plan,
            parts: vec![PartState::Pending; known],
            max_in_flight,
            retry,
            failure: None,
        })
    }

    pub fn upload_id(&self) -> &str {
        &self.upload_id
    }

    pub fn plan(&self) -> &PartPlan {
        &self.plan
    }

    pub fn in_flight(&self) -> usize {
        self.parts.iter().filter(|p| matches!(p, PartState::InFlight(_))).count()
    }

    pub fn parts_done(&self) -> u32 {
        self.parts.iter().filter(|p| matches!(p, PartState::Done { .. })).count() as u32
    }

    /// Bytes of the parts done so far.
    pub fn bytes_done(&self) -> u64 {
        (1..=self.parts.len() as u32)
            .filter(|&n| matches!(self.parts[n as usize - 1], PartState::Done { .. }))
            .filter_map(|n| self.plan.part(n))
            .map(|p| p.length)
            .sum()
    }

    /// Why the upload failed, once a part gave up.
    pub fn failure(&self) -> Option<&TransferError> {
        self.failure.as_ref()
    }

    /// Up to `limit` parts not yet sent, in the order
    /// [`MultipartUpload::next_part_to_send`] will give them (a known size's
    /// only: a pipe's parts exist once read). Nothing is marked: a driver
    /// asks for their digests ahead of sending them.
    pub fn parts_to_send(&self, limit: usize) -> Vec<PartSpan> {
        if self.failure.is_some() || self.plan.total_size.is_none() {
            return Vec::new();
        }
        (1..=self.parts.len() as u32)
            .filter(|&n| self.parts[n as usize - 1] == PartState::Pending)
            .filter_map(|n| self.plan.part(n))
            .take(limit)
            .collect()
    }

    /// The lowest-numbered part not yet sent, now counted as in flight;
    /// `None` when `max_in_flight` parts are out, everything is sent, or the
    /// upload failed.
    pub fn next_part_to_send(&mut self) -> Option<PartSpan> {
        if self.failure.is_some() || self.in_flight() >= self.max_in_flight {
            return None;
        }
        let number = match self.parts.iter().position(|p| *p == PartState::Pending) {
            Some(i) => i as u32 + 1,
            None if self.plan.total_size.is_none() => {
                let next = self.parts.len() as u32 + 1;
                if next > MAX_PARTS {
                    self.failure = Some(invalid_input(format!(
                        "the input is longer than {MAX_PARTS} parts of {} ({} bytes): use a larger part size",
                        mib(self.plan.part_size),
                        self.plan.max_object_size()
                    )));
                    return None;
                }
                self.parts.push(PartState::Pending);
                next
            }
            None => return None,
        };
        self.parts[number as usize - 1] = PartState::InFlight(Attempts::default());
        self.plan.part(number)
    }

    fn in_flight_attempts(&mut self, number: u32) -> Result<&mut Attempts> {
        in_flight_part(&mut self.parts, number)
    }

    /// Part `number` was stored with this ETag.
    pub fn part_done(&mut self, number: u32, etag: &str) -> Result<()> {
        self.in_flight_attempts(number)?;
        if crate::etag::normalize_etag(etag).is_empty() {
            return Err(TransferError::InvalidResponse { status: 200, message: format!("the server stored part {number} without an ETag") });
        }
        self.parts[number as usize - 1] = PartState::Done { etag: etag.trim().to_string() };
        Ok(())
    }

    /// Part `number` failed. On [`RetryDecision::GiveUp`] the upload fails;
    /// on any other decision the part stays in flight for the driver to
    /// resend (it still holds the bytes).
    pub fn part_failed(&mut self, number: u32, error: &TransferError, local_now: i64, random: u64) -> RetryDecision {
        self.retry.decide_for_piece(in_flight_part(&mut self.parts, number), &mut self.failure, error, local_now, random)
    }

    /// Puts an in-flight part back to be handed out again (a driver that
    /// dropped its bytes, or cancelled the request).
    pub fn release_part(&mut self, number: u32) -> Result<()> {
        self.in_flight_attempts(number)?;
        self.parts[number as usize - 1] = PartState::Pending;
        Ok(())
    }

    /// Input of unknown length ended at `total_size` bytes.
    pub fn input_ended(&mut self, total_size: u64) -> Result<()> {
        if self.plan.total_size.is_some() {
            return Err(TransferError::Usage("the size of this upload was known from the start".into()));
        }
        let plan = PartPlan::new(self.plan.part_size, Some(total_size))?;
        let count = plan.part_count().unwrap_or(1) as usize;
        if self.parts.iter().skip(count).any(|p| matches!(p, PartState::Done { .. })) {
            return Err(TransferError::Usage(format!("a part after the end of the input ({total_size} bytes) was already stored")));
        }
        self.parts.truncate(count);
        self.parts.resize(count, PartState::Pending);
        self.plan = plan;
        Ok(())
    }

    /// Every part is stored (and the size is known).
    pub fn is_complete(&self) -> bool {
        self.failure.is_none()
            && self.plan.total_size.is_some()
            && !self.parts.is_empty()
            && self.parts.iter().all(|p| matches!(p, PartState::Done { .. }))
    }

    /// The parts for CompleteMultipartUpload, in order; only when complete.
    pub fn completed_parts(&self) -> Result<Vec<CompletedPart>> {
        if !self.is_complete() {
            return Err(TransferError::Usage(format!(
                "the upload is not complete: {} of {} parts stored",
                self.parts_done(),
                self.plan.part_count().map_or_else(|| "?".to_string(), |n| n.to_string())
            )));
        }
        Ok(self
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                PartState::Done { etag } => CompletedPart { part_number: i as u32 + 1, etag: etag.clone(), checksum_sha256: None },
                _ => unreachable!("checked complete"),
            })
            .collect())
    }

    /// The signed CompleteMultipartUpload, once every part is stored.
    pub fn complete_request(&self, requests: &mut S3Requests, bucket: &str, key: &str, now: i64) -> Result<HttpRequest> {
        let parts = self.completed_parts()?;
        requests.complete_multipart_upload(bucket, key, &self.upload_id, &parts, now)
    }

    /// The ETag the completed object should get, when every part's ETag is
    /// its MD5 (not with SSE-KMS or SSE-C): compare it with the answer.
    pub fn expected_etag(&self) -> Option<String> {
        let parts = self.completed_parts().ok()?;
        let digests: Option<Vec<Md5>> = parts
            .iter()
            .map(|p| match etag_kind(&p.etag) {
                EtagKind::Md5(d) => Some(d),
                _ => None,
            })
            .collect();
        digests.map(|d| multipart_etag(&d))
    }

    /// Settles the answer to CompleteMultipartUpload: the object's ETag
    /// when the answer names one (checked against the parts sent), `None`
    /// when it names none and the object must be checked by HEAD
    /// ([`MultipartUpload::check_assembled`]): Ceph RGW 16.2 answers a
    /// successful completion with an empty `<ETag></ETag>`.
    pub fn check_completed(&self, key: &str, answered_etag: Option<&str>) -> Result<Option<String>> {
        let Some(etag) = answered_etag.map(normalize_etag) else { return Ok(None) };
        if let Some(expected) = self.etag_differs(etag) {
            return Err(TransferError::Integrity(format!(
                "the server assembled {key} with ETag {etag} where the parts sent make {expected}: the object is not what was sent; upload it again"
            )));
        }
        Ok(Some(etag.to_string()))
    }

    /// The ETag the parts make, when `etag` (normalized) is a multipart
    /// ETag other than it; `None` when it matches or cannot be checked.
    fn etag_differs(&self, etag: &str) -> Option<String> {
        match (self.expected_etag(), etag_kind(etag)) {
            (Some(expected), EtagKind::Multipart { .. }) if !etag.eq_ignore_ascii_case(&expected) => Some(expected),
            _ => None,
        }
    }

    /// Whether the object a HEAD shows is the one this upload assembled:
    /// its size is the sum of the parts and, when the parts' ETags are
    /// MD5s and the object's ETag is a multipart one, that ETag is theirs.
    /// Used when completion gave no ETag, or when its answer was lost and
    /// the upload may have completed anyway. Returns the object's ETag.
    pub fn check_assembled(&self, key: &str, head: &ObjectMetadata) -> Result<String> {
        let size = self.plan.total_size.unwrap_or_default();
        if head.content_length != size {
            return Err(TransferError::Integrity(format!(
                "after completing the upload, {key} has {} bytes where {size} were sent: the object is not what was sent; upload it again",
                head.content_length
            )));
        }
        let etag = head.etag.as_deref().map(normalize_etag).unwrap_or_default();
        if let Some(expected) = self.etag_differs(etag) {
            return Err(TransferError::Integrity(format!(
                "after completing the upload, {key} has ETag {etag} where the parts sent make {expected}: another upload may have replaced it; upload it again"
            )));
        }
        Ok(etag.to_string())
    }

    /// Continues an upload after an interruption. `server_parts` is
    /// everything ListParts returned (all pages). A part is kept when its
    /// size matches the plan and its ETag is the MD5 the caller computes
    /// for the local bytes (`local_md5`; `None` if they cannot be read);
    /// other parts are sent again. Parts of a different size than planned
    /// mean the file or the part size changed: that is an error, since
    /// S3 would assemble a different object.
    pub fn resume<F>(
        upload_id: &str,
        plan: PartPlan,
        server_parts: &[ListedPart],
        max_in_flight: usize,
        retry: RetryPolicy,
        mut local_md5: F,
    ) -> Result<(Self, ResumeReport)>
    where
        F: FnMut(&PartSpan) -> Option<Md5>,
    {
        let Some(count) = plan.part_count() else {
            return Err(invalid_input("an upload of input of unknown length (stdin) cannot be resumed: start it again"));
        };
        let mut upload = MultipartUpload::new(upload_id, plan, max_in_flight, retry)?;
        let mut report = ResumeReport::default();
        let mut seen = vec![false; count as usize];
        for sp in server_parts {
            let Some(span) = plan.part(sp.part_number) else {
                return Err(TransferError::Integrity(format!(
                    "the upload on the server has part {}, but the local data makes only {count} parts of {}: \
                     the file or the part size changed; start a new upload",
                    sp.part_number,
                    mib(plan.part_size)
                )));
            };
            if std::mem::replace(&mut seen[span.number as usize - 1], true) {
                return Err(TransferError::Integrity(format!("the server listed part {} twice", span.number)));
            }
            if sp.size != span.length {
                return Err(TransferError::Integrity(format!(
                    "part {} on the server has {} bytes, but the local data cut in parts of {} gives it {}: \
                     resume with the part size the upload started with, or start a new upload",
                    span.number,
                    sp.size,
                    mib(plan.part_size),
                    span.length
                )));
            }
            let matches = match (etag_kind(&sp.etag), local_md5(&span)) {
                (EtagKind::Md5(remote), Some(local)) => remote == local,
                _ => false,
            };
            if matches {
                upload.parts[span.number as usize - 1] = PartState::Done { etag: sp.etag.trim().to_string() };
                report.kept.push(span.number);
            } else {
                report.replaced.push(span.number);
            }
        }
        report.kept.sort_unstable();
        report.replaced.sort_unstable();
        report.missing = (1..=count).filter(|n| !seen[*n as usize - 1]).collect();
        Ok((upload, report))
    }
}

/// Whether a CompleteMultipartUpload sent `attempts` times and ending in
/// `error` may still have assembled the object, so that the upload must not
/// be aborted and the object is checked by HEAD instead: an earlier attempt
/// went unanswered (servers answer a retried completion of a finished
/// upload with `NoSuchUpload`, or, as s3s-fs does, `AccessDenied`), or the
/// last answer was lost (a dropped connection, a timeout), unreadable, or a
/// server failure (5xx). Only a plain refusal of the one attempt (4xx such
/// as `InvalidPart`) means nothing was assembled.
pub fn completion_uncertain(error: &TransferError, attempts: u32) -> bool {
    if attempts > 1 {
        return true;
    }
    match error {
        // A refused connection too: an abort could not get through either,
        // and the upload is kept for --resume.
        TransferError::Transport { kind, .. } => *kind != TransportKind::Denied,
        TransferError::InvalidResponse { .. } => true,
        TransferError::S3(e) => e.status >= 500 || e.kind() == S3ErrorKind::NoSuchUpload,
        _ => false,
    }
}

/// The part size an upload on the server was started with: every part
/// but the last has it, so the largest listed part's size (`None` when
/// nothing is listed; a lone last part may understate it).
pub fn infer_part_size(server_parts: &[ListedPart]) -> Option<u64> {
    server_parts.iter().map(|p| p.size).max()
}

fn in_flight_part(parts: &mut [PartState], number: u32) -> Result<&mut Attempts> {
    match parts.get_mut((number as usize).wrapping_sub(1)) {
        Some(PartState::InFlight(a)) => Ok(a),
        _ => Err(TransferError::Usage(format!("part {number} is not in flight"))),
    }
}
