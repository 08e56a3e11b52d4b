//! Real tokens through the whole core: signed with RSA 2048, P-256, P-384
//! and Ed25519 keys made here, verified against the issuer's JWKS through
//! the key cache, then authorized by their WLCG storage scopes. Every
//! hostile token the gateway must turn away is here, each with the error
//! it must get.

mod common;

use common::*;
use hmac::{KeyInit as _, Mac as _};
use lakeport_gateway::*;

fn validation() -> Validation<'static> {
    Validation { issuer: ISSUER, audience: AUDIENCE, leeway_secs: 60, now: NOW }
}

/// A cache holding the issuer's JWKS, fetched `age` seconds before NOW.
fn cache_fetched_ago(age: i64) -> JwksCache {
    let mut cache = JwksCache::new(CachePolicy { ttl_secs: 900, refetch_interval_secs: 60 });
    cache.store(Keys::issuer().jwks().as_bytes(), NOW - age).unwrap();
    cache
}

fn check(token: &str) -> Authentication {
    authenticate(token, &validation(), &mut cache_fetched_ago(10))
}

fn refused(token: &str) -> TokenError {
    match check(token) {
        Authentication::Invalid(e) => {
            // The RFC 6750 challenge for it never shows the token or a part of it.
            let header = challenge::invalid_token("lakeport", &e);
            for part in token.split('.').filter(|p| p.len() > 8) {
                assert!(!header.contains(part), "{header} shows the token");
            }
            e
        }
        other => panic!("accepted or deferred: {other:?}"),
    }
}

fn header(alg: &str, kid: &str) -> String {
    format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#)
}

#[test]
fn every_algorithm_verifies_with_its_key() {
    for alg in Alg::ALL {
        let token = valid_token(alg, "storage.read:/bkt");
        match check(&token) {
            Authentication::Valid(claims) => {
                assert_eq!(claims.sub.as_deref(), Some("alice"), "{alg}");
                assert_eq!(claims.scope, ["storage.read:/bkt"]);
                assert_eq!(claims.wlcg_ver.as_deref(), Some("1.0"));
            }
            other => panic!("{alg}: {other:?}"),
        }
    }
}

#[test]
fn the_first_token_fetches_the_keys_then_verifies() {
    let mut cache = JwksCache::new(CachePolicy::default());
    let token = valid_token(Alg::ES256, "");
    assert_eq!(authenticate(&token, &validation(), &mut cache), Authentication::FetchKeys);
    cache.store(Keys::issuer().jwks().as_bytes(), NOW).unwrap();
    assert!(matches!(authenticate(&token, &validation(), &mut cache), Authentication::Valid(_)));
    // The encryption key in the JWKS was left out, and said why.
    let skipped = &cache.keys().unwrap().skipped;
    assert_eq!(skipped.iter().map(|s| s.describe()).collect::<Vec<_>>(), ["kid 'enc': the key is not for signatures ('use')"]);
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let keys = Keys::issuer();
    let at = |exp: i64, nbf: i64| {
        let claims = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp},"nbf":{nbf}}}"#);
        keys.token(Alg::RS256, &header("RS256", "rsa"), &claims)
    };
    assert_eq!(refused(&at(NOW - 61, NOW - 1000)), TokenError::Expired { exp: NOW - 61, now: NOW });
    assert_eq!(refused(&at(NOW + 1000, NOW + 61)), TokenError::NotYetValid { nbf: NOW + 61, now: NOW });
    // Within the 60 s leeway, both pass.
    assert!(matches!(check(&at(NOW - 59, NOW + 59)), Authentication::Valid(_)));
    let no_exp = keys.token(Alg::EdDSA, &header("EdDSA", "ed"), &format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}"}}"#));
    assert_eq!(refused(&no_exp), TokenError::MissingClaim("exp"));
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let keys = Keys::issuer();
    let other_issuer = claims("", "").replace(ISSUER, "https://iam.example");
    assert_eq!(refused(&keys.token(Alg::ES256, &header("ES256", "p256"), &other_issuer)), TokenError::WrongIssuer);
    let evil_issuer = claims("", "").replace(ISSUER, "https://evil.example/");
    assert_eq!(refused(&keys.token(Alg::ES256, &header("ES256", "p256"), &evil_issuer)), TokenError::WrongIssuer);
    let other_audience = claims("", "").replace(AUDIENCE, "https://other.example");
    assert_eq!(refused(&keys.token(Alg::ES256, &header("ES256", "p256"), &other_audience)), TokenError::WrongAudience);
}

#[test]
fn bad_signatures_are_refused() {
    for alg in Alg::ALL {
        let token = valid_token(alg, "storage.read:/");
        let (input, signature) = token.rsplit_once('.').unwrap();
        // One bit of the signature flipped.
        let mut bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature).unwrap();
        bytes[7] ^= 0x10;
        assert_eq!(refused(&format!("{input}.{}", b64(&bytes))), TokenError::BadSignature, "{alg}");
        // The claims changed under the same signature (scope widened).
        let (head, _) = input.split_once('.').unwrap();
        let widened = b64(claims("storage.modify:/", "").as_bytes());
        assert_eq!(refused(&format!("{head}.{widened}.{signature}")), TokenError::BadSignature, "{alg}");
        // Signed by someone else's key of the right type, under the issuer's kid.
        let forged = Keys::attacker().token(alg, &format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, kid_for(alg)), &claims("", ""));
        assert_eq!(refused(&forged), TokenError::BadSignature, "{alg}");
    }
    // ECDSA signatures are raw r||s in JWS; the DER form is not one.
    let token = valid_token(Alg::ES256, "");
    let (input, _) = token.rsplit_once('.').unwrap();
    let der = {
        use p256::ecdsa::signature::Signer as _;
        let s: p256::ecdsa::Signature = Keys::issuer().p256.sign(input.as_bytes());
        s.to_der().as_bytes().to_vec()
    };
    assert_eq!(refused(&format!("{input}.{}", b64(&der))), TokenError::BadSignature);
}

#[test]
fn alg_none_is_refused() {
    let claims = b64(claims("storage.modify:/", "").as_bytes());
    for head in [r#"{"alg":"none"}"#, r#"{"alg":"none","kid":"rsa"}"#, r#"{"alg":"NONE","kid":"rsa"}"#] {
        let unsigned = format!("{}.{claims}.", b64(head.as_bytes()));
        assert!(matches!(refused(&unsigned), TokenError::Algorithm(_)), "{head}");
        let with_sig = format!("{}.{claims}.c2ln", b64(head.as_bytes()));
        assert!(matches!(refused(&with_sig), TokenError::Algorithm(_)), "{head}");
    }
}

#[test]
fn hs256_with_the_rsa_public_key_as_secret_is_refused() {
    // The classic confusion: a verifier that took the RSA key's public
    // bytes as an HMAC secret would accept this.
    let jwks = Keys::issuer().jwks();
    let n = jwks.split(r#""n":""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    for secret in [n.as_bytes().to_vec(), jwks.as_bytes().to_vec()] {
        for alg in ["HS256", "HS384", "HS512"] {
            let input = format!("{}.{}", b64(header(alg, "rsa").as_bytes()), b64(claims("storage.modify:/", "").as_bytes()));
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
            mac.update(input.as_bytes());
            let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
            assert_eq!(refused(&token), TokenError::Algorithm(alg.into()));
        }
    }
}

#[test]
fn keys_are_bound_to_their_algorithms() {
    let keys = Keys::issuer();
    // An RSA-signed token naming the EC key, an EC-signed one naming the RSA key.
    assert_eq!(
        refused(&keys.token(Alg::RS256, &header("RS256", "p256"), &claims("", ""))),
        TokenError::KeyMismatch { kid: Some("p256".into()), alg: Alg::RS256 }
    );
    assert_eq!(
        refused(&keys.token(Alg::ES256, &header("ES256", "rsa"), &claims("", ""))),
        TokenError::KeyMismatch { kid: Some("rsa".into()), alg: Alg::ES256 }
    );
    // The curve decides: ES384 on the P-256 key, ES256 on the P-384 key.
    assert_eq!(
        refused(&keys.token(Alg::ES256, &header("ES384", "p256"), &claims("", ""))),
        TokenError::KeyMismatch { kid: Some("p256".into()), alg: Alg::ES384 }
    );
    assert_eq!(
        refused(&keys.token(Alg::ES384, &header("ES256", "p384"), &claims("", ""))),
        TokenError::KeyMismatch { kid: Some("p384".into()), alg: Alg::ES256 }
    );
    assert_eq!(
        refused(&keys.token(Alg::EdDSA, &header("EdDSA", "rsa"), &claims("", ""))),
        TokenError::KeyMismatch { kid: Some("rsa".into()), alg: Alg::EdDSA }
    );
    // Among RSA algorithms the header's alg decides the padding and hash:
    // an RS256 signature over a header saying PS256 or RS512 does not pass.
    for alg in ["PS256", "RS384", "RS512"] {
        let input = format!("{}.{}", b64(header(alg, "rsa").as_bytes()), b64(claims("", "").as_bytes()));
        let signature = keys.sign(Alg::RS256, input.as_bytes());
        assert_eq!(refused(&format!("{input}.{}", b64(&signature))), TokenError::BadSignature, "{alg}");
    }
}

#[test]
fn a_verified_token_is_remembered_with_its_keys_and_its_claims_still_checked() {
    let token = valid_token(Alg::RS256, "storage.read:/bkt");
    let digest = TokenDigest::of(&token);
    let mut cache = cache_fetched_ago(10);
    assert!(!cache.verified(&digest, NOW));
    assert!(matches!(authenticate(&token, &validation(), &mut cache), Authentication::Valid(_)));
    // Remembered: the next request skips the signature, not the claims.
    assert!(cache.verified(&digest, NOW));
    match authenticate(&token, &validation(), &mut cache) {
        Authentication::Valid(claims) => assert_eq!(claims.sub.as_deref(), Some("alice")),
        other => panic!("{other:?}"),
    }
    let later = Validation { now: NOW + 600 + 60, ..validation() };
    assert!(matches!(authenticate(&token, &later, &mut cache), Authentication::Invalid(TokenError::Expired { .. })));
    let wrong_audience = Validation { audience: "another-gateway", ..validation() };
    assert_eq!(authenticate(&token, &wrong_audience, &mut cache), Authentication::Invalid(TokenError::WrongAudience));
    // Keys past their TTL forget it: the keys are fetched again first.
    let mut aging = cache_fetched_ago(850);
    assert!(matches!(authenticate(&token, &validation(), &mut aging), Authentication::Valid(_)));
    assert!(aging.verified(&digest, NOW + 49));
    assert!(!aging.verified(&digest, NOW + 50));
    let stale = Validation { now: NOW + 50, ..validation() };
    assert_eq!(authenticate(&token, &stale, &mut aging), Authentication::FetchKeys);
    // New keys forget it too: a JWKS without the token's key refuses it.
    let without_rsa = {
        let mut jwks: serde_json::Value = serde_json::from_str(&Keys::issuer().jwks()).unwrap();
        jwks["keys"].as_array_mut().unwrap().retain(|k| k["kty"] != "RSA");
        jwks.to_string()
    };
    cache.store(without_rsa.as_bytes(), NOW).unwrap();
    assert!(!cache.verified(&digest, NOW));
    assert!(matches!(authenticate(&token, &validation(), &mut cache), Authentication::Invalid(TokenError::UnknownKey { .. })));
}

#[test]
fn the_memory_of_verified_tokens_is_bounded_and_drops_expired_ones_first() {
    let mut cache = cache_fetched_ago(10);
    cache.remember(TokenDigest::of("expired"), NOW - 1, NOW);
    cache.remember(TokenDigest::of("kept"), NOW + 100, NOW);
    for i in 2..MAX_VERIFIED_TOKENS {
        cache.remember(TokenDigest::of(&format!("t{i}")), NOW + 100, NOW);
    }
    // Full: the next one makes room by dropping the expired token only.
    cache.remember(TokenDigest::of("new"), NOW + 100, NOW);
    assert!(!cache.verified(&TokenDigest::of("expired"), NOW));
    assert!(cache.verified(&TokenDigest::of("kept"), NOW));
    assert!(cache.verified(&TokenDigest::of("new"), NOW));
    // Full of live tokens: it starts over rather than grow.
    cache.remember(TokenDigest::of("one more"), NOW + 100, NOW);
    assert!(!cache.verified(&TokenDigest::of("kept"), NOW));
    assert!(cache.verified(&TokenDigest::of("one more"), NOW));
}

#[test]
fn an_unknown_kid_is_refused_after_at_most_one_refetch() {
    let token = Keys::attacker().token(Alg::EdDSA, &header("EdDSA", "rotated"), &claims("", ""));
    // Keys fetched 10 s ago: no refetch for a kid they lack.
    assert_eq!(refused(&token), TokenError::UnknownKey { kid: Some("rotated".into()) });
    // Keys fetched 5 minutes ago: one refetch, then refused.
    let mut cache = cache_fetched_ago(300);
    assert_eq!(authenticate(&token, &validation(), &mut cache), Authentication::FetchKeys);
    cache.store(Keys::issuer().jwks().as_bytes(), NOW).unwrap();
    assert_eq!(
        authenticate(&token, &validation(), &mut cache),
        Authentication::Invalid(TokenError::UnknownKey { kid: Some("rotated".into()) })
    );
    // A stream of made-up kids gets no further fetch.
    for i in 0..50 {
        let token = Keys::attacker().token(Alg::EdDSA, &header("EdDSA", &format!("k{i}")), &claims("", ""));
        let now = Validation { now: NOW + 59, ..validation() };
        assert!(matches!(authenticate(&token, &now, &mut cache), Authentication::Invalid(TokenError::UnknownKey { .. })));
    }
}

#[test]
fn keys_offered_in_the_header_are_never_used() {
    let attacker = Keys::attacker();
    let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, b64(attacker.ed.verifying_key().as_bytes()));
    for head in [
        r#"{"alg":"EdDSA","kid":"attacker","jku":"https://evil.example/jwks.json"}"#.to_string(),
        format!(r#"{{"alg":"EdDSA","kid":"attacker","jwk":{jwk}}}"#),
        r#"{"alg":"EdDSA","kid":"attacker","x5u":"https://evil.example/cert.pem"}"#.to_string(),
    ] {
        // Its own kid: unknown to the issuer; the only fetch ever asked for
        // is of the issuer's own keys (FetchKeys carries no URL).
        let token = attacker.token(Alg::EdDSA, &head, &claims("", ""));
        assert_eq!(refused(&token), TokenError::UnknownKey { kid: Some("attacker".into()) });
        let mut stale = cache_fetched_ago(300);
        assert_eq!(authenticate(&token, &validation(), &mut stale), Authentication::FetchKeys);
        // The issuer's kid: verified with the issuer's key, so it fails.
        let token = attacker.token(Alg::EdDSA, &head.replace(r#""kid":"attacker""#, r#""kid":"ed""#), &claims("", ""));
        assert_eq!(refused(&token), TokenError::BadSignature);
    }
}

#[test]
fn truncated_and_oversized_tokens_are_refused() {
    for alg in [Alg::EdDSA, Alg::ES384] {
        let token = valid_token(alg, "storage.read:/");
        for cut in 0..token.len() {
            let e = refused(&token[..cut]);
            assert!(matches!(e, TokenError::Malformed(_) | TokenError::BadSignature), "{alg} cut at {cut}: {e:?}");
        }
    }
    let token = valid_token(Alg::RS256, "storage.read:/");
    for cut in [token.len() - 1, token.len() - 4, token.len() - 200, token.rfind('.').unwrap() + 1, token.rfind('.').unwrap()] {
        let e = refused(&token[..cut]);
        assert!(matches!(e, TokenError::Malformed(_) | TokenError::BadSignature), "cut at {cut}: {e:?}");
    }
    // Oversized, though properly signed by the issuer.
    let padding = format!(r#","padding":"{}""#, "x".repeat(lakeport_gateway::jwt::MAX_TOKEN_BYTES));
    let big = Keys::issuer().token(Alg::EdDSA, &header("EdDSA", "ed"), &claims("storage.read:/", &padding));
    assert_eq!(refused(&big), TokenError::TooLarge { len: big.len() });
}

/// The request decision for a verified token's scopes.
fn decide(scope: &str, method: &str, path: &str, exists: Option<bool>, destination: Option<&str>) -> Result<Grant, Denied> {
    let Authentication::Valid(claims) = check(&valid_token(Alg::ES256, scope)) else { panic!("the token did not verify") };
    authorize(method, path, exists, destination, &parse_scopes(&claims.scope))
}

#[test]
fn scopes_of_a_verified_token_decide_requests() {
    let missing = |scope: &str| Err(Denied::MissingScope { scope: scope.into() });
    let full = Ok(Grant { only_if_absent: false });
    // A read-only token cannot write.
    assert_eq!(decide("storage.read:/bkt", "GET", "/bkt/data/f", None, None), full);
    assert_eq!(decide("storage.read:/bkt", "PUT", "/bkt/data/f", Some(false), None), missing("storage.create:/bkt/data/f"));
    assert_eq!(decide("storage.read:/bkt", "DELETE", "/bkt/data/f", None, None), missing("storage.modify:/bkt/data/f"));
    // A path outside the scope.
    assert_eq!(decide("storage.read:/bkt/data", "GET", "/other/f", None, None), missing("storage.read:/other/f"));
    // Whole segments: /bkt/data does not reach /bkt/data2.
    assert_eq!(decide("storage.read:/bkt/data", "GET", "/bkt/data2/f", None, None), missing("storage.read:/bkt/data2/f"));
    assert_eq!(decide("storage.read:/bkt/data", "GET", "/bkt/data/f", None, None), full);
    // Dot segments, plain or encoded, are refused before any scope is matched.
    for path in ["/bkt/data/../other/f", "/bkt/data/%2e%2e/other/f", "/bkt/data/%2E%2E/other/f", "/bkt/data/.%2E/other/f"] {
        assert_eq!(decide("storage.read:/", "GET", path, None, None), Err(Denied::BadPath(PathError::DotSegment)), "{path}");
    }
    // Create-only writes new objects, and only those.
    assert_eq!(decide("storage.create:/bkt/up", "PUT", "/bkt/up/new", None, None), Ok(Grant { only_if_absent: true }));
    assert_eq!(decide("storage.create:/bkt/up", "PUT", "/bkt/up/old", Some(true), None), missing("storage.modify:/bkt/up/old"));
    // A destination is written as by a PUT: the least scope that would do is named.
    assert_eq!(decide("storage.modify:/bkt/a storage.read:/", "MOVE", "/bkt/a/f", None, Some("/bkt/b/f")), missing("storage.create:/bkt/b/f"));
    // The 403's challenge names the scope.
    let Err(Denied::MissingScope { scope }) = decide("storage.read:/bkt", "PUT", "/bkt/a b", None, None) else { panic!() };
    assert_eq!(
        challenge::insufficient_scope("lakeport", &scope),
        r#"Bearer realm="lakeport", error="insufficient_scope", scope="storage.create:/bkt/a%20b""#
    );
}
