//! Downloads in byte ranges fetched in parallel, and checking what arrived.
//!
//! The size is always checked. The ETag is checked when it can be:
//! - a plain ETag is the MD5 of the whole object: it needs the MD5 of all
//!   bytes in order (one range, or a pass over the assembled file);
//! - a multipart ETag (`hex-N`) is the MD5 of the parts' MD5s, so it needs
//!   the part layout of the upload, which S3 does not store. The plan
//!   guesses likely part sizes (lakeport's own choice, then common ones)
//!   and makes ranges a multiple of them, so each range can hash its
//!   aligned chunks; a guess that reproduces the ETag verifies the data.
//!   When no guess matches, only the size was verified, and the result
//!   says the ETag was multipart.
//!
//! [`RangedDownload`] follows the same contract as
//! [`crate::multipart::MultipartUpload`]: `next_range` while it gives
//! ranges (at most `max_in_flight` out), `range_done` with a
//! [`RangeDigest`] from a [`RangeHasher`] (or `range_landed` first, when
//! the bytes are stored and their digest comes later: a landed range no
//! longer counts as in flight), `range_failed` for a
//! [`RetryDecision`], and [`RangedDownload::verify`] at the end. Every
//! ranged GET carries `If-Match` with the ETag, so ranges of two versions
//! of an object never mix.

use crate::digest::{Md5, Md5Hasher};
use crate::error::{invalid_input, Result, TransferError};
use crate::etag::{etag_kind, multipart_etag, normalize_etag, EtagKind};
use crate::multipart::{choose_part_size, MAX_PARTS, MIB, MIN_PART_SIZE};
use crate::requests::{ByteRange, GetOptions};
use crate::retry::{Attempts, RetryDecision, RetryPolicy, S3Retry};

pub const DEFAULT_RANGE_SIZE: u64 = 16 * MIB;
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;
/// Part sizes hashed at once per range, at most.
const MAX_GUESSES: usize = 3;
/// Ranges of one download, at most: its state is a few dozen bytes per
/// range. The default range size grows to stay within it (beyond 16 TiB);
/// a range size the user chose that needs more is refused.
pub const MAX_RANGES: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadOptions {
    pub range_size: Option<u64>,
    pub max_in_flight: usize,
    /// The upload's part size, when known for certain (HEAD with
    /// `partNumber=1` gives it): a mismatch is then an error, not a guess.
    pub known_part_size: Option<u64>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions { range_size: None, max_in_flight: DEFAULT_MAX_IN_FLIGHT, known_part_size: None }
    }
}

/// How the ETag can be checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EtagCheck {
    /// MD5 of the whole object.
    WholeMd5,
    /// Multipart: MD5s of chunks of these part sizes (`certain`: the part
    /// size is known, not guessed).
    PartMd5s { part_sizes: Vec<u64>, certain: bool },
    /// No usable ETag (none, or not an MD5 form).
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadPlan {
    pub size: u64,
    pub range_size: u64,
    pub max_in_flight: usize,
    pub etag: Option<String>,
    pub etag_check: EtagCheck,
}

/// Part sizes that cut `object_size` bytes into exactly `parts` parts, most
/// likely first: lakeport's own choice, common tool defaults, then the
/// smallest whole number of MiB that fits. At most `max` of them.
pub fn candidate_part_sizes(object_size: u64, parts: u32, max: usize) -> Vec<u64> {
    let n = u64::from(parts);
    if n == 0 || n > u64::from(MAX_PARTS) {
        return Vec::new();
    }
    let fits = |p: u64| p >= MIN_PART_SIZE.min(object_size.max(1)) && p > 0 && object_size.div_ceil(p).max(1) == n;
    let mut out: Vec<u64> = Vec::new();
    let lakeport = choose_part_size(object_size, None).ok();
    let common = [8, 16, 5, 64, 32, 10, 15, 50, 100, 128, 256, 512, 1024].map(|m| m * MIB);
    let smallest_mib = object_size.div_ceil(n).div_ceil(MIB).checked_mul(MIB);
    for p in lakeport.into_iter().chain(common).chain(smallest_mib) {
        if out.len() < max && fits(p) && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

impl DownloadPlan {
    /// Plans the download of an object of `size` bytes with this ETag.
    pub fn new(size: u64, etag: Option<&str>, options: &DownloadOptions) -> Result<Self> {
        if options.max_in_flight == 0 {
            return Err(invalid_input("at least one range must be allowed in flight"));
        }
        if let Some(r) = options.range_size {
            if r == 0 {
                return Err(invalid_input("the range size must be at least 1 byte"));
            }
        }
        let etag_check = match etag.map(etag_kind) {
            Some(EtagKind::Md5(_)) => EtagCheck::WholeMd5,
            Some(EtagKind::Multipart { parts, .. }) => {
                // A "known" part size that does not cut the object into the
                // ETag's part count (0, a stale note after a copy) is not the
                // upload's: guess instead of failing the check for certain.
                let (part_sizes, certain) = match options.known_part_size {
                    Some(p) if p > 0 && size.div_ceil(p).max(1) == u64::from(parts) => (vec![p], true),
                    _ => (candidate_part_sizes(size, parts, MAX_GUESSES), false),
                };
                EtagCheck::PartMd5s { part_sizes, certain }
            }
            _ => EtagCheck::None,
        };
        // Ranges of the default size are cut in whole MiB, or in multiples
        // of the likeliest part size so that its chunks align with ranges.
        let unit = match &etag_check {
            EtagCheck::PartMd5s { part_sizes, .. } if !part_sizes.is_empty() => part_sizes[0],
            _ => MIB,
        };
        let fewest_bytes = size.div_ceil(MAX_RANGES);
        let range_size = match options.range_size {
            Some(r) if size.div_ceil(r) > MAX_RANGES => {
                let suggestion = fewest_bytes.div_ceil(MIB).saturating_mul(MIB);
                return Err(invalid_input(format!(
                    "{size} bytes in ranges of {r} bytes would be more than {MAX_RANGES} ranges: use a part size of at least {suggestion} bytes"
                )));
            }
            Some(r) => r,
            None => {
                let near_default = unit.saturating_mul((DEFAULT_RANGE_SIZE / unit).max(1));
                if near_default >= fewest_bytes {
                    near_default
                } else {
                    fewest_bytes.div_ceil(unit).saturating_mul(unit)
                }
            }
        };
        // Only part sizes that divide the range size can be hashed per range.
        let etag_check = match etag_check {
            EtagCheck::PartMd5s { part_sizes, certain } => {
                EtagCheck::PartMd5s { part_sizes: part_sizes.into_iter().filter(|p| range_size % p == 0).collect(), certain }
            }
            other => other,
        };
        Ok(DownloadPlan {
            size,
            range_size,
            max_in_flight: options.max_in_flight,
            etag: etag.map(|e| normalize_etag(e).to_string()).filter(|e| !e.is_empty()),
            etag_check,
        })
    }

    /// Ranged GETs (at least one: an empty object is one plain GET), at
    /// most [`MAX_RANGES`].
    pub fn range_count(&self) -> u32 {
        self.size.div_ceil(self.range_size).max(1) as u32
    }

    /// The bytes of range `index`; `None` for the plain GET of a download
    /// that is a single range (a Range header on an empty object fails).
    pub fn range(&self, index: u32) -> Option<ByteRange> {
        if self.range_count() == 1 || index >= self.range_count() {
            return None;
        }
        let start = u64::from(index) * self.range_size;
        ByteRange::new(start, (self.size - start).min(self.range_size)).ok()
    }

    /// Offset and length of range `index` in the object.
    pub fn span(&self, index: u32) -> (u64, u64) {
        // Past the last range: nothing (an index beyond it may not overflow).
        let start = u64::from(index).saturating_mul(self.range_size);
        (start, self.size.saturating_sub(start).min(self.range_size))
    }

    /// GetObject options for range `index`, with `If-Match` when the ETag
    /// is known.
    pub fn get_options(&self, index: u32) -> GetOptions {
        GetOptions { range: self.range(index), if_match: self.etag.clone(), part_number: None }
    }

    /// Whether each range's own MD5 serves the check: it is the object's
    /// when the object is one range, and a part's when parts are hashed.
    /// An object MD5 over several ranges is hashed in order instead, and an
    /// ETag that is no MD5 leaves only the size to check.
    pub fn range_md5_needed(&self) -> bool {
        self.range_count() == 1 || matches!(self.etag_check, EtagCheck::PartMd5s { .. })
    }

    /// Part sizes whose chunk MD5s a [`RangeHasher`] computes.
    pub fn hashed_part_sizes(&self) -> &[u64] {
        match &self.etag_check {
            EtagCheck::PartMd5s { part_sizes, .. } => part_sizes,
            _ => &[],
        }
    }
}

/// The digests of one range's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeDigest {
    pub length: u64,
    /// When [`DownloadPlan::range_md5_needed`].
    pub md5: Option<Md5>,
    /// For each hashed part size: the MD5s of the range's aligned chunks.
    pub chunk_md5s: Vec<(u64, Vec<Md5>)>,
}

/// Hashes one range as its bytes arrive, in order.
pub struct RangeHasher {
    /// The whole range's, when needed.
    whole: Option<Md5Hasher>,
    length: u64,
    /// Per hashed part size: (part size, and unless the part size is the
    /// range size — whose one chunk is the whole range, hashed once — its
    /// chunks so far).
    chunks: Vec<(u64, Option<ChunkHashes>)>,
}

/// The current chunk's hasher, the bytes in it, and the finished chunks' MD5s.
type ChunkHashes = (Md5Hasher, u64, Vec<Md5>);

impl RangeHasher {
    pub fn new(plan: &DownloadPlan) -> Self {
        RangeHasher {
            whole: plan.range_md5_needed().then(Md5Hasher::default),
            length: 0,
            chunks: plan
                .hashed_part_sizes()
                .iter()
                .map(|&p| (p, (p != plan.range_size).then(|| (Md5Hasher::default(), 0, Vec::new()))))
                .collect(),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some(whole) = &mut self.whole {
            whole.update(data);
        }
        self.length += data.len() as u64;
        for (size, state) in &mut self.chunks {
            let Some((hasher, filled, done)) = state else { continue };
            let mut rest = data;
            while !rest.is_empty() {
                let take = ((*size - *filled) as usize).min(rest.len());
                hasher.update(&rest[..take]);
                *filled += take as u64;
                rest = &rest[take..];
                if *filled == *size {
                    done.push(std::mem::take(hasher).finish());
                    *filled = 0;
                }
            }
        }
    }

    pub fn finish(self) -> RangeDigest {
        let whole = self.whole.map(Md5Hasher::finish);
        let chunk_md5s = self
            .chunks
            .into_iter()
            .map(|(size, state)| match state {
                None => (size, whole.filter(|_| self.length > 0).into_iter().collect()),
                Some((hasher, filled, mut done)) => {
                    if filled > 0 {
                        done.push(hasher.finish());
                    }
                    (size, done)
                }
            })
            .collect();
        RangeDigest { length: self.length, md5: whole, chunk_md5s }
    }
}

/// The spans whose MD5s make the [`RangeDigest`] of a range of `length`
/// bytes, relative to the range's start: the whole range (when needed),
/// then each hashed part size's aligned chunks, each span once. For digests computed
/// elsewhere (the host, over a file the bytes were written to) instead of
/// by a [`RangeHasher`] over the bytes.
pub fn digest_spans(plan: &DownloadPlan, length: u64) -> Vec<(u64, u64)> {
    let mut spans = if plan.range_md5_needed() { vec![(0, length)] } else { Vec::new() };
    for &size in plan.hashed_part_sizes() {
        for span in chunk_spans(size, length) {
            if !spans.contains(&span) {
                spans.push(span);
            }
        }
    }
    spans
}

fn chunk_spans(part_size: u64, length: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..length.div_ceil(part_size)).map(move |k| (k * part_size, part_size.min(length - k * part_size)))
}

/// The [`RangeDigest`] from the MD5s of the [`digest_spans`] of the same
/// plan and length, in that order.
pub fn range_digest(plan: &DownloadPlan, length: u64, md5s: &[Md5]) -> Result<RangeDigest> {
    let spans = digest_spans(plan, length);
    if md5s.len() != spans.len() {
        return Err(TransferError::Usage(format!("{} digests for {} spans", md5s.len(), spans.len())));
    }
    let md5_of = |span: (u64, u64)| md5s[spans.iter().position(|s| *s == span).expect("every chunk span is listed")];
    let chunk_md5s = plan.hashed_part_sizes().iter().map(|&size| (size, chunk_spans(size, length).map(md5_of).collect())).collect();
    let md5 = plan.range_md5_needed().then(|| md5_of((0, length)));
    Ok(RangeDigest { length, md5, chunk_md5s })
}

/// MD5s of an object's data cut at one part size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartDigests {
    pub part_size: u64,
    pub md5s: Vec<Md5>,
}

/// The guess whose part MD5s reproduce a multipart ETag, if any.
pub fn check_multipart_etag(etag: &str, object_size: u64, guesses: &[PartDigests]) -> Option<u64> {
    let EtagKind::Multipart { parts, .. } = etag_kind(etag) else {
        return None;
    };
    let wanted = normalize_etag(etag).to_ascii_lowercase();
    guesses
        .iter()
        .filter(|g| g.md5s.len() == parts as usize && object_size.div_ceil(g.part_size.max(1)).max(1) == u64::from(parts))
        .find(|g| multipart_etag(&g.md5s) == wanted)
        .map(|g| g.part_size)
}

/// What a finished download proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Size, and the ETag as the MD5 of the data.
    Md5,
    /// Size, and the multipart ETag with this part layout.
    MultipartEtag { part_size: u64, parts: u32 },
    /// Only the size: the ETag was multipart and no part size guess
    /// reproduced it (the upload used another layout).
    SizeOnlyMultipart { parts: u32 },
    /// Only the size: no ETag, one that is no MD5 form (e.g. with
    /// server-side encryption), or no whole-object MD5 to compare with.
    SizeOnly,
}

/// Checks a finished download: `received` bytes (must be the expected
/// size), the whole data's MD5 if computed, and part-size digests.
pub fn verify_download(
    expected_size: u64,
    etag: Option<&str>,
    received: u64,
    whole_md5: Option<Md5>,
    guesses: &[PartDigests],
    certain_part_size: bool,
) -> Result<Verification> {
    if received != expected_size {
        return Err(TransferError::Integrity(format!(
            "received {received} bytes, but the object has {expected_size}: the download is incomplete; try again"
        )));
    }
    match etag.map(etag_kind) {
        Some(EtagKind::Md5(d)) => match whole_md5 {
            Some(m) if m == d => Ok(Verification::Md5),
            Some(_) => Err(TransferError::Integrity(
                "the downloaded data's MD5 does not match the object's ETag: the data was damaged on the way; try again".into(),
            )),
            None => Ok(Verification::SizeOnly),
        },
        Some(EtagKind::Multipart { parts, .. }) => {
            let etag = etag.unwrap_or_default();
            // One part: its MD5 is the whole data's.
            let single;
            let guesses = match (parts, whole_md5) {
                (1, Some(m)) => {
                    single = [PartDigests { part_size: expected_size.max(1), md5s: vec![m] }];
                    &single[..]
                }
                _ => guesses,
            };
            match check_multipart_etag(etag, expected_size, guesses) {
                Some(part_size) => Ok(Verification::MultipartEtag { part_size, parts }),
                None if certain_part_size && !guesses.is_empty() => Err(TransferError::Integrity(
                    "the downloaded data does not reproduce the object's multipart ETag with its known part size: \
                     the data was damaged on the way; try again"
                        .into(),
                )),
                None => Ok(Verification::SizeOnlyMultipart { parts }),
            }
        }
        _ => Ok(Verification::SizeOnly),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum RangeState {
    Pending,
    InFlight(Attempts),
    /// Stored whole, its digest still to come.
    Landed,
    Done(RangeDigest),
}

/// The state of one ranged download (see the module docs).
#[derive(Clone, Debug)]
pub struct RangedDownload {
    plan: DownloadPlan,
    ranges: Vec<RangeState>,
    /// How many ranges from the first are done.
    done_prefix: u32,
    retry: RetryPolicy,
    failure: Option<TransferError>,
}

/// A range to fetch: its index, the GET options, and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeToFetch {
    pub index: u32,
    pub offset: u64,
    pub length: u64,
    pub options: GetOptions,
}

impl RangedDownload {
    pub fn new(plan: DownloadPlan, retry: RetryPolicy) -> Self {
        let ranges = vec![RangeState::Pending; plan.range_count() as usize];
        RangedDownload { plan, ranges, done_prefix: 0, retry, failure: None }
    }

    pub fn plan(&self) -> &DownloadPlan {
        &self.plan
    }

    pub fn failure(&self) -> Option<&TransferError> {
        self.failure.as_ref()
    }

    pub fn in_flight(&self) -> usize {
        self.ranges.iter().filter(|r| matches!(r, RangeState::InFlight(_))).count()
    }

    pub fn next_range(&mut self) -> Option<RangeToFetch> {
        if self.failure.is_some() || self.in_flight() >= self.plan.max_in_flight {
            return None;
        }
        let index = self.ranges.iter().position(|r| *r == RangeState::Pending)? as u32;
        self.ranges[index as usize] = RangeState::InFlight(Attempts::default());
        let (offset, length) = self.plan.span(index);
        Some(RangeToFetch { index, offset, length, options: self.plan.get_options(index) })
    }

    fn attempts(&mut self, index: u32) -> Result<&mut Attempts> {
        in_flight_range(&mut self.ranges, index)
    }

    /// Range `index` arrived whole and is stored; its digest follows with
    /// [`RangedDownload::range_done`]. Digests of several ranges can then
    /// be taken together, while other ranges are fetched.
    pub fn range_landed(&mut self, index: u32) -> Result<()> {
        self.attempts(index)?;
        self.ranges[index as usize] = RangeState::Landed;
        Ok(())
    }

    /// Range `index` arrived whole (in flight or landed); a short or long
    /// range is an error the caller may retry like a dropped connection.
    pub fn range_done(&mut self, index: u32, digest: RangeDigest) -> Result<()> {
        if !matches!(self.ranges.get(index as usize), Some(RangeState::Landed)) {
            self.attempts(index)?;
        }
        let (_, length) = self.plan.span(index);
        if digest.length != length {
            return Err(TransferError::Integrity(format!("range {index} brought {} bytes instead of {length}", digest.length)));
        }
        self.ranges[index as usize] = RangeState::Done(digest);
        while matches!(self.ranges.get(self.done_prefix as usize), Some(RangeState::Done(_))) {
            self.done_prefix += 1;
        }
        Ok(())
    }

    /// Where the leading run of done ranges ends: every byte before it has
    /// arrived (and no retry will write it again).
    pub fn done_prefix_end(&self) -> u64 {
        match self.done_prefix {
            0 => 0,
            n => {
                let (offset, length) = self.plan.span(n - 1);
                offset + length
            }
        }
    }

    /// On [`RetryDecision::GiveUp`] the download fails; otherwise the range
    /// stays in flight to be fetched again.
    pub fn range_failed(&mut self, index: u32, error: &TransferError, local_now: i64, random: u64) -> RetryDecision {
        self.retry.decide_for_piece(in_flight_range(&mut self.ranges, index), &mut self.failure, error, local_now, random)
    }

    pub fn release_range(&mut self, index: u32) -> Result<()> {
        self.attempts(index)?;
        self.ranges[index as usize] = RangeState::Pending;
        Ok(())
    }

    pub fn is_complete(&self) -> bool {
        self.failure.is_none() && self.ranges.iter().all(|r| matches!(r, RangeState::Done(_)))
    }

    /// Checks the whole download. `whole_md5` is the MD5 of all bytes in
    /// order, if the driver computed it; a single-range download has it
    /// from its range.
    pub fn verify(&self, whole_md5: Option<Md5>) -> Result<Verification> {
        if !self.is_complete() {
            return Err(TransferError::Usage("the download is not complete".into()));
        }
        let digests: Vec<&RangeDigest> = self
            .ranges
            .iter()
            .map(|r| match r {
                RangeState::Done(d) => d,
                _ => unreachable!("checked complete"),
            })
            .collect();
        let received = digests.iter().map(|d| d.length).sum();
        let whole_md5 = whole_md5.or_else(|| if digests.len() == 1 { digests[0].md5 } else { None });
        let guesses: Vec<PartDigests> = self
            .plan
            .hashed_part_sizes()
            .iter()
            .enumerate()
            .map(|(i, &part_size)| PartDigests {
                part_size,
                md5s: digests.iter().flat_map(|d| d.chunk_md5s.get(i).map(|(_, m)| m.clone()).unwrap_or_default()).collect(),
            })
            .collect();
        let certain = matches!(self.plan.etag_check, EtagCheck::PartMd5s { certain: true, .. });
        verify_download(self.plan.size, self.plan.etag.as_deref(), received, whole_md5, &guesses, certain)
    }
}

fn in_flight_range(ranges: &mut [RangeState], index: u32) -> Result<&mut Attempts> {
    match ranges.get_mut(index as usize) {
        Some(RangeState::InFlight(a)) => Ok(a),
        _ => Err(TransferError::Usage(format!("range {index} is not in flight"))),
    }
}
