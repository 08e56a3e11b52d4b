//! S3's numeric limits, shared by the builders and the planners.

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;
/// Every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
pub const MAX_PART_SIZE: u64 = 5 * GIB;
/// Parts of one upload, numbered 1 to 10,000.
pub const MAX_PARTS: u32 = 10_000;
pub const MAX_OBJECT_SIZE: u64 = 5 * TIB;
/// The largest object one PutObject carries.
pub const MAX_SINGLE_PUT: u64 = 5 * GIB;
/// Keys in one DeleteObjects request.
pub const MAX_DELETE_KEYS: usize = 1000;
/// The longest key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
