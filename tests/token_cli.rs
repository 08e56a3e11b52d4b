//! `lakeport token` end to end: the CLI against a real oidc-provider, with
//! its files (encrypted store, access-token cache) in temporary XDG folders.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{failed_with, ok, stderr, Peer, UserEnv};

const PASSPHRASE: &str = "a long test passphrase";

/// A user's machine (see [`UserEnv`]) whose token store opens with PASSPHRASE.
struct Env(UserEnv);

impl std::ops::Deref for Env {
    type Target = UserEnv;
    fn deref(&self) -> &UserEnv {
        &self.0
    }
}

impl Env {
    fn new(profiles: &str) -> Env {
        Env(UserEnv::new(profiles))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.lakeport_command(args);
        cmd.env("LAKEPORT_PASSPHRASE", PASSPHRASE);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn store_file(&self, profile: &str) -> PathBuf {
        self.home().join(format!("data/lakeport/secrets/{profile}.json"))
    }

    fn cache_file(&self, profile: &str) -> PathBuf {
        self.home().join(format!("cache/lakeport/tokens/{profile}.json"))
    }

    /// `token login`, approving the device code through the provider's test route.
    fn login(&self, op: &Peer, profile: &str) -> Output {
        self.login_and(op, profile, "approve")
    }

    /// `token login`, answering the device code with the test route `action`
    /// (`approve` or `deny`); stderr is what the login printed.
    fn login_and(&self, op: &Peer, profile: &str, action: &str) -> Output {
        let mut child = self.command(&["token", "login", "--profile", profile]).stderr(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 {
                break;
            }
            seen.push_str(&line);
            if let Some(code) = line.strip_prefix("and enter the code: ") {
                let reply = support::send("POST", &op.url(&format!("/test/device/{action}?user_code={}", code.trim())), &[], b"");
                assert_eq!(reply.status, 204);
            }
        }
        let mut out = child.wait_with_output().unwrap();
        out.stderr = seen.into_bytes();
        out
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn device_profile(op: &Peer) -> String {
    format!(
        "[profiles.lab]\nissuer = \"{}\"\ngrant = \"device\"\nclient_id = \"device-basic\"\nclient_secret = \"device-basic-secret\"\nscopes = \"openid offline_access\"\naudience = \"object\"\n",
        op.endpoint
    )
}

#[test]
fn client_credentials_token_get_and_cache() {
    let op = Peer::oidc_provider(300, 3600);
    let env = Env::new(&format!(
        "[profiles.ci]\nissuer = \"{}\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"service-secret\"\naudience = \"object\"\nscopes = \"s3\"\n",
        op.endpoint
    ));
    let token = ok(&env.run(&["token", "get", "--profile", "ci"]));
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    let json: serde_json::Value = serde_json::from_str(&ok(&env.run(&["token", "get", "--output", "json"]))).unwrap();
    assert_eq!(json["access_token"].as_str().unwrap(), token.trim(), "the cached token is reused");
    assert_eq!(json["issuer"], op.endpoint.as_str());
    assert_eq!(json["audience"], serde_json::json!(["object"]));
    assert!(json["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(mode(&env.cache_file("ci")), 0o600);
    // With the issuer gone, the cached token still serves...
    drop(op);
    assert_eq!(ok(&env.run(&["token", "get"])).trim(), token.trim());
    // ...unless it must live longer than it will: then the issuer is needed.
    failed_with(&env.run(&["token", "get", "--min-valid", "3000"]), "refused the connection");
}

#[test]
fn wrong_client_secret_says_what_to_check() {
    let op = Peer::oidc_provider(300, 3600);
    let env = Env::new(&format!(
        "[profiles.ci]\nissuer = \"{}\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"not-the-secret\"\n",
        op.endpoint
    ));
    failed_with(&env.run(&["token", "get"]), "check client_id and client_secret");
    let verbose = env.run(&["-v", "token", "get"]);
    assert!(!verbose.status.success());
    assert!(!stderr(&verbose).contains("not-the-secret"), "{}", stderr(&verbose));
}

#[test]
fn device_login_store_refresh_rotation_and_logout() {
    let op = Peer::oidc_provider(300, 3600);
    let env = Env::new(&device_profile(&op));
    let login = env.login(&op, "lab");
    assert!(login.status.success(), "{}", stderr(&login));
    let log = stderr(&login);
    assert!(log.contains(&format!("To log in, open {}/device", op.endpoint)), "{log}");
    assert!(log.contains("logged in to") && log.contains("as alice"), "{log}");

    // The store: 0600 in a 0700 directory, no secret in clear.
    let store = env.store_file("lab");
    assert_eq!(mode(&store), 0o600);
    assert_eq!(mode(store.parent().unwrap()), 0o700);
    let secrets = lakeport::store::Store::at(store.parent().unwrap()).load("lab", PASSPHRASE).unwrap().unwrap();
    let refresh = secrets.refresh_token.clone().unwrap();
    let raw = std::fs::read_to_string(&store).unwrap();
    assert!(!raw.contains(&refresh), "refresh token in clear");
    assert!(!raw.contains("device-basic-secret"), "client secret in clear");
    assert_eq!(secrets.client_secret.as_deref(), Some("device-basic-secret"));

    // Without a cached access token, `get` refreshes and keeps the rotated refresh token.
    let first = ok(&env.run(&["token", "get"]));
    std::fs::remove_file(env.cache_file("lab")).unwrap();
    let refreshed = env.run(&["-v", "token", "get"]);
    let second = ok(&refreshed);
    assert_ne!(first, second, "a fresh access token");
    assert!(stderr(&refreshed).contains("issuer metadata from the discovery cache"), "{}", stderr(&refreshed));
    let rotated = lakeport::store::Store::at(store.parent().unwrap()).load("lab", PASSPHRASE).unwrap().unwrap().refresh_token.unwrap();
    assert_ne!(rotated, refresh, "the rotated refresh token was stored");

    // A wrong passphrase is a clear error and changes nothing.
    std::fs::remove_file(env.cache_file("lab")).unwrap();
    let before = std::fs::read(&store).unwrap();
    let wrong = env.command(&["token", "get"]).env("LAKEPORT_PASSPHRASE", "wrong").output().unwrap();
    failed_with(&wrong, "wrong passphrase");
    assert_eq!(std::fs::read(&store).unwrap(), before);

    let s3_keys = env.home().join("cache/lakeport/creds/lab.json");
    std::fs::create_dir_all(s3_keys.parent().unwrap()).unwrap();
    std::fs::write(&s3_keys, "{}").unwrap();
    let out = env.run(&["token", "logout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("revoked at the issuer"), "{}", stderr(&out));
    assert!(!store.exists() && !env.cache_file("lab").exists() && !s3_keys.exists(), "logout forgets the token and the S3 keys");
    failed_with(&env.run(&["token", "get"]), "run `lakeport token login --profile lab`");
}

#[test]
fn revoked_refresh_token_asks_to_log_in_again() {
    let op = Peer::oidc_provider(300, 3600);
    let env = Env::new(&device_profile(&op));
    assert!(env.login(&op, "lab").status.success());
    let dir = env.store_file("lab").parent().unwrap().to_path_buf();
    let refresh = lakeport::store::Store::at(&dir).load("lab", PASSPHRASE).unwrap().unwrap().refresh_token.unwrap();
    let reply = support::send(
        "POST",
        &op.url("/token/revocation"),
        &[("Content-Type".into(), "application/x-www-form-urlencoded".into()), ("Authorization".into(), "Basic ZGV2aWNlLWJhc2ljOmRldmljZS1iYXNpYy1zZWNyZXQ=".into())],
        format!("token={refresh}&token_type_hint=refresh_token").as_bytes(),
    );
    assert_eq!(reply.status, 200);
    std::fs::remove_file(env.cache_file("lab")).unwrap();
    let out = env.run(&["token", "get"]);
    failed_with(&out, "was rejected (expired or revoked): run `lakeport token login --profile lab`");
}

#[test]
fn concurrent_refreshes_with_rotation_all_succeed() {
    // The provider rotates refresh tokens and, shown a spent one, revokes the
    // login: two refreshes with the same token would break the profile.
    let op = Peer::oidc_provider(300, 3600);
    let env = Env::new(&device_profile(&op));
    assert!(env.login(&op, "lab").status.success());
    // No cached access token: each run needs a refresh unless another's is there.
    std::fs::remove_file(env.cache_file("lab")).unwrap();
    let runs: Vec<_> = (0..4)
        .map(|_| env.command(&["token", "get", "--min-valid", "200"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let tokens: Vec<String> = runs.into_iter().map(|run| ok(&run.wait_with_output().unwrap())).collect();
    assert_eq!(tokens[0].trim().split('.').count(), 3, "a JWT: {}", tokens[0]);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one refresh, shared through the cache: {tokens:?}");
    // The stored refresh token is still alive.
    std::fs::remove_file(env.cache_file("lab")).unwrap();
    let after = ok(&env.run(&["token", "get", "--min-valid", "200"]));
    assert_ne!(after, tokens[0], "a fresh access token");
}

#[test]
fn unsavable_rotated_refresh_token_fails_and_keeps_nothing_stale() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    let op = Peer::oidc_provider(300, 3600);
    let env = Env::new(&device_profile(&op));
    assert!(env.login(&op, "lab").status.success());
    let store = env.store_file("lab");
    let stored = std::fs::read(&store).unwrap();
    // A token store the runs below cannot write: its directory read-only.
    // Root writes there anyway, so under root they run as nobody, who owns
    // the rest of the home.
    let nobody = (std::fs::metadata(env.home()).unwrap().uid() == 0).then_some(65534);
    if let Some(uid) = nobody {
        let chown = Command::new("chown").arg("-R").arg(format!("{uid}:{uid}")).arg(env.home()).status().unwrap();
        assert!(chown.success());
    }
    std::fs::set_permissions(store.parent().unwrap(), std::fs::Permissions::from_mode(0o500)).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = env.command(args);
        if let Some(uid) = nobody {
            cmd.uid(uid).gid(uid);
        }
        cmd.output().unwrap()
    };

    let out = run(&["token", "get", "--min-valid", "400"]);
    failed_with(&out, "the new one could not be saved");
    failed_with(&out, "cannot write the token store");
    failed_with(&out, "run `lakeport token login --profile lab`");
    assert_eq!(std::fs::read(&store).unwrap(), stored, "the store is as it was");
    assert!(!env.cache_file("lab").exists(), "no access token cached");
    // The stored refresh token is spent: not presented again, and not by
    // `get` without --min-valid either (no cached token to fall back on).
    let again = run(&["token", "get"]);
    failed_with(&again, "was spent by a refresh whose new token could not be saved: run `lakeport token login --profile lab`");
    assert_eq!(std::fs::read(&store).unwrap(), stored);

    // A new login (the store writable again, and the home the user's own:
    // lakeport trusts no store another user owns) works as before.
    std::fs::set_permissions(store.parent().unwrap(), std::fs::Permissions::from_mode(0o700)).unwrap();
    if nobody.is_some() {
        let chown = Command::new("chown").arg("-R").arg("0:0").arg(env.home()).status().unwrap();
        assert!(chown.success());
    }
    assert!(env.login(&op, "lab").status.success());
    std::fs::remove_file(env.cache_file("lab")).unwrap();
    ok(&env.run(&["token", "get"]));
}

#[test]
fn denied_login_fails_cleanly() {
    let op = Peer::oidc_provider(300, 3600);
    let env = Env::new(&device_profile(&op));
    let out = env.login_and(&op, "lab", "deny");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("the login was denied at the issuer"), "{}", stderr(&out));
    assert!(!env.store_file("lab").exists(), "nothing stored");
}

#[test]
fn configuration_errors_are_one_line() {
    let env = Env::new("[profiles.a]\nissur = \"https://x\"\n");
    failed_with(&env.run(&["token", "get"]), "unknown field `issur`");
    let env = Env::new("[profiles.a]\ngrant = \"device\"\n[profiles.b]\n");
    failed_with(&env.run(&["token", "get"]), "pass --profile");
    failed_with(&env.run(&["token", "get", "--profile", "zz"]), "no profile 'zz'");
    failed_with(&env.run(&["token", "get", "--profile", "a"]), "has no 'issuer'");
    let env = Env::new("[profiles.a]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"x\"\n");
    failed_with(&env.run(&["token", "get"]), "not logged in");
}

#[test]
fn status_reports_expiry_and_exits_non_zero_when_it_is_near_or_gone() {
    let op = Peer::oidc_provider(300, 3600);
    let env = Env::new(&format!("{}refresh_token_days = 30\n", device_profile(&op)));
    // A status report: the findings on stdout, the verdict in the exit code and on stderr.
    let none = env.run(&["token", "status"]);
    assert!(!none.status.success());
    assert!(stderr(&none).contains("has no refresh token: run `lakeport token login --profile lab`"), "{}", stderr(&none));
    assert!(String::from_utf8_lossy(&none.stdout).contains("refresh token:  none stored"));

    assert!(env.login(&op, "lab").status.success());
    let healthy = env.run(&["token", "status"]);
    let text = ok(&healthy);
    assert!(text.contains("profile:        lab (device)"), "{text}");
    assert!(text.contains("refresh token:  expires ") && text.contains("(in 29 days)") || text.contains("(in 30 days)"), "{text}");
    assert!(text.contains("access token:   valid until"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&ok(&env.run(&["token", "status", "--output", "json"]))).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["refresh_token_stored"], true);
    // The warning window reaches the expiry: unhealthy.
    let near = env.run(&["token", "status", "--warn-days", "31"]);
    assert!(!near.status.success());
    assert!(stderr(&near).contains("the refresh token of profile 'lab' expires in 29 days") || stderr(&near).contains("expires in 30 days"), "{}", stderr(&near));
}

#[test]
fn status_pings_success_or_fail() {
    let op = Peer::oidc_provider(300, 3600);
    let env = Env::new(&device_profile(&op));
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("ok"), "").unwrap();
    std::fs::create_dir(site.path().join("bad")).unwrap();
    std::fs::write(site.path().join("bad/fail"), "").unwrap();
    let python = support::workspace_root().join(".venv/bin/python");
    let hc = Peer::start("ping receiver", &python, |port, _| {
        vec!["-m".into(), "http.server".into(), "--bind".into(), "127.0.0.1".into(), "--directory".into(), site.path().into(), port.to_string().into()]
    });
    // Not logged in: unhealthy, pings URL/fail.
    let out = env.run(&["token", "status", "--ping", &hc.url("/bad")]);
    assert!(!out.status.success());
    assert!(env.login(&op, "lab").status.success());
    let out = env.run(&["token", "status", "--ping", &hc.url("/ok")]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = hc.log();
    assert!(log.contains("\"GET /bad/fail HTTP/1.1\" 200"), "{log}");
    assert!(log.contains("\"GET /ok HTTP/1.1\" 200"), "{log}");
    // An unreachable ping target is a warning, not a different verdict.
    let out = env.run(&["token", "status", "--ping", &format!("http://127.0.0.1:{}/x", support::free_port())]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("warning: ping: cannot connect"), "{}", stderr(&out));
}
