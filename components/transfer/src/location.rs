//! `s3://bucket/key` locations as users type them. Everything after the
//! bucket's slash is the key, taken literally (no percent-decoding, as
//! awscli and rclone do): `s3://b/a%20b` names the key `a%20b`.

use std::fmt;

use crate::endpoint::{validate_legacy_bucket_name, MAX_KEY_BYTES};
use crate::error::{invalid_input, Result};

/// A bucket and a key or prefix. An empty key is the whole bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    /// Parses `s3://bucket`, `s3://bucket/`, `s3://bucket/prefix/` and
    /// `s3://bucket/key/with/slashes`.
    pub fn parse(url: &str) -> Result<Self> {
        let expected = "expected s3://bucket/key, s3://bucket/prefix/ or s3://bucket";
        let Some(rest) = strip_scheme(url) else {
            let shown: String = url.chars().take(80).filter(|c| !c.is_control()).collect();
            return Err(invalid_input(format!("{shown:?} is not an S3 location: {expected}")));
        };
        if url.chars().any(|c| matches!(c, '\0' | '\r' | '\n')) {
            return Err(invalid_input(format!("the S3 location {:?} contains a line break or NUL: {expected}", url.trim())));
        }
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid_input(format!("the S3 location {url:?} names no bucket: {expected}")));
        }
        validate_legacy_bucket_name(bucket)?;
        if key.len() > MAX_KEY_BYTES {
            return Err(invalid_input(format!("the key in {url:.60?}… is {} bytes long; S3 allows at most {MAX_KEY_BYTES}", key.len())));
        }
        Ok(S3Location { bucket: bucket.to_string(), key: key.to_string() })
    }

    /// None when `text` is not an `s3://` URL at all (a local path, `-`
    /// for stdin or stdout); else as [`S3Location::parse`].
    pub fn parse_if_s3(text: &str) -> Result<Option<Self>> {
        match strip_scheme(text) {
            Some(_) => Self::parse(text).map(Some),
            None => Ok(None),
        }
    }

    /// The whole bucket, or a "directory": the key is empty or ends in `/`.
    /// The one place that decides it.
    pub fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }

    /// The key as a "directory": itself when it is a prefix, else with a
    /// `/` added (`s3://b/dir` lists and copies as `s3://b/dir/` does).
    pub fn dir_key(&self) -> String {
        self.join("").key
    }

    /// The location of `name` under this prefix (a `/` is added between
    /// them when the prefix does not end in one).
    pub fn join(&self, name: &str) -> S3Location {
        let mut key = self.key.clone();
        if !self.is_prefix() {
            key.push('/');
        }
        key.push_str(name.trim_start_matches('/'));
        S3Location { bucket: self.bucket.clone(), key }
    }
}

/// What follows `s3://` (any case), when `text` starts with it.
fn strip_scheme(text: &str) -> Option<&str> {
    text.get(..5).filter(|s| s.eq_ignore_ascii_case("s3://")).map(|_| &text[5..])
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(url: &str) -> S3Location {
        S3Location::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn parses_bucket_key_and_prefix_forms() {
        assert_eq!(loc("s3://data"), S3Location { bucket: "data".into(), key: "".into() });
        assert_eq!(loc("s3://data/"), S3Location { bucket: "data".into(), key: "".into() });
        assert_eq!(loc("s3://data/run/1/"), S3Location { bucket: "data".into(), key: "run/1/".into() });
        assert_eq!(loc("S3://data/a/b c/%20+ü?#").key, "a/b c/%20+ü?#");
        assert_eq!(loc("s3://data//leading").key, "/leading");
        assert!(loc("s3://data").is_prefix() && loc("s3://data/p/").is_prefix() && !loc("s3://data/p").is_prefix());
        assert_eq!(loc("s3://Legacy_Bucket/k").bucket, "Legacy_Bucket");
    }

    #[test]
    fn joins_and_displays() {
        assert_eq!(loc("s3://b/p").join("f.txt").to_string(), "s3://b/p/f.txt");
        assert_eq!(loc("s3://b/p/").join("/f.txt").key, "p/f.txt");
        assert_eq!(loc("s3://b").join("f").key, "f");
        assert_eq!((loc("s3://b/dir").dir_key(), loc("s3://b/dir/").dir_key(), loc("s3://b").dir_key()), ("dir/".into(), "dir/".into(), "".into()));
    }

    #[test]
    fn only_s3_urls_are_locations() {
        assert_eq!(S3Location::parse_if_s3("./file").unwrap(), None);
        assert_eq!(S3Location::parse_if_s3("-").unwrap(), None);
        assert_eq!(S3Location::parse_if_s3("S3://b/k").unwrap(), Some(loc("s3://b/k")));
        assert!(S3Location::parse_if_s3("s3://").unwrap_err().to_string().contains("names no bucket"));
    }

    #[test]
    fn clear_errors() {
        for (bad, why) in [
            ("/local/path", "is not an S3 location"),
            ("s3:/b/k", "is not an S3 location"),
            ("https://b/k", "is not an S3 location"),
            ("s3://", "names no bucket"),
            ("s3:///k", "names no bucket"),
            ("s3://b:9000/k", "not allowed"),
            ("s3://b/k\n", "line break"),
        ] {
            let m = S3Location::parse(bad).unwrap_err().to_string();
            assert!(m.contains(why), "{bad}: {m}");
        }
        assert!(S3Location::parse(&format!("s3://b/{}", "k".repeat(1025))).is_err());
    }
}
