//! AWS Signature Version 4 as a sans-I/O core: build the canonical request,
//! the string to sign and the signature for header signing, presigned URLs
//! and aws-chunked streaming uploads. No I/O, no clock: the caller passes the
//! time. Compiled natively for tests and benchmarks, and (feature
//! `component`, target wasm32-wasip2) as the `sigv4` component, which
//! imports nothing.
//!
//! Two rule sets, chosen by service name:
//! - S3 (`s3`): the path is signed exactly as sent, encoded once and never
//!   normalized; `x-amz-content-sha256` is always sent.
//! - every other service: dot segments are removed and slashes collapsed
//!   (unless disabled) and the path is encoded a second time.

#![cfg_attr(all(target_arch = "wasm32", feature = "component"), no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub mod canonical;
pub mod chunked;
pub mod encoding;
pub mod flat;
pub mod signer;
pub mod time;
pub mod url;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod bindings;

pub use chunked::{framed_length, ChunkSigner, STREAMING_PAYLOAD};
pub use signer::{sha256_hex as payload_sha256, LastSigner, PayloadHasher, Signer, EMPTY_SHA256, MAX_PRESIGN_EXPIRES};

pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    Empty,
    Bytes(Vec<u8>),
    Precomputed(String),
    UnsignedPayload,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignableRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub payload: Payload,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningTime {
    UnixSeconds(i64),
    AmzDate(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignOptions {
    pub region: String,
    pub service: String,
    pub time: SigningTime,
    pub presign_expires: Option<u32>,
    pub normalize_path: bool,
    pub sign_body: bool,
    pub sign_session_token: bool,
}

impl SignOptions {
    /// S3 header signing at the given time.
    pub fn s3(region: &str, time: SigningTime) -> Self {
        SignOptions {
            region: region.into(),
            service: "s3".into(),
            time,
            presign_expires: None,
            normalize_path: true,
            sign_body: false,
            sign_session_token: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub signature: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signed_headers: String,
    pub authorization: Option<String>,
    pub payload_hash: String,
    /// `X-Amz-Date` of the signature.
    pub amz_date: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignError {
    InvalidUrl(String),
    InvalidHeader(String),
    InvalidTime(String),
    InvalidCredentials(String),
    InvalidOption(String),
    ChunkMismatch(String),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::InvalidUrl(m)
            | SignError::InvalidHeader(m)
            | SignError::InvalidTime(m)
            | SignError::InvalidCredentials(m)
            | SignError::InvalidOption(m)
            | SignError::ChunkMismatch(m) => f.write_str(m),
        }
    }
}

/// Signs one request with one-shot credentials.
pub fn sign(request: &SignableRequest, credentials: Credentials, options: &SignOptions) -> Result<SignedRequest, SignError> {
    Signer::new(credentials)?.sign(request, options)
}
