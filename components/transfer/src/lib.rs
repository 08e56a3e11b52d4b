//! S3 transfers as a sans-I/O core: request builders that return signed
//! [`HttpRequest`]s, parsers for the answers, and the planning and state
//! that up- and downloads need (multipart, resume, retries, verification).
//! No I/O and no clock: the caller passes the time and does the sending.
//! Servers in mind: Ceph RGW first, then AWS, MinIO, rclone's `serve s3`
//! and s3s-based gateways.
//!
//! ## Signing: a shared crate, not a composed component
//! Every request is signed by the sigv4 core (`lakeport-sigv4`), linked
//! here as an ordinary Rust library. Signing thus exists once, and each of
//! the thousands of part requests of a large upload is signed in-process,
//! without crossing a component boundary (no copying of headers through the
//! canonical ABI, no second instance to compose). The sigv4 component
//! stays the standalone signer for other hosts (`lakeport sign`).
//!
//! ## Modules
//! - [`endpoint`], [`location`]: where requests go; `s3://` locations;
//! - [`requests`]: one builder per S3 operation, and [`S3Requests`], which
//!   signs them;
//! - [`parse`]: the answers, including errors in 200 answers;
//! - [`multipart`]: part sizes, and the state of an upload (parallel parts,
//!   retries, resume, completion);
//! - [`download`]: ranged downloads and their verification;
//! - [`retry`]: which failures to retry, backoff with jitter, clock skew;
//! - [`etag`], [`digest`]: ETag forms and the digests behind them;
//! - [`driver`]: async drivers of the above, generic over the I/O they do
//!   (the component's is wasi:http; tests simulate a server).

pub mod digest;
pub mod download;
pub mod driver;
pub mod endpoint;
pub mod error;
pub mod etag;
pub mod limits;
pub mod location;
pub mod multipart;
pub mod parse;
pub mod requests;
pub mod retry;
pub mod time;
pub mod xml;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod component;

pub use download::{DownloadOptions, DownloadPlan, RangeDigest, RangeHasher, RangedDownload, Verification};
pub use endpoint::{validate_bucket_name, validate_key, validate_legacy_bucket_name, Addressing, S3Endpoint, MAX_KEY_BYTES};
pub use error::{Result, S3Error, S3ErrorKind, TransferError, TransportKind};
pub use lakeport_http::{HttpRequest, HttpResponse};
pub use lakeport_sigv4::Credentials;
pub use location::S3Location;
pub use multipart::{plan_upload, MultipartUpload, PartPlan, PartSpan, UploadOptions, UploadPlan};
pub use requests::{ByteRange, PayloadDescriptor, RequestSpec, S3Requests};
pub use retry::{RetryDecision, RetryPolicy};
