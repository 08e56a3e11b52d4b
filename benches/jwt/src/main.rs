//! Verifies one RS256 token many times and prints the microseconds one
//! verification takes (the median of rounds). `lakeport-jwt-bench JWKS
//! TOKEN ISSUER AUDIENCE [jsonwebtoken]`: with the gateway's verifier (the
//! code the component runs: claims, key lookup, signature), or, natively
//! only, with the `jsonwebtoken` crate given the same key.

use std::time::Instant;

use lakeport_gateway::{authenticate, Authentication, CachePolicy, JwksCache, Validation};

const ROUNDS: usize = 9;
const PER_ROUND: usize = 200;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The median of `ROUNDS` rounds, in µs per call of `verify`.
fn time(mut verify: impl FnMut() -> bool) -> f64 {
    assert!(verify(), "the token does not verify");
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..PER_ROUND {
                assert!(verify());
            }
            start.elapsed().as_secs_f64() * 1e6 / PER_ROUND as f64
        })
        .collect();
    rounds.sort_by(|a, b| a.total_cmp(b));
    rounds[ROUNDS / 2]
}

fn gateway(jwks: &str, token: &str, issuer: &str, audience: &str) -> f64 {
    let now = now();
    let mut keys = JwksCache::new(CachePolicy::default());
    keys.store(jwks.as_bytes(), now).expect("a usable JWKS");
    let validation = Validation { issuer, audience, leeway_secs: 60, now };
    time(|| matches!(authenticate(token, &validation, &mut keys), Authentication::Valid(_)))
}

#[cfg(not(target_arch = "wasm32"))]
fn jsonwebtoken(jwks: &str, token: &str, issuer: &str, audience: &str) -> f64 {
    use jsonwebtoken::{decode, jwk::JwkSet, Algorithm, DecodingKey, Validation};
    let set: JwkSet = serde_json_from(jwks);
    let key = DecodingKey::from_jwk(&set.keys[0]).expect("an RSA JWK");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.leeway = 60;
    time(|| decode::<serde_json::Value>(token, &key, &validation).is_ok())
}

#[cfg(not(target_arch = "wasm32"))]
fn serde_json_from(text: &str) -> jsonwebtoken::jwk::JwkSet {
    serde_json::from_str(text).expect("a JWKS")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, jwks, token, issuer, audience, rest @ ..] = args.as_slice() else {
        eprintln!("usage: lakeport-jwt-bench JWKS TOKEN ISSUER AUDIENCE [jsonwebtoken]");
        std::process::exit(2);
    };
    let micros = match rest.first().map(String::as_str) {
        None => gateway(jwks, token, issuer, audience),
        #[cfg(not(target_arch = "wasm32"))]
        Some("jsonwebtoken") => jsonwebtoken(jwks, token, issuer, audience),
        Some(other) => {
            eprintln!("unknown verifier '{other}'");
            std::process::exit(2);
        }
    };
    println!("{micros:.2}");
}
