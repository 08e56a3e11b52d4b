//! The local files lakeport writes and reads, on a file system someone
//! else can also write to: symbolic links planted where a download writes,
//! two downloads racing for one name, links and unfinished downloads inside
//! a directory uploaded with `--recursive`, and a compiled-component cache
//! other users could have written. Transfers run against `s3s-fs`.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use support::{ok, pattern, stderr, Peer, UserEnv, ACCESS_KEY, SECRET_KEY};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// A user with one static-keys profile for `endpoint`.
fn user_of(endpoint: &str) -> UserEnv {
    UserEnv::new(&format!(
        "[profiles.lab]\ns3_endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n"
    ))
}

fn s3(user: &UserEnv, args: &[&str]) -> Output {
    let mut all = vec!["s3"];
    all.extend_from_slice(args);
    user.lakeport(&all)
}

fn upload(user: &UserEnv, dir: &Path, key: &str, data: &[u8]) {
    let file = dir.join(key.replace('/', "_"));
    std::fs::write(&file, data).unwrap();
    ok(&s3(user, &["cp", "--part-size", "5M", file.to_str().unwrap(), &format!("s3://lab/{key}")]));
}

/// Names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The mode the umask lakeport inherits from this process gives a new file.
fn new_file_mode() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap();
    0o666 & !u32::from_str_radix(umask.trim(), 8).unwrap()
}

/// The old, predictable name of a download's temporary file.
fn old_partial(dest: &Path) -> PathBuf {
    dest.with_file_name(format!(".{}.lakeport-partial", dest.file_name().unwrap().to_string_lossy()))
}

/// A download replaces a link at its destination (never writes through it)
/// and writes its bytes only to a file it created itself, so links planted
/// at the destination and at the temporary name lakeport used to use change
/// nothing outside the download directory: the file a link points to keeps
/// its bytes and a missing one is not created. Single GETs, ranged
/// downloads and recursive downloads all go through the same file sink.
#[test]
fn a_symlink_planted_at_every_name_a_download_writes_leaves_its_target_untouched() {
    let peer = Peer::s3s_fs();
    let user = user_of(&peer.endpoint);
    let work = tempfile::tempdir().unwrap();
    ok(&s3(&user, &["mb", "s3://lab"]));
    let objects = [("small", pattern(300 * KIB, 1)), ("big", pattern(20 * MIB, 2))];
    for (key, data) in &objects {
        upload(&user, work.path(), key, data);
    }
    // Outside every download directory: a file whose bytes must survive, and
    // a name that must not come to exist.
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    let victim_bytes = b"the victim's own bytes\n".to_vec();
    std::fs::write(&victim, &victim_bytes).unwrap();
    let never = outside.path().join("never");

    for (key, data) in &objects {
        for (case, target) in [("existing", &victim), ("missing", &never)] {
            let dir = work.path().join(format!("down-{key}-{case}"));
            std::fs::create_dir(&dir).unwrap();
            let dest = dir.join("out.bin");
            symlink(target, &dest).unwrap();
            symlink(target, old_partial(&dest)).unwrap();
            let out = s3(&user, &["cp", "--part-size", "5M", &format!("s3://lab/{key}"), dest.to_str().unwrap()]);
            ok(&out);
            let kept = std::fs::read(&victim).unwrap();
            assert!(kept == victim_bytes, "{key}/{case}: the linked file keeps its bytes (it has {} now)", kept.len());
            assert!(!never.exists(), "{key}/{case}: nothing is created through a link");
            assert!(!std::fs::symlink_metadata(&dest).unwrap().file_type().is_symlink(), "{key}/{case}: the link was replaced, not followed");
            assert!(std::fs::read(&dest).unwrap() == *data, "{key}/{case}: the destination holds the object");
            assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, new_file_mode(), "{key}/{case}: private only while partial");
            assert_eq!(std::fs::read_link(old_partial(&dest)).unwrap(), *target, "{key}/{case}: the old temporary name is left alone");
            assert_eq!(names_in(&dir), [".out.bin.lakeport-partial", "out.bin"], "{key}/{case}: no temporary file is left");
        }
    }

    // A recursive download into a directory where every file's two names are links.
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    for (key, _) in &objects {
        symlink(&victim, tree.join(key)).unwrap();
        symlink(&never, old_partial(&tree.join(key))).unwrap();
    }
    ok(&s3(&user, &["cp", "--recursive", "--part-size", "5M", "s3://lab/", tree.to_str().unwrap()]));
    assert!(std::fs::read(&victim).unwrap() == victim_bytes, "the linked file keeps its bytes");
    assert!(!never.exists());
    for (key, data) in &objects {
        assert!(std::fs::read(tree.join(key)).unwrap() == *data, "{key}");
    }
    assert_eq!(names_in(&tree), [".big.lakeport-partial", ".small.lakeport-partial", "big", "small"]);
}

/// Two downloads of different objects to one name at the same time each
/// write their own temporary file: both succeed, and the file is one of the
/// two objects whole, never a mix.
#[test]
fn two_downloads_to_one_name_at_once_leave_one_whole_object() {
    let peer = Peer::s3s_fs();
    let user = user_of(&peer.endpoint);
    let work = tempfile::tempdir().unwrap();
    ok(&s3(&user, &["mb", "s3://lab"]));
    let one = pattern(24 * MIB, 11);
    let two = pattern(24 * MIB, 12);
    upload(&user, work.path(), "one", &one);
    upload(&user, work.path(), "two", &two);
    for round in 0..3 {
        let dir = work.path().join(format!("race-{round}"));
        std::fs::create_dir(&dir).unwrap();
        let dest = dir.join("same-name");
        let children: Vec<_> = ["one", "two"]
            .iter()
            .map(|key| {
                let mut cmd = user.lakeport_command(&["s3", "cp", "--part-size", "5M", &format!("s3://lab/{key}"), dest.to_str().unwrap()]);
                cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        for child in children {
            ok(&child.wait_with_output().unwrap());
        }
        let got = std::fs::read(&dest).unwrap();
        assert!(got == one || got == two, "round {round}: the file is one object whole ({} bytes)", got.len());
        assert_eq!(names_in(&dir), ["same-name"], "round {round}: no temporary file is left");
    }
}

/// `cp --recursive` uploads the regular files of the tree: a link (to a
/// file or a directory outside it) is skipped with a notice, and so is a
/// download lakeport left unfinished there, whatever its age.
#[test]
fn a_recursive_upload_skips_links_and_unfinished_downloads() {
    let peer = Peer::s3s_fs();
    let user = user_of(&peer.endpoint);
    let work = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"not for upload").unwrap();
    std::fs::create_dir(outside.path().join("elsewhere")).unwrap();
    std::fs::write(outside.path().join("elsewhere/file"), b"not for upload either").unwrap();

    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), b"a").unwrap();
    std::fs::write(tree.join("sub/b.txt"), b"b").unwrap();
    // Names lakeport gives unfinished downloads, today's and earlier versions'.
    std::fs::write(tree.join(".x.lakeport-0123456789ab.partial"), b"half a download").unwrap();
    std::fs::write(tree.join("sub/.y.lakeport-partial"), b"half another").unwrap();
    symlink(outside.path().join("secret"), tree.join("link.txt")).unwrap();
    symlink(outside.path().join("elsewhere"), tree.join("linked-dir")).unwrap();

    ok(&s3(&user, &["mb", "s3://lab"]));
    let out = s3(&user, &["cp", "--recursive", tree.to_str().unwrap(), "s3://lab/up/"]);
    ok(&out);
    let listed: serde_json::Value = serde_json::from_str(&ok(&s3(&user, &["ls", "--recursive", "--output", "json", "s3://lab/"]))).unwrap();
    let mut keys: Vec<&str> = listed.as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["up/a.txt", "up/sub/b.txt"]);
    let err = stderr(&out);
    for name in ["link.txt", "linked-dir", ".x.lakeport-0123456789ab.partial", ".y.lakeport-partial"] {
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(name)).collect();
        assert_eq!(lines.len(), 1, "one notice for {name}: {err}");
        assert!(lines[0].starts_with("lakeport: skipping "), "{err}");
    }
}

/// A compiled component (native code) in a cache file other users could
/// have written is not run: it is compiled again, and `-v` says why.
#[test]
fn a_compiled_component_others_could_write_is_compiled_again() {
    let user = UserEnv::new("");
    let sign = ["-v", "sign", "--access-key", "AKIAIOSFODNN7EXAMPLE", "--secret-key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "GET", "https://h/b/k"];
    let first = user.lakeport(&sign);
    assert!(stderr(&first).contains("sigv4: compiled component in"), "{}", stderr(&first));
    let dir = user.home().join("cache/lakeport/compiled");
    let cached = dir.join(&names_in(&dir)[0]);
    let from_cache = "sigv4: loaded compiled component from cache";
    assert!(stderr(&user.lakeport(&sign)).contains(from_cache));

    // A world-writable file, then a group-writable directory.
    for (path, mode, says) in [(&cached, 0o666, "can be written by other users"), (&dir, 0o770, "can be written by other users")] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        let log = stderr(&user.lakeport(&sign));
        assert!(!log.contains(from_cache), "{log}");
        assert!(log.contains("sigv4: compiled component in"), "{log}");
        let ignored: Vec<&str> = log.lines().filter(|l| l.contains("ignoring") && l.contains(says)).collect();
        assert_eq!(ignored.len(), 1, "-v says why the cache was not used: {log}");
        // The fresh compilation replaced the entry with a private one.
        assert_eq!(std::fs::metadata(&cached).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(stderr(&user.lakeport(&sign)).contains(from_cache));
    }

    // A cache file owned by another user.
    std::os::unix::fs::chown(&cached, Some(65534), None).expect("giving a file to another user (the tests run as root)");
    let log = stderr(&user.lakeport(&sign));
    assert!(!log.contains(from_cache) && log.contains("owned by uid 65534"), "{log}");
}
