//! The Rucio side of upload-and-register: where a file goes, and whether a
//! DID that exists already is the same file.

use crate::error::RucioError;

/// An S3 (or HTTP) PFN cut into what a PUT needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfnTarget {
    pub scheme: String,
    /// `host:port`.
    pub authority: String,
    pub bucket: String,
    pub key: String,
}

/// `s3://host:port/bucket/key…` (or `http(s)://…` on an S3 endpoint) as an
/// endpoint, a bucket and a key; the first path segment is the bucket.
pub fn pfn_target(pfn: &str) -> Result<PfnTarget, RucioError> {
    let unusable = |why: &str| RucioError::invalid_input(format!("cannot upload to the PFN {pfn}: {why}"));
    let (scheme, rest) = pfn.split_once("://").ok_or_else(|| unusable("it is not a URL"))?;
    if !matches!(scheme, "s3" | "http" | "https") {
        return Err(unusable(&format!("lakeport uploads over S3 (s3, http, https), not {scheme}; choose an RSE with an S3 protocol")));
    }
    let (authority, path) = rest.split_once('/').ok_or_else(|| unusable("it has no path"))?;
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').ok_or_else(|| unusable("its path has no bucket and key"))?;
    if authority.is_empty() || bucket.is_empty() || key.is_empty() {
        return Err(unusable("its host, bucket or key is empty"));
    }
    Ok(PfnTarget { scheme: scheme.to_string(), authority: authority.to_string(), bucket: bucket.to_string(), key: key.to_string() })
}

/// Whether two adler32 checksums are the same (Rucio strips leading zeros
/// in places; case does not matter).
pub fn same_adler32(a: &str, b: &str) -> bool {
    a.trim_start_matches('0').eq_ignore_ascii_case(b.trim_start_matches('0'))
}
