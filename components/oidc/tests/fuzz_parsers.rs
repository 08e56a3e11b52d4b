//! Deterministic mutation fuzzers for everything the OIDC core reads from
//! a server or oidc-agent: discovery documents, token and device
//! authorization answers (and the device flow that consumes them),
//! oidc-agent replies and JWT payloads. Each starts from realistic answers
//! (INDIGO IAM, Keycloak, node oidc-provider, oidc-agent), mutates them
//! with a fixed seed and iteration count, and checks that parsing returns
//! a value or an error without panicking, and that no error shows a token
//! of the corpus (a malformed success answer may still hold tokens).
//!
//! `LAKEPORT_FUZZ_ITERATIONS` and `LAKEPORT_FUZZ_SEED` change a run.

use base64::Engine as _;
use lakeport_oidc::device::DeviceFlow;
use lakeport_oidc::*;
use lakeport_testkit::fuzz;

/// Tokens in the corpus; no error may quote them.
const ACCESS_TOKEN: &str = "eyJraWQiOiJyc2ExIiwiYWxnIjoiUlMyNTYifQ.eyJzdWIiOiJmMWM2IiwiaXNzIjoiaHR0cHM6Ly9pYW0uZXhhbXBsZS8iLCJleHAiOjE3MDAwMDM2MDB9.c2lnbmF0dXJlU0VDUkVU";
const REFRESH_TOKEN: &str = "eyJhbGciOiJub25lIn0.eyJqdGkiOiJSRUZSRVNIU0VDUkVUMDEyMyJ9.";
const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSIsImF1ZCI6ImNsaSJ9.SURUT0tFTlNFQ1JFVA";
const DEVICE_CODE: &str = "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS";
const AGENT_TOKEN: &str = "AGENT-OPAQUE-TOKEN-5f2b9c1e7d3a";

fn secrets() -> [&'static str; 4] {
    [ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, AGENT_TOKEN]
}

const JSON_TOKENS: &[&str] = &[
    "\"", "{", "}", "[", "]", ":", ",", "\\", "\\u0000", "\\ud800", "\\uDFFF", "\\\"", "null", "true", "false", "0", "-1", "1e309",
    "18446744073709551616", "-9223372036854775809", "1.0e2", " ", "\n", "\u{feff}", "\u{fffd}", "{\"a\":", "[[", "\"\"",
    "\"access_token\":", "\"token_type\":\"Bearer\",", "\"token_type\":\"mac\",", "\"expires_in\":", "\"refresh_token\":",
    "\"error\":\"slow_down\"", "\"error\":\"authorization_pending\"", "\"interval\":18446744073709551615,",
    "\"expires_in\":18446744073709551615,", "\"issuer\":", "\"token_endpoint\":", "\"http://evil.example/\"", "\"https://\"",
    "\"http://[::1\"", "\"status\":\"success\",", "\"status\":\"failure\",", "\"exp\":", "\"aud\":", "<html>",
];

fn response(status: u16, body: &[u8]) -> HttpResponse {
    HttpResponse { status, headers: vec![("Content-Type".into(), "application/json".into())], body: body.to_vec() }
}

fn corpus(seeds: &[String]) -> Vec<Vec<u8>> {
    seeds.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// The text an error shows anywhere (message and debug form).
fn error_text(e: &OidcError) -> String {
    format!("{e} {e:?}")
}

fn assert_no_secret(text: &str) {
    for s in secrets() {
        assert!(!text.contains(s), "{text:?} shows a token");
    }
}

/// Debug output does not depend on the tokens (other fields are the
/// server's to fill, with whatever it likes).
fn assert_debug_hides_tokens(tokens: &TokenSet) {
    let mut other = tokens.clone();
    other.access_token = "a".into();
    other.refresh_token = other.refresh_token.map(|_| "r".into());
    other.id_token = other.id_token.map(|_| "i".into());
    assert_eq!(format!("{tokens:?}"), format!("{other:?}"));
}

fn discovery_seeds() -> Vec<String> {
    vec![
        // INDIGO IAM (trailing slash on the issuer).
        r#"{"issuer":"https://iam.example/","authorization_endpoint":"https://iam.example/authorize","token_endpoint":"https://iam.example/token","userinfo_endpoint":"https://iam.example/userinfo","jwks_uri":"https://iam.example/jwk","registration_endpoint":"https://iam.example/iam/api/client-registration","revocation_endpoint":"https://iam.example/revoke","device_authorization_endpoint":"https://iam.example/devicecode","grant_types_supported":["authorization_code","implicit","refresh_token","client_credentials","password","urn:ietf:params:oauth:grant-type:jwt-bearer","urn:ietf:params:oauth:grant-type:token-exchange","urn:ietf:params:oauth:grant-type:device_code"],"token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post","client_secret_jwt","private_key_jwt","none"],"scopes_supported":["openid","profile","email","address","phone","offline_access"],"code_challenge_methods_supported":["plain","S256"]}"#.into(),
        // Keycloak.
        r#"{"issuer":"https://iam.example","authorization_endpoint":"https://iam.example/realms/lake/protocol/openid-connect/auth","token_endpoint":"https://iam.example/realms/lake/protocol/openid-connect/token","introspection_endpoint":"https://iam.example/realms/lake/protocol/openid-connect/token/introspect","userinfo_endpoint":"https://iam.example/realms/lake/protocol/openid-connect/userinfo","end_session_endpoint":"https://iam.example/realms/lake/protocol/openid-connect/logout","frontchannel_logout_session_supported":true,"jwks_uri":"https://iam.example/realms/lake/protocol/openid-connect/certs","grant_types_supported":["authorization_code","implicit","refresh_token","password","client_credentials","urn:openid:params:grant-type:ciba","urn:ietf:params:oauth:grant-type:device_code"],"response_types_supported":["code","none","id_token","token","id_token token","code id_token","code token","code id_token token"],"id_token_signing_alg_values_supported":["PS384","RS384","EdDSA","ES384","HS256","HS512","ES256","RS256","HS384","ES512","PS256","PS512","RS512"],"revocation_endpoint":"https://iam.example/realms/lake/protocol/openid-connect/revoke","device_authorization_endpoint":"https://iam.example/realms/lake/protocol/openid-connect/auth/device","mtls_endpoint_aliases":{"token_endpoint":"https://iam.example/realms/lake/protocol/openid-connect/token"}}"#.into(),
        // node oidc-provider on loopback.
        r#"{"authorization_endpoint":"http://127.0.0.1:3000/auth","device_authorization_endpoint":"http://127.0.0.1:3000/device/auth","claims_parameter_supported":false,"claims_supported":["sub","sid","auth_time","iss"],"code_challenge_methods_supported":["S256"],"end_session_endpoint":"http://127.0.0.1:3000/session/end","grant_types_supported":["implicit","authorization_code","refresh_token","client_credentials","urn:ietf:params:oauth:grant-type:device_code","urn:ietf:params:oauth:grant-type:token-exchange"],"issuer":"http://127.0.0.1:3000","jwks_uri":"http://127.0.0.1:3000/jwks","revocation_endpoint":"http://127.0.0.1:3000/token/revocation","token_endpoint":"http://127.0.0.1:3000/token","token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_jwt","client_secret_post","private_key_jwt","none"],"scopes_supported":["openid","offline_access"]}"#.into(),
        "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>".into(),
    ]
}

#[test]
fn fuzz_discovery_never_panics() {
    let issuers = ["https://iam.example", "https://iam.example/", "http://127.0.0.1:3000", "https://other.example"];
    fuzz("discovery", &corpus(&discovery_seeds()), JSON_TOKENS, (20_000, 0x4449_5343_4f56_4552), |input, rng| {
        let issuer = *rng.pick(&issuers);
        let status = *rng.pick(&[200, 200, 200, 404, 502]);
        match parse_discovery(issuer, &response(status, input)) {
            Ok(meta) => {
                assert_eq!(status, 200);
                assert!(discovery::same_issuer(&meta.issuer, issuer));
                // Whatever it accepts, it accepts again as a checked endpoint.
                discovery::check_endpoint("token endpoint", &meta.token_endpoint).unwrap();
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    });
}

fn token_seeds() -> Vec<String> {
    vec![
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"Bearer","refresh_token":"{REFRESH_TOKEN}","expires_in":3599,"scope":"openid offline_access s3","id_token":"{ID_TOKEN}"}}"#),
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":300,"refresh_expires_in":1800,"refresh_token":"{REFRESH_TOKEN}","token_type":"Bearer","not-before-policy":0,"session_state":"9a1c","scope":"profile email"}}"#),
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"N_A","expires_in":3600}}"#),
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"bearer"}}"#),
        r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#.into(),
        r#"{"error":"authorization_pending","error_description":"Authorization pending for code: 5f2b"}"#.into(),
        r#"{"error":"slow_down"}"#.into(),
        r#"{"error":"expired_token","error_description":"device code expired"}"#.into(),
        r#"{"error":"invalid_client","error_description":"Bad client credentials"}"#.into(),
        "<html><body><h1>503 Service Unavailable</h1>No server is available to handle this request.</body></html>".into(),
    ]
}

fn device_seeds() -> Vec<String> {
    vec![
        format!(r#"{{"user_code":"WDJB-MJHT","device_code":"{DEVICE_CODE}","verification_uri":"https://iam.example/device","verification_uri_complete":"https://iam.example/device?user_code=WDJB-MJHT","expires_in":1800,"interval":5}}"#),
        format!(r#"{{"device_code":"{DEVICE_CODE}","user_code":"ABCD-EFGH","verification_url":"https://iam.example/realms/lake/device","expires_in":600}}"#),
        format!(r#"{{"device_code":"{DEVICE_CODE}","expires_in":600,"interval":1,"user_code":"QJXH-NRPV","verification_uri":"http://127.0.0.1:3000/device"}}"#),
        r#"{"error":"unauthorized_client","error_description":"Client is not allowed to initiate the device flow"}"#.into(),
    ]
}

#[test]
fn fuzz_token_response_never_panics() {
    let seeds = [token_seeds(), device_seeds()].concat();
    fuzz("token response", &corpus(&seeds), JSON_TOKENS, (35_000, 0x544f_4b45_4e53_4554), |input, rng| {
        let status = *rng.pick(&[200, 200, 200, 400, 401, 503]);
        let answer = response(status, input);
        match parse_token_response(&answer) {
            Ok(tokens) => {
                assert_eq!(status, 200);
                assert!(!tokens.access_token.is_empty());
                assert_debug_hides_tokens(&tokens);
                let now = 1_700_000_000;
                let expiry = access_token_expiry(&tokens, now);
                if decode_claims(&tokens.access_token).ok().and_then(|c| c.expires_at).is_none() {
                    // A lifetime is never in the past, however large it is.
                    assert_eq!(expiry.is_some(), tokens.expires_in.is_some());
                    assert!(expiry.is_none_or(|e| e >= now), "expires_in {:?} gives {expiry:?}", tokens.expires_in);
                }
            }
            Err(e) => {
                if status == 200 {
                    assert_no_secret(&error_text(&e));
                }
            }
        }
        // Revocation reads the same error answers.
        let _ = parse_revocation_response(&answer);
    });
}

#[test]
fn fuzz_device_flow_never_panics() {
    let authorizations = corpus(&device_seeds());
    let polls = corpus(&token_seeds());
    let all = [authorizations.clone(), polls.clone()].concat();
    let client = Client { client_id: "lakeport".into(), client_secret: None, auth: ClientAuth::None, scopes: None, audience: None, resource: None };
    let meta: ProviderMetadata =
        serde_json::from_str(r#"{"issuer":"https://iam.example","token_endpoint":"https://iam.example/token"}"#).unwrap();
    fuzz("device flow", &authorizations, JSON_TOKENS, (25_000, 0x4445_5649_4345_464c), |input, rng| {
        let now = 1_700_000_000;
        let authorization = match parse_device_authorization(&response(*rng.pick(&[200, 200, 200, 400]), input)) {
            Ok(a) => a,
            Err(e) => return assert!(!e.to_string().is_empty()),
        };
        assert_no_secret(&format!("{authorization:?}"));
        let mut flow = DeviceFlow::new(&authorization, now);
        // A code is pollable for as long as the server said, however long.
        assert_eq!(flow.poll_request(&client, &meta, now).is_ok(), authorization.expires_in > 0, "expires_in {}", authorization.expires_in);
        let mut last = flow.interval();
        assert!(last >= 1);
        // Then a few mutated polling answers, as a server might send them.
        for _ in 0..1 + rng.below(6) {
            let mut answer = rng.pick(&polls).clone();
            lakeport_testkit::mutate(&mut answer, JSON_TOKENS, &all, rng);
            match flow.handle_response(&response(*rng.pick(&[200, 400, 400, 400, 429, 500]), &answer)) {
                Ok(DevicePoll::Pending { retry_after }) => {
                    assert!(retry_after >= last, "the interval shrank from {last} to {retry_after}");
                    last = retry_after;
                }
                Ok(DevicePoll::Complete(tokens)) => assert!(!tokens.access_token.is_empty()),
                Err(e) => assert_no_secret(&error_text(&e)),
            }
        }
    });
}

fn agent_seeds() -> Vec<String> {
    vec![
        format!(r#"{{"status":"success","access_token":"{AGENT_TOKEN}","issuer":"https://iam.example/","expires_at":1700003600}}"#),
        format!(r#"{{"status":"success","access_token":"{ACCESS_TOKEN}","issuer":"https://iam.example/","expires_at":0}}"#),
        r#"{"status":"failure","error":"No account configured with that short name"}"#.into(),
        r#"{"status":"failure","error":"Bad Request: Unknown request type"}"#.into(),
        r#"{"status":"NotFound"}"#.into(),
    ]
}

#[test]
fn fuzz_agent_response_never_panics() {
    fuzz("agent reply", &corpus(&agent_seeds()), JSON_TOKENS, (40_000, 0x4147_454e_5452_4550), |input, _| match parse_agent_response(input) {
        Ok(t) => {
            assert!(!t.tokens.access_token.is_empty());
            assert_debug_hides_tokens(&t.tokens);
        }
        // oidc-agent's own error text is its business; anything else must not echo the reply.
        Err(OidcError::Agent(_)) => {}
        Err(e) => assert_no_secret(&error_text(&e)),
    });
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

const JWT_PAYLOADS: &[&str] = &[
    r#"{"wlcg.ver":"1.0","sub":"f1c6a1f2","aud":"object","nbf":1699996400,"scope":"storage.read:/ storage.modify:/","iss":"https://iam.example/","exp":1700000000,"iat":1699996400,"jti":"4f1e","client_id":"lakeport"}"#,
    r#"{"exp":1700000300,"iat":1700000000,"jti":"a1b2","iss":"https://iam.example/realms/lake","aud":["rucio","account"],"sub":"5d0f","typ":"Bearer","azp":"lakeport","scp":["openid","s3"]}"#,
    r#"{"exp":1.7e9,"aud":[],"scope":""}"#,
];

#[test]
fn fuzz_jwt_decoding_never_panics() {
    let header = b64(br#"{"kid":"rsa1","alg":"RS256"}"#);
    // Whole tokens mutated as text, and payloads mutated as JSON first.
    let mut seeds: Vec<Vec<u8>> = JWT_PAYLOADS.iter().map(|p| format!("{header}.{}.c2lnbmF0dXJl", b64(p.as_bytes())).into_bytes()).collect();
    seeds.extend(JWT_PAYLOADS.iter().map(|p| p.as_bytes().to_vec()));
    let tokens: Vec<&str> = JSON_TOKENS.iter().copied().chain([".", "..", "=", "==", "-", "_", "+", "/", "eyJ", "%2E"]).collect();
    fuzz("jwt", &seeds, &tokens, (60_000, 0x4a57_545f_4445_434f), |input, rng| {
        let token = if input.starts_with(b"{") || rng.below(4) == 0 {
            format!("{header}.{}.sig", b64(input))
        } else {
            String::from_utf8_lossy(input).into_owned()
        };
        if let Err(e) = decode_claims(&token) {
            // Errors say what is wrong, never what the token was.
            let text = error_text(&e);
            for part in token.split('.').filter(|p| p.len() >= 8) {
                assert!(!text.contains(part), "{text:?} quotes the token");
            }
        }
    });
}

#[test]
fn a_huge_expires_in_is_not_in_the_past() {
    let tokens: TokenSet = serde_json::from_str(r#"{"access_token":"opaque","expires_in":18446744073709551615}"#).unwrap();
    assert_eq!(access_token_expiry(&tokens, 1_700_000_000), Some(i64::MAX));
}

#[test]
fn device_flow_survives_huge_intervals_and_lifetimes() {
    let authorization = parse_device_authorization(&response(
        200,
        br#"{"device_code":"d","user_code":"u","verification_uri":"https://iam.example/device","expires_in":18446744073709551615,"interval":18446744073709551615}"#,
    ))
    .unwrap();
    let mut flow = DeviceFlow::new(&authorization, 1_700_000_000);
    let client = Client { client_id: "c".into(), client_secret: None, auth: ClientAuth::None, scopes: None, audience: None, resource: None };
    let meta: ProviderMetadata = serde_json::from_str(r#"{"issuer":"https://iam.example","token_endpoint":"https://iam.example/token"}"#).unwrap();
    assert!(flow.poll_request(&client, &meta, 1_700_000_000).is_ok(), "a code that lives for ever has not expired");
    let slow_down = response(400, br#"{"error":"slow_down"}"#);
    // A hostile interval is capped: the login polls at least once a minute.
    assert_eq!(flow.interval(), lakeport_oidc::device::MAX_INTERVAL);
    assert_eq!(flow.handle_response(&slow_down).unwrap(), DevicePoll::Pending { retry_after: lakeport_oidc::device::MAX_INTERVAL });
}

#[test]
fn invalid_token_answers_do_not_quote_tokens() {
    // A success answer whose refresh token landed where a number belongs.
    let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":"{REFRESH_TOKEN}"}}"#);
    let err = parse_token_response(&response(200, body.as_bytes())).unwrap_err();
    assert_no_secret(&error_text(&err));
    assert!(err.to_string().contains("invalid token response"), "{err}");
}

#[test]
fn error_answers_do_not_echo_tokens() {
    // An error status with a token document (a broken server or proxy):
    // the excerpt keeps the words, not the tokens.
    let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","refresh_token":"{REFRESH_TOKEN}"}}"#);
    let err = parse_token_response(&response(400, body.as_bytes())).unwrap_err();
    assert_no_secret(&error_text(&err));
    assert!(err.to_string().contains(r#"without an OAuth error: {"access_token":"…","#), "{err}");
    let body = format!(r#"{{"device_code":"{DEVICE_CODE}","user_code":"WDJB-MJHT"}}"#);
    let err = parse_device_authorization(&response(200, body.as_bytes())).unwrap_err();
    assert!(!error_text(&err).contains(DEVICE_CODE), "{err}");
    assert!(err.to_string().contains("missing field `verification_uri`"), "{err}");
}
