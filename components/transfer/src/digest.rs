//! MD5 and SHA-256 in the forms S3 uses: `Content-MD5` (base64), ETags
//! (hex), `x-amz-checksum-sha256` (base64). SHA-256 comes from the sigv4
//! core, which already hashes payloads for signing.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use lakeport_sigv4::encoding::{hex, hex_value};
use md5::Digest as _;

pub type Md5 = [u8; 16];
pub type Sha256 = [u8; 32];

pub fn md5(data: &[u8]) -> Md5 {
    md5::Md5::digest(data).into()
}

/// Incremental MD5, for parts and ranges read in pieces.
#[derive(Clone, Default)]
pub struct Md5Hasher(md5::Md5);

impl Md5Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> Md5 {
        self.0.finalize().into()
    }
}

pub fn sha256(data: &[u8]) -> Sha256 {
    from_hex(&lakeport_sigv4::payload_sha256(data)).expect("the sigv4 core returns 64 hex digits")
}

/// Incremental SHA-256 (the sigv4 core's hasher).
#[derive(Default)]
pub struct Sha256Hasher(lakeport_sigv4::PayloadHasher);

impl Sha256Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(mut self) -> Sha256 {
        from_hex(&self.0.finish()).expect("the sigv4 core returns 64 hex digits")
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    hex(bytes)
}

pub fn to_base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Exactly `N` bytes of hex (either case).
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(to_hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(to_base64(&md5(b"")), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(to_hex(&sha256(b"")), lakeport_sigv4::EMPTY_SHA256);
        let mut h = Md5Hasher::default();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), md5(b"hello world"));
        let mut s = Sha256Hasher::default();
        s.update(b"abc");
        assert_eq!(s.finish(), sha256(b"abc"));
        assert_eq!(from_hex::<2>("aBcd"), Some([0xab, 0xcd]));
        assert_eq!(from_hex::<2>("abc"), None);
        assert_eq!(from_hex::<2>("abcg"), None);
    }
}
