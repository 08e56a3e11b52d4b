//! What an ETag says about the data. A single PUT's ETag is the hex MD5
//! of the object (without SSE-KMS/SSE-C); a multipart upload's is the MD5
//! of the concatenated binary part MD5s, then `-` and the part count. The
//! latter can be checked only when the part layout is known.

use crate::digest::{from_hex, md5, to_hex, Md5};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtagKind {
    /// 32 hex digits: the MD5 of the data (unless the server encrypts).
    Md5(Md5),
    /// `hex-N`: a multipart upload of `parts` parts.
    Multipart { digest: Md5, parts: u32 },
    /// Anything else (some servers use other ETags).
    Opaque,
}

/// An ETag without its quotes (and a weak `W/` prefix), as compared.
pub fn normalize_etag(etag: &str) -> &str {
    let e = etag.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"')
}

pub fn etag_kind(etag: &str) -> EtagKind {
    let e = normalize_etag(etag);
    if let Some(md5) = from_hex::<16>(e) {
        return EtagKind::Md5(md5);
    }
    if let Some((hex, n)) = e.split_once('-') {
        if let (Some(digest), Ok(parts)) = (from_hex::<16>(hex), n.parse::<u32>()) {
            if parts >= 1 && n.bytes().all(|b| b.is_ascii_digit()) {
                return EtagKind::Multipart { digest, parts };
            }
        }
    }
    EtagKind::Opaque
}

/// The ETag S3 gives a multipart upload of parts with these MD5s
/// (unquoted, lowercase).
pub fn multipart_etag(part_md5s: &[Md5]) -> String {
    let mut concatenated = Vec::with_capacity(part_md5s.len() * 16);
    for d in part_md5s {
        concatenated.extend_from_slice(d);
    }
    format!("{}-{}", to_hex(&md5(&concatenated)), part_md5s.len())
}

/// Whether an ETag is exactly the MD5 given.
pub fn etag_matches_md5(etag: &str, digest: &Md5) -> bool {
    matches!(etag_kind(etag), EtagKind::Md5(d) if d == *digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_etags() {
        let d = md5(b"hello");
        assert_eq!(etag_kind(&format!("\"{}\"", to_hex(&d))), EtagKind::Md5(d));
        assert_eq!(etag_kind(&to_hex(&d).to_uppercase()), EtagKind::Md5(d));
        assert_eq!(etag_kind(&format!("\"{}-12\"", to_hex(&d))), EtagKind::Multipart { digest: d, parts: 12 });
        for opaque in ["", "\"\"", "abc", "W/\"xyz\"", &format!("{}-0", to_hex(&d)), &format!("{}-+3", to_hex(&d)), &format!("{}-", to_hex(&d))] {
            assert_eq!(etag_kind(opaque), EtagKind::Opaque, "{opaque}");
        }
        assert!(etag_matches_md5(&format!("W/\"{}\"", to_hex(&d)), &d));
        assert!(!etag_matches_md5(&format!("{}-1", to_hex(&d)), &d));
    }

    #[test]
    fn multipart_etag_of_known_parts() {
        // Two parts "a" and "b": md5(md5("a") ‖ md5("b")) with "-2".
        let parts = [md5(b"a"), md5(b"b")];
        let mut joined = parts[0].to_vec();
        joined.extend_from_slice(&parts[1]);
        assert_eq!(multipart_etag(&parts), format!("{}-2", to_hex(&md5(&joined))));
        // A single-part multipart upload still has the "-1" form, not the plain MD5.
        assert_eq!(multipart_etag(&[md5(b"a")]), format!("{}-1", to_hex(&md5(&md5(b"a")))));
    }
}
