//! The pieces of the canonical request: headers, path and query.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use alloc::format;

use crate::encoding::uri_encode_into;
use crate::url::QueryParam;

/// A request header after merging and whitespace normalization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The name as the caller first spelled it (sent as is).
    pub name: Cow<'static, str>,
    /// Lowercase name, as signed.
    pub key: Cow<'static, str>,
    pub value: String,
}

impl Header {
    /// A header the signer adds: `key` is `name` in lowercase.
    pub fn added(name: &'static str, key: &'static str, value: String) -> Self {
        debug_assert_eq!(name.to_ascii_lowercase(), key);
        Header { name: Cow::Borrowed(name), key: Cow::Borrowed(key), value }
    }
}

/// Header names are RFC 9110 tokens.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Trims a value and collapses inner runs of whitespace, folded lines
/// included, to one space, as SigV4's canonical headers require; the value
/// sent is the same, so the two never disagree.
pub fn collapse_whitespace(value: &str) -> String {
    let b = value.as_bytes();
    let clean = b.first().is_none_or(|&c| c != b' ' && c != b'\t')
        && b.last().is_none_or(|&c| c != b' ' && c != b'\t')
        && !b.iter().any(|&c| matches!(c, b'\t' | b'\r' | b'\n'))
        && !b.windows(2).any(|w| w == b"  ");
    if clean {
        return String::from(value);
    }
    let mut out = String::with_capacity(value.len());
    for word in value.split([' ', '\t', '\r', '\n']).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Validates and merges headers: repeated names (any case) are joined with
/// `,` in the order given, at the position of their first appearance.
pub fn merge_headers(input: &[(String, String)]) -> Result<Vec<Header>, String> {
    let mut merged: Vec<Header> = Vec::with_capacity(input.len() + 5);
    for (name, value) in input {
        let name = name.trim();
        if !is_token(name) {
            return Err(format!("bad header name '{name}': expected a token such as Content-Type"));
        }
        if value.bytes().any(|b| (b.is_ascii_control() && !matches!(b, b'\t' | b'\r' | b'\n')) || b == 0x7f) {
            return Err(format!("the value of header '{name}' contains control characters"));
        }
        let key = name.to_ascii_lowercase();
        let value = collapse_whitespace(value);
        match merged.iter_mut().find(|h| *h.key == *key) {
            Some(h) => {
                h.value.push(',');
                h.value.push_str(&value);
            }
            None => merged.push(Header { name: Cow::Owned(name.into()), key: Cow::Owned(key), value }),
        }
    }
    Ok(merged)
}

/// Headers that are never signed: the signature itself, and headers that
/// proxies and HTTP stacks add, drop or rewrite on the way.
pub fn is_unsigned_header(key: &str) -> bool {
    matches!(key, "authorization" | "user-agent" | "expect" | "x-amzn-trace-id" | "connection" | "transfer-encoding")
}

/// RFC 3986 remove_dot_segments, then runs of `/` collapsed to one (the
/// generic SigV4 rule; S3 never normalizes).
pub fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let trailing_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

/// The canonical URI: S3 signs the path exactly as sent (already in
/// [`crate::encoding::s3_path`] form); other services sign the (optionally
/// normalized) path encoded a second time.
pub fn push_canonical_uri(out: &mut String, wire_path: &str, s3_rules: bool, normalize: bool) {
    if s3_rules {
        out.push_str(wire_path);
    } else if normalize {
        uri_encode_into(out, normalize_path(wire_path).as_bytes(), true);
    } else {
        uri_encode_into(out, wire_path.as_bytes(), true);
    }
}

pub fn canonical_uri(wire_path: &str, s3_rules: bool, normalize: bool) -> String {
    let mut out = String::with_capacity(wire_path.len() + 8);
    push_canonical_uri(&mut out, wire_path, s3_rules, normalize);
    out
}

/// Parameters sorted by encoded name, then encoded value, joined with `&`.
pub fn push_canonical_query(out: &mut String, params: &[QueryParam]) {
    let mut pairs: Vec<(&str, &str)> = params.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect();
    pairs.sort_unstable();
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
}

pub fn canonical_query(params: &[QueryParam]) -> String {
    let mut out = String::new();
    push_canonical_query(&mut out, params);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn merges_and_collapses() {
        let h = merge_headers(&[
            ("My-Header1".into(), " value4 ".into()),
            ("Host".into(), "h".into()),
            ("my-header1".into(), "a   b\n   c".into()),
        ])
        .unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].value, "value4,a b c");
        assert_eq!(h[0].name, "My-Header1");
        assert!(merge_headers(&[("Bad Name".into(), "v".into())]).is_err());
        assert!(merge_headers(&[("".into(), "v".into())]).is_err());
        assert!(merge_headers(&[("X".into(), "a\u{0}b".into())]).is_err());
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize_path("/example1/example2/../.."), "/");
        assert_eq!(normalize_path("//example//"), "/example/");
        assert_eq!(normalize_path("/./example"), "/example");
        assert_eq!(normalize_path("/a/b/."), "/a/b/");
        assert_eq!(normalize_path("/../a"), "/a");
        assert_eq!(normalize_path(""), "/");
    }

    #[test]
    fn sorts_query() {
        let q = vec![QueryParam::new("b", "2"), QueryParam::new("a", "z"), QueryParam::new("a", "y b")];
        assert_eq!(canonical_query(&q), "a=y%20b&a=z&b=2");
        assert_eq!(canonical_uri("/a%20b/../c", false, true), "/c");
        assert_eq!(canonical_uri("/a%20b", false, false), "/a%2520b");
        assert_eq!(canonical_uri("/a/../%20", true, true), "/a/../%20");
    }
}
