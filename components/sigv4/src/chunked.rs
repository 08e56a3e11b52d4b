//! aws-chunked streaming signatures (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`):
//! each chunk is signed over the previous signature, starting from the seed
//! signature of the request headers.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::encoding::hex;
use crate::signer::{SigningKey, EMPTY_SHA256};
use crate::SignError;

pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// S3 rejects chunks below 8 KiB (except the last).
pub const MIN_CHUNK_SIZE: u32 = 8 * 1024;
const CHUNK_ALGORITHM: &str = "AWS4-HMAC-SHA256-PAYLOAD";

fn hex_len(mut n: u64) -> u64 {
    let mut digits = 1;
    while n >= 16 {
        n >>= 4;
        digits += 1;
    }
    digits
}

/// Bytes a framed chunk of `len` data bytes takes on the wire:
/// `hex(len)` `;chunk-signature=` 64 hex digits, CRLF, data, CRLF.
fn framed_chunk(len: u64) -> u64 {
    hex_len(len) + ";chunk-signature=".len() as u64 + 64 + 2 + len + 2
}

/// The `Content-Length` of a whole aws-chunked body, final chunk included.
pub fn framed_length(decoded_length: u64, chunk_size: u32) -> u64 {
    let size = u64::from(chunk_size.max(1));
    let full = decoded_length / size;
    let rest = decoded_length % size;
    full * framed_chunk(size) + if rest > 0 { framed_chunk(rest) } else { 0 } + framed_chunk(0)
}

pub struct ChunkSigner {
    key: SigningKey,
    scope: String,
    amz_date: String,
    previous_signature: String,
    decoded_length: u64,
    chunk_size: u32,
    sent: u64,
    finished: bool,
}

impl ChunkSigner {
    pub(crate) fn new(key: SigningKey, seed_signature: String, amz_date: String, decoded_length: u64, chunk_size: u32) -> Self {
        let scope = key.scope().into();
        ChunkSigner { key, scope, amz_date, previous_signature: seed_signature, decoded_length, chunk_size, sent: 0, finished: false }
    }

    pub fn last_signature(&self) -> &str {
        &self.previous_signature
    }

    /// Frames one chunk of data with its signature.
    pub fn sign_chunk(&mut self, data: &[u8]) -> Result<Vec<u8>, SignError> {
        let length = u32::try_from(data.len()).map_err(|_| SignError::ChunkMismatch("a chunk cannot exceed 4 GiB".into()))?;
        let digest: [u8; 32] = Sha256::digest(data).into();
        let header = self.sign_chunk_digest(length, &digest)?;
        let mut framed = Vec::with_capacity(header.len() + data.len() + 2);
        framed.extend_from_slice(header.as_bytes());
        framed.extend_from_slice(data);
        framed.extend_from_slice(b"\r\n");
        Ok(framed)
    }

    /// The framing header of a chunk whose SHA-256 the caller computed.
    pub fn sign_chunk_digest(&mut self, length: u32, sha256: &[u8]) -> Result<String, SignError> {
        if self.finished {
            return Err(SignError::ChunkMismatch("the body is already finished".into()));
        }
        let digest: &[u8; 32] = sha256
            .try_into()
            .map_err(|_| SignError::ChunkMismatch(format!("a SHA-256 digest has 32 bytes, not {}", sha256.len())))?;
        let len = u64::from(length);
        let remaining = self.decoded_length - self.sent;
        if length == 0 {
            return Err(SignError::ChunkMismatch("an empty chunk ends the body: call finish".into()));
        }
        if length > self.chunk_size {
            return Err(SignError::ChunkMismatch(format!("chunk of {length} bytes exceeds the chunk size {}", self.chunk_size)));
        }
        if len > remaining {
            return Err(SignError::ChunkMismatch(format!(
                "chunk of {length} bytes overruns the announced length {} ({} already sent)",
                self.decoded_length, self.sent
            )));
        }
        if length < self.chunk_size && len != remaining {
            return Err(SignError::ChunkMismatch(format!(
                "only the last chunk may be shorter than {} bytes; got {length} with {remaining} still to send",
                self.chunk_size
            )));
        }
        let signature = self.next_signature(&hex(digest));
        self.sent += len;
        Ok(format!("{length:x};chunk-signature={signature}\r\n"))
    }

    /// The final empty chunk.
    pub fn finish(&mut self) -> Result<Vec<u8>, SignError> {
        if self.finished {
            return Err(SignError::ChunkMismatch("the body is already finished".into()));
        }
        if self.sent != self.decoded_length {
            return Err(SignError::ChunkMismatch(format!(
                "the chunks add up to {} bytes, but {} were announced",
                self.sent, self.decoded_length
            )));
        }
        let signature = self.next_signature(EMPTY_SHA256);
        self.finished = true;
        Ok(format!("0;chunk-signature={signature}\r\n\r\n").into_bytes())
    }

    fn next_signature(&mut self, chunk_sha256: &str) -> String {
        let string_to_sign = format!(
            "{CHUNK_ALGORITHM}\n{}\n{}\n{}\n{EMPTY_SHA256}\n{chunk_sha256}",
            self.amz_date, self.scope, self.previous_signature
        );
        self.previous_signature = self.key.sign(&string_to_sign);
        self.previous_signature.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_length_matches_the_aws_example() {
        // 66560 bytes in 64 KiB chunks are 66824 bytes framed (AWS S3 docs).
        assert_eq!(framed_length(66_560, 65_536), 66_824);
        assert_eq!(framed_length(0, 65_536), 86);
        assert_eq!(framed_length(65_536, 65_536), 65_536 + 5 + 85 + 86);
    }
}
