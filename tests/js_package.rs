//! The JavaScript package (bindings/js) as a user gets it: the component
//! files from `lakeport components --export`, transpiled by jco, packed by
//! `npm pack`, installed from the tarball into a scratch project, and its
//! `node --test` tests run there: the shared SigV4 vectors, and STS keys from
//! the moto peer with requests outside the endpoint refused.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{tool_on_path, workspace_root, Lakeport, Peer};

/// Runs `cmd`; fails the test with its output unless it exits 0. Returns stdout.
fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{stdout}\n{stderr}", out.status);
    eprintln!("{what}: ok");
    stdout.into_owned()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Packs the package from a copy of its sources (so that the worktree's
/// gen/ is never what gets tested) and returns the tarball's path.
fn pack(scratch: &Path) -> PathBuf {
    let source = workspace_root().join("bindings/js");
    let jco = source.join("node_modules/.bin/jco");
    assert!(jco.exists(), "jco is not installed in bindings/js/node_modules: run `./dev setup`");
    let wasm = scratch.join("components");
    Lakeport::new().run(&[Path::new("components").as_os_str(), "--export".as_ref(), wasm.as_os_str()]);

    let package = scratch.join("package");
    std::fs::create_dir_all(&package).unwrap();
    for file in ["package.json", "package-lock.json", "build.mjs", "README.md"] {
        std::fs::copy(source.join(file), package.join(file)).unwrap_or_else(|e| panic!("copying bindings/js/{file}: {e}"));
    }
    copy_tree(&source.join("src"), &package.join("src"));
    std::os::unix::fs::symlink(source.join("node_modules"), package.join("node_modules")).unwrap();

    let node = tool_on_path("node");
    run(Command::new(&node).arg("build.mjs").arg(&wasm).current_dir(&package), "node build.mjs (jco transpile)");
    let npm = tool_on_path("npm");
    let packed = run(
        Command::new(&npm).args(["pack", "--json", "--pack-destination"]).arg(scratch).current_dir(&package),
        "npm pack",
    );
    let doc: serde_json::Value = serde_json::from_str(&packed).unwrap_or_else(|e| panic!("npm pack --json printed bad JSON ({e}): {packed}"));
    let files: Vec<&str> = doc[0]["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    for needed in ["src/index.js", "src/index.d.ts", "gen/sigv4/sigv4.js", "gen/sigv4/sigv4.core.wasm", "gen/sts/sts.js", "gen/sts/sts.d.ts"] {
        assert!(files.contains(&needed), "the tarball lacks {needed}: {files:?}");
    }
    scratch.join(doc[0]["filename"].as_str().unwrap())
}

#[test]
fn packed_package_passes_its_node_tests() {
    let scratch = tempfile::Builder::new().prefix("lakeport-js-").tempdir().unwrap();
    let tarball = pack(scratch.path());

    let app = scratch.path().join("app");
    std::fs::create_dir_all(app.join("test")).unwrap();
    std::fs::write(app.join("package.json"), r#"{ "name": "scratch", "private": true, "type": "module" }"#).unwrap();
    let npm = tool_on_path("npm");
    run(
        Command::new(&npm).args(["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"]).arg(&tarball).current_dir(&app),
        "npm install (the packed tarball)",
    );
    copy_tree(&workspace_root().join("bindings/js/test"), &app.join("test"));

    let moto = Peer::moto(&["s3access"]);
    let out = Command::new(tool_on_path("node"))
        .args(["--test", "--test-reporter=spec", "test/"])
        .current_dir(&app)
        .env("LAKEPORT_VECTORS", workspace_root().join("tests/vectors/sigv4.json"))
        .env("LAKEPORT_STS_ENDPOINT", format!("{}/", moto.endpoint))
        .env("LAKEPORT_STS_ROLE", "arn:aws:iam::123456789012:role/s3access")
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{report}");
    assert!(out.status.success(), "node --test failed:\n{report}");
    // Every test file ran: a file that failed to load would not count as a failed test.
    assert!(report.contains("the shared vectors give the expected outputs"), "{report}");
    assert!(report.contains("a host outside the configured endpoint is refused"), "{report}");
    assert!(moto.sts_calls() >= 3, "the STS tests never reached the peer");
}
