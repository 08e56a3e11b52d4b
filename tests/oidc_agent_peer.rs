//! A real oidc-agent as a token source: the agent is started by the test
//! with its own config dir and socket, an account is registered against the
//! test OpenID provider with `oidc-gen`'s device flow, and tokens are asked
//! for over the agent's UNIX socket with its IPC JSON, the way lakeport's
//! `grant = "oidc-agent"` profiles will, and with `oidc-token` for
//! comparison.

#[path = "support/mod.rs"]
mod support;

#[path = "support/oidc_agent.rs"]
mod oidc_agent;

use std::time::{SystemTime, UNIX_EPOCH};

use oidc_agent::{OidcAgent, AUDIENCE};
use serde_json::{json, Value};
use support::{jwt_claims, Peer};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A successful reply's access token, checked for an `object`-audience JWT
/// for alice from `op` that is valid for at least 60 more seconds.
#[track_caller]
fn expect_object_token(reply: &Value, op: &Peer, client_id: &str) -> String {
    assert_eq!(reply["status"], "success", "{reply}");
    let token = reply["access_token"].as_str().unwrap_or_else(|| panic!("no access_token: {reply}")).to_string();
    let claims = jwt_claims(&token);
    assert_eq!(claims["aud"], AUDIENCE, "{claims}");
    assert_eq!(claims["iss"], op.endpoint.as_str(), "{claims}");
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["client_id"], client_id, "{claims}");
    // The agent reports the issuer with a trailing slash the provider's lacks.
    assert_eq!(reply["issuer"], format!("{}/", op.endpoint), "{reply}");
    // Not `expires_at`: for an audience token it is another token's (below).
    assert!(reply["expires_at"].is_u64(), "expires_at is a number: {reply}");
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(exp >= now() + 60, "min_valid_period 60 honoured: {claims}");
    token
}

#[test]
fn agent_gives_object_audience_jwts_over_its_socket() {
    let op = Peer::oidc_provider(300, 3600);
    let agent = OidcAgent::start(&op, ("device-basic", Some("device-basic-secret")));

    // Without an audience: the token the device flow gave, from the agent's cache.
    let default = agent.access_token(&agent.account, None);
    assert_eq!(default["status"], "success", "{default}");
    let default_token = default["access_token"].as_str().unwrap();
    // The agent derives `expires_at` from its own clock plus `expires_in`:
    // the token's `exp`, or one second later when a second began between
    // the provider issuing it and the agent receiving it.
    let (expires_at, exp) = (default["expires_at"].as_u64().expect("expires_at"), jwt_claims(default_token)["exp"].as_u64().expect("exp"));
    assert!(expires_at == exp || expires_at == exp + 1, "expires_at {expires_at} for exp {exp}: {default}");

    let first = agent.access_token(&agent.account, Some(AUDIENCE));
    let first_token = expect_object_token(&first, &op, "device-basic");
    // An audience token is never cached: each request refreshes (and the
    // refresh token rotates inside the agent).
    let second = agent.access_token(&agent.account, Some(AUDIENCE));
    let second_token = expect_object_token(&second, &op, "device-basic");
    assert_ne!(first_token, second_token);
    assert_ne!(first_token, default_token);
    // oidc-agent 4.2 answers an audience (or scope) request with the expiry
    // of the cached default token, not of the token it returns: a client
    // must read `exp` from the token itself.
    assert_eq!(first["expires_at"], default["expires_at"], "{first}");
    assert_eq!(second["expires_at"], default["expires_at"], "{second}");

    // By issuer instead of account name; with or without the trailing slash.
    for issuer in [op.endpoint.clone(), format!("{}/", op.endpoint)] {
        let reply = agent.request(&json!({"request": "access_token", "issuer": issuer, "min_valid_period": 60, "audience": AUDIENCE}));
        expect_object_token(&reply, &op, "device-basic");
    }

    let accounts = agent.request(&json!({"request": "loaded_accounts"}));
    assert_eq!(accounts, json!({"status": "success", "info": [agent.account]}));

    // oidc-token, the agent's own client, for comparison.
    let out = agent.oidc_token(&["--aud", AUDIENCE, &agent.account]);
    assert!(out.status.success(), "oidc-token failed: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(jwt_claims(&token)["aud"], AUDIENCE);
}

#[test]
fn unknown_account_and_bad_requests_are_failures() {
    let op = Peer::oidc_provider(300, 3600);
    let agent = OidcAgent::start(&op, ("device-basic", Some("device-basic-secret")));

    let reply = agent.access_token("no-such-account", Some(AUDIENCE));
    assert_eq!(reply["status"], "failure", "{reply}");
    let error = reply["error"].as_str().unwrap_or_else(|| panic!("no error: {reply}"));
    assert!(error.contains("No account configured"), "{reply}");

    let reply = agent.request(&json!({"request": "access_token", "issuer": "https://elsewhere.invalid/", "min_valid_period": 60}));
    assert_eq!(reply["status"], "failure", "{reply}");

    let reply = agent.request(&json!({"request": "no-such-request"}));
    assert_eq!(reply["status"], "failure", "{reply}");

    let out = agent.oidc_token(&["no-such-account"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No account configured"), "{}", String::from_utf8_lossy(&out.stderr));

    // The registered account still answers.
    expect_object_token(&agent.access_token(&agent.account, Some(AUDIENCE)), &op, "device-basic");
}

#[test]
fn client_secret_post_client_registers_too() {
    let op = Peer::oidc_provider(300, 3600);
    let agent = OidcAgent::start(&op, ("device-post", Some("device-post-secret")));
    expect_object_token(&agent.access_token(&agent.account, Some(AUDIENCE)), &op, "device-post");
}

/// The agent's framing, pinned: a request is whatever one read finds, so
/// a client must write it whole at once. A part that is not a JSON object
/// is taken for the start of the agent's encrypted handshake (a public key):
/// the agent answers with its own key and then waits on that connection
/// alone, with no timeout, so every other client waits too until it is
/// closed. A client needs a read timeout and must close on it.
#[test]
fn a_half_written_request_holds_the_agent_until_closed() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    let op = Peer::oidc_provider(300, 3600);
    let agent = OidcAgent::start(&op, ("device-basic", Some("device-basic-secret")));

    let mut half = UnixStream::connect(&agent.socket).unwrap();
    half.write_all(br#"{"request":"access_token","#).unwrap();
    half.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut key = [0u8; 64];
    let n = half.read(&mut key).unwrap();
    assert!(n > 0 && !key[..n].starts_with(b"{"), "the agent answers a non-JSON start with its public key: {:?}", String::from_utf8_lossy(&key[..n]));

    let mut other = UnixStream::connect(&agent.socket).unwrap();
    other.write_all(br#"{"request":"loaded_accounts"}"#).unwrap();
    other.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut reply = Vec::new();
    let err = other.read_to_end(&mut reply).expect_err("the agent is busy with the half-written request");
    assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{err}");

    drop(half);
    other.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    other.read_to_end(&mut reply).unwrap();
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["status"], "success", "{reply}");

    // A trailing newline or NUL is tolerated.
    for end in ["\n", "\0"] {
        let mut stream = UnixStream::connect(&agent.socket).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        stream.write_all(format!(r#"{{"request":"access_token","account":"{}","audience":"object"}}{end}"#, agent.account).as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        expect_object_token(&serde_json::from_str(&reply).unwrap(), &op, "device-basic");
    }
}
