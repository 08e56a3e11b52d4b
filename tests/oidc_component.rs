//! The oidc component against a real OpenID provider (node oidc-provider)
//! started by the test: every grant, the errors users hit, and the egress
//! allowlist. Calls go through the host library, as the CLI makes them.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use lakeport::egress::{AllowedHost, EgressPolicy};
use lakeport::oidc::{Client, ClientAuth, DevicePoll, Oidc, OidcError, ProviderMetadata, TokenSet};
use lakeport::runtime::Runtime;
use lakeport::instance::ComponentError;
use support::{Peer, Refused};

fn runtime() -> Runtime {
    Runtime::with_cache_dir(Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compiled"))).unwrap()
}

/// An oidc instance that may reach only `allowed` URLs' hosts.
fn oidc_for(runtime: &Runtime, allowed: &[&str]) -> Oidc {
    let hosts = allowed.iter().map(|u| AllowedHost::from_url(u).unwrap()).collect();
    Oidc::new(runtime, EgressPolicy::new(hosts, None)).unwrap()
}

fn client(id: &str, secret: Option<&str>, auth: ClientAuth, issuer: &str) -> Client {
    Client {
        issuer: issuer.into(),
        client_id: id.into(),
        client_secret: secret.map(Into::into),
        auth,
        scopes: Some("openid offline_access".into()),
        audience: Some("object".into()),
        resource: None,
    }
}

fn discover(oidc: &mut Oidc, issuer: &str) -> ProviderMetadata {
    oidc.discover(issuer).unwrap_or_else(|e| panic!("discovery: {e}"))
}

fn approve(op: &Peer, user_code: &str, action: &str) {
    let reply = support::send("POST", &op.url(&format!("/test/device/{action}?user_code={user_code}")), &[], b"");
    assert_eq!(reply.status, 204, "{action} {user_code}: {}", reply.text());
}

/// A device flow that the user answers with `action` (`approve` or `deny`)
/// through the provider's test route, waited for to the end.
fn device_login(oidc: &mut Oidc, op: &Peer, meta: &ProviderMetadata, c: &Client, action: &str) -> Result<TokenSet, OidcError> {
    let (flow, auth) = oidc.start_device_flow(meta, c).unwrap();
    approve(op, &auth.unwrap().user_code, action);
    oidc.wait_device_flow(&flow, std::time::Duration::from_secs(600)).map_err(Refused::refused)
}

#[test]
fn client_credentials_with_basic_and_post_authentication() {
    let op = Peer::oidc_provider(300, 3600);
    let rt = runtime();
    let mut oidc = oidc_for(&rt, &[&op.endpoint]);
    let meta = discover(&mut oidc, &op.endpoint);
    assert_eq!(meta.token_endpoint, op.url("/token"));
    for (id, secret, auth) in [("service", "service-secret", ClientAuth::Basic), ("service-post", "service-post-secret", ClientAuth::Post)] {
        let tokens = oidc.client_credentials(&meta, &client(id, Some(secret), auth, &op.endpoint)).unwrap();
        let claims = oidc.decode_claims(&tokens.access_token).unwrap();
        assert_eq!(claims.audience, ["object"], "{id}: JWT audience from the `audience` parameter");
        assert_eq!(claims.subject.as_deref(), Some(id));
        assert_eq!(claims.issuer.as_deref(), Some(op.endpoint.as_str()));
        assert_eq!(tokens.expires_at, claims.expires_at);
        assert!(tokens.refresh_token.is_none());
    }
}

#[test]
fn wrong_client_secret_is_an_invalid_client_error() {
    let op = Peer::oidc_provider(300, 3600);
    let rt = runtime();
    let mut oidc = oidc_for(&rt, &[&op.endpoint]);
    let meta = discover(&mut oidc, &op.endpoint);
    let err = oidc.client_credentials(&meta, &client("service", Some("wrong"), ClientAuth::Basic, &op.endpoint)).unwrap_err().refused();
    assert_eq!(err.oauth_code(), Some("invalid_client"), "{}", err.message());
    assert!(!err.message().contains("wrong"), "the secret is not echoed: {}", err.message());
}

#[test]
fn device_flow_to_approval_then_refresh_with_rotation() {
    let op = Peer::oidc_provider(300, 3600);
    let rt = runtime();
    let mut oidc = oidc_for(&rt, &[&op.endpoint]);
    let meta = discover(&mut oidc, &op.endpoint);
    let c = client("device-basic", Some("device-basic-secret"), ClientAuth::Basic, &op.endpoint);
    let (flow, auth) = oidc.start_device_flow(&meta, &c).unwrap();
    let auth = auth.unwrap();
    assert!(auth.verification_uri.starts_with(&op.endpoint));
    assert!(auth.verification_uri_complete.as_deref().unwrap().contains(&auth.user_code));
    assert_eq!(auth.interval, 1);
    // Not approved yet: pending, and the interval to wait comes back.
    assert!(matches!(oidc.poll_device_flow(&flow).unwrap(), DevicePoll::Pending(1)));
    approve(&op, &auth.user_code, "approve");
    let tokens = oidc.wait_device_flow(&flow, std::time::Duration::from_secs(600)).unwrap();
    oidc.drop_device_flow(flow).unwrap();
    let claims = oidc.decode_claims(&tokens.access_token).unwrap();
    assert_eq!((claims.subject.as_deref(), claims.audience.clone()), (Some("alice"), vec!["object".to_string()]));
    let first_refresh = tokens.refresh_token.expect("offline_access gives a refresh token");

    let refreshed = oidc.refresh(&meta, &c, &first_refresh).unwrap();
    let rotated = refreshed.refresh_token.clone().expect("rotated refresh token");
    assert_ne!(rotated, first_refresh, "the refresh token rotates");
    let claims = oidc.decode_claims(&refreshed.access_token).unwrap();
    assert_eq!(claims.audience, ["object"]);
    // The old one is spent.
    let err = oidc.refresh(&meta, &c, &first_refresh).unwrap_err().refused();
    assert_eq!(err.oauth_code(), Some("invalid_grant"), "{}", err.message());
}

#[test]
fn device_flow_for_public_and_post_clients() {
    let op = Peer::oidc_provider(300, 3600);
    let rt = runtime();
    let mut oidc = oidc_for(&rt, &[&op.endpoint]);
    let meta = discover(&mut oidc, &op.endpoint);
    for c in [
        client("device-public", None, ClientAuth::None, &op.endpoint),
        client("device-post", Some("device-post-secret"), ClientAuth::Post, &op.endpoint),
    ] {
        let tokens = device_login(&mut oidc, &op, &meta, &c, "approve").unwrap_or_else(|e| panic!("{}: {}", c.client_id, e.message()));
        assert!(tokens.refresh_token.is_some(), "{}", c.client_id);
    }
}

#[test]
fn denied_device_code_is_access_denied() {
    let op = Peer::oidc_provider(300, 3600);
    let rt = runtime();
    let mut oidc = oidc_for(&rt, &[&op.endpoint]);
    let meta = discover(&mut oidc, &op.endpoint);
    let c = client("device-basic", Some("device-basic-secret"), ClientAuth::Basic, &op.endpoint);
    let err = device_login(&mut oidc, &op, &meta, &c, "deny").unwrap_err();
    assert_eq!(err.oauth_code(), Some("access_denied"), "{}", err.message());
}

#[test]
fn revoked_and_expired_refresh_tokens_are_invalid_grant() {
    let op = Peer::oidc_provider(300, 2);
    let rt = runtime();
    let mut oidc = oidc_for(&rt, &[&op.endpoint]);
    let meta = discover(&mut oidc, &op.endpoint);
    assert!(meta.revocation_endpoint.is_some());
    let c = client("device-basic", Some("device-basic-secret"), ClientAuth::Basic, &op.endpoint);
    let login = |oidc: &mut Oidc| device_login(oidc, &op, &meta, &c, "approve").unwrap().refresh_token.unwrap();
    let refresh = login(&mut oidc);
    assert!(oidc.revoke(&meta, &c, &refresh, "refresh_token").unwrap());
    let err = oidc.refresh(&meta, &c, &refresh).unwrap_err().refused();
    assert_eq!(err.oauth_code(), Some("invalid_grant"), "revoked: {}", err.message());

    let refresh = login(&mut oidc);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let err = oidc.refresh(&meta, &c, &refresh).unwrap_err().refused();
    assert_eq!(err.oauth_code(), Some("invalid_grant"), "expired: {}", err.message());
}

#[test]
fn unreachable_issuer_is_a_transport_error() {
    let port = support::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let rt = runtime();
    let mut oidc = oidc_for(&rt, &[&issuer]);
    match oidc.discover(&issuer).unwrap_err().refused() {
        OidcError::Transport(m) => assert!(m.contains("refused the connection") && m.contains(&port.to_string()), "{m}"),
        other => panic!("expected a transport error, got {}", other.message()),
    }
}

#[test]
fn malformed_discovery_documents_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".well-known")).unwrap();
    let python = support::workspace_root().join(".venv/bin/python");
    let server = Peer::start("python http.server", &python, |port, _| {
        vec!["-m".into(), "http.server".into(), "--bind".into(), "127.0.0.1".into(), "--directory".into(), dir.path().into(), port.to_string().into()]
    });
    let rt = runtime();
    let mut oidc = oidc_for(&rt, &[&server.endpoint]);
    let doc = dir.path().join(".well-known/openid-configuration");
    for (body, expect) in [
        ("<html>Bad Gateway</html>", "not valid provider metadata"),
        ("{\"issuer\": \"http://elsewhere.example\", \"token_endpoint\": \"http://127.0.0.1/token\"}", "names issuer"),
        ("{\"issuer\": 42}", "not valid provider metadata"),
    ] {
        std::fs::write(&doc, body.replace("ISSUER", &server.endpoint)).unwrap();
        match oidc.discover(&server.endpoint).unwrap_err().refused() {
            OidcError::InvalidResponse(m) => assert!(m.contains(expect), "{body}: {m}"),
            other => panic!("{body}: expected invalid-response, got {}", other.message()),
        }
    }
    std::fs::remove_file(&doc).unwrap();
    let err = oidc.discover(&server.endpoint).unwrap_err().refused();
    assert!(err.message().contains("HTTP 404"), "{}", err.message());
}

#[test]
fn allowlist_denies_other_hosts_and_names_them() {
    let op = Peer::oidc_provider(300, 3600);
    let rt = runtime();
    // Allowed: only another port on the same machine.
    let other = format!("http://127.0.0.1:{}", support::free_port());
    let mut oidc = oidc_for(&rt, &[&other]);
    match oidc.discover(&op.endpoint).unwrap_err().refused() {
        OidcError::HostDenied(host) => assert_eq!(host, format!("127.0.0.1:{}", op.port)),
        other => panic!("expected host-denied, got {}", other.message()),
    }
    // Allowed issuer, but a token endpoint elsewhere is still refused.
    let mut oidc = oidc_for(&rt, &[&op.endpoint]);
    let mut meta = discover(&mut oidc, &op.endpoint);
    meta.token_endpoint = format!("{other}/token");
    let err = oidc.client_credentials(&meta, &client("service", Some("service-secret"), ClientAuth::Basic, &op.endpoint)).unwrap_err().refused();
    assert!(matches!(err, OidcError::HostDenied(_)), "{}", err.message());
}

#[test]
fn token_exchange_gives_a_token_for_another_audience_with_the_same_subject() {
    let op = Peer::oidc_provider(300, 3600);
    let rt = runtime();
    let mut oidc = oidc_for(&rt, &[&op.endpoint]);
    let meta = discover(&mut oidc, &op.endpoint);
    let subject = oidc.client_credentials(&meta, &client("service", Some("service-secret"), ClientAuth::Basic, &op.endpoint)).unwrap();
    let mut exchanger = client("exchanger", Some("exchanger-secret"), ClientAuth::Basic, &op.endpoint);
    exchanger.scopes = None;
    exchanger.audience = Some("rucio".into());
    let exchanged = oidc.exchange(&meta, &exchanger, &subject.access_token).unwrap_or_else(|e| panic!("{e}"));
    let claims = oidc.decode_claims(&exchanged.access_token).unwrap();
    assert_eq!(claims.audience, ["rucio"]);
    assert_eq!(claims.subject.as_deref(), Some("service"), "the subject of the token that was exchanged");
    assert_eq!(exchanged.expires_at, claims.expires_at);

    // A token the issuer did not sign is refused with the OAuth error.
    let forged = format!("{}x", subject.access_token);
    let err = oidc.exchange(&meta, &exchanger, &forged).unwrap_err().refused();
    assert_eq!(err.oauth_code(), Some("invalid_grant"), "{}", err.message());
    assert!(!err.message().contains(&subject.access_token), "the token is not echoed: {}", err.message());
}
