//! `lakeport rucio` end to end against a real Rucio server (PyPI `rucio`
//! under gunicorn on SQLite, tests/peers/rucio) whose RSEs point at an S3
//! server the tests start. Fixtures are made, and results cross-checked,
//! with the real Python client.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;
#[path = "support/fault_proxy.rs"]
#[allow(dead_code)]
mod fault_proxy;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use fault_proxy::{FaultProxy, Faults};
use support::{ok, peer_binary, stderr, Peer, UserEnv};

const ROOT_PASSWORD: &str = "rucio-root-secret";
const JDOE_PASSWORD: &str = "jdoe-secret";

struct Lake {
    rucio: Peer,
    s3: Peer,
}

impl Lake {
    fn start() -> Lake {
        Lake::on(Peer::s3s_fs())
    }

    /// A Rucio whose RSEs' S3 protocols point at `s3`.
    fn on(s3: Peer) -> Lake {
        let rucio = Peer::rucio(&s3.endpoint);
        Lake { rucio, s3 }
    }

    /// Runs Python with the real Rucio client as `account` (root or jdoe).
    fn python(&self, account: &str, code: &str) -> String {
        rucio_python(&self.rucio, account, code)
    }

    /// A lakeport user whose profile logs in to this Rucio as `account`.
    fn user(&self, account: &str, password: &str, extra: &str) -> UserEnv {
        UserEnv::new(&format!(
            "[profiles.lake]\nrucio_host = \"{}\"\nrucio_account = \"{account}\"\nrucio_username = \"{account}\"\nrucio_password = \"{password}\"\n{extra}",
            self.rucio.endpoint
        ))
    }

    /// Waits (up to a minute) until a rule of `scope:name` reads
    /// `"RSE_EXPRESSION STATE"` to the Python client.
    fn await_rule(&self, scope: &str, name: &str, wanted: &str) {
        let rule_states = format!("from rucio.client import Client\nfor r in Client().list_did_rules('{scope}', '{name}'):\n    print(r['rse_expression'], r['state'])");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.python("root", &rule_states).lines().any(|l| l == wanted) {
            assert!(Instant::now() < deadline, "no rule of {scope}:{name} became {wanted}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Registers files of `sizes` bytes in dataset `scope:dataset` with
    /// replicas at SITE-A (as root, through the Python client).
    fn dataset(&self, scope: &str, dataset: &str, files: &[(&str, u64)]) {
        let files: Vec<String> = files
            .iter()
            .map(|(name, bytes)| format!("{{'scope': '{scope}', 'name': '{name}', 'bytes': {bytes}, 'adler32': '0cc737eb', 'md5': '0cc175b9c0f1b6a831c399e269772661'}}"))
            .collect();
        self.python(
            "root",
            &format!(
                "from rucio.client import Client\nc = Client()\nfiles = [{}]\nc.add_replicas(rse='SITE-A', files=files)\nc.add_dataset(scope='{scope}', name='{dataset}')\nc.attach_dids(scope='{scope}', name='{dataset}', dids=[{{'scope': f['scope'], 'name': f['name']}} for f in files])\n",
                files.join(", ")
            ),
        );
    }
}

fn rucio(user: &UserEnv, args: &[&str]) -> Output {
    let mut all = vec!["rucio"];
    all.extend_from_slice(args);
    user.lakeport(&all)
}

fn json(user: &UserEnv, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = ok(&rucio(user, &all));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "should have failed: {}", String::from_utf8_lossy(&out.stdout));
    stderr(out)
}

#[test]
fn whoami_ls_and_replicas_with_a_cached_session() {
    let lake = Lake::start();
    lake.dataset("test", "run42", &[("run42.f1", 1000), ("run42.f2", 2000)]);
    let jdoe = lake.user("jdoe", JDOE_PASSWORD, "");
    assert_eq!(json(&jdoe, &["whoami"])["account"], "jdoe");

    let root = lake.user("root", ROOT_PASSWORD, "");
    let found = json(&root, &["ls", "test:run*"]);
    let names: Vec<&str> = found.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"run42"), "{found}");
    let content = json(&root, &["ls", "test:run42"]);
    let mut files: Vec<(String, u64)> =
        content.as_array().unwrap().iter().map(|d| (d["name"].as_str().unwrap().to_string(), d["bytes"].as_u64().unwrap())).collect();
    files.sort();
    assert_eq!(files, [("run42.f1".to_string(), 1000), ("run42.f2".to_string(), 2000)]);
    let text = ok(&rucio(&root, &["ls", "test:run42"]));
    assert!(text.starts_with("DID") && text.contains("test:run42.f2  FILE  2000"), "{text}");

    // A container of datasets, made and filled by lakeport, and metadata.
    ok(&rucio(&root, &["add", "--container", "test:campaign"]));
    ok(&rucio(&root, &["attach", "test:campaign", "test:run42"]));
    let inside = json(&root, &["ls", "test:campaign"]);
    assert_eq!((inside[0]["name"].as_str(), inside[0]["type"].as_str()), (Some("run42"), Some("DATASET")), "{inside}");
    let meta = json(&root, &["meta", "test:run42"]);
    assert_eq!((meta["did_type"].as_str(), meta["account"].as_str()), (Some("DATASET"), Some("root")), "{meta}");

    let replicas = json(&root, &["replicas", "test:run42"]);
    assert_eq!(replicas.as_array().unwrap().len(), 2);
    let pfn = replicas[0]["rses"]["SITE-A"][0].as_str().unwrap();
    assert!(pfn.starts_with("s3://127.0.0.1:") && pfn.contains("/rucio-site-a/test/"), "{pfn}");

    // A profile may take everything from an existing rucio.cfg.
    let from_cfg = UserEnv::new(&format!("[profiles.lake]\nrucio_cfg = \"{}\"\n", lake.rucio.data_dir.join("client-jdoe.cfg").display()));
    assert_eq!(json(&from_cfg, &["whoami"])["account"], "jdoe");

    // The session token was cached, private, and is used by the next command.
    let cache = root.home().join("cache/lakeport/rucio/lake.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the token cache is private");
    let again = root.lakeport(&["-v", "rucio", "whoami"]);
    ok(&again);
    assert!(stderr(&again).contains("using the cached Rucio token"), "{}", stderr(&again));
    assert!(!stderr(&again).contains(ROOT_PASSWORD));
}

#[test]
fn rules_add_show_list_update_delete() {
    let lake = Lake::start();
    lake.dataset("test", "ds", &[("ds.f1", 10), ("ds.f2", 20)]);
    let root = lake.user("root", ROOT_PASSWORD, "");

    let at_a = json(&root, &["rule", "add", "test:ds", "--rse", "SITE-A", "--comment", "from lakeport"]);
    let a_id = at_a[0].as_str().unwrap().to_string();
    let rule = json(&root, &["rule", "show", &a_id]);
    assert_eq!((rule["state"].as_str(), rule["locks_ok"].as_u64()), (Some("OK"), Some(2)), "{rule}");
    assert_eq!(rule["comment"], "from lakeport");

    let at_b = json(&root, &["rule", "add", "test:ds", "--rse", "SITE-B", "--lifetime", "1d"]);
    let b_id = at_b[0].as_str().unwrap().to_string();
    let rule = json(&root, &["rule", "show", &b_id]);
    assert_eq!((rule["state"].as_str(), rule["locks_replicating"].as_u64()), (Some("REPLICATING"), Some(2)), "{rule}");
    let expires_1d = rule["expires_at"].as_str().unwrap().to_string();

    let err = failure(&rucio(&root, &["rule", "add", "test:ds", "--rse", "SITE-B"]));
    assert!(err.contains("409") && err.contains("DuplicateRule") && err.contains("rule list"), "{err}");

    let listed = json(&root, &["rule", "list", "test:ds"]);
    let mut ids: Vec<&str> = listed.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut want = vec![a_id.as_str(), b_id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(json(&root, &["rule", "list", "--account", "root"]).as_array().unwrap().len(), 2);
    let table = ok(&rucio(&root, &["rule", "list", "test:ds"]));
    assert!(table.contains("REPLICATING") && table.contains("0/2/0"), "{table}");

    let updated = json(&root, &["rule", "update", &b_id, "--lifetime", "30d"]);
    assert_ne!(updated["expires_at"].as_str().unwrap(), expires_1d, "the lifetime changed");
    let never = json(&root, &["rule", "update", &b_id, "--lifetime", "never"]);
    assert_eq!(never["expires_at"], Value::Null);

    // The Python client sees the same rule.
    let seen = lake.python("root", &format!("from rucio.client import Client\nr = Client().get_replication_rule('{b_id}')\nprint(r['state'], r['rse_expression'], r['expires_at'])"));
    assert_eq!(seen.trim(), "REPLICATING SITE-B None");

    ok(&rucio(&root, &["rule", "delete", &a_id]));
    // Rucio deletes softly: the rule now expires within the hour.
    let deleted = json(&root, &["rule", "show", &a_id]);
    assert!(deleted["expires_at"].is_string(), "{deleted}");
    let err = failure(&rucio(&root, &["rule", "show", "00000000000000000000000000000000"]));
    assert!(err.contains("RuleNotFound"), "{err}");
}

#[test]
fn make_available_reuses_rules_and_waits_until_ok() {
    let lake = Lake::start();
    lake.dataset("test", "wanted", &[("wanted.f1", 5), ("wanted.f2", 6)]);
    let prefix = format!("s3://127.0.0.1:{}/rucio-site-b", lake.s3.port);
    let root = lake.user("root", ROOT_PASSWORD, &format!("rse_mounts = {{ \"SITE-B\" = {{ pfn_prefix = \"{prefix}\", path = \"/mnt/site-b\" }} }}\n"));

    // Where the replicas are: OK at once; asking again reuses the rule.
    let here = json(&root, &["make-available", "test:wanted", "--rse", "SITE-A", "--lifetime", "2d", "--wait"]);
    assert_eq!((here["created"].as_bool(), here["rule"]["state"].as_str()), (Some(true), Some("OK")), "{here}");
    assert_eq!(here["replicas"].as_array().unwrap().len(), 2, "{here}");
    let again = json(&root, &["make-available", "test:wanted", "--rse", "SITE-A", "--lifetime", "1d"]);
    assert_eq!((again["created"].as_bool(), &again["rule"]["id"]), (Some(false), &here["rule"]["id"]), "{again}");

    // Elsewhere the rule replicates; the test marks the copies available,
    // standing in for Rucio's transfer daemons, and --wait returns OK.
    let waiting = root
        .lakeport_command(&["--output", "json", "rucio", "make-available", "test:wanted", "--rse", "SITE-B", "--lifetime", "7d", "--wait", "--poll", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lake.await_rule("test", "wanted", "SITE-B REPLICATING");
    std::thread::sleep(Duration::from_secs(2));
    lake.python(
        "root",
        "from rucio.client import Client\nClient().update_replicas_states('SITE-B', [{'scope': 'test', 'name': n, 'state': 'A'} for n in ('wanted.f1', 'wanted.f2')])",
    );
    let out = waiting.wait_with_output().unwrap();
    let result: Value = serde_json::from_str(ok(&out).trim()).unwrap();
    assert_eq!((result["created"].as_bool(), result["rule"]["state"].as_str()), (Some(true), Some("OK")), "{result}");
    let progress = stderr(&out);
    assert!(progress.contains("REPLICATING: 0 OK, 2 replicating, 0 stuck"), "the locks were shown while waiting: {progress}");
    let replicas = result["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2, "{result}");
    for r in replicas {
        assert_eq!(r["rse"], "SITE-B");
        assert!(r["pfn"].as_str().unwrap().starts_with(&prefix), "{r}");
        assert!(r["path"].as_str().unwrap().starts_with("/mnt/site-b/test/"), "the PFN mapped to the mount: {r}");
    }
}

#[test]
fn errors_say_what_happened() {
    let lake = Lake::start();
    let wrong = lake.user("jdoe", "not-the-password", "");
    let err = failure(&rucio(&wrong, &["whoami"]));
    assert!(err.contains("401") && err.contains("CannotAuthenticate") && err.contains("rucio_username"), "{err}");
    assert!(!err.contains("not-the-password"), "no password in errors");

    let root = lake.user("root", ROOT_PASSWORD, "");
    let err = failure(&rucio(&root, &["ls", "test:no-such-dataset"]));
    assert!(err.contains("DataIdentifierNotFound"), "{err}");
    let err = failure(&rucio(&root, &["rule", "add", "test:no-such-dataset", "--rse", "SITE-A"]));
    assert!(err.contains("DataIdentifierNotFound"), "{err}");
    lake.dataset("test", "blocked", &[("blocked.f1", 3)]);
    let err = failure(&rucio(&root, &["rule", "add", "test:blocked", "--rse", "NOWHERE"]));
    assert!(err.contains("InvalidRSEExpression") && err.contains("matches no RSE"), "{err}");

    // An RSE that takes no writes.
    lake.python("root", "from rucio.client import Client\nClient().update_rse('SITE-B', {'availability_write': False})");
    let err = failure(&rucio(&root, &["rule", "add", "test:blocked", "--rse", "SITE-B"]));
    assert!(err.contains("RSEWriteBlocked") && err.contains("choose another RSE"), "{err}");

    // Nobody there.
    let port = lake.rucio.port;
    drop(lake);
    let gone = UserEnv::new(&format!(
        "[profiles.lake]\nrucio_host = \"http://127.0.0.1:{port}\"\nrucio_account = \"root\"\nrucio_username = \"root\"\nrucio_password = \"{ROOT_PASSWORD}\"\n"
    ));
    let started = Instant::now();
    let err = failure(&rucio(&gone, &["whoami"]));
    assert!(err.contains("is the Rucio server up"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A profile for `account` with the lake's S3 server as its s3_endpoint
/// and the S3 secret key `secret`.
fn uploader(lake: &Lake, account: &str, password: &str, secret: &str) -> UserEnv {
    lake.user(
        account,
        password,
        &format!(
            "s3_endpoint = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{secret}\"\nregion = \"us-east-1\"\n",
            lake.s3.endpoint,
            support::ACCESS_KEY
        ),
    )
}

fn sha256_of(path: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn upload_registers_replicas_and_a_rule_the_python_client_sees() {
    upload_registers_replicas_and_a_rule(&Lake::start());
}

/// The RSE's S3 protocol points at a real Ceph RGW (INFN Cloud's server
/// type), whose multipart completion answers no ETag.
#[test]
fn upload_to_an_rse_on_ceph_rgw() {
    upload_registers_replicas_and_a_rule(&Lake::on(Peer::ceph_rgw(None)));
}

fn upload_registers_replicas_and_a_rule(lake: &Lake) {
    let root = uploader(lake, "root", ROOT_PASSWORD, support::SECRET_KEY);
    ok(&root.lakeport(&["s3", "mb", "s3://rucio-site-a"]));
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("calib.dat");
    std::fs::write(&small, support::pattern(70_001, 1)).unwrap();
    let big = dir.path().join("run7.h5");
    std::fs::write(&big, support::pattern(21 << 20, 2)).unwrap();

    let result = json(
        &root,
        &["upload", small.to_str().unwrap(), big.to_str().unwrap(), "--rse", "SITE-A", "--scope", "test", "--dataset", "run7", "--lifetime", "7d"],
    );
    let files = result["files"].as_array().unwrap();
    assert!(files.iter().all(|f| f["uploaded"] == true), "{result}");
    let rules = result["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{result}");
    assert_eq!((rules[0]["state"].as_str(), rules[0]["locks_ok"].as_u64(), rules[0]["name"].as_str()), (Some("OK"), Some(2), Some("run7")));
    assert!(rules[0]["expires_at"].is_string());

    // The real Python client sees the replicas, their checksums and the rule.
    let seen = lake.python(
        "root",
        "from rucio.client import Client\n\
         c = Client()\n\
         for f in sorted(c.list_replicas([{'scope': 'test', 'name': 'run7'}]), key=lambda f: f['name']):\n\
         \x20   print(f['name'], f['bytes'], f['adler32'], f['md5'], f['states']['SITE-A'], list(f['pfns'])[0])\n\
         for r in c.list_did_rules('test', 'run7'):\n\
         \x20   print('rule', r['rse_expression'], r['state'], r['locks_ok_cnt'])\n",
    );
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines.len(), 3, "{seen}");
    assert_eq!(lines[2], "rule SITE-A OK 2");
    for (line, path) in lines[..2].iter().zip([&small, &big]) {
        let f = files.iter().find(|f| f["path"].as_str() == path.to_str()).unwrap();
        let expected = format!("{} {} {} {} AVAILABLE ", f["name"].as_str().unwrap(), f["bytes"], f["adler32"].as_str().unwrap(), f["md5"].as_str().unwrap());
        assert!(line.starts_with(&expected), "{line} vs {expected}");
        let pfn = line.rsplit(' ').next().unwrap();
        assert_eq!(pfn, f["pfn"].as_str().unwrap());
        // The bytes are where the PFN says, identical.
        let bucket_and_key = pfn.splitn(4, '/').nth(3).unwrap();
        let back = dir.path().join("back");
        ok(&root.lakeport(&["s3", "cp", &format!("s3://{bucket_and_key}"), back.to_str().unwrap()]));
        assert_eq!(sha256_of(&back), sha256_of(path), "{pfn}");
    }
    // Checksums as Rucio computes them (adler32 of a known string).
    let known = dir.path().join("a.txt");
    std::fs::write(&known, "a").unwrap();
    let one = json(&root, &["upload", known.to_str().unwrap(), "--rse", "SITE-A", "--scope", "test"]);
    assert_eq!((one["files"][0]["adler32"].as_str(), one["files"][0]["md5"].as_str()), (Some("00620062"), Some("0cc175b9c0f1b6a831c399e269772661")));
    assert_eq!((one["rules"][0]["name"].as_str(), one["rules"][0]["state"].as_str()), (Some("a.txt"), Some("OK")), "{one}");
}

#[test]
fn a_failed_upload_leaves_no_available_replica() {
    let lake = Lake::start();
    let root = uploader(&lake, "root", ROOT_PASSWORD, support::SECRET_KEY);
    ok(&root.lakeport(&["s3", "mb", "s3://rucio-site-b"]));
    // S3 refuses the bytes (a wrong secret key): the upload fails after
    // Rucio has registered the replica.
    let refused = uploader(&lake, "root", ROOT_PASSWORD, "not-the-secret-key");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lost.dat");
    std::fs::write(&file, support::pattern(9000, 3)).unwrap();
    let err = failure(&rucio(&refused, &["upload", file.to_str().unwrap(), "--rse", "SITE-B", "--scope", "test", "--dataset", "lostset"]));
    assert!(err.contains("not uploaded") && err.contains("COPYING") && err.contains("lost.dat") && err.contains("SignatureDoesNotMatch"), "{err}");
    assert!(!err.contains("not-the-secret-key"));
    let seen = lake.python(
        "root",
        "from rucio.client import Client\n\
         c = Client()\n\
         print(sum(len(f['rses']) for f in c.list_replicas([{'scope': 'test', 'name': 'lost.dat'}])))\n\
         print([f['states'] for f in c.list_replicas([{'scope': 'test', 'name': 'lost.dat'}], all_states=True)])\n",
    );
    assert_eq!(seen.lines().collect::<Vec<_>>(), ["0", "[{'SITE-B': 'COPYING'}]"], "nothing claims to be available");
    // With the right key the same command completes the upload.
    ok(&rucio(&root, &["upload", file.to_str().unwrap(), "--rse", "SITE-B", "--scope", "test", "--dataset", "lostset"]));
    let seen = lake.python("root", "from rucio.client import Client\nprint([f['states'] for f in Client().list_replicas([{'scope': 'test', 'name': 'lost.dat'}])])");
    assert_eq!(seen.trim(), "[{'SITE-B': 'AVAILABLE'}]");
}

/// A root profile for the Rucio at `rucio_endpoint` (the server or a proxy
/// in front of it) uploading to the S3 server at `s3_endpoint`.
fn root_uploader(rucio_endpoint: &str, s3_endpoint: &str) -> UserEnv {
    UserEnv::new(&format!(
        "[profiles.lake]\nrucio_host = \"{rucio_endpoint}\"\nrucio_account = \"root\"\nrucio_username = \"root\"\nrucio_password = \"{ROOT_PASSWORD}\"\ns3_endpoint = \"{s3_endpoint}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\nregion = \"us-east-1\"\n",
        support::ACCESS_KEY,
        support::SECRET_KEY
    ))
}

/// Rucio refuses the session token at the last step of an upload (marking
/// the replicas available), after the bytes went to S3: lakeport logs in
/// again and repeats only that step. Each file went to S3 once.
#[test]
fn a_token_refused_mid_upload_repeats_only_the_refused_call() {
    let s3 = Peer::s3s_fs();
    let s3_watch = FaultProxy::start(s3.endpoint.trim_start_matches("http://"), Faults::default());
    let rucio = Peer::rucio(&s3_watch.endpoint);
    const REFUSAL: &str = "HTTP/1.1 401 Unauthorized\r\nExceptionClass: CannotAuthenticate\r\nExceptionMessage: Cannot authenticate with given credentials\r\nContent-Type: application/json\r\nContent-Length: 106\r\n\r\n{\"ExceptionClass\": \"CannotAuthenticate\", \"ExceptionMessage\": \"Cannot authenticate with given credentials\"}";
    assert_eq!(REFUSAL.split("\r\n\r\n").nth(1).unwrap().len(), 106);
    let rucio_proxy = FaultProxy::start(rucio.endpoint.trim_start_matches("http://"), Faults { answer_instead: Some(("PUT /replicas", REFUSAL)), ..Faults::default() });
    let user = root_uploader(&rucio_proxy.endpoint, &s3_watch.endpoint);
    ok(&user.lakeport(&["s3", "mb", "s3://rucio-site-a"]));
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<std::path::PathBuf> = (0..3).map(|i| dir.path().join(format!("refused{i}.dat"))).collect();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(f, support::pattern(5000 + i, i as u32)).unwrap();
    }
    let mut args = vec!["upload"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--rse", "SITE-A", "--scope", "test"]);
    let result = json(&user, &args);
    assert!(rucio_proxy.answered_instead(), "Rucio's refusal was given");
    assert!(result["files"].as_array().unwrap().iter().all(|f| f["uploaded"] == true), "{result}");
    let puts = s3_watch.forwarded().into_iter().filter(|l| l.starts_with("PUT ") && l.contains("refused")).count();
    assert_eq!(puts, files.len(), "each file went to S3 once: {:?}", s3_watch.forwarded());
    let logins = rucio_proxy.forwarded().into_iter().filter(|l| l.contains("/auth/userpass")).count();
    assert_eq!(logins, 2, "one login, and one after the refusal");
    let states = rucio_python(&rucio, "root", "from rucio.client import Client\nprint(sorted(str(f['states']) for f in Client().list_replicas([{'scope': 'test', 'name': 'refused%d.dat' % i} for i in range(3)])))");
    assert_eq!(states.trim(), "[\"{'SITE-A': 'AVAILABLE'}\", \"{'SITE-A': 'AVAILABLE'}\", \"{'SITE-A': 'AVAILABLE'}\"]");
}

/// A file rewritten after lakeport took its checksums and before its bytes
/// went to S3 (here while Rucio, slowed by a proxy, registers the upload):
/// it is never marked available with the checksums of other bytes; its
/// replica stays COPYING and the command says why.
#[test]
fn a_file_changed_after_its_checksums_is_not_registered_as_available() {
    let s3 = Peer::s3s_fs();
    let rucio = Peer::rucio(&s3.endpoint);
    let slow = FaultProxy::start(rucio.endpoint.trim_start_matches("http://"), Faults { delay_ms: 700, ..Faults::default() });
    let user = root_uploader(&slow.endpoint, &s3.endpoint);
    ok(&user.lakeport(&["s3", "mb", "s3://rucio-site-a"]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("moving.dat");
    let before = support::pattern(300_000, 8);
    std::fs::write(&file, &before).unwrap();
    let child = user
        .lakeport_command(&["rucio", "upload", file.to_str().unwrap(), "--rse", "SITE-A", "--scope", "test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first Rucio request comes after the checksums: rewrite the file
    // while Rucio's answers are held back, before any byte goes to S3.
    let started = Instant::now();
    while slow.requests_seen() == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "lakeport never reached Rucio");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(&file, support::pattern(300_000, 9)).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = failure(&out);
    assert!(err.contains("moving.dat") && err.contains("changed while it was being uploaded") && err.contains("COPYING"), "{err}");
    let states = rucio_python(&rucio, "root", "from rucio.client import Client\nprint([f['states'] for f in Client().list_replicas([{'scope': 'test', 'name': 'moving.dat'}], all_states=True)])");
    assert_eq!(states.trim(), "[{'SITE-A': 'COPYING'}]", "not available with the checksums of other bytes");
}

/// Runs Python with the real Rucio client of `rucio` as `account` (root or jdoe).
fn rucio_python(rucio: &Peer, account: &str, code: &str) -> String {
    let python = peer_binary("LAKEPORT_RUCIO_PYTHON", ".venv-rucio/bin/python");
    let out = Command::new(python)
        .args(["-c", code])
        .env("RUCIO_CONFIG", rucio.data_dir.join(format!("client-{account}.cfg")))
        .stdin(Stdio::null())
        .output()
        .expect("running the Python Rucio client");
    assert!(out.status.success(), "the Python Rucio client failed: {}\n{}", String::from_utf8_lossy(&out.stderr), rucio.log());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn login_keeps_the_password_encrypted_and_refuses_a_wrong_one() {
    let lake = Lake::start();
    let user = UserEnv::new(&format!("[profiles.lake]\nrucio_host = \"{}\"\nrucio_account = \"jdoe\"\nrucio_username = \"jdoe\"\n", lake.rucio.endpoint));
    let login = |password: &str| {
        let mut cmd = user.lakeport_command(&["rucio", "login", "--password-stdin"]);
        cmd.env("LAKEPORT_PASSPHRASE", "store passphrase").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let err = failure(&login("wrong-password"));
    assert!(err.contains("CannotAuthenticate") && !err.contains("wrong-password"), "{err}");
    assert!(!user.home().join("data/lakeport/secrets").exists() || std::fs::read_dir(user.home().join("data/lakeport/secrets")).unwrap().next().is_none(), "nothing kept");

    let out = ok(&login(JDOE_PASSWORD));
    assert!(out.contains("jdoe"), "{out}");
    // The store holds no clear text.
    for entry in walk(&user.home().join("data")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(JDOE_PASSWORD.len()).any(|w| w == JDOE_PASSWORD.as_bytes()), "{} holds the password in clear", entry.display());
    }
    // The session token the login got serves without the passphrase ...
    assert_eq!(json(&user, &["whoami"])["account"], "jdoe");
    // ... and once it is gone, a login needs the stored password, so the passphrase.
    std::fs::remove_dir_all(user.home().join("cache/lakeport/rucio")).unwrap();
    let err = failure(&rucio(&user, &["whoami"]));
    assert!(err.contains("passphrase"), "without the passphrase the store stays shut: {err}");
    let mut whoami = user.lakeport_command(&["--output", "json", "rucio", "whoami"]);
    whoami.env("LAKEPORT_PASSPHRASE", "store passphrase");
    let who: Value = serde_json::from_str(ok(&whoami.output().unwrap()).trim()).unwrap();
    assert_eq!(who["account"], "jdoe");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `rucio_auth = "oidc"`: the profile's OIDC access token (client
/// credentials from the OpenID provider, audience and scope `rucio`) is the
/// Rucio token; Rucio maps its subject to account jdoe. A token for another
/// audience is refused.
#[test]
fn an_oidc_token_is_the_rucio_token() {
    let op = Peer::oidc_provider(300, 3600);
    let s3 = Peer::s3s_fs();
    let rucio_peer = Peer::rucio_with(&s3.endpoint, &["--oidc-issuer", &op.endpoint]);
    let profile = |audience: &str| {
        UserEnv::new(&format!(
            "[profiles.lake]\nissuer = \"{}\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"service-secret\"\n\
             audience = \"{audience}\"\nscopes = \"rucio\"\nrucio_host = \"{}\"\nrucio_account = \"jdoe\"\nrucio_auth = \"oidc\"\n",
            op.endpoint, rucio_peer.endpoint
        ))
    };
    let user = profile("rucio");
    assert_eq!(json(&user, &["whoami"])["account"], "jdoe");
    assert_eq!(json(&user, &["rule", "list"]), serde_json::json!([]));
    let wrong = profile("s3");
    let err = failure(&rucio(&wrong, &["whoami"]));
    assert!(err.contains("CannotAuthenticate") && err.contains("issuer and audience"), "{err}");
}

/// A rule whose copies fail turns STUCK: `--wait` stops there, says so, and
/// exits non-zero.
#[test]
fn make_available_stops_at_a_stuck_rule() {
    let lake = Lake::start();
    lake.dataset("test", "doomed", &[("doomed.f1", 7)]);
    let root = lake.user("root", ROOT_PASSWORD, "");
    let waiting = root
        .lakeport_command(&["rucio", "make-available", "test:doomed", "--rse", "SITE-B", "--wait", "--poll", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lake.await_rule("test", "doomed", "SITE-B REPLICATING");
    // The transfer failed, as a conveyor would report it.
    lake.python("root", "from rucio.client import Client\nClient().update_replicas_states('SITE-B', [{'scope': 'test', 'name': 'doomed.f1', 'state': 'U'}])");
    let out = waiting.wait_with_output().unwrap();
    let err = failure(&out);
    assert!(err.contains("STUCK") && err.contains("test:doomed") && err.contains("1 stuck"), "{err}");
}
