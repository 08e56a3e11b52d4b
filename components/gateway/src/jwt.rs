//! A bearer JWT taken apart (size cap, three base64url parts, JSON header
//! and claims) and its claims checked against the gateway's [`Validation`].
//! Nothing here trusts the token: [`UnverifiedToken`] holds what the
//! signature covers until [`crate::jwks::Jwk::verify`] has checked it.

use std::fmt;

use base64::Engine as _;
use serde::Deserialize;

/// The longest token read at all, in bytes. WLCG and IAM access tokens are
/// 1–3 KiB; the cap keeps a hostile header from costing base64 and JSON
/// work (and a JWKS fetch) at the gateway's expense.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The signature algorithms accepted: asymmetric only. `none` and the
/// HMAC family are never accepted, whatever a key or token says (HS256
/// "signed" with an RSA public key as the secret is the classic confusion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 7] = [Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::ES256, Alg::ES384, Alg::EdDSA];

    /// The JOSE name (`RS256`, …); names are case-sensitive (RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a token was not accepted. The message is the RFC 6750
/// `error_description`: it names what was wrong, never the token itself,
/// and quotes header values only after [`printable`] has cut them short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    TooLarge { len: usize },
    Malformed(&'static str),
    /// `alg` outside the allowlist; the (shortened) name it gave.
    Algorithm(String),
    /// A `crit` header names extensions this verifier does not implement.
    Critical,
    /// No key of the issuer has this `kid` (or, without a `kid`, none fits `alg`).
    UnknownKey { kid: Option<String> },
    /// Without a `kid`, several of the issuer's keys could verify `alg`.
    AmbiguousKey,
    /// The key with this `kid` cannot verify this `alg` (its type, curve or
    /// own `alg` says otherwise).
    KeyMismatch { kid: Option<String>, alg: Alg },
    BadSignature,
    Expired { exp: i64, now: i64 },
    NotYetValid { nbf: i64, now: i64 },
    WrongIssuer,
    WrongAudience,
    MissingClaim(&'static str),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kid = |kid: &Option<String>| kid.as_deref().map_or_else(|| "no kid".to_string(), |k| format!("kid '{}'", printable(k)));
        match self {
            TokenError::TooLarge { len } => write!(f, "the token has {len} bytes, more than the {MAX_TOKEN_BYTES} accepted"),
            TokenError::Malformed(what) => write!(f, "the token is malformed: {what}"),
            TokenError::Algorithm(alg) => write!(
                f,
                "the token's algorithm '{}' is not accepted (allowed: RS256, RS384, RS512, PS256, ES256, ES384, EdDSA)",
                printable(alg)
            ),
            TokenError::Critical => f.write_str("the token's header has critical extensions ('crit') that are not supported"),
            TokenError::UnknownKey { kid: k } => write!(f, "no key of the issuer matches the token's {}", kid(k)),
            TokenError::AmbiguousKey => f.write_str("the token has no kid and several of the issuer's keys could have signed it"),
            TokenError::KeyMismatch { kid: k, alg } => write!(f, "the issuer's key with {} is not a key for {alg}", kid(k)),
            TokenError::BadSignature => f.write_str("the token's signature does not verify"),
            TokenError::Expired { exp, now } => write!(f, "the token expired {} s ago", now.saturating_sub(*exp)),
            TokenError::NotYetValid { nbf, now } => write!(f, "the token is not valid for another {} s", nbf.saturating_sub(*now)),
            TokenError::WrongIssuer => f.write_str("the token was issued by an issuer this gateway does not trust"),
            TokenError::WrongAudience => f.write_str("the token is not meant for this gateway (audience)"),
            TokenError::MissingClaim(claim) => write!(f, "the token has no '{claim}' claim"),
        }
    }
}

impl std::error::Error for TokenError {}

/// A header value fit to quote in an error: printable ASCII other than
/// quotes and backslashes, at most 40 characters (an attacker picks it).
pub(crate) fn printable(s: &str) -> String {
    let mut out: String =
        s.chars().take(40).map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '\'' { c } else { '?' }).collect();
    if s.chars().nth(40).is_some() {
        out.push_str("...");
    }
    out
}

/// The JOSE header fields that matter. `jku`, `x5u`, `jwk` and `x5c` are
/// not read at all: keys come only from the configured issuer's JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub alg: Alg,
    pub kid: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The claims the gateway reads. NumericDates are whole seconds (a
/// fraction is dropped; values beyond i64 saturate).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    /// The `scope` claim split on spaces.
    pub scope: Vec<String>,
    /// `wlcg.ver` (a string in the WLCG profile; a number is kept as written).
    pub wlcg_ver: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

/// Duplicate names are an error (serde's derive refuses them), so no
/// claim can mean one thing here and another to a second parser.
#[derive(Deserialize)]
struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<OneOrMany>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    scope: Option<String>,
    #[serde(rename = "wlcg.ver")]
    wlcg_ver: Option<StringOrNumber>,
}

fn seconds(value: Option<f64>) -> Option<i64> {
    // `as` saturates at the i64 bounds; JSON has no NaN.
    value.map(|v| v.trunc() as i64)
}

/// A token taken apart but not yet trusted. Its debug form leaves out
/// the encoded parts and the signature, so a log line cannot replay it.
#[derive(Clone)]
pub struct UnverifiedToken {
    pub header: Header,
    pub claims: Claims,
    /// `BASE64URL(header) "." BASE64URL(payload)`: what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

impl fmt::Debug for UnverifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedToken").field("header", &self.header).field("claims", &self.claims).finish_non_exhaustive()
    }
}

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, TokenError> {
    // Unpadded, canonical base64url only (RFC 7515 §2): one token, one encoding.
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed(what))
}

/// Takes a compact JWS apart: size cap first, then exactly three
/// base64url parts, a header whose `alg` is allowed and that has no
/// `crit`, and a JSON object of claims.
pub fn decode(token: &str) -> Result<UnverifiedToken, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge { len: token.len() });
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("a JWT has three dot-separated parts"));
    };
    let header: RawHeader = serde_json::from_slice(&b64(header_b64, "the header is not base64url")?)
        .map_err(|_| TokenError::Malformed("the header is not a JSON object of the expected form"))?;
    let alg_name = header.alg.ok_or(TokenError::Malformed("the header has no 'alg'"))?;
    let alg = Alg::from_name(&alg_name).ok_or(TokenError::Algorithm(alg_name))?;
    if header.crit.is_some() {
        return Err(TokenError::Critical);
    }
    let raw: RawClaims = serde_json::from_slice(&b64(payload_b64, "the payload is not base64url")?)
        .map_err(|_| TokenError::Malformed("the claims are not a JSON object of the expected form"))?;
    let signature = b64(signature_b64, "the signature is not base64url")?;
    if signature.is_empty() {
        return Err(TokenError::Malformed("the signature is empty"));
    }
    let claims = Claims {
        iss: raw.iss,
        sub: raw.sub,
        aud: match raw.aud {
            None => vec![],
            Some(OneOrMany::One(a)) => vec![a],
            Some(OneOrMany::Many(a)) => a,
        },
        exp: seconds(raw.exp),
        nbf: seconds(raw.nbf),
        iat: seconds(raw.iat),
        scope: raw.scope.map(|s| s.split(' ').filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default(),
        wlcg_ver: raw.wlcg_ver.map(|v| match v {
            StringOrNumber::String(s) => s,
            StringOrNumber::Number(n) => n.to_string(),
        }),
    };
    Ok(UnverifiedToken {
        header: Header { alg, kid: header.kid },
        claims,
        signing_input: format!("{header_b64}.{payload_b64}"),
        signature,
    })
}

/// What the gateway requires of a token's claims.
#[derive(Clone, Debug)]
pub struct Validation<'a> {
    /// Compared byte for byte with `iss` (no trailing-slash folding: the
    /// issuer's own discovery document says which form it uses).
    pub issuer: &'a str,
    /// Must be one of the token's `aud` values.
    pub audience: &'a str,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// Unix seconds, from the caller's clock.
    pub now: i64,
}

impl Validation<'_> {
    pub fn check_issuer(&self, claims: &Claims) -> Result<(), TokenError> {
        match claims.iss.as_deref() {
            None => Err(TokenError::MissingClaim("iss")),
            Some(iss) if iss == self.issuer => Ok(()),
            Some(_) => Err(TokenError::WrongIssuer),
        }
    }

    /// Issuer, audience, `exp` (required) and `nbf` (when present).
    pub fn check(&self, claims: &Claims) -> Result<(), TokenError> {
        self.check_issuer(claims)?;
        if claims.aud.is_empty() {
            return Err(TokenError::MissingClaim("aud"));
        }
        if !claims.aud.iter().any(|a| a == self.audience) {
            return Err(TokenError::WrongAudience);
        }
        let leeway = i64::try_from(self.leeway_secs).unwrap_or(i64::MAX);
        let exp = claims.exp.ok_or(TokenError::MissingClaim("exp"))?;
        if self.now >= exp.saturating_add(leeway) {
            return Err(TokenError::Expired { exp, now: self.now });
        }
        if let Some(nbf) = claims.nbf {
            if self.now < nbf.saturating_sub(leeway) {
                return Err(TokenError::NotYetValid { nbf, now: self.now });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, claims: &str) -> String {
        format!("{}.{}.{}", enc(header), enc(claims), enc("sig"))
    }

    const NOW: i64 = 1_700_000_000;

    fn validation() -> Validation<'static> {
        Validation { issuer: "https://iam.example/", audience: "https://gw.example", leeway_secs: 30, now: NOW }
    }

    #[test]
    fn decodes_header_and_claims() {
        let t = decode(&token(
            r#"{"alg":"ES256","kid":"k1","typ":"at+jwt","jku":"https://evil.example/jwks","x5u":"https://evil.example/c","jwk":{"kty":"oct"}}"#,
            r#"{"iss":"https://iam.example/","sub":"u","aud":["a","https://gw.example"],"exp":1700000100.9,"nbf":1699999000,"iat":1699999000,"scope":"openid  storage.read:/bkt","wlcg.ver":"1.0","extra":{"x":1}}"#,
        ))
        .unwrap();
        assert_eq!(t.header, Header { alg: Alg::ES256, kid: Some("k1".into()) });
        assert_eq!(t.claims.aud, ["a", "https://gw.example"]);
        assert_eq!((t.claims.exp, t.claims.nbf), (Some(1_700_000_100), Some(1_699_999_000)));
        assert_eq!(t.claims.scope, ["openid", "storage.read:/bkt"]);
        assert_eq!(t.claims.wlcg_ver.as_deref(), Some("1.0"));
        assert_eq!(t.signature, b"sig");
        assert!(!format!("{t:?}").contains(&enc("sig")) && !format!("{t:?}").contains(&t.signing_input));
        let t = decode(&token(r#"{"alg":"RS256"}"#, r#"{"aud":"x","wlcg.ver":1.0}"#)).unwrap();
        assert_eq!((t.claims.aud, t.claims.wlcg_ver.as_deref(), t.header.kid), (vec!["x".to_string()], Some("1.0"), None));
    }

    #[test]
    fn refuses_algorithms_outside_the_allowlist() {
        for alg in ["none", "None", "HS256", "HS512", "rs256", "ES512", "PS384x", ""] {
            let err = decode(&token(&format!(r#"{{"alg":"{alg}"}}"#), "{}")).unwrap_err();
            assert_eq!(err, TokenError::Algorithm(alg.into()), "{alg}");
        }
        assert_eq!(decode(&token(r#"{"alg":"RS256","crit":["b64"],"b64":false}"#, "{}")).unwrap_err(), TokenError::Critical);
        // A second `alg` is not read past the first: the header is refused.
        for twice in [r#"{"alg":"RS256","alg":"none"}"#, r#"{"alg":"none","alg":"RS256"}"#, r#"{"alg":"ES256","kid":"a","kid":"b"}"#] {
            assert!(matches!(decode(&token(twice, "{}")), Err(TokenError::Malformed(_))), "{twice}");
        }
        assert!(matches!(decode(&token(r#"{"kid":"k"}"#, "{}")), Err(TokenError::Malformed(_))));
        assert!(matches!(decode(&token(r#"{"alg":5}"#, "{}")), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn refuses_malformed_tokens() {
        let good = token(r#"{"alg":"RS256"}"#, r#"{"iss":"i"}"#);
        let cases = [
            String::new(),
            "abc".into(),
            "a.b".into(),
            format!("{good}.x"),
            format!("{good}="),
            good.replacen('.', "+.", 1),
            format!("{}.{}.", enc(r#"{"alg":"RS256"}"#), enc("{}")),
            format!("{}.{}.c2ln", enc(r#"{"alg":"RS256"}"#), enc("[1]")),
            format!("{}.{}.c2ln", enc(r#"{"alg":"RS256"}"#), enc(r#"{"iss":"a","iss":"b"}"#)),
            format!("{}.{}.c2ln", enc(r#"{"alg":"RS256"}"#), enc(r#"{"exp":"tomorrow"}"#)),
            format!("{}.{}.c2ln", enc(r#"{"alg":"RS256"}"#), enc(r#"{"aud":[1]}"#)),
            // Non-canonical base64url: a padding char and set trailing bits.
            format!("{}.{}.c2c=", enc(r#"{"alg":"RS256"}"#), enc("{}")),
            format!("{}.{}.c2d", enc(r#"{"alg":"RS256"}"#), enc("{}")),
        ];
        for bad in &cases {
            assert!(matches!(decode(bad), Err(TokenError::Malformed(_))), "{bad}: {:?}", decode(bad));
        }
        let big = format!("{}.{}.c2ln", enc(r#"{"alg":"RS256"}"#), "A".repeat(MAX_TOKEN_BYTES));
        assert_eq!(decode(&big).unwrap_err(), TokenError::TooLarge { len: big.len() });
    }

    #[test]
    fn validates_issuer_audience_and_times() {
        let v = validation();
        let base = Claims {
            iss: Some("https://iam.example/".into()),
            aud: vec!["https://gw.example".into()],
            exp: Some(NOW + 60),
            ..Claims::default()
        };
        assert_eq!(v.check(&base), Ok(()));
        let with = |f: &dyn Fn(&mut Claims)| {
            let mut c = base.clone();
            f(&mut c);
            v.check(&c)
        };
        assert_eq!(with(&|c| c.iss = Some("https://iam.example".into())), Err(TokenError::WrongIssuer));
        assert_eq!(with(&|c| c.iss = None), Err(TokenError::MissingClaim("iss")));
        assert_eq!(with(&|c| c.aud = vec!["other".into()]), Err(TokenError::WrongAudience));
        assert_eq!(with(&|c| c.aud = vec![]), Err(TokenError::MissingClaim("aud")));
        assert_eq!(with(&|c| c.exp = None), Err(TokenError::MissingClaim("exp")));
        // Leeway: 30 s either side, and no further.
        assert_eq!(with(&|c| c.exp = Some(NOW - 29)), Ok(()));
        assert_eq!(with(&|c| c.exp = Some(NOW - 30)), Err(TokenError::Expired { exp: NOW - 30, now: NOW }));
        assert_eq!(with(&|c| c.nbf = Some(NOW + 30)), Ok(()));
        assert_eq!(with(&|c| c.nbf = Some(NOW + 31)), Err(TokenError::NotYetValid { nbf: NOW + 31, now: NOW }));
        assert_eq!(with(&|c| c.exp = Some(i64::MIN)), Err(TokenError::Expired { exp: i64::MIN, now: NOW }));
        assert_eq!(with(&|c| c.nbf = Some(i64::MIN)), Ok(()));
    }

    #[test]
    fn errors_quote_header_values_only_shortened_and_printable() {
        let long = format!("x\"\\\n{}", "y".repeat(100));
        let text = TokenError::UnknownKey { kid: Some(long.clone()) }.to_string();
        assert!(!text.contains('"') && !text.contains('\\') && !text.contains('\n') && !text.contains(&"y".repeat(41)), "{text}");
        assert!(TokenError::Algorithm(long).to_string().len() < 200);
        assert_eq!(TokenError::Expired { exp: 10, now: 70 }.to_string(), "the token expired 60 s ago");
    }
}
