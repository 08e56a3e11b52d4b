//! `grant = "oidc-agent"`: `lakeport token get` asks a real oidc-agent
//! (started by the test, account registered against the test provider).

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

#[path = "support/oidc_agent.rs"]
#[allow(dead_code)]
mod oidc_agent;

use std::process::Output;

use oidc_agent::OidcAgent;
use support::{jwt_claims, Peer, UserEnv};

/// lakeport as `user`, talking to `agent` (none: OIDC_SOCK unset).
fn lakeport(user: &UserEnv, agent: Option<&OidcAgent>, args: &[&str]) -> Output {
    let mut cmd = user.lakeport_command(args);
    if let Some(agent) = agent {
        cmd.env("OIDC_SOCK", &agent.socket);
    }
    cmd.output().unwrap()
}

#[test]
fn token_get_asks_the_agent_and_caches() {
    let op = Peer::oidc_provider(300, 3600);
    let agent = OidcAgent::start(&op, ("device-basic", Some("device-basic-secret")));
    let user = UserEnv::new(&format!("[profiles.agent]\ngrant = \"oidc-agent\"\noidc_agent_account = \"{}\"\naudience = \"object\"\n", agent.account));

    let out = lakeport(&user, Some(&agent), &["token", "get", "--output", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = doc["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(token)["aud"], "object");
    assert!(doc["issuer"].as_str().unwrap().starts_with(&op.endpoint));
    assert_eq!(doc["audience"], serde_json::json!(["object"]));
    // The expiry is the JWT's own (the agent's expires_at describes another token).
    let exp = jwt_claims(token)["exp"].as_i64().unwrap();
    let expires_at: std::time::SystemTime = humantime::parse_rfc3339(doc["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64, exp);

    // Cached: served without the agent.
    let again = lakeport(&user, None, &["token", "get"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), token);
}

#[test]
fn agent_errors_are_clear() {
    let op = Peer::oidc_provider(300, 3600);
    let agent = OidcAgent::start(&op, ("device-basic", Some("device-basic-secret")));
    let user = UserEnv::new("[profiles.agent]\ngrant = \"oidc-agent\"\noidc_agent_account = \"nobody\"\n");
    let out = lakeport(&user, Some(&agent), &["token", "get"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("No account configured") && err.contains("oidc-add nobody"), "{err}");
    let out = lakeport(&user, None, &["token", "get"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("OIDC_SOCK is not set"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
