//! Hex and percent-encoding in the exact forms SigV4 needs.

use alloc::string::String;

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Lowercase hex, as SigV4 writes hashes and signatures.
pub fn hex(bytes: &[u8]) -> String {
    // Written in place: no capacity check per byte (a hot loop in wasm).
    let mut out = alloc::vec![0u8; bytes.len() * 2];
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_LOWER[(b >> 4) as usize];
        pair[1] = HEX_LOWER[(b & 0xf) as usize];
    }
    // SAFETY: only ASCII hex digits were written.
    unsafe { String::from_utf8_unchecked(out) }
}

/// Byte classes for the encoders, one table lookup per byte.
const UNRESERVED: u8 = 1;
const SLASH: u8 = 2;
/// RFC 3986 path characters other than unreserved: sub-delims, `:`, `@`.
const PATH_CHAR: u8 = 4;

const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_' || c == b'~' {
            t[b] = UNRESERVED;
        }
        b += 1;
    }
    t[b'/' as usize] = SLASH;
    let subs = b"!$&'()*+,;=:@";
    let mut i = 0;
    while i < subs.len() {
        t[subs[i] as usize] = PATH_CHAR;
        i += 1;
    }
    t
};

/// RFC 3986 unreserved characters: the only ones SigV4 leaves unencoded.
pub fn is_unreserved(b: u8) -> bool {
    CLASSES[b as usize] == UNRESERVED
}

fn push_escape(out: &mut String, b: u8) {
    let escape = [b'%', HEX_UPPER[(b >> 4) as usize], HEX_UPPER[(b & 0xf) as usize]];
    // SAFETY: ASCII only.
    out.push_str(unsafe { core::str::from_utf8_unchecked(&escape) });
}

/// Appends `input[start..end]`, which the caller checked is ASCII.
fn push_ascii(out: &mut String, input: &[u8]) {
    // SAFETY: callers pass runs of bytes whose class is non-zero: ASCII only.
    out.push_str(unsafe { core::str::from_utf8_unchecked(input) });
}

/// SigV4's URI encoding, appended to `out`: every byte but the unreserved
/// ones (and `/` when `keep_slash`) becomes `%XX` with uppercase hex. Runs of
/// bytes that stay are copied at once.
pub fn uri_encode_into(out: &mut String, input: &[u8], keep_slash: bool) {
    let keep = if keep_slash { UNRESERVED | SLASH } else { UNRESERVED };
    let mut run = 0;
    for (i, &b) in input.iter().enumerate() {
        if CLASSES[b as usize] & keep == 0 {
            push_ascii(out, &input[run..i]);
            push_escape(out, b);
            run = i + 1;
        }
    }
    push_ascii(out, &input[run..]);
}

pub fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 2);
    uri_encode_into(&mut out, input, keep_slash);
    out
}

/// The byte a valid `%XX` escape at `bytes[i]` stands for.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    if bytes.get(i) != Some(&b'%') {
        return None;
    }
    let h = hex_value(*bytes.get(i + 1)?)?;
    let l = hex_value(*bytes.get(i + 2)?)?;
    Some(h << 4 | l)
}

pub fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and `+` as space when `plus_as_space`); a `%` not
/// followed by two hex digits stays literal, as browsers and servers treat it.
pub fn percent_decode(input: &str, plus_as_space: bool) -> alloc::vec::Vec<u8> {
    let bytes = input.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || (plus_as_space && b == b'+')) {
        return bytes.to_vec();
    }
    let mut out = alloc::vec::Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(decoded) = escape_at(bytes, i) {
            out.push(decoded);
            i += 3;
            continue;
        }
        out.push(if b == b'+' && plus_as_space { b' ' } else { b });
        i += 1;
    }
    out
}

/// Characters a URL path may carry unescaped (RFC 3986 pchar besides
/// unreserved): sub-delims, `:` and `@`.
fn is_path_char(b: u8) -> bool {
    CLASSES[b as usize] == PATH_CHAR
}

/// Puts a path into valid URL form without changing its meaning, as a URL
/// parser does: valid `%XX` escapes are kept (hex uppercased), unreserved
/// bytes, `/` and the other path characters stay, and every other byte
/// (space, non-ASCII, a stray `%`, `"`, `{`...) is escaped.
pub fn wire_path(path: &str) -> String {
    let bytes = path.as_bytes();
    // Most paths are already in URL form: copy them at once.
    if bytes.iter().all(|&b| CLASSES[b as usize] != 0) {
        return String::from(path);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(decoded) = escape_at(bytes, i) {
            push_escape(&mut out, decoded);
            i += 3;
            continue;
        }
        if b == b'%' {
            push_escape(&mut out, b'%');
        } else if is_unreserved(b) || b == b'/' || is_path_char(b) {
            out.push(b as char);
        } else {
            push_escape(&mut out, b);
        }
        i += 1;
    }
    out
}

/// The S3 form of a path: the object key encoded exactly once with SigV4's
/// rules. S3 servers decode the path and encode it this way to check the
/// signature, so sending this form leaves no room for disagreement
/// (`+`, `$` or `@` raw on the wire are read differently by different servers).
pub fn s3_path(wire: String) -> String {
    // Most keys need nothing: only unreserved bytes and slashes.
    if wire.bytes().all(|b| CLASSES[b as usize] & (UNRESERVED | SLASH) != 0) {
        return wire;
    }
    uri_encode(&percent_decode(&wire, false), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(uri_encode(b"a b+c/~d", true), "a%20b%2Bc/~d");
        assert_eq!(uri_encode(b"a/b", false), "a%2Fb");
        assert_eq!(uri_encode("ሴ".as_bytes(), true), "%E1%88%B4");
    }

    #[test]
    fn wire_path_keeps_escapes_and_escapes_the_rest() {
        assert_eq!(wire_path("/my key+x/%7e%2F@$"), "/my%20key+x/%7E%2F@$");
        assert_eq!(wire_path("/100%"), "/100%25");
        assert_eq!(wire_path("/%zz"), "/%25zz");
        assert_eq!(wire_path("/ünï"), "/%C3%BCn%C3%AF");
    }

    #[test]
    fn s3_path_encodes_the_key_once() {
        assert_eq!(s3_path("/b/test$file.text".into()), "/b/test%24file.text");
        assert_eq!(s3_path("/b/a+b@c%7E%20d%25".into()), "/b/a%2Bb%40c~%20d%25");
        assert_eq!(s3_path("/b/plain-key_1.txt".into()), "/b/plain-key_1.txt");
    }

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(percent_decode("a%20b+c%", true), b"a b c%");
        assert_eq!(percent_decode("a+b%2", false), b"a+b%2");
        assert_eq!(percent_decode("%E1%88%B4", false), "ሴ".as_bytes());
    }
}
