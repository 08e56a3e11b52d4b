//! An issuer's JSON Web Key Set (RFC 7517) read into verifying keys, each
//! bound to the algorithms its type allows, and JWS signature verification
//! for the allowlist in [`Alg`].
//!
//! Binding: an RSA key (2048 to 8192 bits) verifies RS256, RS384, RS512
//! and PS256; an EC P-256 key only ES256; an EC P-384 key only ES384; an
//! OKP Ed25519 key only EdDSA. A key's own `alg`, when present, narrows
//! that to one; a `use` other than `sig`, or `key_ops` without `verify`,
//! takes the key out. Keys of other types (`oct`, P-521, Ed448, X25519) or
//! with an `alg` outside the allowlist are skipped, not fatal: real JWKS
//! mix signing and encryption keys.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};

use crate::jwt::{printable, Alg, TokenError};

/// The largest JWKS document read, in bytes (IAM and Keycloak serve a few KiB).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// The most keys a JWKS may hold; each RSA key costs setup work.
pub const MAX_KEYS: usize = 64;
/// RSA moduli accepted, in bits: RFC 7518 §3.3 requires 2048 or more; the
/// top bounds verification work.
pub const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// Why a JWKS document as a whole was not usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksError {
    TooLarge { len: usize },
    NotJson,
    NoKeys,
    TooManyKeys { count: usize },
}

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksError::TooLarge { len } => write!(f, "the JWKS has {len} bytes, more than the {MAX_JWKS_BYTES} accepted"),
            JwksError::NotJson => f.write_str("the JWKS is not a JSON object with a 'keys' array"),
            JwksError::NoKeys => f.write_str("the JWKS holds no key that can verify an accepted algorithm"),
            JwksError::TooManyKeys { count } => write!(f, "the JWKS has {count} keys, more than the {MAX_KEYS} accepted"),
        }
    }
}

impl std::error::Error for JwksError {}

#[derive(Clone, Debug)]
enum KeyMaterial {
    Rsa(rsa::PublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// One verifying key of the set.
#[derive(Clone, Debug)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's own `alg`, when it names one.
    pub alg: Option<Alg>,
    key: KeyMaterial,
}

/// A key left out of the set, and why (for the component's log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub kid: Option<String>,
    pub reason: &'static str,
}

#[derive(Clone, Debug)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
    pub skipped: Vec<Skipped>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn b64(field: &Option<String>) -> Result<Vec<u8>, &'static str> {
    let text = field.as_deref().ok_or("a key parameter is missing")?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| "a key parameter is not base64url")
}

/// An EC coordinate of exactly `len` bytes (RFC 7518 §6.2.1.2: full length).
fn coordinate(field: &Option<String>, len: usize) -> Result<Vec<u8>, &'static str> {
    let bytes = b64(field)?;
    if bytes.len() != len {
        return Err("an EC coordinate has the wrong length for its curve");
    }
    Ok(bytes)
}

fn uncompressed_point(x: &[u8], y: &[u8]) -> Vec<u8> {
    [&[0x04][..], x, y].concat()
}

fn rsa_key(raw: &RawJwk) -> Result<rsa::PublicKey, &'static str> {
    let n = b64(&raw.n)?;
    let e = b64(&raw.e)?;
    let strip = |b: &[u8]| b.iter().position(|&x| x != 0).map_or(Vec::new(), |i| b[i..].to_vec());
    let (n, e) = (strip(&n), strip(&e));
    // Checked before any big-number work: a hostile size costs nothing.
    if n.len() * 8 > *RSA_BITS.end() || e.len() > 8 {
        return Err("the RSA key is too large");
    }
    let n = rsa::BoxedUint::from_be_slice_vartime(&n);
    let e = rsa::BoxedUint::from_be_slice_vartime(&e);
    rsa::PublicKey::new_with_size_limits(n, e, RSA_BITS).map_err(|_| "the RSA key is invalid or shorter than 2048 bits")
}

fn parse_key(raw: &RawJwk) -> Result<Jwk, &'static str> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("the key is not for signatures ('use')");
    }
    if raw.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|o| o == "verify")) {
        return Err("the key's 'key_ops' do not include 'verify'");
    }
    let alg = match raw.alg.as_deref() {
        None => None,
        Some(name) => Some(Alg::from_name(name).ok_or("the key's 'alg' is not an accepted algorithm")?),
    };
    let key = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => KeyMaterial::Rsa(rsa_key(raw)?),
        ("EC", Some("P-256")) => {
            let point = uncompressed_point(&coordinate(&raw.x, 32)?, &coordinate(&raw.y, 32)?);
            KeyMaterial::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| "the P-256 point is not on the curve")?)
        }
        ("EC", Some("P-384")) => {
            let point = uncompressed_point(&coordinate(&raw.x, 48)?, &coordinate(&raw.y, 48)?);
            KeyMaterial::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| "the P-384 point is not on the curve")?)
        }
        ("OKP", Some("Ed25519")) => {
            let x: [u8; 32] = coordinate(&raw.x, 32)?.try_into().map_err(|_| "unreachable")?;
            KeyMaterial::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| "the Ed25519 key is not a valid point")?)
        }
        ("EC" | "OKP", _) => return Err("the key's curve is not supported"),
        _ => return Err("the key type is not supported"),
    };
    let jwk = Jwk { kid: raw.kid.clone(), alg, key };
    if let Some(alg) = alg {
        if !jwk.key_allows(alg) {
            return Err("the key's 'alg' does not fit its type");
        }
    }
    Ok(jwk)
}

/// Reads a JWKS document. Unusable keys are listed in [`Jwks::skipped`];
/// a document with no usable key at all is an error.
pub fn parse_jwks(document: &[u8]) -> Result<Jwks, JwksError> {
    if document.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge { len: document.len() });
    }
    let raw: RawJwks = serde_json::from_slice(document).map_err(|_| JwksError::NotJson)?;
    if raw.keys.len() > MAX_KEYS {
        return Err(JwksError::TooManyKeys { count: raw.keys.len() });
    }
    let mut jwks = Jwks { keys: Vec::new(), skipped: Vec::new() };
    for value in raw.keys {
        let kid = value.get("kid").and_then(Value::as_str).map(String::from);
        match serde_json::from_value::<RawJwk>(value) {
            Err(_) => jwks.skipped.push(Skipped { kid, reason: "the key is not a JSON object of the expected form" }),
            Ok(raw) => match parse_key(&raw) {
                Ok(key) => jwks.keys.push(key),
                Err(reason) => jwks.skipped.push(Skipped { kid, reason }),
            },
        }
    }
    if jwks.keys.is_empty() {
        return Err(JwksError::NoKeys);
    }
    Ok(jwks)
}

impl Jwk {
    /// The key type's binding, before the key's own `alg` narrows it.
    fn key_allows(&self, alg: Alg) -> bool {
        match self.key {
            KeyMaterial::Rsa(_) => matches!(alg, Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256),
            KeyMaterial::P256(_) => alg == Alg::ES256,
            KeyMaterial::P384(_) => alg == Alg::ES384,
            KeyMaterial::Ed25519(_) => alg == Alg::EdDSA,
        }
    }

    /// Whether this key may verify a token signed with `alg`.
    pub fn can_verify(&self, alg: Alg) -> bool {
        self.key_allows(alg) && self.alg.is_none_or(|own| own == alg)
    }

    /// `RSA`, `EC P-256`, … for logs.
    pub fn kind(&self) -> &'static str {
        match self.key {
            KeyMaterial::Rsa(_) => "RSA",
            KeyMaterial::P256(_) => "EC P-256",
            KeyMaterial::P384(_) => "EC P-384",
            KeyMaterial::Ed25519(_) => "OKP Ed25519",
        }
    }

    /// Checks a JWS signature over `signing_input` made with `alg`.
    pub fn verify(&self, alg: Alg, signing_input: &[u8], signature: &[u8]) -> Result<(), TokenError> {
        use p256::ecdsa::signature::Verifier as _;
        if !self.can_verify(alg) {
            return Err(TokenError::KeyMismatch { kid: self.kid.clone(), alg });
        }
        let ok = match (&self.key, alg) {
            (KeyMaterial::Rsa(key), Alg::RS256) => key.pkcs1v15_verify::<Sha256>(signing_input, signature).is_ok(),
            (KeyMaterial::Rsa(key), Alg::RS384) => key.pkcs1v15_verify::<Sha384>(signing_input, signature).is_ok(),
            (KeyMaterial::Rsa(key), Alg::RS512) => key.pkcs1v15_verify::<Sha512>(signing_input, signature).is_ok(),
            // RFC 7518 §3.5: the salt is as long as the hash.
            (KeyMaterial::Rsa(key), Alg::PS256) => key.pss_verify::<Sha256>(signing_input, signature).is_ok(),
            (KeyMaterial::P256(key), Alg::ES256) => {
                p256::ecdsa::Signature::from_slice(signature).is_ok_and(|s| key.verify(signing_input, &s).is_ok())
            }
            (KeyMaterial::P384(key), Alg::ES384) => {
                p384::ecdsa::Signature::from_slice(signature).is_ok_and(|s| key.verify(signing_input, &s).is_ok())
            }
            // Strict: no small-order keys, no malleable (non-canonical) signatures.
            (KeyMaterial::Ed25519(key), Alg::EdDSA) => {
                ed25519_dalek::Signature::from_slice(signature).is_ok_and(|s| key.verify_strict(signing_input, &s).is_ok())
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(TokenError::BadSignature)
        }
    }
}

impl Jwks {
    /// The one key that may verify a token with this `kid` and `alg`. A
    /// token without `kid` is accepted only when exactly one key fits its
    /// `alg` (single-key issuers); trying several keys in turn would let
    /// one token cost many verifications.
    pub fn find(&self, kid: Option<&str>, alg: Alg) -> Result<&Jwk, TokenError> {
        let named: Vec<&Jwk> = match kid {
            Some(kid) => self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect(),
            None => self.keys.iter().collect(),
        };
        let fitting: Vec<&Jwk> = named.iter().copied().filter(|k| k.can_verify(alg)).collect();
        match (named.len(), fitting.as_slice()) {
            (_, [one]) => Ok(one),
            (0, _) => Err(TokenError::UnknownKey { kid: kid.map(String::from) }),
            (_, []) if kid.is_none() => Err(TokenError::UnknownKey { kid: None }),
            (_, []) => Err(TokenError::KeyMismatch { kid: kid.map(String::from), alg }),
            _ => Err(TokenError::AmbiguousKey),
        }
    }
}

impl Skipped {
    /// `kid 'k1': reason`, shortened and printable, for logs.
    pub fn describe(&self) -> String {
        match &self.kid {
            Some(kid) => format!("kid '{}': {}", printable(kid), self.reason),
            None => format!("a key without kid: {}", self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Public keys from RFC 7515 Appendices A.2 (RSA) and A.3 (P-256) and
    /// RFC 8037 Appendix A.2 (Ed25519).
    const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn jwks(keys: &[String]) -> Vec<u8> {
        format!(r#"{{"keys":[{}]}}"#, keys.join(",")).into_bytes()
    }

    fn rsa(extra: &str) -> String {
        format!(r#"{{"kty":"RSA","kid":"r","n":"{RSA_N}","e":"AQAB"{extra}}}"#)
    }

    fn p256(extra: &str) -> String {
        format!(r#"{{"kty":"EC","kid":"e","crv":"P-256","x":"{P256_X}","y":"{P256_Y}"{extra}}}"#)
    }

    fn ed(extra: &str) -> String {
        format!(r#"{{"kty":"OKP","kid":"o","crv":"Ed25519","x":"{ED_X}"{extra}}}"#)
    }

    #[test]
    fn binds_each_key_type_to_its_algorithms() {
        let set = parse_jwks(&jwks(&[rsa(""), p256(""), ed("")])).unwrap();
        assert_eq!(set.keys.iter().map(Jwk::kind).collect::<Vec<_>>(), ["RSA", "EC P-256", "OKP Ed25519"]);
        let allowed = |k: &Jwk| Alg::ALL.into_iter().filter(|a| k.can_verify(*a)).collect::<Vec<_>>();
        assert_eq!(allowed(&set.keys[0]), [Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256]);
        assert_eq!(allowed(&set.keys[1]), [Alg::ES256]);
        assert_eq!(allowed(&set.keys[2]), [Alg::EdDSA]);
        let set = parse_jwks(&jwks(&[rsa(r#","alg":"PS256","use":"sig","key_ops":["verify"]"#)])).unwrap();
        assert_eq!(allowed(&set.keys[0]), [Alg::PS256]);
        assert_eq!(set.keys[0].verify(Alg::RS256, b"x", b"y"), Err(TokenError::KeyMismatch { kid: Some("r".into()), alg: Alg::RS256 }));
    }

    #[test]
    fn skips_keys_it_cannot_use() {
        let skipped = |key: String| {
            let doc = jwks(&[key, ed("")]);
            let set = parse_jwks(&doc).unwrap();
            assert_eq!(set.keys.len(), 1);
            set.skipped[0].reason
        };
        assert_eq!(skipped(rsa(r#","use":"enc""#)), "the key is not for signatures ('use')");
        assert_eq!(skipped(rsa(r#","key_ops":["encrypt"]"#)), "the key's 'key_ops' do not include 'verify'");
        assert_eq!(skipped(rsa(r#","alg":"HS256""#)), "the key's 'alg' is not an accepted algorithm");
        assert_eq!(skipped(rsa(r#","alg":"RSA-OAEP""#)), "the key's 'alg' is not an accepted algorithm");
        assert_eq!(skipped(p256(r#","alg":"RS256""#)), "the key's 'alg' does not fit its type");
        assert_eq!(skipped(r#"{"kty":"oct","k":"c2VjcmV0"}"#.into()), "the key type is not supported");
        assert_eq!(skipped(r#"{"kty":"OKP","crv":"Ed448","x":"AA"}"#.into()), "the key's curve is not supported");
        assert_eq!(skipped(p256("").replace(P256_Y, &P256_X.replace('f', "g"))), "the P-256 point is not on the curve");
        assert_eq!(skipped(p256("").replace(r#""crv":"P-256""#, r#""crv":"P-384""#)), "an EC coordinate has the wrong length for its curve");
        assert_eq!(skipped(rsa("").replace(RSA_N, &RSA_N[..256])), "the RSA key is invalid or shorter than 2048 bits");
        assert_eq!(skipped(rsa("").replace(RSA_N, &RSA_N.repeat(5))), "the RSA key is too large");
        assert_eq!(skipped(rsa("").replace("AQAB", "AQ==")), "a key parameter is not base64url");
        assert_eq!(skipped(rsa("").replace(r#","e":"AQAB""#, "")), "a key parameter is missing");
        assert_eq!(skipped(r#"{"kid":"x"}"#.into()), "the key is not a JSON object of the expected form");
        assert_eq!(skipped("[]".into()), "the key is not a JSON object of the expected form");
    }

    #[test]
    fn refuses_unusable_documents() {
        assert_eq!(parse_jwks(b"<html>").unwrap_err(), JwksError::NotJson);
        assert_eq!(parse_jwks(br#"{"keys":{}}"#).unwrap_err(), JwksError::NotJson);
        assert_eq!(parse_jwks(br#"{"keys":[]}"#).unwrap_err(), JwksError::NoKeys);
        assert_eq!(parse_jwks(&jwks(&[rsa(r#","use":"enc""#)])).unwrap_err(), JwksError::NoKeys);
        let many: Vec<String> = (0..=MAX_KEYS).map(|_| ed("")).collect();
        assert_eq!(parse_jwks(&jwks(&many)).unwrap_err(), JwksError::TooManyKeys { count: MAX_KEYS + 1 });
        let big = vec![b' '; MAX_JWKS_BYTES + 1];
        assert_eq!(parse_jwks(&big).unwrap_err(), JwksError::TooLarge { len: MAX_JWKS_BYTES + 1 });
    }

    #[test]
    fn finds_the_one_key_for_kid_and_alg() {
        let set = parse_jwks(&jwks(&[rsa(""), p256(""), ed("")])).unwrap();
        assert_eq!(set.find(Some("e"), Alg::ES256).unwrap().kind(), "EC P-256");
        assert_eq!(set.find(Some("x"), Alg::ES256).unwrap_err(), TokenError::UnknownKey { kid: Some("x".into()) });
        assert_eq!(set.find(Some("e"), Alg::RS256).unwrap_err(), TokenError::KeyMismatch { kid: Some("e".into()), alg: Alg::RS256 });
        // Without kid: only when one key fits.
        assert_eq!(set.find(None, Alg::EdDSA).unwrap().kind(), "OKP Ed25519");
        assert_eq!(set.find(None, Alg::ES384).unwrap_err(), TokenError::UnknownKey { kid: None });
        let twice = parse_jwks(&jwks(&[ed(""), ed("")])).unwrap();
        assert_eq!(twice.find(None, Alg::EdDSA).unwrap_err(), TokenError::AmbiguousKey);
        assert_eq!(twice.find(Some("o"), Alg::EdDSA).unwrap_err(), TokenError::AmbiguousKey);
    }

    #[test]
    fn verifies_the_rfc_example_signatures() {
        // RFC 8037 Appendix A.4: EdDSA over "Example of Ed25519 signing".
        let set = parse_jwks(&jwks(&[ed("")])).unwrap();
        let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")
            .unwrap();
        assert_eq!(set.keys[0].verify(Alg::EdDSA, input.as_bytes(), &sig), Ok(()));
        let mut flipped = sig.clone();
        flipped[5] ^= 1;
        assert_eq!(set.keys[0].verify(Alg::EdDSA, input.as_bytes(), &flipped), Err(TokenError::BadSignature));
        assert_eq!(set.keys[0].verify(Alg::EdDSA, input.as_bytes(), &sig[..63]), Err(TokenError::BadSignature));
    }
}
