//! `lakeport s3` end to end against strict S3 servers the tests start
//! (`rclone serve s3 --auth-key`, `s3s-fs`, which also checks payload
//! hashes, a real Ceph RGW 16.2, and moto with STS credentials), through a
//! misbehaving proxy, and across a `kill -9`. Every download is compared
//! with what was uploaded.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;
#[path = "support/fault_proxy.rs"]
#[allow(dead_code)]
mod fault_proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fault_proxy::{Break, Cut, FaultProxy, Faults, Which};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{ok, pattern, stderr, Peer, Refused, UserEnv, ACCESS_KEY, SECRET_KEY};

const MIB: usize = 1 << 20;

fn static_profile(endpoint: &str) -> String {
    format!(
        "[profiles.lab]\ns3_endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n"
    )
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn file_sha(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
}

struct S3Env {
    user: UserEnv,
    dir: tempfile::TempDir,
}

impl S3Env {
    fn new(endpoint: &str) -> S3Env {
        S3Env { user: UserEnv::new(&static_profile(endpoint)), dir: tempfile::tempdir().unwrap() }
    }

    fn s3(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["s3"];
        all.extend_from_slice(args);
        self.user.lakeport(&all)
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(&self.s3(args))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The sizes the issue names around a 5 MiB part, under keys S3 clients
/// often get wrong.
fn round_trips(peer: &Peer) {
    let env = S3Env::new(&peer.endpoint);
    env.ok(&["mb", "s3://roundtrip"]);
    let cases: [(&str, usize); 5] = [
        ("sizes/empty file", 0),
        ("sizes/one+byte", 1),
        ("sizes/exactly%part", 5 * MIB),
        ("sizes/part+1 ünïcode", 5 * MIB + 1),
        ("sizes/multi part ñ 100%.bin", 12 * MIB + 3),
    ];
    for (i, (key, size)) in cases.iter().enumerate() {
        let data = pattern(*size, i as u32 + 1);
        let local = env.write(&format!("up/{i}"), &data);
        let url = format!("s3://roundtrip/{key}");
        let out = env.ok(&["cp", "--part-size", "5M", "--output", "json", local.to_str().unwrap(), &url]);
        let doc: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(doc["size"], *size as u64, "{key}");
        let expected_parts = if *size > 5 * MIB { size.div_ceil(5 * MIB) } else { 0 };
        assert_eq!(doc["parts"], expected_parts as u64, "{key}: multipart only above the part size");
        let down = env.path(&format!("down/{i}"));
        let out = env.ok(&["cp", "--part-size", "5M", &url, down.to_str().unwrap()]);
        assert!(out.contains("download:"), "{out}");
        assert_eq!(file_sha(&down), sha256(&data), "{key} comes back byte-identical");
    }
    // Listing shows every key exactly, with its size.
    let listed: Value = serde_json::from_str(&env.ok(&["ls", "--recursive", "--output", "json", "s3://roundtrip/sizes/"])).unwrap();
    let mut got: Vec<(String, u64)> = listed.as_array().unwrap().iter().map(|o| (o["key"].as_str().unwrap().to_string(), o["size"].as_u64().unwrap())).collect();
    got.sort();
    let mut want: Vec<(String, u64)> = cases.iter().map(|(k, s)| (k.to_string(), *s as u64)).collect();
    want.sort();
    assert_eq!(got, want);
    // One level at a time with a delimiter.
    let top: Value = serde_json::from_str(&env.ok(&["ls", "--output", "json", "s3://roundtrip"])).unwrap();
    assert_eq!(top[0]["prefix"], "sizes/");

    // stdin → S3 → stdout, of a length nobody announced.
    let piped = pattern(7 * MIB + 5, 99);
    let mut up = env.user.lakeport_command(&["s3", "cp", "--part-size", "5M", "-", "s3://roundtrip/piped/from stdin"]);
    up.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = up.spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&piped).unwrap();
    }
    ok(&child.wait_with_output().unwrap());
    let out = env.user.lakeport(&["s3", "cp", "s3://roundtrip/piped/from stdin", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sha256(&out.stdout), sha256(&piped));

    // A directory tree and back.
    for (name, seed) in [("tree/a.txt", 1), ("tree/sub/b c.txt", 2), ("tree/sub/deeper/ü.dat", 3)] {
        env.write(name, &pattern(1000 + seed * 37, seed as u32));
    }
    env.ok(&["cp", "--recursive", env.path("tree").to_str().unwrap(), "s3://roundtrip/tree/"]);
    env.ok(&["cp", "--recursive", "s3://roundtrip/tree/", env.path("tree-back").to_str().unwrap()]);
    for name in ["a.txt", "sub/b c.txt", "sub/deeper/ü.dat"] {
        assert_eq!(file_sha(&env.path(&format!("tree-back/{name}"))), file_sha(&env.path(&format!("tree/{name}"))), "{name}");
    }

    // stat, server-side copy, presign, delete.
    let stat: Value = serde_json::from_str(&env.ok(&["stat", "--output", "json", "s3://roundtrip/sizes/one+byte"])).unwrap();
    assert_eq!(stat["size"], 1);
    env.ok(&["cp", "s3://roundtrip/sizes/exactly%part", "s3://roundtrip/copies/copied"]);
    let copied = env.path("copied");
    env.ok(&["cp", "s3://roundtrip/copies/copied", copied.to_str().unwrap()]);
    assert_eq!(file_sha(&copied), sha256(&pattern(5 * MIB, 3)));
    let url = env.ok(&["presign", "--expires", "600", "s3://roundtrip/sizes/one+byte"]);
    let (status, body) = support::curl_get(url.trim());
    assert_eq!((status, body), (200, pattern(1, 2)), "the presigned URL works as is");
    env.ok(&["rm", "--recursive", "s3://roundtrip/"]);
    let left: Value = serde_json::from_str(&env.ok(&["ls", "--recursive", "--output", "json", "s3://roundtrip"])).unwrap();
    assert_eq!(left, serde_json::json!([]));
    env.ok(&["rb", "s3://roundtrip"]);
}

#[test]
fn round_trips_on_rclone_serve_s3() {
    round_trips(&Peer::rclone());
}

#[test]
fn round_trips_on_s3s_fs() {
    round_trips(&Peer::s3s_fs());
}

/// INFN Cloud's server type: RGW 16.2 answers CompleteMultipartUpload
/// with an empty ETag, so every multipart upload here is checked by HEAD.
#[test]
fn round_trips_on_ceph_rgw() {
    round_trips(&Peer::ceph_rgw(None));
}

/// A profile whose keys come from moto's STS for the oidc-provider's
/// service-account token, for the S3 server at `s3_endpoint`.
fn sts_profile(op: &Peer, moto: &Peer, s3_endpoint: &str) -> String {
    format!(
        "[profiles.lab]\nissuer = \"{}\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"service-secret\"\naudience = \"object\"\nsts_endpoint = \"{}\"\nrole_arn = \"arn:aws:iam::123456789012:role/s3access\"\nregion = \"us-east-1\"\ns3_endpoint = \"{s3_endpoint}\"\n",
        op.endpoint, moto.endpoint
    )
}

#[test]
fn sts_credentials_from_moto() {
    let op = Peer::oidc_provider(300, 3600);
    let moto = Peer::moto(&["s3access"]);
    let profile = sts_profile(&op, &moto, &moto.endpoint);
    let env = S3Env { user: UserEnv::new(&profile), dir: tempfile::tempdir().unwrap() };
    env.ok(&["mb", "s3://with-sts"]);
    let data = pattern(6 * MIB + 7, 5);
    let local = env.write("data.bin", &data);
    env.ok(&["cp", "--part-size", "5M", local.to_str().unwrap(), "s3://with-sts/data.bin"]);
    let down = env.path("back.bin");
    env.ok(&["cp", "s3://with-sts/data.bin", down.to_str().unwrap()]);
    assert_eq!(file_sha(&down), sha256(&data));
    assert_eq!(moto.sts_calls(), 1, "the credentials are cached between commands");
}

#[test]
fn resets_and_503s_are_retried_and_transfers_verify() {
    let server = Peer::s3s_fs();
    let upstream = server.endpoint.trim_start_matches("http://").to_string();
    let direct = S3Env::new(&server.endpoint);
    direct.ok(&["mb", "s3://faulty"]);
    let proxy = FaultProxy::start(&upstream, Faults { reset_every: Some(4), unavailable_every: Some(5), max_faults: 14, ..Faults::default() });
    let env = S3Env::new(&proxy.endpoint);
    let big = pattern(17 * MIB + 11, 7);
    let local = env.write("big", &big);
    env.ok(&["cp", "--part-size", "5M", local.to_str().unwrap(), "s3://faulty/big"]);
    for i in 0..12 {
        env.write(&format!("many/f{i}"), &pattern(3000 + i * 100, i as u32));
    }
    env.ok(&["cp", "--recursive", env.path("many").to_str().unwrap(), "s3://faulty/many/"]);
    let down = env.path("big.back");
    env.ok(&["cp", "--part-size", "5M", "s3://faulty/big", down.to_str().unwrap()]);
    assert_eq!(file_sha(&down), sha256(&big));
    env.ok(&["cp", "--recursive", "s3://faulty/many/", env.path("many.back").to_str().unwrap()]);
    for i in 0..12 {
        assert_eq!(file_sha(&env.path(&format!("many.back/f{i}"))), file_sha(&env.path(&format!("many/f{i}"))));
    }
    assert!(proxy.faults_injected() >= 10, "the proxy misbehaved {} times", proxy.faults_injected());
}

#[test]
fn a_corrupted_download_is_caught_and_never_left_as_a_file() {
    let server = Peer::s3s_fs();
    let direct = S3Env::new(&server.endpoint);
    direct.ok(&["mb", "s3://corrupt"]);
    let multipart = pattern(11 * MIB, 3);
    let single = pattern(300_000, 4);
    direct.ok(&["cp", "--part-size", "5M", direct.write("m", &multipart).to_str().unwrap(), "s3://corrupt/multipart"]);
    direct.ok(&["cp", direct.write("s", &single).to_str().unwrap(), "s3://corrupt/single"]);

    let proxy = FaultProxy::start(server.endpoint.trim_start_matches("http://"), Faults { corrupt_get_bodies: true, ..Faults::default() });
    let env = S3Env::new(&proxy.endpoint);
    for (key, flags) in [("multipart", vec!["--part-size", "5M"]), ("single", vec![])] {
        let target = env.path(&format!("out/{key}"));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let mut args = vec!["cp"];
        args.extend(flags);
        let url = format!("s3://corrupt/{key}");
        args.extend([url.as_str(), target.to_str().unwrap()]);
        let out = env.s3(&args);
        assert!(!out.status.success(), "{key}: a corrupted body must fail the download");
        let err = stderr(&out);
        assert!(err.contains("damaged"), "{key}: {err}");
        let left: Vec<_> = std::fs::read_dir(target.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "{key}: nothing is left behind, not even a partial file: {left:?}");
    }
    assert!(proxy.faults_injected() >= 2);
}

/// The answer to CompleteMultipartUpload is lost after the server has
/// assembled the object: the retried completion finds no upload
/// (`NoSuchUpload`) or none to report, HEAD shows the object is the one
/// sent, and the upload succeeds; no abort is ever sent for it.
fn a_lost_completion_answer_is_settled_by_head(server: &Peer) {
    let upstream = server.endpoint.trim_start_matches("http://");
    S3Env::new(&server.endpoint).ok(&["mb", "s3://lost"]);
    // Parts go as `PUT …?partNumber=N&uploadId=…`: only the completion
    // (and an abort) has the uploadId first.
    let proxy = FaultProxy::start(upstream, Faults { lose_answer_to: Some("?uploadId="), max_faults: 1, ..Faults::default() });
    let env = S3Env::new(&proxy.endpoint);
    let data = pattern(11 * MIB + 5, 21);
    let local = env.write("data", &data);
    let out = env.s3(&["cp", "--part-size", "5M", "--output", "json", local.to_str().unwrap(), "s3://lost/data"]);
    ok(&out);
    let lines = proxy.forwarded();
    let completions = lines.iter().filter(|l| l.starts_with("POST ") && l.contains("uploadId=")).count();
    assert!(completions >= 1, "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("DELETE ")), "an abort was sent: {lines:?}");
    assert_eq!(proxy.faults_injected(), 1);
    let back = env.path("back");
    env.ok(&["cp", "s3://lost/data", back.to_str().unwrap()]);
    assert_eq!(file_sha(&back), sha256(&data));
}

#[test]
fn a_lost_completion_answer_is_settled_by_head_on_s3s_fs() {
    a_lost_completion_answer_is_settled_by_head(&Peer::s3s_fs());
}

#[test]
fn a_lost_completion_answer_is_settled_by_head_on_ceph_rgw() {
    a_lost_completion_answer_is_settled_by_head(&Peer::ceph_rgw(None));
}

/// Every way an answer body can end early: a reset or a clean close short
/// of its Content-Length, on the first request of a connection or on a
/// kept-alive one. Each cut range is fetched again and the download
/// completes and verifies (before, a cut while the host wrote the body to
/// the file was taken for a local I/O error and ended the download at once).
#[test]
fn downloads_survive_bodies_cut_mid_way() {
    let server = Peer::s3s_fs();
    let direct = S3Env::new(&server.endpoint);
    direct.ok(&["mb", "s3://cut"]);
    let data = pattern(23 * MIB + 9, 31);
    direct.ok(&["cp", "--part-size", "5M", direct.write("d", &data).to_str().unwrap(), "s3://cut/d"]);
    for which in [Which::Fresh, Which::KeptAlive] {
        for how in [Break::Reset, Break::Close] {
            let cut = Cut { method: "GET", after: MIB, how, every: 1 };
            let proxy = FaultProxy::start(server.endpoint.trim_start_matches("http://"), Faults { cut_answers: Some(cut), which, max_faults: 3, ..Faults::default() });
            let env = S3Env::new(&proxy.endpoint);
            let back = env.path("back");
            // Fresh: 4 ranges at once, so at least 3 GETs open connections
            // (the HEAD's is reused by one); kept alive: 2 at once, so the
            // later ranges go over connections earlier ones used.
            let concurrency = if which == Which::Fresh { "4" } else { "2" };
            env.ok(&["cp", "--part-size", "5M", "--concurrency", concurrency, "s3://cut/d", back.to_str().unwrap()]);
            assert_eq!(file_sha(&back), sha256(&data), "{which:?} {how:?}");
            assert!(proxy.faults_injected() >= 1, "{which:?} {how:?}: no body was cut");
        }
    }
}

/// Listings and small objects whose answers are cut a kilobyte in, on
/// fresh and kept-alive connections: the listing pages and the objects are
/// asked for again, and every file arrives intact.
#[test]
fn listings_and_small_objects_survive_bodies_cut_mid_way() {
    let server = Peer::s3s_fs();
    let direct = S3Env::new(&server.endpoint);
    direct.ok(&["mb", "s3://cutlist"]);
    let files: Vec<(String, Vec<u8>)> = (0..1100).map(|i| (format!("k{i:04}"), pattern(2000 + i % 300, i as u32))).collect();
    for (name, bytes) in &files {
        direct.write(&format!("up/{name}"), bytes);
    }
    direct.ok(&["cp", "--recursive", direct.path("up").to_str().unwrap(), "s3://cutlist/many/"]);
    for (which, how) in [(Which::Fresh, Break::Close), (Which::KeptAlive, Break::Reset), (Which::KeptAlive, Break::Close)] {
        let cut = Cut { method: "GET", after: 1000, how, every: 3 };
        let proxy = FaultProxy::start(server.endpoint.trim_start_matches("http://"), Faults { cut_answers: Some(cut), which, max_faults: 8, ..Faults::default() });
        let env = S3Env::new(&proxy.endpoint);
        let listed = env.ok(&["ls", "--recursive", "s3://cutlist/many/"]);
        assert_eq!(listed.lines().count(), files.len(), "{which:?} {how:?}");
        let back = env.path("back");
        env.ok(&["cp", "--recursive", "s3://cutlist/many/", back.to_str().unwrap()]);
        for (name, bytes) in &files {
            assert_eq!(std::fs::read(back.join(name)).unwrap(), *bytes, "{which:?} {how:?}: {name}");
        }
        // Most requests go over kept-alive connections: few are first on theirs.
        assert!(proxy.faults_injected() >= 1, "{which:?} {how:?}: {} cuts", proxy.faults_injected());
    }
}

/// Request bodies cut a megabyte in, by a reset or a clean close, on fresh
/// and kept-alive connections: the parts and objects are sent again and
/// the uploads complete and verify.
#[test]
fn uploads_survive_request_bodies_cut_mid_way() {
    let server = Peer::s3s_fs();
    S3Env::new(&server.endpoint).ok(&["mb", "s3://cutup"]);
    let big = pattern(17 * MIB + 3, 41);
    let single = pattern(3 * MIB + 1, 42);
    for which in [Which::Fresh, Which::KeptAlive] {
        for how in [Break::Reset, Break::Close] {
            let cut = Cut { method: "PUT", after: MIB, how, every: 1 };
            let proxy = FaultProxy::start(server.endpoint.trim_start_matches("http://"), Faults { cut_requests: Some(cut), which, max_faults: 3, ..Faults::default() });
            let env = S3Env::new(&proxy.endpoint);
            env.ok(&["cp", "--part-size", "5M", "--concurrency", "2", env.write("big", &big).to_str().unwrap(), "s3://cutup/big"]);
            env.ok(&["cp", env.write("single", &single).to_str().unwrap(), "s3://cutup/single"]);
            assert!(proxy.faults_injected() >= 1, "{which:?} {how:?}: no request body was cut");
            let direct = S3Env::new(&server.endpoint);
            for (key, bytes) in [("big", &big), ("single", &single)] {
                let back = direct.path(key);
                direct.ok(&["cp", &format!("s3://cutup/{key}"), back.to_str().unwrap()]);
                assert_eq!(file_sha(&back), sha256(bytes), "{which:?} {how:?}: {key}");
            }
        }
    }
}

/// A slow link: every byte through the proxy paced at 20 KiB/s, so the
/// 5 MiB part takes minutes to send. No timeout covers a whole request
/// (before, the 120 s first-byte timeout also ran while the body went out,
/// and every attempt at the part failed); the upload completes and verifies.
#[test]
fn a_slow_link_uploads_parts_that_take_minutes() {
    let server = Peer::s3s_fs();
    S3Env::new(&server.endpoint).ok(&["mb", "s3://slow"]);
    let data = pattern(6 * MIB, 51);
    let proxy = FaultProxy::start(server.endpoint.trim_start_matches("http://"), Faults { pace_bytes_per_sec: Some(20 * 1024), ..Faults::default() });
    let env = S3Env::new(&proxy.endpoint);
    let out = env.ok(&["cp", "--part-size", "5M", "--output", "json", env.write("data", &data).to_str().unwrap(), "s3://slow/data"]);
    let doc: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["parts"], 2, "{doc}");
    let sent = part_numbers(&proxy.forwarded());
    assert_eq!(sent, vec![1, 2]);
    let parts_sent = proxy.forwarded().iter().filter(|l| l.starts_with("PUT ") && l.contains("partNumber=")).count();
    assert_eq!(parts_sent, 2, "each part went once: {:?}", proxy.forwarded());
    let direct = S3Env::new(&server.endpoint);
    let back = direct.path("back");
    direct.ok(&["cp", "s3://slow/data", back.to_str().unwrap()]);
    assert_eq!(file_sha(&back), sha256(&data));
}

/// STS keys refused mid-transfer: the proxy answers `ExpiredToken` to the
/// first session token once four requests carried it (the bucket, the
/// upload's start and two parts). lakeport asks STS for new keys once, the
/// upload goes on with them, and no part that was stored is sent again;
/// a ranged download refused half way renews the same way.
#[test]
fn keys_refused_mid_transfer_are_renewed_and_the_transfer_goes_on() {
    let op = Peer::oidc_provider(300, 3600);
    let moto = Peer::moto(&["s3access"]);
    let proxy = FaultProxy::start(moto.endpoint.trim_start_matches("http://"), Faults { expire_session_token_after: Some(4), ..Faults::default() });
    let profile = sts_profile(&op, &moto, &proxy.endpoint);
    let env = S3Env { user: UserEnv::new(&profile), dir: tempfile::tempdir().unwrap() };
    env.ok(&["mb", "s3://renew"]);
    let data = pattern(23 * MIB + 5, 61);
    let out = env.ok(&["cp", "--part-size", "5M", "--concurrency", "2", "--output", "json", env.write("data", &data).to_str().unwrap(), "s3://renew/data"]);
    let doc: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["parts"], 5, "{doc}");
    assert!(proxy.expired_refusals() >= 1, "the proxy refused the first keys");
    assert_eq!(moto.sts_calls(), 2, "one renewal for the parts refused together");
    let lines = proxy.forwarded();
    let parts: Vec<&String> = lines.iter().filter(|l| l.starts_with("PUT ") && l.contains("partNumber=")).collect();
    assert_eq!(parts.len(), 5, "each part was stored once, none sent again: {parts:?}");
    assert_eq!(part_numbers(&lines), vec![1, 2, 3, 4, 5]);

    // The download: HEAD and one range with the renewed keys, then refused.
    let second = FaultProxy::start(moto.endpoint.trim_start_matches("http://"), Faults { expire_session_token_after: Some(2), ..Faults::default() });
    std::fs::write(&env.user.config, profile.replace(&proxy.endpoint, &second.endpoint)).unwrap();
    let proxy = second;
    let back = env.path("back");
    env.ok(&["cp", "--part-size", "5M", "--concurrency", "1", "s3://renew/data", back.to_str().unwrap()]);
    assert_eq!(file_sha(&back), sha256(&data));
    assert!(proxy.expired_refusals() >= 1);
    assert_eq!(moto.sts_calls(), 3);
}

/// An answer that stops arriving half way (a stalled server or link) for
/// longer than the idle limit (120 s): the range is given up and fetched
/// again, and the download completes and verifies.
#[test]
fn a_stalled_answer_is_given_up_and_fetched_again() {
    let server = Peer::s3s_fs();
    let direct = S3Env::new(&server.endpoint);
    direct.ok(&["mb", "s3://stall"]);
    let data = pattern(3 * MIB, 71);
    direct.ok(&["cp", direct.write("d", &data).to_str().unwrap(), "s3://stall/d"]);
    let proxy = FaultProxy::start(server.endpoint.trim_start_matches("http://"), Faults { stall_answers: Some((MIB, Duration::from_secs(150))), max_faults: 1, ..Faults::default() });
    let env = S3Env::new(&proxy.endpoint);
    let back = env.path("back");
    env.ok(&["cp", "s3://stall/d", back.to_str().unwrap()]);
    assert_eq!(file_sha(&back), sha256(&data));
    assert_eq!(proxy.faults_injected(), 1);
    // Two GETs: the stalled one was given up (had lakeport waited out the
    // stall, one would have done).
    let gets = proxy.forwarded().iter().filter(|l| l.starts_with("GET ")).count();
    assert_eq!(gets, 2, "{:?}", proxy.forwarded());
}

/// UploadPart request lines: their part numbers.
fn part_numbers(lines: &[String]) -> Vec<u32> {
    let mut numbers: Vec<u32> = lines
        .iter()
        .filter(|l| l.starts_with("PUT ") && l.contains("uploadId="))
        .filter_map(|l| l.split(['?', '&', ' ']).find_map(|p| p.strip_prefix("partNumber=")).and_then(|n| n.parse().ok()))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

#[test]
fn kill_during_upload_then_resume_sends_only_the_missing_parts() {
    // rclone's server lists parts with their ETags (s3s-fs leaves them out,
    // so nothing there could be verified and kept).
    kill_during_upload_then_resume(&Peer::rclone());
}

/// RGW lists unfinished uploads, so the second run finds the upload itself.
#[test]
fn kill_during_upload_then_resume_on_ceph_rgw() {
    kill_during_upload_then_resume(&Peer::ceph_rgw(None));
}

fn kill_during_upload_then_resume(server: &Peer) {
    let upstream = server.endpoint.trim_start_matches("http://").to_string();
    S3Env::new(&server.endpoint).ok(&["mb", "s3://resume"]);
    let data = pattern(40 * MIB, 11);
    const PARTS: u32 = 8;

    // First run, slowed down by the proxy so it can be killed half way.
    let slow = FaultProxy::start(&upstream, Faults { delay_ms: 300, ..Faults::default() });
    let env = S3Env::new(&slow.endpoint);
    let local = env.write("big.bin", &data);
    let mut child = env
        .user
        .lakeport_command(&["s3", "cp", "--part-size", "5M", "--concurrency", "2", local.to_str().unwrap(), "s3://resume/big.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while part_numbers(&slow.forwarded()).len() < 5 {
        assert!(started.elapsed() < Duration::from_secs(60), "the upload never got going");
        assert!(child.try_wait().unwrap().is_none(), "the upload ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup, no abort
    child.wait().unwrap();
    let first_run = part_numbers(&slow.forwarded());
    assert!(first_run.len() < PARTS as usize, "killed before all parts were sent: {first_run:?}");

    // Second run with --resume, through a proxy that records what it sends.
    // rclone cannot list uploads: there the upload ID comes from lakeport's note.
    let watch = FaultProxy::start(&upstream, Faults::default());
    std::fs::write(&env.user.config, static_profile(&watch.endpoint)).unwrap();
    let env2 = env;
    let out = env2.ok(&["cp", "--resume", "--part-size", "5M", "--output", "json", local.to_str().unwrap(), "s3://resume/big.bin"]);
    let doc: Value = serde_json::from_str(out.trim()).unwrap();
    let kept = doc["parts_kept"].as_u64().unwrap() as u32;
    let resent = part_numbers(&watch.forwarded());
    assert!(kept >= 3, "at least the parts finished before the kill were kept: {doc}");
    assert_eq!(resent.len() as u32 + kept, PARTS, "every part was either kept or sent once: sent {resent:?}, kept {kept}");
    assert!(!watch.forwarded().iter().any(|l| l.starts_with("POST ") && l.contains("?uploads")), "no new upload was started");

    let down = env2.path("back.bin");
    env2.ok(&["cp", "s3://resume/big.bin", down.to_str().unwrap()]);
    assert_eq!(file_sha(&down), sha256(&data));
    assert!(watch.forwarded().iter().any(|l| l.starts_with("POST ") && l.contains("uploadId=")), "the upload was completed");
}

/// Requests to one endpoint reuse kept-alive connections (no new TCP, or
/// over https TLS, handshake each): 60 files up and down, `--concurrency 4`,
/// take at most a few connections per direction, and arrive intact.
#[test]
fn connections_are_kept_alive_across_requests() {
    let server = Peer::s3s_fs();
    let env = S3Env::new(&server.endpoint);
    env.ok(&["mb", "s3://keepalive"]);
    let files: Vec<(String, Vec<u8>)> = (0..60).map(|i| (format!("f{i:02}"), pattern(1000 + i * 37, i as u32))).collect();
    for (name, bytes) in &files {
        env.write(&format!("up/{name}"), bytes);
    }
    let connections = |args: &[&str]| {
        let mut all = vec!["--verbose", "s3"];
        all.extend_from_slice(args);
        let out = env.user.lakeport(&all);
        ok(&out);
        stderr(&out).lines().filter(|l| l.contains("connected to 127.0.0.1")).count()
    };
    let up = env.path("up");
    let uploaded = connections(&["cp", "--recursive", "--concurrency", "4", up.to_str().unwrap(), "s3://keepalive/k/"]);
    let down = env.path("down");
    let downloaded = connections(&["cp", "--recursive", "--concurrency", "4", "s3://keepalive/k/", down.to_str().unwrap()]);
    for (name, bytes) in &files {
        assert_eq!(file_sha(&down.join(name)), sha256(bytes), "{name}");
    }
    // 60 PUTs (or a LIST and 60 GETs), 4 at a time: a connection each
    // would be 60 or more.
    assert!(uploaded <= 8, "{uploaded} connections for 60 uploads");
    assert!(downloaded <= 8, "{downloaded} connections for a listing and 60 downloads");
}

#[test]
fn the_component_has_no_filesystem_and_reaches_only_the_endpoint() {
    // No file or socket import at all: files come only as handles the host opened.
    let components: Value = serde_json::from_str(&support::Lakeport::new().run(&["components", "--output", "json"])).unwrap();
    let transfer = components.as_array().unwrap().iter().find(|c| c["name"] == "transfer").expect("a transfer component");
    let imports: Vec<&str> = transfer["imports"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
    assert!(imports.iter().any(|i| i.starts_with("lakeport:plugins/files")), "{imports:?}");
    assert!(!imports.iter().any(|i| i.starts_with("wasi:filesystem") || i.starts_with("wasi:sockets")), "{imports:?}");

    // Told to talk to another host than the one granted, it is refused.
    use lakeport::egress::{AllowedHost, EgressPolicy};
    use lakeport::transfer::{Addressing, ClientConfig, Credentials, Transfer, TransferError};
    let server = Peer::s3s_fs();
    let runtime = lakeport::runtime::Runtime::with_cache_dir(None).unwrap();
    let config = ClientConfig {
        endpoint: server.endpoint.replace("127.0.0.1", "localhost"),
        region: "us-east-1".into(),
        addressing: Addressing::Path,
        credentials: Credentials { access_key_id: ACCESS_KEY.into(), secret_access_key: SECRET_KEY.into(), session_token: None },
        concurrency: None,
        part_size: None,
        multipart_threshold: None,
        max_attempts: None,
    };
    let policy = EgressPolicy::new(vec![AllowedHost::from_url(&server.endpoint).unwrap()], None);
    let mut transfer = Transfer::new(&runtime, policy, &config, None).unwrap();
    match transfer.stat("bucket", "key").map_err(Refused::refused) {
        Err(TransferError::HostDenied(m)) => assert!(m.contains("localhost"), "{m}"),
        other => panic!("expected the host to be denied, got {other:?}"),
    }
}

/// The whole process runs two hours ahead under libfaketime (the
/// component's WASI wall clock included): the server refuses the signature
/// as `RequestTimeTooSkewed`, lakeport takes the time from the answer's
/// `Date`, signs again, and the upload and the download go through.
#[test]
fn a_skewed_clock_is_corrected_from_the_server_date() {
    let faketime = support::tool_on_path("faketime");
    let ahead = Command::new(&faketime).args(["-f", "+2h", "date", "+%s"]).output().expect("running faketime");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let skew = String::from_utf8_lossy(&ahead.stdout).trim().parse::<i64>().expect("faketime runs date") - now;
    assert!((7000..7400).contains(&skew), "faketime must move the clock two hours ahead, not {skew} s");

    let server = Peer::s3s_fs();
    let env = S3Env::new(&server.endpoint);
    env.ok(&["mb", "s3://skewed"]);
    let data = pattern(6 * MIB + 3, 9);
    let local = env.write("data", &data);
    let skewed = |args: &[&str]| {
        let mut cmd = env.user.tool(&faketime);
        cmd.args(["-f", "+2h"]).arg(support::Lakeport::path()).args(["-v", "s3"]).args(args);
        cmd.output().expect("running lakeport under faketime")
    };
    let up = skewed(&["cp", "--part-size", "5M", local.to_str().unwrap(), "s3://skewed/data"]);
    ok(&up);
    assert!(stderr(&up).contains(": 403"), "the server refused the skewed clock first: {}", stderr(&up));
    let down = env.path("back");
    ok(&skewed(&["cp", "s3://skewed/data", down.to_str().unwrap()]));
    assert_eq!(file_sha(&down), sha256(&data));
}

/// An endpoint at a link-local address (where cloud metadata services
/// hand out credentials) is never connected to, whatever the profile says.
#[test]
fn link_local_endpoints_are_never_reached() {
    let env = S3Env::new("http://169.254.169.254");
    let out = env.s3(&["ls", "s3://bucket/"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("169.254.169.254") && err.contains("not allowed"), "{err}");
    let verbose = env.user.lakeport(&["-v", "s3", "ls", "s3://bucket/"]);
    assert!(stderr(&verbose).contains("a link-local address"), "{}", stderr(&verbose));
}

/// A server whose listing names keys outside the prefix asked for: a
/// recursive delete refuses the whole listing and deletes nothing, and a
/// recursive download takes nothing from it (before, a key shorter than
/// the prefix panicked on slicing, and `rm --recursive` deleted what it was
/// told).
#[test]
fn a_listing_outside_the_prefix_is_refused_and_nothing_is_deleted() {
    let server = Peer::s3s_fs();
    let direct = S3Env::new(&server.endpoint);
    direct.ok(&["mb", "s3://lying"]);
    for key in ["keep/a", "keep/b", "gone/x"] {
        direct.ok(&["cp", direct.write("f", b"data").to_str().unwrap(), &format!("s3://lying/{key}")]);
    }
    // Every listing answer claims `keep/a` is `k` (outside `keep/`).
    let proxy = FaultProxy::start(server.endpoint.trim_start_matches("http://"), Faults { rewrite_answers: Some(("list-type=2", "<Key>keep/a</Key>", "<Key>k</Key>")), ..Faults::default() });
    let env = S3Env::new(&proxy.endpoint);
    for args in [vec!["rm", "--recursive", "s3://lying/keep/"], vec!["cp", "--recursive", "s3://lying/keep/", env.path("down").to_str().unwrap()]] {
        let out = env.s3(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("\"k\"") && err.contains("cannot be trusted") && err.lines().count() == 1, "{args:?}: {err}");
    }
    assert!(!proxy.forwarded().iter().any(|l| l.starts_with("DELETE ") || l.starts_with("POST ")), "nothing was deleted: {:?}", proxy.forwarded());
    let left = direct.ok(&["ls", "--recursive", "s3://lying/"]);
    assert_eq!(left.lines().count(), 3, "{left}");
}

/// A server that hands back the same continuation token forever: the
/// listing stops with an error instead of looping.
#[test]
fn a_repeated_continuation_token_ends_the_listing_with_an_error() {
    let server = Peer::s3s_fs();
    let direct = S3Env::new(&server.endpoint);
    direct.ok(&["mb", "s3://looping"]);
    direct.ok(&["cp", direct.write("f", b"data").to_str().unwrap(), "s3://looping/a"]);
    let proxy = FaultProxy::start(
        server.endpoint.trim_start_matches("http://"),
        Faults { rewrite_answers: Some(("list-type=2", "<IsTruncated>false</IsTruncated>", "<IsTruncated>true</IsTruncated><NextContinuationToken>again</NextContinuationToken>")), ..Faults::default() },
    );
    let env = S3Env::new(&proxy.endpoint);
    let out = env.s3(&["ls", "--recursive", "s3://looping/"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("continuation token it gave before"), "{}", stderr(&out));
    let pages = proxy.forwarded().iter().filter(|l| l.contains("list-type=2")).count();
    assert_eq!(pages, 2, "{:?}", proxy.forwarded());
}

/// Keys with terminal control characters (a hostile server or uploader
/// can make them) are printed escaped: listing a bucket cannot retitle the
/// terminal, move the cursor or hide text.
#[test]
fn control_characters_from_the_server_are_printed_escaped() {
    let server = Peer::s3s_fs();
    let env = S3Env::new(&server.endpoint);
    env.ok(&["mb", "s3://ctl"]);
    let evil = "evil\u{1b}]0;pwned\u{7}\u{1b}[2Jname\u{9b}x";
    env.ok(&["cp", env.write("f", b"data").to_str().unwrap(), &format!("s3://ctl/{evil}")]);
    let listed = env.ok(&["ls", "s3://ctl/"]);
    assert!(!listed.chars().any(|c| c.is_control() && c != '\n'), "{listed:?}");
    assert!(listed.contains("evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2Jname\\u{9b}x"), "{listed:?}");
    let out = env.s3(&["stat", &format!("s3://ctl/{evil}.missing")]);
    let err = stderr(&out);
    assert!(!out.status.success() && !err.trim_end().chars().any(|c| c.is_control()), "{err:?}");
}
