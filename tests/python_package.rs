//! The Python package (bindings/python): a wheel built from a copy of the
//! folder with the component files lakeport exports, installed into a fresh
//! venv with PyPI's pinned `wasmtime`: AWS's own examples and the shared
//! vectors (tests/vectors/sigv4.json) through the sigv4 component, the
//! aws-chunked chunk signer, one exception class per WIT error case, and
//! STS keys from the moto peer for a token of the oidc-provider peer.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;

use support::{tool_on_path, workspace_root, Lakeport, Peer, UserEnv};

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

/// The wheel, built from a copy of bindings/python with the exported
/// component files, installed into a fresh venv in `scratch`.
struct Installed {
    scratch: tempfile::TempDir,
}

impl Installed {
    fn new() -> Installed {
        let scratch = tempfile::Builder::new().prefix("lakeport-py-").tempdir().unwrap();
        let staging = scratch.path().join("package");
        copy_tree(&workspace_root().join("bindings/python"), &staging);
        let exported = scratch.path().join("exported");
        run(Lakeport::new().command().args(["components", "--export"]).arg(&exported), "lakeport components --export");
        let components = staging.join("src/lakeport/components");
        std::fs::create_dir_all(&components).unwrap();
        for name in ["sigv4.wasm", "sts.wasm"] {
            std::fs::copy(exported.join(name), components.join(name)).unwrap();
        }

        let venv = scratch.path().join("venv");
        run(Command::new(tool_on_path("python3")).args(["-m", "venv"]).arg(&venv), "python3 -m venv");
        let pip = venv.join("bin/pip");
        let dist = scratch.path().join("dist");
        run(Command::new(&pip).args(["wheel", "--quiet", "--no-deps", "-w"]).arg(&dist).arg(&staging), "pip wheel");
        let wheel = std::fs::read_dir(&dist).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "whl")).expect("a wheel");
        run(Command::new(&pip).args(["install", "--quiet"]).arg(&wheel), "pip install the wheel");
        Installed { scratch }
    }

    /// Runs `script` with the venv's Python (outside the source tree, so
    /// that `import lakeport` finds the installed package) and parses the
    /// JSON it prints.
    fn python(&self, script: &str, env: &[(&str, String)]) -> serde_json::Value {
        let prelude = "import json, os, sys\nimport lakeport\nassert os.path.realpath(lakeport.__file__).startswith(os.path.realpath(sys.prefix)), lakeport.__file__\n";
        let mut cmd = Command::new(self.scratch.path().join("venv/bin/python"));
        cmd.arg("-c").arg(format!("{prelude}{script}")).current_dir(self.scratch.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run(&mut cmd, "the package's Python script");
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
}

#[test]
fn wheel_in_a_fresh_venv_signs_through_the_component() {
    let package = Installed::new();
    let script = r#"
keys = dict(access_key_id="AKIAIOSFODNN7EXAMPLE", secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region="us-east-1", time="20130524T000000Z")
# AWS's S3 examples: GET with Range, and a presigned GET valid for a day.
got = lakeport.sign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", headers=[("Range", "bytes=0-9")], **keys)
url = lakeport.presign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", expires=86400, **keys)
# The same second as Unix time, the headers as a mapping.
same = lakeport.sign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", headers={"Range": "bytes=0-9"}, **dict(keys, time=1369353600))
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
    let doc = package.python(script, &[]);
    assert_eq!(doc["signature"], "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert!(doc["authorization"].as_str().unwrap().starts_with("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"), "{doc}");
    assert_eq!(doc["same"], doc["signature"]);
    assert!(doc["url"].as_str().unwrap().ends_with("&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"), "{doc}");
    assert_eq!(doc["errors"]["url"][0], "InvalidUrl", "{doc}");
    assert_eq!(doc["errors"]["time"][0], "InvalidTime", "{doc}");
    assert_eq!(doc["errors"]["option"][0], "InvalidOption", "{doc}");
    assert!(doc["errors"]["url"][1].as_str().unwrap().contains("ftp://examplebucket/test.txt"), "{doc}");
}

/// Every case of the shared vectors through the installed package, its
/// outputs compared key by key with the expected ones (as
/// tests/sigv4_suite.rs does from Rust and bindings/js/test from Node).
#[test]
fn shared_vectors_pass_through_the_package() {
    let package = Installed::new();
    let script = r#"
import urllib.parse
cases = json.load(open(os.environ["LAKEPORT_VECTORS"]))["cases"]

def body(p):
    kind = p["kind"]
    return {"empty": None, "utf8": p.get("text", "").encode(), "precomputed": p.get("value"), "unsigned": "UNSIGNED-PAYLOAD"}[kind]

def query(url):
    q = url.split("?", 1)[1] if "?" in url else ""
    pairs = [kv.split("=", 1) if "=" in kv else [kv, ""] for kv in q.split("&") if kv]
    return {urllib.parse.unquote(k): urllib.parse.unquote(v) for k, v in sorted(pairs)}

def outputs(signed, expected):
    wanted = set(expected.get("headers", {}))
    return {
        "canonical_request": signed.canonical_request,
        "string_to_sign": signed.string_to_sign,
        "signature": signed.signature,
        "signed_headers": signed.signed_headers,
        "authorization": signed.authorization,
        "url": signed.url,
        "query": query(signed.url),
        "headers": {n.lower(): v for n, v in signed.headers if n.lower() in wanted},
    }

results = []
for c in cases:
    r, o, k = c["request"], c["options"], c["credentials"]
    signer = lakeport.Signer(k["access_key_id"], k["secret_access_key"], k["session_token"], region=o["region"], service=o["service"])
    try:
        if c["form"] in ("header", "query"):
            signed = signer.sign(r["method"], r["url"], headers=[tuple(h) for h in r["headers"]], body=body(r["payload"]), time=o["amz_date"],
                                 expires=o["presign_expires"], normalize_path=o["normalize_path"], sign_body=o["sign_body"], sign_session_token=o["sign_session_token"])
            out = outputs(signed, c["expected"])
        else:
            s = c["stream"]
            signed, chunks = signer.start_streaming(r["method"], r["url"], headers=[tuple(h) for h in r["headers"]], time=o["amz_date"],
                                                   decoded_length=s["decoded_length"], chunk_size=s["chunk_size"])
            out = outputs(signed, c["expected"])
            framed, left = [], s["decoded_length"]
            with chunks:
                while left > 0:
                    n = min(left, s["chunk_size"])
                    framed.append(chunks.sign_chunk(s["fill"].encode() * n))
                    left -= n
                last = chunks.finish()
            out["chunks"] = [f[:f.index(b"\r\n")].decode() for f in framed]
            out["final_chunk"] = last.decode()
            out["framed_length"] = sum(map(len, framed)) + len(last)
    except lakeport.SignError as e:
        out = {"error": f"{type(e).__name__}: {e}"}
    results.append({"name": c["name"], "outputs": out})
print(json.dumps(results))
"#;
    let vectors_path = workspace_root().join("tests/vectors/sigv4.json");
    let doc = package.python(script, &[("LAKEPORT_VECTORS", vectors_path.display().to_string())]);
    let vectors: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&vectors_path).unwrap()).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    let results = doc.as_array().unwrap();
    assert_eq!(results.len(), cases.len());
    assert!(cases.len() >= 74, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (case, result) in cases.iter().zip(results) {
        assert_eq!(case["name"], result["name"]);
        let actual = &result["outputs"];
        if let Some(e) = actual.get("error") {
            failures.push(format!("{}: {e}", case["name"]));
            continue;
        }
        for (key, want) in case["expected"].as_object().unwrap() {
            if &actual[key] != want {
                failures.push(format!("{}: {key}\n  expected: {want}\n  actual:   {}", case["name"], actual[key]));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// AWS's aws-chunked example (64 KiB + 1 KiB of 'a', S3 docs) through
/// `Signer.start_streaming` and the ChunkSigner, its digest form the same
/// as its framing form, and a body longer than announced refused as
/// ChunkMismatch.
#[test]
fn chunk_signer_frames_the_aws_chunked_example() {
    let package = Installed::new();
    let script = r#"
import hashlib
signer = lakeport.Signer("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region="us-east-1")
start = lambda: signer.start_streaming("PUT", "https://s3.amazonaws.com/examplebucket/chunkObject.txt", headers=[("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                                       time="20130524T000000Z", decoded_length=66560, chunk_size=65536)
signed, chunks = start()
with chunks:
    seed = chunks.last_signature
    first = chunks.sign_chunk(b"a" * 65536)
    second = chunks.sign_chunk(b"a" * 1024)
    final = chunks.finish()
_, again = start()
digest_header = again.sign_chunk_digest(65536, hashlib.sha256(b"a" * 65536).digest())
try:
    again.sign_chunk(b"a" * 2000)
    mismatch = None
except lakeport.ChunkMismatch as e:
    mismatch = str(e)
again.close()
print(json.dumps({
    "signature": signed.signature, "seed": seed,
    "content_length": dict((n.lower(), v) for n, v in signed.headers)["content-length"],
    "first": first[:first.index(b"\r\n")].decode(), "first_len": len(first), "first_tail": first[-2:].decode(),
    "second": second[:second.index(b"\r\n")].decode(), "final": final.decode(),
    "digest_header": digest_header, "mismatch": mismatch,
}))
"#;
    let doc = package.python(script, &[]);
    assert_eq!(doc["signature"], "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9", "{doc}");
    assert_eq!(doc["seed"], doc["signature"]);
    assert_eq!(doc["content_length"], "66824");
    assert_eq!(doc["first"], "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
    assert_eq!(doc["first_len"], 65536 + "10000;chunk-signature=".len() + 64 + 4);
    assert_eq!(doc["first_tail"], "\r\n");
    assert_eq!(doc["second"], "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497");
    assert_eq!(doc["final"], "0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
    assert_eq!(doc["digest_header"], format!("{}\r\n", doc["first"].as_str().unwrap()));
    assert!(doc["mismatch"].as_str().is_some_and(|m| !m.is_empty()), "{doc}");
}

/// `assume_role_with_web_identity` through the sts component and wasmtime's
/// wasi:http: keys from the moto peer for a token the oidc-provider peer
/// issued, proved by a signed S3 request moto accepts; STS errors typed.
#[test]
fn assume_role_with_web_identity_gets_keys_from_moto() {
    let package = Installed::new();
    let op = Peer::oidc_provider(3600, 3600);
    let moto = Peer::moto(&["s3access"]);
    let user = UserEnv::new(&format!(
        "[profiles.ci]\nissuer = \"{}\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"service-secret\"\naudience = \"object\"\n",
        op.endpoint
    ));
    let token = user.lakeport(&["token", "get"]);
    assert!(token.status.success(), "lakeport token get: {}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let before = moto.sts_calls();
    let script = r#"
import urllib.request, urllib.error
endpoint = os.environ["STS_ENDPOINT"]
creds = lakeport.assume_role_with_web_identity(endpoint, "arn:aws:iam::123456789012:role/s3access", os.environ["TOKEN"], duration_seconds=3600)
# moto checks S3 signatures and session tokens: a 200 proves the keys.
signed = lakeport.sign("GET", endpoint, access_key_id=creds.access_key_id, secret_access_key=creds.secret_access_key,
                       session_token=creds.session_token, region="us-east-1")
request = urllib.request.Request(signed.url, headers={n: v for n, v in signed.headers if n.lower() != "host"})
try:
    with urllib.request.urlopen(request) as r:
        status, listing = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    status, listing = e.code, e.read().decode()
errors = {}
for name, call in [
    ("empty_token", lambda: lakeport.assume_role_with_web_identity(endpoint, "arn:aws:iam::123456789012:role/s3access", "")),
    ("refused", lambda: lakeport.parse_sts_response(403, "text/xml", b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>Not authorized</Message></Error><RequestId>r-1</RequestId></ErrorResponse>")),
    ("not_xml", lambda: lakeport.parse_sts_response(200, "text/html", b"<html>proxy login</html>")),
]:
    try:
        call()
        errors[name] = None
    except lakeport.StsError as e:
        errors[name] = [type(e).__name__, getattr(e, "code", None), getattr(e, "status", None)]
print(json.dumps({
    "access_key_id": creds.access_key_id, "has_secret": bool(creds.secret_access_key and creds.session_token),
    "expires_in": creds.expiration.timestamp() - __import__("time").time(), "repr": repr(creds),
    "status": status, "listing": listing, "errors": errors, "session_name": lakeport.session_name(None, "alice@example.org"),
}))
"#;
    let doc = package.python(script, &[("STS_ENDPOINT", format!("{}/", moto.endpoint)), ("TOKEN", token.clone())]);
    assert!(doc["access_key_id"].as_str().unwrap().starts_with("ASIA"), "{doc}");
    assert_eq!(doc["has_secret"], true);
    let expires_in = doc["expires_in"].as_f64().unwrap();
    assert!(expires_in > 3000.0 && expires_in <= 3600.0, "{doc}");
    assert!(!doc["repr"].as_str().unwrap().contains("secret_access_key"), "secrets in repr: {doc}");
    assert_eq!(doc["status"], 200, "{doc}");
    assert!(doc["listing"].as_str().unwrap().contains("ListAllMyBucketsResult"), "{doc}");
    assert!(moto.sts_calls() > before, "the STS call never reached the peer");
    assert_eq!(doc["errors"]["empty_token"][0], "InvalidInput", "{doc}");
    assert_eq!(doc["errors"]["refused"], serde_json::json!(["StsRefused", "AccessDenied", 403]), "{doc}");
    assert_eq!(doc["errors"]["not_xml"][0], "InvalidResponse", "{doc}");
    assert_eq!(doc["session_name"], "alice@example.org");
}
