//! Where requests go: the endpoint, path-style or virtual-hosted
//! addressing, bucket-name rules and object URLs. Keys are encoded with the
//! sigv4 core's S3 encoder, the same one the signer applies to the path,
//! so the URL sent and the path signed cannot disagree.

use lakeport_sigv4::encoding::uri_encode_into;
use lakeport_sigv4::url::WireUrl;

use crate::error::{invalid_input, Result};

pub use crate::limits::MAX_KEY_BYTES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// `http://host/bucket/key`: works for every bucket name; what Ceph RGW
    /// and MinIO expect unless configured for DNS-style buckets.
    Path,
    /// `http://bucket.host/key`: needs a DNS-compatible bucket name and a
    /// wildcard DNS entry (and certificate) for the host.
    VirtualHosted,
}

/// An S3 service: its base URL (`https://s3.example.org`, optionally with
/// a path prefix for path-style), the SigV4 region, and the addressing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Endpoint {
    pub url: String,
    pub region: String,
    pub addressing: Addressing,
}

/// The endpoint URL split into what URLs are built from.
struct Base {
    scheme: &'static str,
    /// `host[:port]`, lowercase, without a default port.
    authority: String,
    /// Path prefix without a trailing slash (usually empty).
    prefix: String,
}

impl S3Endpoint {
    /// A checked endpoint; the URL loses any trailing slash.
    pub fn new(url: &str, region: &str, addressing: Addressing) -> Result<Self> {
        let endpoint = S3Endpoint { url: url.trim().trim_end_matches('/').to_string(), region: region.trim().to_string(), addressing };
        endpoint.base()?;
        Ok(endpoint)
    }

    fn base(&self) -> Result<Base> {
        let url = self.url.trim();
        if url.contains('@') {
            // Never echo what may be user:password@.
            return Err(invalid_input("the S3 endpoint must not contain user information ('user@'): use a plain http(s) URL"));
        }
        if url.contains(['?', '#']) {
            return Err(invalid_input(format!("the S3 endpoint {url:?} must not have a query or fragment: use e.g. https://s3.example.org")));
        }
        let wire = WireUrl::parse(url).map_err(|e| invalid_input(format!("the S3 endpoint is not usable: {e}")))?;
        if self.region.is_empty() || !self.region.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
            return Err(invalid_input(format!(
                "the region {:?} is not usable: set it to the server's region (Ceph RGW: the zonegroup name, e.g. 'default'; MinIO: 'us-east-1')",
                self.region
            )));
        }
        let prefix = wire.path.trim_end_matches('/').to_string();
        Ok(Base { scheme: wire.scheme, authority: wire.host_header, prefix })
    }

    /// The URL of a bucket (for listing, bucket and multipart-listing
    /// operations): `…/bucket` or `http://bucket.host/`.
    pub fn bucket_url(&self, bucket: &str) -> Result<String> {
        self.url_for(bucket, None)
    }

    /// The URL of an object, its key encoded once with S3's rules.
    pub fn object_url(&self, bucket: &str, key: &str) -> Result<String> {
        validate_key(key)?;
        self.url_for(bucket, Some(key))
    }

    fn url_for(&self, bucket: &str, key: Option<&str>) -> Result<String> {
        let base = self.base()?;
        let mut out = String::with_capacity(base.authority.len() + bucket.len() + key.map_or(0, |k| k.len() * 3) + 16);
        out.push_str(base.scheme);
        out.push_str("://");
        match self.addressing {
            Addressing::Path => {
                validate_legacy_bucket_name(bucket)?;
                out.push_str(&base.authority);
                out.push_str(&base.prefix);
                out.push('/');
                out.push_str(bucket);
                // `/bucket` alone for bucket operations, as SDKs send it.
                if key.is_some() {
                    out.push('/');
                }
            }
            Addressing::VirtualHosted => {
                validate_bucket_name(bucket)?;
                let host = base.authority.rsplit_once(':').map_or(base.authority.as_str(), |(h, _)| h);
                if host.starts_with('[') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                    return Err(invalid_input(format!(
                        "virtual-hosted addressing needs a DNS name, not the address {host}: use path-style addressing"
                    )));
                }
                if bucket.contains('.') && base.scheme == "https" {
                    return Err(invalid_input(format!(
                        "bucket {bucket:?} has dots, which a TLS certificate for *.{host} does not cover: use path-style addressing"
                    )));
                }
                out.push_str(bucket);
                out.push('.');
                out.push_str(&base.authority);
                out.push_str(&base.prefix);
                out.push('/');
            }
        }
        if let Some(key) = key {
            uri_encode_into(&mut out, key.as_bytes(), true);
        }
        Ok(out)
    }
}

/// An object key S3 can store: non-empty, at most 1024 bytes.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(invalid_input("the object key is empty: name the object, e.g. s3://bucket/path/file"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid_input(format!("the object key is {} bytes long; S3 allows at most {MAX_KEY_BYTES}", key.len())));
    }
    Ok(())
}

fn looks_like_ipv4(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// S3's bucket-naming rules, required for new buckets and virtual-hosted
/// addressing: 3–63 characters of `a-z 0-9 . -`, starting and ending with a
/// letter or digit, no `..`, not an IPv4 address, no reserved prefix or
/// suffix.
pub fn validate_bucket_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(invalid_input(format!(
            "bad bucket name {name:?}: {why} (bucket names have 3-63 characters: lowercase letters, digits, '.' and '-', \
             starting and ending with a letter or digit)"
        )))
    };
    if name.len() < 3 || name.len() > 63 {
        return bad(&format!("it has {} characters", name.chars().count()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))) {
        return bad(&format!("{c:?} is not allowed"));
    }
    let b = name.as_bytes();
    if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return bad("it must start and end with a letter or digit");
    }
    if name.contains("..") {
        return bad("it has two dots in a row");
    }
    if looks_like_ipv4(name) {
        return bad("it looks like an IP address");
    }
    if name.starts_with("xn--") || name.ends_with("-s3alias") || name.ends_with("--ol-s3") {
        return bad("the prefix xn-- and the suffixes -s3alias and --ol-s3 are reserved");
    }
    Ok(())
}

/// The looser rules for existing buckets reached path-style: legacy AWS
/// names and Ceph RGW's relaxed names may have capitals and `_`, up to 255
/// characters. Only what cannot form a path segment is refused; the server
/// decides the rest.
pub fn validate_legacy_bucket_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid_input("the bucket name is empty: use s3://bucket/key"));
    }
    if name.len() > 255 || name == "." || name == ".." {
        return Err(invalid_input(format!("bad bucket name {name:?}: use at most 255 characters, not '.' or '..'")));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))) {
        return Err(invalid_input(format!(
            "bad bucket name {name:?}: {c:?} is not allowed (use letters, digits, '.', '-' and '_')"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(url: &str) -> S3Endpoint {
        S3Endpoint::new(url, "us-east-1", Addressing::Path).unwrap()
    }

    #[test]
    fn path_style_urls() {
        let e = path("http://127.0.0.1:9000/");
        assert_eq!(e.object_url("data", "run 1/a+b%c~ü.txt").unwrap(), "http://127.0.0.1:9000/data/run%201/a%2Bb%25c~%C3%BC.txt");
        assert_eq!(e.bucket_url("data").unwrap(), "http://127.0.0.1:9000/data");
        assert_eq!(path("https://S3.Example.org:443").object_url("b_B", "k").unwrap(), "https://s3.example.org/b_B/k");
        assert_eq!(path("https://gw.example.org/s3/").object_url("bkt", "/lead").unwrap(), "https://gw.example.org/s3/bkt//lead");
    }

    #[test]
    fn virtual_hosted_urls() {
        let e = S3Endpoint::new("https://s3.example.org", "eu-1", Addressing::VirtualHosted).unwrap();
        assert_eq!(e.object_url("data", "a/b c").unwrap(), "https://data.s3.example.org/a/b%20c");
        assert_eq!(e.bucket_url("data").unwrap(), "https://data.s3.example.org/");
        assert!(e.object_url("my.data", "k").unwrap_err().to_string().contains("path-style"));
        assert!(e.object_url("Data", "k").is_err());
        let http = S3Endpoint::new("http://s3.local:8000", "eu-1", Addressing::VirtualHosted).unwrap();
        assert_eq!(http.object_url("my.data", "k").unwrap(), "http://my.data.s3.local:8000/k");
        let ip = S3Endpoint::new("http://10.0.0.1:8000", "eu-1", Addressing::VirtualHosted).unwrap();
        assert!(ip.bucket_url("data").unwrap_err().to_string().contains("DNS name"));
    }

    #[test]
    fn reserved_characters_are_encoded_once() {
        let e = path("http://h");
        let key = "a!$&'()*,;=:@[]{}\"<>^`|\\#?";
        assert_eq!(
            e.object_url("b", key).unwrap(),
            "http://h/b/a%21%24%26%27%28%29%2A%2C%3B%3D%3A%40%5B%5D%7B%7D%22%3C%3E%5E%60%7C%5C%23%3F"
        );
        // The signer's own path form of the URL is the URL itself.
        let wire = WireUrl::parse(&e.object_url("b", key).unwrap()).unwrap();
        assert_eq!(lakeport_sigv4::encoding::s3_path(wire.path.clone()), wire.path);
    }

    #[test]
    fn rejects_bad_endpoints_and_keys() {
        for bad in ["", "s3.example.org", "ftp://h", "https://u:p@h", "http://h/?x=1", "http://h h"] {
            assert!(S3Endpoint::new(bad, "us-east-1", Addressing::Path).is_err(), "{bad}");
        }
        let err = S3Endpoint::new("https://u:secret@h", "r", Addressing::Path).unwrap_err().to_string();
        assert!(!err.contains("secret"));
        assert!(S3Endpoint::new("http://h", "", Addressing::Path).is_err());
        assert!(S3Endpoint::new("http://h", "eu west", Addressing::Path).is_err());
        assert!(path("http://h").object_url("b", "").is_err());
        assert!(path("http://h").object_url("b", &"k".repeat(1025)).is_err());
        assert!(path("http://h").object_url("b", &"k".repeat(1024)).is_ok());
    }

    #[test]
    fn bucket_name_rules() {
        for good in ["abc", "my-bucket.data", "0123456789", &"a".repeat(63)] {
            validate_bucket_name(good).unwrap();
        }
        for (bad, why) in [
            ("ab", "2 characters"),
            ("Bucket", "'B'"),
            ("my_bucket", "'_'"),
            ("-abc", "start and end"),
            ("abc.", "start and end"),
            ("a..b", "two dots"),
            ("192.168.1.10", "IP address"),
            ("xn--abc", "reserved"),
            ("data-s3alias", "reserved"),
        ] {
            let m = validate_bucket_name(bad).unwrap_err().to_string();
            assert!(m.contains(why), "{bad}: {m}");
        }
        validate_legacy_bucket_name("Legacy_Bucket").unwrap();
        assert!(validate_legacy_bucket_name("a/b").is_err());
        assert!(validate_legacy_bucket_name("..").is_err());
        assert!(validate_legacy_bucket_name("").is_err());
    }
}
