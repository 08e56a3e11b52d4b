//! The flat form of `sign` for dynamic hosts (Python's `wasmtime`, jco):
//! strings and scalars in, one string out. Such hosts convert WIT records,
//! lists and variants value by value, re-reading their types on every call;
//! a handful of strings crosses far faster. Only the encoding lives here:
//! the request is signed by the same `Signer` as `sign`.
//!
//! Separator: NUL, which no header name or value, URL, credential, hash or
//! signature may contain (the signer rejects control characters), so a
//! value holding one can never pass as a field boundary: the announced
//! header count catches it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::{Payload, SignError, SignedRequest, SigningTime, UNSIGNED_PAYLOAD};

pub const SEPARATOR: char = '\0';

/// `name NUL value NUL name NUL value ...` (no trailing NUL) into pairs;
/// `count` must match, or a name or value held a NUL.
pub fn headers(block: &str, count: u32) -> Result<Vec<(String, String)>, SignError> {
    let fields: Vec<&str> = if block.is_empty() { Vec::new() } else { block.split(SEPARATOR).collect() };
    if fields.len() as u64 != 2 * u64::from(count) {
        return Err(SignError::InvalidHeader(format!(
            "the header block holds {} names and values for {count} headers: a header name or value contains a NUL character",
            fields.len()
        )));
    }
    Ok(fields.chunks(2).map(|p| (String::from(p[0]), String::from(p[1]))).collect())
}

/// `""`: no body; `UNSIGNED-PAYLOAD`; anything else: the body's SHA-256
/// (hex) computed by the caller, which hashes natively (faster than in wasm,
/// and no bytes cross).
pub fn payload(p: String) -> Payload {
    match p.as_str() {
        "" => Payload::Empty,
        UNSIGNED_PAYLOAD => Payload::UnsignedPayload,
        _ => Payload::Precomputed(p),
    }
}

/// Decimal Unix seconds, or an `X-Amz-Date` (which is never all digits).
pub fn time(t: String) -> SigningTime {
    let digits = t.strip_prefix('-').unwrap_or(&t);
    match t.parse::<i64>() {
        Ok(s) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => SigningTime::UnixSeconds(s),
        _ => SigningTime::AmzDate(t),
    }
}

/// `url, signature, signed-headers, payload-hash, authorization ("" when
/// presigned), string-to-sign, canonical-request`, then each header to send
/// as name, value; joined by NUL.
pub fn encode(s: &SignedRequest) -> String {
    let mut out = String::new();
    let fields = [&s.url, &s.signature, &s.signed_headers, &s.payload_hash];
    for f in fields {
        out.push_str(f);
        out.push(SEPARATOR);
    }
    out.push_str(s.authorization.as_deref().unwrap_or(""));
    for f in [&s.string_to_sign, &s.canonical_request] {
        out.push(SEPARATOR);
        out.push_str(f);
    }
    for (name, value) in &s.headers {
        out.push(SEPARATOR);
        out.push_str(name);
        out.push(SEPARATOR);
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{sign, Credentials, SignOptions, SignableRequest};

    fn credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    #[test]
    fn header_block_round_trips_values_with_line_breaks() {
        let got = headers("Range\0bytes=0-9\0X-Folded\0a\n  b", 2).unwrap();
        assert_eq!(got, [("Range".into(), "bytes=0-9".into()), ("X-Folded".into(), "a\n  b".into())]);
        assert_eq!(headers("", 0).unwrap(), []);
    }

    #[test]
    fn a_nul_inside_a_name_or_value_is_refused() {
        // "a\0b" as a value would otherwise read as a value and a new name.
        for (block, count) in [("X\0a\0b", 1), ("X\0a\0b\0c", 1), ("X", 1), ("", 1), ("X\0v", 0)] {
            match headers(block, count) {
                Err(SignError::InvalidHeader(m)) => assert!(m.contains("NUL"), "{m}"),
                other => panic!("{block:?}/{count}: {other:?}"),
            }
        }
    }

    #[test]
    fn time_and_payload_forms() {
        assert_eq!(time("1369353600".into()), SigningTime::UnixSeconds(1369353600));
        assert_eq!(time("-5".into()), SigningTime::UnixSeconds(-5));
        assert_eq!(time("20130524T000000Z".into()), SigningTime::AmzDate("20130524T000000Z".into()));
        assert_eq!(time("-".into()), SigningTime::AmzDate("-".into()));
        assert_eq!(time("99999999999999999999".into()), SigningTime::AmzDate("99999999999999999999".into()));
        assert_eq!(payload("".into()), Payload::Empty);
        assert_eq!(payload("UNSIGNED-PAYLOAD".into()), Payload::UnsignedPayload);
        assert_eq!(payload("abc".into()), Payload::Precomputed("abc".into()));
    }

    /// AWS's GET-with-Range example, encoded: every field where the host
    /// will look for it.
    #[test]
    fn encodes_every_field_of_the_signed_request() {
        let request = SignableRequest {
            method: "GET".into(),
            url: "https://examplebucket.s3.amazonaws.com/test.txt".into(),
            headers: headers("Range\0bytes=0-9", 1).unwrap(),
            payload: payload(String::new()),
        };
        let signed = sign(&request, credentials(), &SignOptions::s3("us-east-1", time("20130524T000000Z".into()))).unwrap();
        let out = encode(&signed);
        let fields: Vec<&str> = out.split(SEPARATOR).collect();
        assert_eq!(fields[1], "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
        assert_eq!(fields[0], signed.url);
        assert_eq!(fields[2], signed.signed_headers);
        assert_eq!(fields[3], signed.payload_hash);
        assert_eq!(Some(fields[4]), signed.authorization.as_deref());
        assert_eq!(fields[5], signed.string_to_sign);
        assert_eq!(fields[6], signed.canonical_request);
        let pairs: Vec<(String, String)> = fields[7..].chunks(2).map(|p| (p[0].into(), p[1].into())).collect();
        assert_eq!(pairs, signed.headers);
    }
}
