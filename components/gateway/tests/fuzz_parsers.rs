//! Deterministic mutation fuzzers for what reaches the gateway from
//! outside: compact tokens as sent, the JSON inside them (re-signed with
//! the issuer's key, so mutated claims reach validation), and the
//! issuer's JWKS. Each run checks that nothing panics, that no mutated
//! token is accepted unless it is an original or its claims pass every
//! check, and that no error shows the token.
//!
//! `LAKEPORT_FUZZ_ITERATIONS` and `LAKEPORT_FUZZ_SEED` change a run.

mod common;

use common::*;
use lakeport_gateway::*;
use lakeport_testkit::fuzz;

const JSON_TOKENS: &[&str] = &[
    "\"", "{", "}", "[", "]", ":", ",", "\\", "\\u0000", "\\ud800", "\\\"", "null", "true", "false", "0", "-1", "1e309",
    "18446744073709551616", "-9223372036854775809", "1.5", " ", "\u{feff}", "\"alg\":", "\"none\"", "\"HS256\"", "\"RS256\"",
    "\"ES256\"", "\"EdDSA\"", "\"kid\":", "\"ed\"", "\"rsa\"", "\"crit\":[\"b64\"],", "\"jku\":\"https://evil.example/\",",
    "\"iss\":", "\"aud\":", "\"exp\":", "\"nbf\":", "\"scope\":", "\"wlcg.ver\":", "\"https://iam.example/\"",
    "\"https://gateway.example\"", "\"storage.modify:/\"", "\"kty\":", "\"RSA\"", "\"EC\"", "\"OKP\"", "\"crv\":", "\"P-256\"",
    "\"P-384\"", "\"Ed25519\"", "\"use\":\"enc\",", "\"key_ops\":[],", "\"n\":", "\"e\":", "\"x\":", "\"y\":", "\"AQAB\"", "\"AA\"",
];

const COMPACT_TOKENS: &[&str] = &[".", "..", "=", "-", "_", "+", "/", "A", "AAAA", "eyJ", "%2e", " ", "\0", "é"];

fn tokens() -> Vec<String> {
    let mut all: Vec<String> = Alg::ALL.iter().map(|&alg| valid_token(alg, "storage.read:/bkt storage.create:/bkt/up")).collect();
    all.push(format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims("storage.modify:/", "").as_bytes())));
    all.push(Keys::attacker().token(Alg::EdDSA, r#"{"alg":"EdDSA","kid":"ed","jku":"https://evil.example/"}"#, &claims("", "")));
    all
}

fn cache() -> JwksCache {
    let mut cache = JwksCache::new(CachePolicy::default());
    cache.store(Keys::issuer().jwks().as_bytes(), NOW - 10).unwrap();
    cache
}

fn validation() -> Validation<'static> {
    Validation { issuer: ISSUER, audience: AUDIENCE, leeway_secs: 60, now: NOW }
}

fn assert_hides(error: &TokenError, token: &str) {
    let header = challenge::invalid_token("lakeport", error);
    for part in token.split('.').filter(|p| p.len() > 12) {
        assert!(!header.contains(part), "{header} shows a part of the token");
    }
}

#[test]
fn fuzz_compact_tokens_never_panic_nor_pass_altered() {
    let originals = tokens();
    let corpus: Vec<Vec<u8>> = originals.iter().map(|t| t.as_bytes().to_vec()).collect();
    let mut cache = cache();
    let mut bad_signatures = 0;
    fuzz("compact tokens", &corpus, COMPACT_TOKENS, (10000, 15), |input, _| {
        let token = String::from_utf8_lossy(input);
        let _ = bearer_token(Some(&format!("Bearer {token}")));
        match authenticate(&token, &validation(), &mut cache) {
            Authentication::Valid(_) => assert!(originals.iter().any(|o| *o == token), "an altered token was accepted"),
            Authentication::Invalid(e) => {
                bad_signatures += usize::from(e == TokenError::BadSignature);
                assert_hides(&e, &token);
            }
            Authentication::FetchKeys | Authentication::KeysUnavailable => {}
        }
    });
    // The mutations reach signature checks, not only the base64 and JSON layers.
    assert!(bad_signatures > 50, "only {bad_signatures} inputs reached a signature check");
}

#[test]
fn fuzz_signed_claims_pass_only_when_every_check_holds() {
    let corpus: Vec<Vec<u8>> = [
        (r#"{"alg":"EdDSA","kid":"ed","typ":"at+jwt"}"#.to_string(), claims("storage.read:/bkt storage.modify:/bkt/x", "")),
        (r#"{"alg":"EdDSA","kid":"ed"}"#.to_string(), claims("", r#","nested":{"a":[1,2,{"b":null}]}"#)),
        (r#"{"alg":"EdDSA"}"#.to_string(), format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"nbf":1.5e9}}"#, NOW + 5)),
    ]
    .iter()
    .map(|(h, c)| format!("{h}\n{c}").into_bytes())
    .collect();
    let keys = Keys::issuer();
    let mut cache = cache();
    let mut accepted = 0;
    fuzz("signed claims", &corpus, JSON_TOKENS, (5000, 16), |input, _| {
        let text = String::from_utf8_lossy(input);
        let (header, claims) = text.split_once('\n').unwrap_or((r#"{"alg":"EdDSA","kid":"ed"}"#, &text));
        // Signed with the issuer's Ed25519 key whatever the header says:
        // only the JSON decides, and a token that passes must deserve it.
        let token = keys.token(Alg::EdDSA, header, claims);
        match authenticate(&token, &validation(), &mut cache) {
            Authentication::Valid(c) => {
                accepted += 1;
                assert_eq!(c.iss.as_deref(), Some(ISSUER));
                assert!(c.aud.iter().any(|a| a == AUDIENCE));
                assert!(c.exp.is_some_and(|exp| exp > NOW - 60));
                assert!(c.nbf.is_none_or(|nbf| nbf <= NOW + 60));
                let alg = jwt::decode(&token).unwrap().header.alg;
                assert_eq!(alg, Alg::EdDSA, "a key verified a token of another algorithm");
            }
            Authentication::Invalid(e) => assert_hides(&e, &token),
            Authentication::FetchKeys | Authentication::KeysUnavailable => {}
        }
    });
    // Mutated claims still pass often enough for the checks above to bite.
    assert!(accepted > 200, "only {accepted} mutated claims passed");
}

#[test]
fn fuzz_jwks_documents_never_panic() {
    let issuer = Keys::issuer().jwks();
    let corpus = vec![
        issuer.clone().into_bytes(),
        Keys::attacker().jwks().into_bytes(),
        br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}]}"#.to_vec(),
        b"<html><body>502 Bad Gateway</body></html>".to_vec(),
    ];
    let probes: Vec<String> = Alg::ALL.iter().map(|&alg| valid_token(alg, "")).collect();
    let mut usable = 0;
    fuzz("jwks documents", &corpus, JSON_TOKENS, (3000, 17), |input, rng| {
        let mut cache = JwksCache::new(CachePolicy::default());
        match cache.store(input, NOW) {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(jwks) => {
                usable += 1;
                assert!(!jwks.keys.is_empty() && jwks.keys.len() <= jwks::MAX_KEYS);
                for key in &jwks.keys {
                    assert!(Alg::ALL.iter().any(|&a| key.can_verify(a)), "a key that verifies nothing was kept");
                }
                for skipped in &jwks.skipped {
                    assert!(skipped.describe().len() < 200);
                }
                // A token checked against whatever keys came out: an
                // outcome, never a panic.
                let probe = rng.pick(&probes);
                let _ = authenticate(probe, &validation(), &mut cache);
            }
        }
    });
    assert!(usable > 150, "only {usable} mutated documents were usable");
}
