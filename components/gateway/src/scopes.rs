//! The `wlcg-scopes` authorization profile: WLCG JWT profile storage
//! scopes (`storage.read:PATH`, `storage.create:PATH`,
//! `storage.modify:PATH`) decide each request on the gateway's
//! `/BUCKET/KEY` space, matching whole path segments.
//!
//! What each method needs:
//! - `GET`, `HEAD`, `PROPFIND`: `storage.read`.
//! - `PUT` of a new object and `MKCOL`: `storage.create`; `storage.modify`
//!   also does (the profile: modify "includes … creating new files").
//! - `PUT` over an existing object, `DELETE`: `storage.modify`.
//! - `COPY`: `storage.read` on the source; `MOVE`: `storage.modify` on the
//!   source (it deletes it). At the destination, as for a `PUT`:
//!   `storage.modify`, or `storage.create` when nothing is there yet.
//!
//! Paths are normalised before matching, by [`normalize_path`]; the
//! component forwards the normalised path, so the path checked is the
//! path served.

use std::fmt;

/// Longer request paths are refused (S3 keys stop at 1024 bytes).
pub const MAX_PATH_BYTES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Read,
    Create,
    Modify,
}

impl Operation {
    pub fn scope_name(self) -> &'static str {
        match self {
            Operation::Read => "storage.read",
            Operation::Create => "storage.create",
            Operation::Modify => "storage.modify",
        }
    }
}

/// A path of the gateway's `/BUCKET/KEY` space as segments, decoded.
/// `/` is no segments; `/bkt/a/` is `["bkt", "a", ""]` (S3 keys may end in
/// or contain empty segments, and those name other objects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    segments: Vec<String>,
}

impl ResourcePath {
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    pub fn bucket(&self) -> Option<&str> {
        self.segments.first().map(String::as_str)
    }

    /// The object key (segments after the bucket, joined by `/`), if any.
    pub fn key(&self) -> Option<String> {
        (self.segments.len() > 1).then(|| self.segments[1..].join("/"))
    }

    /// The path of `key` in `bucket` (`""`: the bucket itself).
    pub(crate) fn object(bucket: &str, key: &str) -> ResourcePath {
        let mut segments = vec![bucket.to_string()];
        if !key.is_empty() {
            segments.extend(key.split('/').map(String::from));
        }
        ResourcePath { segments }
    }

    /// Whether `self` lies at or under `scope`, segment by segment:
    /// `/bkt/data` covers `/bkt/data` and `/bkt/data/x`, not `/bkt/data2`.
    pub fn is_within(&self, scope: &ResourcePath) -> bool {
        self.segments.starts_with(&scope.segments)
    }
}

impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.segments.join("/"))
    }
}

/// Why a request path was refused (no scope could allow it): a `400`, the
/// request is malformed, except a dot segment, a `403` (see [`Denied::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    TooLong,
    BadEscape,
    NotUtf8,
    DotSegment,
    EncodedSeparator,
    DoubleEncoding,
    ControlCharacter,
    NoBucket,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotAbsolute => "the request path does not start with '/'",
            PathError::TooLong => "the request path is too long",
            PathError::BadEscape => "the request path has a '%' not followed by two hex digits",
            PathError::NotUtf8 => "the request path does not decode to UTF-8",
            PathError::DotSegment => "the request path has a '.' or '..' segment, which could name a path outside the token's scope",
            PathError::EncodedSeparator => "the request path has an encoded '/' or '\\' in a segment",
            PathError::DoubleEncoding => "the request path encodes a '.', '/' or '\\' twice",
            PathError::ControlCharacter => "the request path has a control character",
            PathError::NoBucket => "the request path has an empty bucket name",
        })
    }
}

impl std::error::Error for PathError {}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn percent_decode(segment: &str) -> Result<String, PathError> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let (Some(hi), Some(lo)) = (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) else {
                return Err(PathError::BadEscape);
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

/// Normalises a request path (a query after `?` is cut off: it does not
/// name the resource). Each segment is percent-decoded exactly once, and
/// the path is refused, never repaired, when:
/// - a segment is `.` or `..`, literally or encoded (`%2e%2e`): no dot
///   segment is resolved, so no layer can resolve it differently;
/// - a segment holds an encoded `/` or `\` (`%2F`, `%5C`): one segment
///   here would be two in a layer that decodes before splitting;
/// - a decoded segment still holds `%2e`, `%2f` or `%5c` (double encoding,
///   for a layer that decodes twice);
/// - an escape is malformed, the bytes are not UTF-8, or a control
///   character (NUL, CR, LF, …) appears;
/// - the bucket segment is empty (`//key`).
///
/// Empty key segments (`/bkt/a//b`, `/bkt/a/`) are kept: they are part of
/// S3 object names.
pub fn normalize_path(raw: &str) -> Result<ResourcePath, PathError> {
    let path = raw.split_once('?').map_or(raw, |(p, _)| p);
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    let rest = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    if rest.is_empty() {
        return Ok(ResourcePath { segments: vec![] });
    }
    let mut segments = Vec::new();
    for raw_segment in rest.split('/') {
        let segment = percent_decode(raw_segment)?;
        if segment.contains(['/', '\\']) {
            return Err(PathError::EncodedSeparator);
        }
        if segment.chars().any(char::is_control) {
            return Err(PathError::ControlCharacter);
        }
        if segment == "." || segment == ".." {
            return Err(PathError::DotSegment);
        }
        let lower = segment.to_ascii_lowercase();
        if ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e)) {
            return Err(PathError::DoubleEncoding);
        }
        segments.push(segment);
    }
    if segments[0].is_empty() {
        return Err(PathError::NoBucket);
    }
    Ok(ResourcePath { segments })
}

/// One `storage.*:PATH` scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageScope {
    pub operation: Operation,
    pub path: ResourcePath,
}

impl StorageScope {
    /// A WLCG storage scope, or `None` for any other scope. The PATH is
    /// required, absolute and literal (not percent-encoded); a trailing
    /// `/` and empty segments are dropped; one with a `.`/`..` segment or
    /// a control character grants nothing and is not read.
    /// `storage.stage` is not one the gateway serves.
    pub fn parse(scope: &str) -> Option<StorageScope> {
        let (name, path) = scope.split_once(':')?;
        let operation = [Operation::Read, Operation::Create, Operation::Modify].into_iter().find(|o| o.scope_name() == name)?;
        let rest = path.strip_prefix('/')?;
        let segments: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(String::from).collect();
        if segments.iter().any(|s| s == "." || s == ".." || s.chars().any(char::is_control)) {
            return None;
        }
        Some(StorageScope { operation, path: ResourcePath { segments } })
    }
}

/// The storage scopes among a token's scopes.
pub fn parse_scopes<S: AsRef<str>>(scopes: &[S]) -> Vec<StorageScope> {
    scopes.iter().filter_map(|s| StorageScope::parse(s.as_ref())).collect()
}

/// What a request was granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// A `PUT` allowed by `storage.create` alone: it must not replace an
    /// object. The component sends it with `If-None-Match: *` (an object
    /// created between an existence check and the write is not
    /// overwritten) and answers the backend's `412` as a missing
    /// `storage.modify`.
    pub only_if_absent: bool,
}

/// Why a request was not allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// `403`: the scope that would have allowed it, e.g. `storage.create:/bkt/key`.
    MissingScope { scope: String },
    /// `400`: the path (or `Destination`) is not one to match scopes
    /// against; `403` for a dot segment, which asks to leave a scope.
    BadPath(PathError),
    /// `400`: `MOVE` or `COPY` without a destination.
    MissingDestination,
    /// `405`: a method the profile has no rule for (`POST`, `OPTIONS`, …).
    Method(String),
}

impl Denied {
    pub fn status(&self) -> u16 {
        match self {
            Denied::MissingScope { .. } | Denied::BadPath(PathError::DotSegment) => 403,
            Denied::BadPath(_) | Denied::MissingDestination => 400,
            Denied::Method(_) => 405,
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::MissingScope { scope } => write!(f, "the token lacks the scope {scope}"),
            Denied::BadPath(e) => e.fmt(f),
            Denied::MissingDestination => f.write_str("MOVE and COPY need a Destination header"),
            Denied::Method(m) => write!(f, "the method {} is not served", crate::jwt::printable(m)),
        }
    }
}

impl std::error::Error for Denied {}

fn require(scopes: &[StorageScope], allowed_by: &[Operation], path: &ResourcePath) -> Result<(), Denied> {
    if scopes.iter().any(|s| allowed_by.contains(&s.operation) && path.is_within(&s.path)) {
        Ok(())
    } else {
        Err(Denied::MissingScope { scope: format!("{}:{path}", allowed_by[0].scope_name()) })
    }
}

/// The path part of a `Destination` header: an absolute URL (RFC 4918
/// §10.3) or an absolute path. That its authority is this gateway is the
/// component's to check.
pub(crate) fn destination_path(destination: &str) -> Result<ResourcePath, PathError> {
    let after_scheme = destination.strip_prefix("https://").or_else(|| destination.strip_prefix("http://"));
    let path = match after_scheme {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => destination,
    };
    normalize_path(path)
}

/// Decides a request under the `wlcg-scopes` profile. `path` is the raw
/// request path; `object_exists` says whether a `PUT`'s target exists
/// (`None`: not known, see [`Grant::only_if_absent`]); `destination` is
/// the `Destination` header of `MOVE`/`COPY`.
pub fn authorize(
    method: &str,
    path: &str,
    object_exists: Option<bool>,
    destination: Option<&str>,
    scopes: &[StorageScope],
) -> Result<Grant, Denied> {
    use Operation::*;
    let path = normalize_path(path).map_err(Denied::BadPath)?;
    let full = Grant { only_if_absent: false };
    match method {
        "GET" | "HEAD" | "PROPFIND" => require(scopes, &[Read], &path).map(|()| full),
        "MKCOL" => require(scopes, &[Create, Modify], &path).map(|()| full),
        "DELETE" => require(scopes, &[Modify], &path).map(|()| full),
        "PUT" => match (require(scopes, &[Modify], &path), object_exists) {
            (Ok(()), _) => Ok(full),
            (Err(missing), Some(true)) => Err(missing),
            (Err(_), _) => require(scopes, &[Create], &path).map(|()| Grant { only_if_absent: true }),
        },
        "MOVE" | "COPY" => {
            let destination = destination_path(destination.ok_or(Denied::MissingDestination)?).map_err(Denied::BadPath)?;
            require(scopes, if method == "COPY" { &[Read] } else { &[Modify] }, &path)?;
            match require(scopes, &[Modify], &destination) {
                Ok(()) => Ok(full),
                Err(_) => require(scopes, &[Create], &destination).map(|()| Grant { only_if_absent: true }),
            }
        }
        other => Err(Denied::Method(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> Vec<StorageScope> {
        parse_scopes(&s.split(' ').collect::<Vec<_>>())
    }

    fn decide(method: &str, path: &str, exists: Option<bool>, dest: Option<&str>, granted: &str) -> String {
        match authorize(method, path, exists, dest, &scopes(granted)) {
            Ok(Grant { only_if_absent: false }) => "ok".into(),
            Ok(Grant { only_if_absent: true }) => "ok if absent".into(),
            Err(Denied::MissingScope { scope }) => format!("403 {scope}"),
            Err(e) => format!("{} {e}", e.status()),
        }
    }

    #[test]
    fn normalizes_paths_segment_by_segment() {
        let p = normalize_path("/bkt/a%20b/c%C3%A9?x-id=GetObject").unwrap();
        assert_eq!(p.segments(), ["bkt", "a b", "cé"]);
        assert_eq!((p.bucket(), p.key().as_deref()), (Some("bkt"), Some("a b/cé")));
        assert_eq!(p.to_string(), "/bkt/a b/cé");
        assert_eq!(normalize_path("/").unwrap().segments(), [] as [String; 0]);
        assert_eq!(normalize_path("/bkt/a//b/").unwrap().segments(), ["bkt", "a", "", "b", ""]);
        // Dots inside names are fine; only whole dot segments are refused.
        assert_eq!(normalize_path("/bkt/..a/.b/a..").unwrap().segments(), ["bkt", "..a", ".b", "a.."]);
    }

    #[test]
    fn refuses_paths_that_could_mean_two_things() {
        for (raw, err) in [
            ("bkt/a", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
            ("/bkt/../other/x", PathError::DotSegment),
            ("/bkt/./x", PathError::DotSegment),
            ("/bkt/x/..", PathError::DotSegment),
            ("/bkt/%2e%2e/other", PathError::DotSegment),
            ("/bkt/%2E%2e/other", PathError::DotSegment),
            ("/bkt/.%2e/other", PathError::DotSegment),
            ("/bkt/%2e/x", PathError::DotSegment),
            ("/..", PathError::DotSegment),
            ("/bkt/a%2Fb", PathError::EncodedSeparator),
            ("/bkt/..%2f..%2fother", PathError::EncodedSeparator),
            ("/bkt/a%5cb", PathError::EncodedSeparator),
            ("/bkt/a\\b", PathError::EncodedSeparator),
            ("/bkt/%252e%252e/x", PathError::DoubleEncoding),
            ("/bkt/a%252Fb", PathError::DoubleEncoding),
            ("/bkt/%25%35%63", PathError::DoubleEncoding),
            ("/bkt/a%00", PathError::ControlCharacter),
            ("/bkt/a%0d%0aX: y", PathError::ControlCharacter),
            ("/bkt/%zz", PathError::BadEscape),
            ("/bkt/%2", PathError::BadEscape),
            ("/bkt/%", PathError::BadEscape),
            ("/bkt/%c0%af", PathError::NotUtf8),
            ("/bkt/%ff", PathError::NotUtf8),
            ("//key", PathError::NoBucket),
        ] {
            assert_eq!(normalize_path(raw), Err(err), "{raw}");
        }
        assert_eq!(normalize_path(&format!("/bkt/{}", "a".repeat(MAX_PATH_BYTES))), Err(PathError::TooLong));
    }

    #[test]
    fn parses_only_storage_scopes_with_absolute_paths() {
        let parsed = scopes("openid storage.read:/ storage.create:/bkt/data/ storage.modify:/bkt//x storage.stage:/bkt storage.read storage.read:bkt storage.read:/bkt/../etc compute.read:/ offline_access");
        let shown: Vec<String> = parsed.iter().map(|s| format!("{}:{}", s.operation.scope_name(), s.path)).collect();
        assert_eq!(shown, ["storage.read:/", "storage.create:/bkt/data", "storage.modify:/bkt/x"]);
    }

    #[test]
    fn reads_need_storage_read_on_a_covering_path() {
        for method in ["GET", "HEAD", "PROPFIND"] {
            assert_eq!(decide(method, "/bkt/data/f", None, None, "storage.read:/bkt/data"), "ok");
            assert_eq!(decide(method, "/bkt/data/f", None, None, "storage.modify:/bkt"), "403 storage.read:/bkt/data/f");
        }
        assert_eq!(decide("GET", "/any/thing", None, None, "storage.read:/"), "ok");
        assert_eq!(decide("GET", "/bkt/data", None, None, "storage.read:/bkt/data"), "ok");
        assert_eq!(decide("GET", "/bkt/data/", None, None, "storage.read:/bkt/data"), "ok");
        // Whole segments: /bkt/data does not cover /bkt/data2 or the bucket itself.
        assert_eq!(decide("GET", "/bkt/data2", None, None, "storage.read:/bkt/data"), "403 storage.read:/bkt/data2");
        assert_eq!(decide("GET", "/bkt/data2/f", None, None, "storage.read:/bkt/data"), "403 storage.read:/bkt/data2/f");
        assert_eq!(decide("GET", "/bkt", None, None, "storage.read:/bkt/data"), "403 storage.read:/bkt");
        assert_eq!(decide("GET", "/other/data", None, None, "storage.read:/bkt/data"), "403 storage.read:/other/data");
        // An escaped name is matched as decoded, once.
        assert_eq!(decide("GET", "/bkt/d%61ta/f", None, None, "storage.read:/bkt/data"), "ok");
        assert_eq!(decide("GET", "/bkt/data/x", None, None, ""), "403 storage.read:/bkt/data/x");
    }

    #[test]
    fn dot_segments_never_reach_the_scopes() {
        // A dot segment asks to leave the scope: forbidden, saying why.
        for path in ["/bkt/data/../secret", "/bkt/data/%2e%2e/secret", "/bkt/data/%2E%2E/secret", "/bkt/data/./f"] {
            let verdict = decide("GET", path, None, None, "storage.read:/bkt/data");
            assert!(verdict.starts_with("403 ") && verdict.contains("'.' or '..'") && verdict.contains("outside the token's scope"), "{path}: {verdict}");
        }
        let verdict = decide("GET", "/bkt/data/..%2fsecret", None, None, "storage.read:/bkt/data");
        assert!(verdict.starts_with("400 ") && verdict.contains("encoded '/'"), "{verdict}");
    }

    #[test]
    fn writes_need_create_or_modify() {
        // A new object: create, or modify (which includes creating).
        assert_eq!(decide("PUT", "/bkt/d/new", Some(false), None, "storage.create:/bkt/d"), "ok if absent");
        assert_eq!(decide("PUT", "/bkt/d/new", None, None, "storage.create:/bkt/d"), "ok if absent");
        assert_eq!(decide("PUT", "/bkt/d/new", Some(false), None, "storage.modify:/bkt/d"), "ok");
        assert_eq!(decide("PUT", "/bkt/d/new", None, None, "storage.modify:/bkt/d"), "ok");
        // Overwriting: modify only.
        assert_eq!(decide("PUT", "/bkt/d/old", Some(true), None, "storage.create:/bkt/d"), "403 storage.modify:/bkt/d/old");
        assert_eq!(decide("PUT", "/bkt/d/old", Some(true), None, "storage.modify:/bkt/d"), "ok");
        // A read-only token writes nothing.
        assert_eq!(decide("PUT", "/bkt/d/new", Some(false), None, "storage.read:/"), "403 storage.create:/bkt/d/new");
        assert_eq!(decide("PUT", "/bkt/d/new", None, None, "storage.read:/"), "403 storage.create:/bkt/d/new");
        assert_eq!(decide("MKCOL", "/bkt/d/dir", None, None, "storage.create:/bkt/d"), "ok");
        assert_eq!(decide("MKCOL", "/bkt/d/dir", None, None, "storage.modify:/bkt/d"), "ok");
        assert_eq!(decide("MKCOL", "/bkt/e/dir", None, None, "storage.create:/bkt/d"), "403 storage.create:/bkt/e/dir");
        assert_eq!(decide("DELETE", "/bkt/d/f", None, None, "storage.create:/bkt/d storage.read:/"), "403 storage.modify:/bkt/d/f");
        assert_eq!(decide("DELETE", "/bkt/d/f", None, None, "storage.modify:/bkt/d"), "ok");
    }

    #[test]
    fn copy_reads_the_source_move_modifies_it_and_the_destination_is_written_as_by_put() {
        let both = "storage.read:/bkt/a storage.modify:/bkt/a storage.modify:/bkt/b";
        for method in ["MOVE", "COPY"] {
            assert_eq!(decide(method, "/bkt/a/f", None, Some("https://gw.example/bkt/b/f"), both), "ok");
            assert_eq!(decide(method, "/bkt/a/f", None, Some("/bkt/b/f"), both), "ok");
            assert_eq!(decide(method, "/bkt/a/f", None, Some("/bkt/c/f"), both), "403 storage.create:/bkt/c/f");
            let source = if method == "COPY" { "storage.read" } else { "storage.modify" };
            assert_eq!(decide(method, "/bkt/c/f", None, Some("/bkt/b/f"), both), format!("403 {source}:/bkt/c/f"));
            // Create alone at the destination: only where nothing is yet.
            assert_eq!(decide(method, "/bkt/a/f", None, Some("/bkt/b/f"), "storage.read:/bkt/a storage.modify:/bkt/a storage.create:/bkt/b"), "ok if absent");
            assert!(decide(method, "/bkt/a/f", None, Some("http://gw/bkt/b/../../etc"), both).starts_with("403 the request path has a '.' or '..' segment"));
            assert_eq!(decide(method, "/bkt/a/f", None, None, both), "400 MOVE and COPY need a Destination header");
        }
        // COPY only reads its source; MOVE deletes it.
        let read_here = "storage.read:/bkt/a storage.modify:/bkt/b";
        assert_eq!(decide("COPY", "/bkt/a/f", None, Some("/bkt/b/f"), read_here), "ok");
        assert_eq!(decide("MOVE", "/bkt/a/f", None, Some("/bkt/b/f"), read_here), "403 storage.modify:/bkt/a/f");
    }

    #[test]
    fn other_methods_are_refused() {
        assert_eq!(decide("POST", "/bkt/a", None, None, "storage.modify:/"), "405 the method POST is not served");
        assert_eq!(decide("get", "/bkt/a", None, None, "storage.read:/"), "405 the method get is not served");
    }
}
