//! Absolute `http`/`https` URLs, split into what signing needs and put into
//! the wire form that is both sent and signed.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::encoding::{percent_decode, uri_encode, wire_path};

/// One query parameter, held in SigV4 encoding (computed once: the same
/// form is signed and sent). `has_equals` remembers `?uploads` versus
/// `?uploads=` so the URL sent keeps the caller's spelling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryParam {
    pub name: String,
    pub value: String,
    pub has_equals: bool,
}

impl QueryParam {
    /// From decoded text.
    pub fn new(name: &str, value: &str) -> Self {
        Self::from_decoded(name.as_bytes(), value.as_bytes(), true)
    }

    fn from_decoded(name: &[u8], value: &[u8], has_equals: bool) -> Self {
        QueryParam { name: uri_encode(name, false), value: uri_encode(value, false), has_equals }
    }

    fn push_wire(&self, out: &mut String) {
        out.push_str(&self.name);
        if self.has_equals || !self.value.is_empty() {
            out.push('=');
            out.push_str(&self.value);
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireUrl {
    pub scheme: &'static str,
    /// Host as the `Host` header carries it: with the port unless default.
    pub host_header: String,
    /// Path in valid URL form (see [`wire_path`]); S3 signing re-encodes it
    /// with [`crate::encoding::s3_path`].
    pub path: String,
    pub query: Vec<QueryParam>,
}

impl WireUrl {
    /// Parses an absolute URL. The fragment, if any, is dropped (never sent).
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("bad URL '{url}': {why}");
        if url.bytes().any(|b| b.is_ascii_control()) {
            return Err(bad("it contains control characters"));
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected http://host/path or https://host/path"))?;
        let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
            ("https", 443)
        } else if scheme.eq_ignore_ascii_case("http") {
            ("http", 80)
        } else {
            return Err(bad("the scheme must be http or https"));
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(bad("user information in URLs is not supported; pass credentials separately"));
        }
        let (host, port) = split_host_port(authority).map_err(|why| bad(&why))?;
        let host_header = match port {
            Some(p) if p != default_port => format!("{host}:{p}"),
            _ => host,
        };
        let (raw_path, raw_query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let path = if raw_path.is_empty() { String::from("/") } else { wire_path(raw_path) };
        let query = raw_query.map(parse_query).unwrap_or_default();
        Ok(WireUrl { scheme, host_header, path, query })
    }

    /// The URL to send, with the query in SigV4 encoding.
    pub fn to_url(&self) -> String {
        let query_len: usize = self.query.iter().map(|p| p.name.len() + p.value.len() + 2).sum();
        let mut out = String::with_capacity(self.scheme.len() + 3 + self.host_header.len() + self.path.len() + query_len);
        out.push_str(self.scheme);
        out.push_str("://");
        out.push_str(&self.host_header);
        out.push_str(&self.path);
        for (i, p) in self.query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            p.push_wire(&mut out);
        }
        out
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("unclosed '[' in the host")?;
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err(String::from("bad IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("unexpected text after the IPv6 address")?),
        };
        (format!("[{}]", v6.to_ascii_lowercase()), port)
    } else {
        let (h, p) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if h.is_empty() {
            return Err(String::from("the host is missing"));
        }
        if !h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
            return Err(format!("'{h}' is not a valid host name"));
        }
        (h.to_ascii_lowercase(), p)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("'{p}' is not a valid port")),
        },
    };
    Ok((host, port))
}

/// Splits a query string into decoded parameters. `+` means space, as in
/// form encoding; a literal plus is written `%2B`. Empty segments are dropped.
pub fn parse_query(query: &str) -> Vec<QueryParam> {
    query
        .split('&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| match seg.split_once('=') {
            Some((n, v)) => QueryParam::from_decoded(&percent_decode(n, true), &percent_decode(v, true), true),
            None => QueryParam::from_decoded(&percent_decode(seg, true), b"", false),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_non_default_port_and_drops_default() {
        assert_eq!(WireUrl::parse("http://127.0.0.1:8080/b").unwrap().host_header, "127.0.0.1:8080");
        assert_eq!(WireUrl::parse("https://Example.COM:443/").unwrap().host_header, "example.com");
        assert_eq!(WireUrl::parse("http://[::1]:9000").unwrap().host_header, "[::1]:9000");
    }

    #[test]
    fn puts_path_and_query_in_wire_form() {
        let u = WireUrl::parse("http://h/b/my key+ü~?prefix=a b&delimiter=/&uploads#frag").unwrap();
        assert_eq!(u.path, "/b/my%20key+%C3%BC~");
        assert_eq!(u.to_url(), "http://h/b/my%20key+%C3%BC~?prefix=a%20b&delimiter=%2F&uploads");
        assert_eq!(WireUrl::parse("https://h").unwrap().path, "/");
    }

    #[test]
    fn rejects_malformed_urls() {
        for bad in ["", "h/b", "ftp://h/", "http:///b", "http://u:p@h/", "http://h:99999/", "http://h:x/", "http://[::1/", "http://h h/", "http://h/\n"] {
            assert!(WireUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
