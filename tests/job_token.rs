//! Tokens handed to a job (`grant = "token"`, `grant = "github-actions"`):
//! the example CI job of examples/ci run as GitLab and GitHub would run it,
//! in a fresh HOME with the job's token from a real OpenID provider, STS
//! keys from moto, and the upload read back; and a clear error, before any
//! STS call, for every way the handed token can be missing or stale.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use support::{failed_with, ok, stderr, workspace_root, Peer, UserEnv};

const ROLE: &str = "arn:aws:iam::123456789012:role/s3access";

/// The OpenID provider and moto (STS and S3), with a profile for the CI's
/// own side: it issues the job's token (client credentials, audience
/// `object`), and makes and reads the bucket with STS keys of its own.
struct Ci {
    op: Peer,
    moto: Peer,
    admin: UserEnv,
}

impl Ci {
    fn start() -> Ci {
        let op = Peer::oidc_provider(3600, 3600);
        let moto = Peer::moto(&["s3access"]);
        let admin = UserEnv::new(&format!(
            "[profiles.admin]\nissuer = \"{}\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"service-secret\"\naudience = \"object\"\nsts_endpoint = \"{}\"\nrole_arn = \"{ROLE}\"\nregion = \"us-east-1\"\ns3_endpoint = \"{}\"\naddressing_style = \"path\"\n",
            op.endpoint, moto.endpoint, moto.endpoint
        ));
        ok(&admin.lakeport(&["s3", "mb", "s3://artifacts"]));
        Ci { op, moto, admin }
    }

    /// A token the CI hands a job (GitLab's `id_tokens`).
    fn job_token(&self) -> String {
        ok(&self.admin.lakeport(&["token", "get"])).trim().to_string()
    }

    fn object(&self, key: &str) -> Vec<u8> {
        let out = self.admin.lakeport(&["s3", "cp", &format!("s3://artifacts/{key}"), "-"]);
        assert!(out.status.success(), "downloading {key}: {}", stderr(&out));
        out.stdout
    }

    /// The example job's script in a fresh HOME (no lakeport configuration,
    /// store or cache), with the job's variables.
    fn run_job(&self, vars: &[(&str, String)], files: &[&str]) -> (UserEnv, Output) {
        let job = UserEnv::new("");
        let mut cmd = job.tool(workspace_root().join("examples/ci/upload-artifacts.sh"));
        // Only the job's own variables reach it.
        for name in ["BEARER_TOKEN", "BEARER_TOKEN_FILE", "XDG_RUNTIME_DIR", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"] {
            cmd.env_remove(name);
        }
        cmd.current_dir(job.home())
            .env_remove("LAKEPORT_CONFIG")
            .env("LAKEPORT_STS_ENDPOINT", &self.moto.endpoint)
            .env("LAKEPORT_ROLE_ARN", ROLE)
            .env("LAKEPORT_S3_ENDPOINT", &self.moto.endpoint)
            .env("LAKEPORT_REGION", "us-east-1")
            .env("LAKEPORT_DESTINATION", "s3://artifacts/pipeline-42/")
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .args(files);
        let out = cmd.output().expect("running the example job");
        (job, out)
    }
}

fn write(job_dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let path = job_dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

/// Nothing of lakeport's in the job's HOME but caches: no token store.
fn assert_no_store(job: &UserEnv) {
    assert!(!job.home().join("data/lakeport").exists(), "a grant of a handed token keeps no store");
}

#[test]
fn gitlab_example_job_uploads_with_sts_keys_for_its_id_token() {
    let ci = Ci::start();
    let token = ci.job_token();
    let scratch = tempfile::tempdir().unwrap();
    let report = write(scratch.path(), "report.txt", b"all tests passed\n");
    let site = write(scratch.path(), "site.tar.gz", &support::pattern(300_000, 7));
    let calls = ci.moto.sts_calls();
    let (job, out) = ci.run_job(&[("LAKEPORT_ID_TOKEN", token)], &[&report, &site]);
    ok(&out);
    assert_eq!(ci.object("pipeline-42/report.txt"), b"all tests passed\n");
    assert_eq!(ci.object("pipeline-42/site.tar.gz"), support::pattern(300_000, 7));
    assert!(ci.moto.sts_calls() > calls, "the job's keys came from STS");
    assert_no_store(&job);
}

#[test]
fn github_example_job_asks_the_token_service_for_its_audience() {
    let ci = Ci::start();
    let scratch = tempfile::tempdir().unwrap();
    let wheel = write(scratch.path(), "lakeport-0.1.0.whl", b"wheel bytes");
    let vars = |request_token: &str| {
        vec![
            ("LAKEPORT_GRANT", "github-actions".to_string()),
            ("LAKEPORT_AUDIENCE", "object".to_string()),
            // As GitHub's, the URL carries a query of its own.
            ("ACTIONS_ID_TOKEN_REQUEST_URL", ci.op.url("/test/actions/token?api-version=2.0")),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token.to_string()),
        ]
    };
    let (job, out) = ci.run_job(&vars("actions-request-token"), &[&wheel]);
    ok(&out);
    assert_eq!(ci.object("pipeline-42/lakeport-0.1.0.whl"), b"wheel bytes");
    assert_no_store(&job);
    // The token lakeport gets is the one the service made for the audience asked.
    let probe = UserEnv::new("[profiles.gh]\ngrant = \"github-actions\"\naudience = \"object\"\n");
    let mut get = probe.lakeport_command(&["token", "get", "--output", "json"]);
    get.envs(vars("actions-request-token").into_iter().filter(|(k, _)| k.starts_with("ACTIONS_")));
    let doc: serde_json::Value = serde_json::from_str(&ok(&get.output().unwrap())).unwrap();
    assert_eq!(doc["audience"], serde_json::json!(["object"]), "{doc}");
    assert_eq!(support::jwt_claims(doc["access_token"].as_str().unwrap())["sub"], "repo:lakeport/example:ref:refs/heads/main");
    // A request token the service refuses: one line that says what to check.
    let (_, out) = ci.run_job(&vars("stolen"), &[&wheel]);
    let err = stderr(&out);
    assert!(!out.status.success() && err.contains("HTTP 401") && err.contains("id-token: write"), "{err}");
}

/// A profile with a handed token, for the error cases, in `env`'s HOME.
fn token_profile(ci: &Ci, source: &str) -> String {
    format!(
        "[profiles.job]\ngrant = \"token\"\n{source}\nsts_endpoint = \"{}\"\nrole_arn = \"{ROLE}\"\nregion = \"us-east-1\"\ns3_endpoint = \"{}\"\n",
        ci.moto.endpoint, ci.moto.endpoint
    )
}

/// A JWT as the provider's, expired `ago` seconds ago (unsigned: lakeport
/// reads the expiry only; STS would verify it).
fn expired_jwt(ago: i64) -> String {
    use base64::Engine as _;
    let b64 = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    let claims = serde_json::json!({"iss": "https://gitlab.example.org", "sub": "project_path:group/p", "aud": "object", "exp": now - ago, "iat": now - ago - 300});
    format!("{}.{}.c2lnbmF0dXJl", b64(&header), b64(&claims))
}

#[test]
fn a_missing_empty_unreadable_or_expired_token_fails_before_sts() {
    let ci = Ci::start();
    let calls = ci.moto.sts_calls();
    let dir = tempfile::tempdir().unwrap();
    let creds = |profile: &str, vars: &[(&str, String)]| {
        let env = UserEnv::new(profile);
        let mut cmd = env.lakeport_command(&["creds"]);
        for name in ["BEARER_TOKEN", "BEARER_TOKEN_FILE", "XDG_RUNTIME_DIR", "CI_JOB_JWT"] {
            cmd.env_remove(name);
        }
        cmd.envs(vars.iter().map(|(k, v)| (k, v))).output().unwrap()
    };

    let by_env = token_profile(&ci, "token_env = \"CI_JOB_JWT\"");
    failed_with(&creds(&by_env, &[]), "token_env names the variable CI_JOB_JWT, which is not set");
    failed_with(&creds(&by_env, &[("CI_JOB_JWT", "  \n".into())]), "the variable CI_JOB_JWT is empty");
    failed_with(&creds(&by_env, &[("CI_JOB_JWT", "two words".into())]), "does not hold a token");
    let out = creds(&by_env, &[("CI_JOB_JWT", expired_jwt(120))]);
    failed_with(&out, "the token from the variable CI_JOB_JWT expired at");
    assert!(!stderr(&out).contains(&expired_jwt(120)[..40]), "the token is never printed");

    let missing = dir.path().join("no-such-token");
    let by_file = token_profile(&ci, &format!("token_file = \"{}\"", missing.display()));
    failed_with(&creds(&by_file, &[]), "(token_file) does not exist");
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "").unwrap();
    failed_with(&creds(&token_profile(&ci, &format!("token_file = \"{}\"", empty.display())), &[]), "is empty");
    let unreadable = dir.path().join("a-directory");
    std::fs::create_dir(&unreadable).unwrap();
    failed_with(&creds(&token_profile(&ci, &format!("token_file = \"{}\"", unreadable.display())), &[]), "cannot read the file");

    // WLCG discovery: BEARER_TOKEN_FILE that is wrong is an error, not a
    // reason to look elsewhere; nothing found names every place looked at.
    let discovering = token_profile(&ci, "");
    failed_with(&creds(&discovering, &[("BEARER_TOKEN_FILE", missing.display().to_string())]), "(BEARER_TOKEN_FILE) does not exist");
    let runtime_dir = dir.path().join("run");
    std::fs::create_dir(&runtime_dir).unwrap();
    let out = creds(&discovering, &[("XDG_RUNTIME_DIR", runtime_dir.display().to_string())]);
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if !std::path::Path::new(&format!("/tmp/bt_u{uid}")).exists() {
        failed_with(&out, &format!("BEARER_TOKEN, BEARER_TOKEN_FILE, {}/bt_u{uid}, /tmp/bt_u{uid}", runtime_dir.display()));
    }
    assert_eq!(ci.moto.sts_calls(), calls, "no STS call for a token that cannot work");
}

#[test]
fn wlcg_discovery_finds_the_runtime_dir_file_and_warns_when_others_can_read_it() {
    let ci = Ci::start();
    let token = ci.job_token();
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let file = dir.path().join(format!("bt_u{uid}"));
    std::fs::write(&file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = UserEnv::new(&token_profile(&ci, ""));
    let creds = || {
        let mut cmd = env.lakeport_command(&["creds"]);
        for name in ["BEARER_TOKEN", "BEARER_TOKEN_FILE"] {
            cmd.env_remove(name);
        }
        cmd.env("XDG_RUNTIME_DIR", dir.path()).output().unwrap()
    };
    let out = creds();
    let doc: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(doc["AccessKeyId"].as_str().is_some_and(|k| !k.is_empty()), "{doc}");
    assert!(stderr(&out).is_empty(), "a 0600 file needs no warning: {}", stderr(&out));
    // Readable by others: used, with a warning (see job_token.rs for why).
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _ = std::fs::remove_dir_all(env.home().join("cache"));
    let out = creds();
    ok(&out);
    assert!(stderr(&out).contains("readable by other users (mode 0644)"), "{}", stderr(&out));
}
