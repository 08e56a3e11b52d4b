//! The Python package (bindings/python): a wheel built from a copy of the
//! folder with the component file lakeport exports, installed into a fresh
//! venv with PyPI's pinned `wasmtime`, signing AWS's own examples through
//! the sigv4 component, and raising one exception class per WIT error case.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;

use support::{tool_on_path, workspace_root, Lakeport};

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what} failed ({}):\n{}\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
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

#[test]
fn wheel_in_a_fresh_venv_signs_through_the_component() {
    let scratch = tempfile::tempdir().unwrap();
    let staging = scratch.path().join("package");
    copy_tree(&workspace_root().join("bindings/python"), &staging);
    let exported = scratch.path().join("exported");
    run(Lakeport::new().command().args(["components", "--export"]).arg(&exported), "lakeport components --export");
    let components = staging.join("src/lakeport/components");
    std::fs::create_dir_all(&components).unwrap();
    std::fs::copy(exported.join("sigv4.wasm"), components.join("sigv4.wasm")).unwrap();

    let venv = scratch.path().join("venv");
    run(Command::new(tool_on_path("python3")).args(["-m", "venv"]).arg(&venv), "python3 -m venv");
    let pip = venv.join("bin/pip");
    let dist = scratch.path().join("dist");
    run(Command::new(&pip).args(["wheel", "--quiet", "--no-deps", "-w"]).arg(&dist).arg(&staging), "pip wheel");
    let wheel = std::fs::read_dir(&dist).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "whl")).expect("a wheel");
    run(Command::new(&pip).args(["install", "--quiet"]).arg(&wheel), "pip install the wheel");

    let script = r#"
import json, os, sys
import lakeport
assert os.path.realpath(lakeport.__file__).startswith(os.path.realpath(sys.prefix)), lakeport.__file__
keys = dict(access_key_id="AKIAIOSFODNN7EXAMPLE", secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region="us-east-1", time="20130524T000000Z")
# AWS's S3 examples: GET with Range, and a presigned GET valid for a day.
got = lakeport.sign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", headers=[("Range", "bytes=0-9")], **keys)
url = lakeport.presign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", expires=86400, **keys)
# The same second as Unix time.
same = lakeport.sign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", headers=[("Range", "bytes=0-9")], **dict(keys, time=1369353600))
errors = {}
for name, call in [
    ("url", lambda: lakeport.sign("GET", "ftp://examplebucket/test.txt", **keys)),
    ("time", lambda: lakeport.sign("GET", "https://e.example/x", **dict(keys, time="yesterday"))),
    ("option", lambda: lakeport.presign("GET", "https://e.example/x", expires=604801, **keys)),
]:
    try:
        call()
        errors[name] = None
    except lakeport.SignError as e:
        errors[name] = [type(e).__name__, str(e)]
print(json.dumps({"signature": got.signature, "authorization": got.authorization, "url": url, "same": same.signature, "errors": errors}))
"#;
    let out = run(Command::new(venv.join("bin/python")).arg("-c").arg(script).current_dir(scratch.path()), "the package's sign and presign");
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(doc["signature"], "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert!(doc["authorization"].as_str().unwrap().starts_with("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"), "{doc}");
    assert_eq!(doc["same"], doc["signature"]);
    assert!(doc["url"].as_str().unwrap().ends_with("&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"), "{doc}");
    assert_eq!(doc["errors"]["url"][0], "InvalidUrl", "{doc}");
    assert_eq!(doc["errors"]["time"][0], "InvalidTime", "{doc}");
    assert_eq!(doc["errors"]["option"][0], "InvalidOption", "{doc}");
    assert!(doc["errors"]["url"][1].as_str().unwrap().contains("ftp://examplebucket/test.txt"), "{doc}");
}
