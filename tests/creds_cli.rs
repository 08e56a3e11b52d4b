//! `lakeport creds` end to end: tokens from a real oidc-provider, STS and S3
//! from a real moto server that checks every signature and from a real Ceph
//! RGW 16.2 (INFN Cloud's server type), and the clients our users run
//! (awscli, rclone, restic) configured with the files in examples/.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use support::{failed_with, ok, stderr, workspace_root, Peer, UserEnv};

const ROLE: &str = "arn:aws:iam::123456789012:role/s3access";

/// An OpenID provider, and an STS service whose keys are for its own S3:
/// moto (AWS's dialect) or a real Ceph RGW (INFN Cloud's server type).
struct Chain {
    op: Peer,
    sts: Peer,
    role: &'static str,
    region: &'static str,
}

impl Chain {
    fn moto() -> Chain {
        Chain { op: Peer::oidc_provider(3600, 3600), sts: Peer::moto(&["s3access"]), role: ROLE, region: "us-east-1" }
    }

    /// RGW trusts the provider's tokens whose audience is `object`, as INFN
    /// Cloud's does, and signs with region `default`.
    fn rgw() -> Chain {
        let op = Peer::oidc_provider(3600, 3600);
        let sts = Peer::ceph_rgw(Some((&op.endpoint, &["object"])));
        Chain { op, sts, role: support::RGW_ROLE, region: "default" }
    }

    fn profile(&self, extra: &str) -> String {
        profile(&self.op, &self.sts, extra).replace(ROLE, self.role).replace("region = \"us-east-1\"", &format!("region = \"{}\"", self.region))
    }
}

/// A user's machine (see [`UserEnv`]) with ~/.aws and rclone set up from examples/.
struct Env(UserEnv);

impl std::ops::Deref for Env {
    type Target = UserEnv;
    fn deref(&self) -> &UserEnv {
        &self.0
    }
}

/// A client-credentials profile named `infncloud`, as in examples/.
fn profile(op: &Peer, sts: &Peer, extra: &str) -> String {
    format!(
        "[profiles.infncloud]\nissuer = \"{}\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"service-secret\"\naudience = \"object\"\nsts_endpoint = \"{}\"\nrole_arn = \"{ROLE}\"\nregion = \"us-east-1\"\ns3_endpoint = \"{}\"\n{extra}",
        op.endpoint, sts.endpoint, sts.endpoint
    )
}

impl Env {
    fn new(profiles: &str) -> Env {
        Env(UserEnv::new(profiles))
    }

    fn creds(&self) -> serde_json::Value {
        serde_json::from_str(&ok(&self.lakeport(&["creds", "--profile", "infncloud"]))).unwrap()
    }

    fn cache_file(&self) -> PathBuf {
        self.home().join("cache/lakeport/creds/infncloud.json")
    }

    /// examples/aws-config as ~/.aws/config; the endpoint and region of the
    /// local moto come from the environment (see `aws`).
    fn install_aws_config(&self) {
        let aws = self.home().join(".aws");
        std::fs::create_dir_all(&aws).unwrap();
        std::fs::copy(workspace_root().join("examples/aws-config"), aws.join("config")).unwrap();
    }

    fn aws(&self, s3: &Peer, args: &[&str]) -> Output {
        self.tool(workspace_root().join(".venv/bin/aws"))
            .args(["--profile", "infncloud"])
            .args(args)
            .env("AWS_ENDPOINT_URL", &s3.endpoint)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap()
    }

    /// `program` with examples/rclone.conf and the AWS profile of
    /// examples/aws-config, pointed at the local `s3`.
    fn with_rclone_remote(&self, program: impl AsRef<std::ffi::OsStr>, s3: &Peer) -> Command {
        let conf = self.home().join("rclone.conf");
        if !conf.exists() {
            std::fs::copy(workspace_root().join("examples/rclone.conf"), &conf).unwrap();
        }
        let mut cmd = self.tool(program);
        cmd.env("RCLONE_CONFIG", &conf)
            .env("AWS_PROFILE", "infncloud")
            .env("RCLONE_CONFIG_INFNCLOUD_ENDPOINT", &s3.endpoint)
            .env("RCLONE_CONFIG_INFNCLOUD_REGION", "us-east-1")
            .env("RCLONE_CACHE_DIR", self.home().join("rclone-cache"));
        cmd
    }

    fn rclone(&self, s3: &Peer) -> Command {
        self.with_rclone_remote(workspace_root().join(".venv/bin/rclone"), s3)
    }
}

#[test]
fn credential_process_output_and_its_cache() {
    let op = Peer::oidc_provider(3600, 3600);
    let moto = Peer::moto(&["s3access"]);
    let env = Env::new(&profile(&op, &moto, ""));
    let first = env.creds();
    let keys: Vec<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["AccessKeyId", "Expiration", "SecretAccessKey", "SessionToken", "Version"]);
    assert_eq!(first["Version"], 1);
    assert!(first["AccessKeyId"].as_str().unwrap().starts_with("ASIA"), "{first}");
    let expiration = first["Expiration"].as_str().unwrap();
    assert!(expiration.len() == 20 && expiration.ends_with('Z'), "RFC 3339 in UTC: {expiration}");
    assert_eq!(moto.sts_calls(), 1);

    // The cache: 0600, reused while valid, even with STS gone.
    assert_eq!(std::fs::metadata(env.cache_file()).unwrap().permissions().mode() & 0o777, 0o600);
    drop(moto);
    assert_eq!(env.creds(), first, "served from the cache");

    // env: shell exports of the same keys.
    let exports = ok(&env.lakeport(&["creds", "--profile", "infncloud", "--format", "env"]));
    assert!(exports.contains(&format!("export AWS_ACCESS_KEY_ID='{}'\n", first["AccessKeyId"].as_str().unwrap())), "{exports}");
    assert!(exports.contains(&format!("export AWS_SESSION_TOKEN='{}'\n", first["SessionToken"].as_str().unwrap())));
    assert!(exports.contains("export AWS_REGION='us-east-1'\n"));
}

#[test]
fn awscli_with_credential_process_against_moto_s3() {
    awscli_with_credential_process(&Chain::moto());
}

#[test]
fn awscli_with_credential_process_against_ceph_rgw() {
    awscli_with_credential_process(&Chain::rgw());
}

fn awscli_with_credential_process(chain: &Chain) {
    let s3 = &chain.sts;
    let env = Env::new(&chain.profile(""));
    env.install_aws_config();
    // The example is what `--format aws-config` prints, but for the full path.
    let snippet = ok(&env.lakeport(&["creds", "--profile", "infncloud", "--format", "aws-config"]));
    assert!(snippet.contains(&format!("credential_process = {} creds --profile infncloud\n", env!("CARGO_BIN_EXE_lakeport"))), "{snippet}");
    assert!(snippet.contains("request_checksum_calculation = when_required\nresponse_checksum_validation = when_required\n"));

    ok(&env.aws(s3, &["s3", "mb", "s3://lake"]));
    let data = support::pattern(300 * 1024, 7);
    let file = support::write_file(env.home(), "data.bin", &data);
    ok(&env.aws(s3, &["s3", "cp", file.to_str().unwrap(), "s3://lake/run1/data.bin"]));
    let listing = ok(&env.aws(s3, &["s3", "ls", "s3://lake/run1/"]));
    assert!(listing.contains("data.bin") && listing.contains("307200"), "{listing}");
    let back = env.home().join("back.bin");
    ok(&env.aws(s3, &["s3", "cp", "s3://lake/run1/data.bin", back.to_str().unwrap()]));
    assert_eq!(std::fs::read(&back).unwrap(), data);
    assert_eq!(s3.sts_calls(), 1, "four awscli runs, one STS call: the rest came from lakeport's cache");

    // The server checks credentials: keys that are not the assumed role's are refused.
    let forged = env
        .tool(workspace_root().join(".venv/bin/aws"))
        .args(["s3", "ls", "s3://lake/"])
        .env("AWS_ENDPOINT_URL", &s3.endpoint)
        .env("AWS_DEFAULT_REGION", chain.region)
        .env("AWS_ACCESS_KEY_ID", "ASIAFORGEDFORGEDFORG")
        .env("AWS_SECRET_ACCESS_KEY", "forged")
        .output()
        .unwrap();
    assert!(!forged.status.success(), "forged keys were accepted");
    // RGW refuses them with a message-less AccessDenied, on which awscli
    // 1.46 fails with a Python TypeError instead of printing the code.
    assert!(chain.role == support::RGW_ROLE || stderr(&forged).contains("InvalidAccessKeyId"), "{}", stderr(&forged));
}

#[test]
fn rclone_env_auth_lists_and_copies_against_moto_s3() {
    rclone_env_auth_lists_and_copies(&Chain::moto());
}

#[test]
fn rclone_env_auth_lists_and_copies_against_ceph_rgw() {
    rclone_env_auth_lists_and_copies(&Chain::rgw());
}

fn rclone_env_auth_lists_and_copies(chain: &Chain) {
    let s3 = &chain.sts;
    let env = Env::new(&chain.profile(""));
    env.install_aws_config();
    let src = env.home().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let a = support::pattern(70_000, 1);
    std::fs::write(src.join("a.bin"), &a).unwrap();
    std::fs::write(src.join("sub/b.txt"), b"hello lake\n").unwrap();

    ok(&env.rclone(s3).args(["mkdir", "infncloud:rclone-lake"]).output().unwrap());
    ok(&env.rclone(s3).args(["copy", src.to_str().unwrap(), "infncloud:rclone-lake/in"]).output().unwrap());
    let listing = ok(&env.rclone(s3).args(["lsf", "-R", "infncloud:rclone-lake/in"]).output().unwrap());
    let mut names: Vec<&str> = listing.lines().collect();
    names.sort();
    assert_eq!(names, ["a.bin", "sub/", "sub/b.txt"]);
    let dst = env.home().join("dst");
    ok(&env.rclone(s3).args(["copy", "infncloud:rclone-lake/in", dst.to_str().unwrap()]).output().unwrap());
    assert_eq!(std::fs::read(dst.join("a.bin")).unwrap(), a);
    assert_eq!(std::fs::read(dst.join("sub/b.txt")).unwrap(), b"hello lake\n");
    assert_eq!(s3.sts_calls(), 1);
}

#[test]
fn restic_backup_and_restore_through_rclone_serve_restic() {
    restic_backup_and_restore(&Chain::moto());
}

#[test]
fn restic_backup_and_restore_on_ceph_rgw() {
    restic_backup_and_restore(&Chain::rgw());
}

fn restic_backup_and_restore(chain: &Chain) {
    support::tool_on_path("restic");
    let s3 = &chain.sts;
    let env = Env::new(&chain.profile(""));
    env.install_aws_config();
    let data = env.home().join("results");
    std::fs::create_dir_all(data.join("run-42")).unwrap();
    let big = support::pattern(1 << 20, 42);
    std::fs::write(data.join("run-42/events.root"), &big).unwrap();
    std::fs::write(data.join("notes.txt"), "calibration ok\n").unwrap();
    ok(&env.rclone(s3).args(["mkdir", "infncloud:backups"]).output().unwrap());

    let script = workspace_root().join("examples/restic-backup.sh");
    let restic = |args: &[&str]| {
        env.with_rclone_remote(&script, s3)
            .args(args)
            .env("RESTIC_PASSWORD", "restic test password")
            .env("RESTIC_CACHE_DIR", env.home().join("restic-cache"))
            .env("LAKEPORT_RESTIC_REMOTE", "infncloud:backups/restic")
            .output()
            .unwrap()
    };
    ok(&restic(&["init"]));
    ok(&restic(&["backup", data.to_str().unwrap()]));
    let restored = env.home().join("restored");
    ok(&restic(&["restore", "latest", "--target", restored.to_str().unwrap()]));
    let back = restored.join(data.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(back.join("run-42/events.root")).unwrap(), big, "byte-identical");
    assert_eq!(std::fs::read_to_string(back.join("notes.txt")).unwrap(), "calibration ok\n");
    let objects = ok(&env.rclone(s3).args(["lsf", "-R", "infncloud:backups/restic"]).output().unwrap());
    assert!(objects.lines().any(|l| l == "config"), "the repository lives in S3: {objects}");
    assert_eq!(s3.sts_calls(), 1);
}

#[test]
fn concurrent_invocations_on_an_empty_cache_make_one_sts_call() {
    let op = Peer::oidc_provider(3600, 3600);
    let moto = Peer::moto(&["s3access"]);
    let env = Env::new(&profile(&op, &moto, ""));
    let children: Vec<_> = (0..8)
        .map(|_| env.lakeport_command(&["creds", "--profile", "infncloud"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let outputs: Vec<String> = children.into_iter().map(|c| ok(&c.wait_with_output().unwrap())).collect();
    assert!(outputs.iter().all(|o| o == &outputs[0]), "all eight got the same credentials");
    assert_eq!(moto.sts_calls(), 1);
}

#[test]
fn credentials_within_fifteen_minutes_of_expiry_are_renewed() {
    let op = Peer::oidc_provider(3600, 3600);
    let moto = Peer::moto(&["s3access"]);
    // 900 s credentials are inside the 15 minute margin from the start.
    let env = Env::new(&profile(&op, &moto, "duration_seconds = 900\n"));
    let first = env.creds();
    let second = env.creds();
    assert_ne!(first["AccessKeyId"], second["AccessKeyId"]);
    assert_eq!(moto.sts_calls(), 2);

    // Editing the profile (another role) does not reuse the old role's keys.
    let env = Env::new(&profile(&op, &moto, ""));
    env.creds();
    std::fs::write(&env.config, profile(&op, &moto, "").replace("role/s3access", "role/other")).unwrap();
    env.creds();
    assert_eq!(moto.sts_calls(), 4);
}

#[test]
fn failures_name_the_step_and_leave_stdout_empty() {
    let op = Peer::oidc_provider(3600, 3600);
    let moto = Peer::moto(&["s3access"]);

    // Token step: the issuer refuses the client.
    let env = Env::new(&profile(&op, &moto, "").replace("service-secret", "wrong-secret"));
    let out = env.lakeport(&["creds"]);
    failed_with(&out, "getting the OIDC token for STS");
    assert!(!stderr(&out).contains("wrong-secret"));
    assert_eq!(moto.sts_calls(), 0);

    // STS step: nothing listens.
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let env = Env::new(&profile(&op, &moto, "").replace(&format!("sts_endpoint = \"{}\"", moto.endpoint), &format!("sts_endpoint = \"{dead}\"")));
    failed_with(&env.lakeport(&["creds"]), "cannot reach STS");

    // Parse step: an endpoint that answers, but not STS XML (the OpenID provider).
    let env = Env::new(&profile(&op, &moto, "").replace(&format!("sts_endpoint = \"{}\"", moto.endpoint), &format!("sts_endpoint = \"{}/\"", op.endpoint)));
    failed_with(&env.lakeport(&["creds"]), "cannot read the STS answer");

    // Configuration: no way to get keys.
    let env = Env::new(&format!("[profiles.infncloud]\nissuer = \"{}\"\nclient_id = \"x\"\n", op.endpoint));
    failed_with(&env.lakeport(&["creds"]), "has no S3 credentials: set sts_endpoint and role_arn");
    assert!(!env.cache_file().exists());
}

#[test]
fn verbose_output_has_no_secrets_and_static_keys_need_no_sts() {
    let op = Peer::oidc_provider(3600, 3600);
    let moto = Peer::moto(&["s3access"]);
    let env = Env::new(&profile(&op, &moto, ""));
    let out = env.lakeport(&["-v", "creds"]);
    let creds: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let log = stderr(&out);
    assert!(log.contains("AssumeRoleWithWebIdentity"), "{log}");
    for secret in [&creds["SecretAccessKey"], &creds["SessionToken"]] {
        assert!(!log.contains(secret.as_str().unwrap()), "a secret in the verbose log: {log}");
    }
    let token = std::fs::read_to_string(env.home().join("cache/lakeport/tokens/infncloud.json")).unwrap();
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    assert!(!log.contains(token["access_token"].as_str().unwrap()), "the token in the verbose log");

    let env = Env::new("[profiles.fixed]\naccess_key_id = \"AKIDSTATIC\"\nsecret_access_key = \"static-secret\"\n");
    let fixed: serde_json::Value = serde_json::from_str(&ok(&env.lakeport(&["creds"]))).unwrap();
    assert_eq!(fixed, serde_json::json!({"Version": 1, "AccessKeyId": "AKIDSTATIC", "SecretAccessKey": "static-secret"}));
}

#[test]
fn credential_process_output_from_ceph_rgw() {
    let chain = Chain::rgw();
    let env = Env::new(&chain.profile(""));
    let first = env.creds();
    let keys: Vec<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["AccessKeyId", "Expiration", "SecretAccessKey", "SessionToken", "Version"]);
    // RGW writes Expiration with nanoseconds; credential_process wants RFC 3339 seconds.
    let expiration = first["Expiration"].as_str().unwrap();
    assert!(expiration.len() == 20 && expiration.ends_with('Z'), "RFC 3339 in UTC: {expiration}");
    assert_eq!(chain.sts.sts_calls(), 1);
    assert_eq!(env.creds(), first, "served from the cache");
    assert_eq!(chain.sts.sts_calls(), 1);
}

/// What RGW 16.2 says to every refusal: 403 AccessDenied, no message. Each
/// is one line that names the likely causes once, exit 1, empty stdout.
#[test]
fn ceph_rgw_refusals_are_one_line_errors_that_name_the_likely_causes() {
    let chain = Chain::rgw();
    let refused = |profile: String, case: &str| {
        let env = Env::new(&profile);
        let out = env.lakeport(&["creds", "--profile", "infncloud"]);
        assert_eq!(out.status.code(), Some(1), "{case}: exit 1");
        failed_with(&out, "STS refused (HTTP 403, AccessDenied): the token was not accepted for this role; likely causes:");
        let err = stderr(&out);
        assert_eq!(err.matches("STS refused").count(), 1, "{case}: said once: {err}");
        for cause in ["role_arn", "trust policy", "audience", "not registered", "expired"] {
            assert!(err.contains(cause), "{case}: names {cause}: {err}");
        }
        assert!(!env.cache_file().exists(), "{case}: nothing cached");
    };
    refused(chain.profile("").replace(support::RGW_ROLE, "arn:aws:iam:::role/NoSuchRole"), "unknown role");
    refused(chain.profile("").replace("audience = \"object\"", "audience = \"another-service\""), "wrong audience");
    let stranger = Peer::oidc_provider(3600, 3600);
    refused(chain.profile("").replace(&format!("issuer = \"{}\"", chain.op.endpoint), &format!("issuer = \"{}\"", stranger.endpoint)), "unknown issuer");
    assert_eq!(chain.sts.sts_calls(), 3, "each case asked STS once");

    // An expired token: lakeport's clock is two hours behind, so the token
    // it cached (5 s of life) still looks fresh to it when RGW refuses it.
    let op = Peer::oidc_provider(5, 3600);
    let rgw = Peer::ceph_rgw(Some((&op.endpoint, &["object"])));
    let short = Chain { op, sts: rgw, role: support::RGW_ROLE, region: "default" };
    let env = Env::new(&short.profile(""));
    let behind = |args: &[&str]| {
        let mut cmd = env.tool(support::tool_on_path("faketime"));
        cmd.args(["-f", "-2h"]).arg(support::Lakeport::path()).args(args);
        cmd.output().unwrap()
    };
    ok(&behind(&["token", "get", "--profile", "infncloud"]));
    std::thread::sleep(std::time::Duration::from_secs(6));
    let out = behind(&["creds", "--profile", "infncloud"]);
    assert_eq!(out.status.code(), Some(1), "expired token: exit 1");
    failed_with(&out, "STS refused (HTTP 403, AccessDenied): the token was not accepted for this role; likely causes:");
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert_eq!(short.sts.sts_calls(), 1);
}

/// Tokens go to plain-http endpoints only on this machine: a profile whose
/// sts_endpoint is plain http on another host is refused before any token
/// is fetched or sent, and says how to allow it.
#[test]
fn tokens_are_not_sent_over_plain_http_to_other_machines() {
    let user = UserEnv::new(
        "[profiles.lab]\nissuer = \"http://iam.example.org\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"service-secret\"\nsts_endpoint = \"https://sts.example.org\"\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\n",
    );
    let out = user.lakeport(&["creds"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("http://iam.example.org:80 is plain http") && err.contains("allow_insecure_http = true"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("service-secret"));
}
