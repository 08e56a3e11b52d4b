//! `lakeport serve` end to end: curl through the gateway to a strict S3
//! server (s3s-fs, which checks signatures and payload hashes), with tokens
//! signed by the oidc-provider peer's published key. Between the gateway
//! and s3s-fs sits the test proxy, which counts every request the backend
//! would have seen: a refused token or scope must cost none. The same
//! gateway.wasm also runs under `wasmtime serve` (the CLI `./dev setup`
//! builds into .tools).

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;
#[path = "support/fault_proxy.rs"]
#[allow(dead_code)]
mod fault_proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fault_proxy::{FaultProxy, Faults};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{export_components, free_port, pattern, send, tool_on_path, wasmtime, workspace_root, Lakeport, Peer, UserEnv, ACCESS_KEY, SECRET_KEY};

const AUDIENCE: &str = "object";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A running `lakeport serve` in front of s3s-fs (through the counting
/// proxy), trusting the oidc-provider peer.
struct Gateway {
    op: Peer,
    s3: Peer,
    backend: FaultProxy,
    user: UserEnv,
    child: Option<Child>,
    endpoint: String,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// The gateway with static keys in front of s3s-fs.
    fn start(authorization: &str) -> Gateway {
        Gateway::start_with(authorization, false)
    }

    /// As [`Gateway::start`], with the profile's `redirect`.
    fn start_with(authorization: &str, redirect: bool) -> Gateway {
        let s3 = Peer::s3s_fs();
        std::fs::create_dir_all(s3.data_dir.join("bkt")).unwrap();
        Gateway::launch(Peer::oidc_provider(300, 3600), s3, |op, backend, listen| {
            format!(
                "[profiles.gw]\ns3_endpoint = \"{backend}/\"\nregion = \"us-east-1\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n\
                 [profiles.gw.gateway]\nissuer = \"{op}\"\naudience = \"{AUDIENCE}\"\nauthorization = \"{authorization}\"\nlisten = \"{listen}\"\nredirect = {redirect}\n"
            )
        })
    }

    /// `lakeport serve --profile gw` for the profile `profile(issuer,
    /// backend endpoint (the counting proxy), listen address)`.
    fn launch(op: Peer, s3: Peer, profile: impl FnOnce(&str, &str, &str) -> String) -> Gateway {
        Gateway::launch_with(op, s3, profile, "serving the gateway on", |user, _, _, _| user.lakeport_command(&["serve", "--profile", "gw"]))
    }

    /// The exported gateway.wasm under `wasmtime serve`, configured with
    /// `-S config-var=KEY=VALUE` for each of `settings(issuer, backend
    /// endpoint)`, with `serve_args` before the component. The profile is
    /// for the lakeport commands a test runs beside it.
    fn wasmtime_serve(
        op: Peer,
        s3: Peer,
        profile: impl FnOnce(&str, &str, &str) -> String,
        settings: impl FnOnce(&str, &str) -> Vec<(&'static str, String)>,
        serve_args: &[&str],
    ) -> Gateway {
        Gateway::launch_with(op, s3, profile, "Serving HTTP on", |user, issuer, backend, listen| {
            let components = user.home().join("components");
            export_components(&components);
            let mut cmd = user.tool(wasmtime());
            // The gateway imports wasi:http, the wasi:io and wasi:clocks it
            // speaks in (the proxy world serve links by default),
            // wasi:config and wasi:keyvalue: -S config -S keyvalue. No -S cli.
            cmd.args(["serve", "--addr", listen, "-S", "config", "-S", "keyvalue"]).args(serve_args);
            for (key, value) in settings(issuer, backend) {
                cmd.arg("-S").arg(format!("config-var={key}={value}"));
            }
            cmd.arg(components.join("gateway.wasm"));
            cmd
        })
    }

    /// Starts `command(user, issuer, backend endpoint, listen address)` in
    /// front of s3s-fs or moto (through the counting proxy) and waits for
    /// its `ready` line on stderr.
    fn launch_with(
        op: Peer,
        s3: Peer,
        profile: impl FnOnce(&str, &str, &str) -> String,
        ready: &str,
        command: impl FnOnce(&UserEnv, &str, &str, &str) -> Command,
    ) -> Gateway {
        let backend = FaultProxy::start(&format!("127.0.0.1:{}", s3.port), Faults::default());
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let user = UserEnv::new(&profile(&op.endpoint, &backend.endpoint, &listen));
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("serve.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = command(&user, &op.endpoint, &backend.endpoint, &listen).stdout(Stdio::null()).stderr(log).spawn().expect("starting the gateway");
        let gateway = Gateway { op, s3, backend, user, child: Some(child), endpoint: format!("http://{listen}"), log_path, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !gateway.log().contains(ready) {
            assert!(Instant::now() < deadline, "the gateway did not start: {}", gateway.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        gateway
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The access log: one JSON object per line.
    fn access_log(&self) -> Vec<Value> {
        self.log().lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    /// A token signed by the peer with `key` ("published" or "stranger").
    fn sign(&self, claims: &Value, header: &Value, key: &str) -> String {
        let body = json!({ "claims": claims, "header": header, "key": key }).to_string();
        let reply = send("POST", &self.op.url("/test/sign"), &[("Content-Type".into(), "application/json".into())], body.as_bytes());
        reply.expect_status(200, "signing a test token");
        reply.text()
    }

    fn claims(&self, scope: &str) -> Value {
        json!({ "iss": self.op.endpoint, "sub": "alice", "aud": AUDIENCE, "iat": now(), "exp": now() + 300, "scope": scope })
    }

    fn token(&self, scope: &str) -> String {
        self.sign(&self.claims(scope), &json!({}), "published")
    }

    /// curl with `args` and the URL of `path`: (status, headers, body).
    fn curl(&self, token: Option<&str>, args: &[&str], path: &str) -> (u16, String, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let (headers, body) = (dir.path().join("headers"), dir.path().join("body"));
        let mut cmd = Command::new(tool_on_path("curl"));
        cmd.args(["--silent", "--show-error", "--path-as-is", "--max-time", "60", "--dump-header"])
            .arg(&headers)
            .arg("--output")
            .arg(&body)
            .args(["--write-out", "%{http_code}"])
            .args(args);
        if let Some(token) = token {
            cmd.arg("--header").arg(format!("Authorization: Bearer {token}"));
        }
        let out = cmd.arg(format!("{}{path}", self.endpoint)).stdin(Stdio::null()).output().expect("running curl");
        assert!(out.status.success(), "curl {args:?} {path}: {}", String::from_utf8_lossy(&out.stderr));
        let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        (status, std::fs::read_to_string(headers).unwrap_or_default(), std::fs::read(body).unwrap_or_default())
    }

    /// SIGTERM; the server must stop by itself, successfully.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: a plain syscall to the child this test started.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("lakeport serve did not stop within 20 s of SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// PUT, GET, Range GET, HEAD and DELETE with curl through `gw` (s3s-fs
/// behind it), every byte compared. Returns what was PUT.
fn curl_round_trip(gw: &Gateway, token: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    // Larger than curl's 1 MiB `Expect: 100-continue` threshold, not a
    // multiple of any buffer size.
    let data = pattern(3 * (1 << 20) + 12_345, 7);
    let file = write(dir.path(), "up.bin", &data);

    let (status, _, _) = gw.curl(Some(token), &["--upload-file", file.to_str().unwrap()], "/bkt/dir/obj%20one.bin");
    assert_eq!(status, 200, "{}", gw.log());
    assert_eq!(std::fs::read(gw.s3.data_dir.join("bkt/dir/obj one.bin")).unwrap(), data, "what s3s-fs stored");

    let (status, headers, body) = gw.curl(Some(token), &[], "/bkt/dir/obj%20one.bin");
    assert_eq!(status, 200);
    assert!(body == data, "GET through the gateway differs from what was PUT ({} vs {} bytes)", body.len(), data.len());
    assert_eq!(header(&headers, "content-length"), Some(data.len().to_string().as_str()));

    let (status, headers, body) = gw.curl(Some(token), &["--range", "1000-1048575"], "/bkt/dir/obj%20one.bin");
    assert_eq!(status, 206);
    assert!(body == data[1000..=1_048_575], "Range GET differs");
    assert_eq!(header(&headers, "content-range"), Some(format!("bytes 1000-1048575/{}", data.len()).as_str()));

    let (status, headers, body) = gw.curl(Some(token), &["--head"], "/bkt/dir/obj%20one.bin");
    assert_eq!(status, 200);
    // curl writes the head to the output with --head; nothing else came.
    assert!(body.len() < 1024 && String::from_utf8_lossy(&body).ends_with("\r\n\r\n"), "HEAD answered a body");
    assert_eq!(header(&headers, "content-length"), Some(data.len().to_string().as_str()));
    assert!(header(&headers, "etag").is_some(), "HEAD answers the ETag");
    // Conditional headers are forwarded and signed (the core's tests show
    // it); s3s-fs ignores them on GET, so they are not checked here.

    let (status, _, _) = gw.curl(Some(token), &["--request", "DELETE"], "/bkt/dir/obj%20one.bin");
    assert_eq!(status, 204);
    assert!(!gw.s3.data_dir.join("bkt/dir/obj one.bin").exists());
    let (status, _, _) = gw.curl(Some(token), &[], "/bkt/dir/obj%20one.bin");
    assert_eq!(status, 404);
    data
}

#[test]
fn curl_get_range_head_put_delete_through_the_gateway_are_byte_identical() {
    let mut gw = Gateway::start("wlcg-scopes");
    let token = gw.token("openid storage.read:/bkt storage.create:/bkt storage.modify:/bkt");
    let data = curl_round_trip(&gw, &token);

    // One access-log line per request, with the subject hashed and no token.
    let log = gw.access_log();
    let methods: Vec<&str> = log.iter().map(|l| l["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["PUT", "GET", "GET", "HEAD", "DELETE", "GET"], "{}", gw.log());
    assert_eq!(log[1]["bytes"], json!(data.len()));
    assert_eq!(log[1]["status"], json!(200));
    assert_eq!(log[2]["bytes"], json!(1_048_576 - 1000));
    assert!(log.iter().all(|l| l["path"] == "/bkt/dir/obj%20one.bin" && l["duration_ms"].is_number()));
    let subject = log[0]["subject"].as_str().expect("a subject hash");
    assert!(subject.len() == 16 && !subject.contains("alice"));
    let whole = gw.log();
    assert!(!whole.contains(&token) && !whole.contains(token.rsplit('.').next().unwrap()) && !whole.contains("eyJ"), "a token in the log: {whole}");

    assert!(gw.stop().success(), "lakeport serve exits 0 on SIGTERM: {}", gw.log());
}

#[test]
fn a_token_from_the_providers_own_flow_passes_in_backend_mode() {
    let gw = Gateway::start("backend");
    let form = "grant_type=client_credentials&audience=object&scope=s3";
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("service:service-secret"));
    let reply = send(
        "POST",
        &gw.op.url("/token"),
        &[("Content-Type".into(), "application/x-www-form-urlencoded".into()), ("Authorization".into(), basic)],
        form.as_bytes(),
    );
    reply.expect_status(200, "client credentials");
    let token: Value = serde_json::from_slice(&reply.body).unwrap();
    let token = token["access_token"].as_str().unwrap();
    std::fs::write(gw.s3.data_dir.join("bkt/hello.txt"), b"hello gateway\n").unwrap();
    let (status, _, body) = gw.curl(Some(token), &[], "/bkt/hello.txt");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"hello gateway\n");
    // No storage scopes, yet the backend decides: a DELETE passes too.
    let (status, _, _) = gw.curl(Some(token), &["--request", "DELETE"], "/bkt/hello.txt");
    assert_eq!(status, 204);
}

/// HMAC-SHA256, for the HS256 token a gateway must refuse.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).chain(message.iter().copied()).collect();
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).chain(Sha256::digest(&inner)).collect();
    Sha256::digest(&outer).to_vec()
}

#[test]
fn hostile_tokens_are_refused_with_rfc_6750_before_the_backend_sees_a_request() {
    let gw = Gateway::start("wlcg-scopes");
    let scope = "storage.read:/bkt storage.create:/bkt storage.modify:/bkt";
    let good = gw.token(scope);
    let claims = |f: &dyn Fn(&mut Value)| {
        let mut c = gw.claims(scope);
        f(&mut c);
        c
    };
    // A server where a `jku` header points: it must never be asked.
    let jku = TcpListener::bind("127.0.0.1:0").unwrap();
    jku.set_nonblocking(true).unwrap();
    let jku_url = format!("http://{}/jwks", jku.local_addr().unwrap());

    let (head, payload, signature) = {
        let mut parts = good.split('.');
        (parts.next().unwrap().to_string(), parts.next().unwrap().to_string(), parts.next().unwrap().to_string())
    };
    let mut bad_signature = signature.clone().into_bytes();
    bad_signature[20] = if bad_signature[20] == b'A' { b'B' } else { b'A' };
    let alg_none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    let public_key = send("GET", &gw.op.url("/jwks"), &[], b"").body;
    let hs_input = format!("{}.{payload}", b64(br#"{"alg":"HS256","typ":"JWT"}"#));
    let hs256 = format!("{hs_input}.{}", b64(&hmac_sha256(&public_key, hs_input.as_bytes())));

    let hostile: Vec<(&str, String)> = vec![
        ("expired", gw.sign(&claims(&|c| c["exp"] = json!(now() - 600)), &json!({}), "published")),
        ("not yet valid", gw.sign(&claims(&|c| c["nbf"] = json!(now() + 600)), &json!({}), "published")),
        ("wrong issuer", gw.sign(&claims(&|c| c["iss"] = json!("http://127.0.0.1:9/other")), &json!({}), "published")),
        ("wrong audience", gw.sign(&claims(&|c| c["aud"] = json!("somebody-else")), &json!({}), "published")),
        ("bad signature", format!("{head}.{payload}.{}", String::from_utf8(bad_signature).unwrap())),
        ("alg none", alg_none),
        ("HS256 with the RSA public key as secret", hs256),
        ("unknown kid", gw.sign(&claims(&|_| {}), &json!({ "kid": "not-a-published-key" }), "stranger")),
        ("jku pointing elsewhere", gw.sign(&claims(&|_| {}), &json!({ "kid": "attacker", "jku": jku_url }), "stranger")),
        ("truncated", good[..good.len() - 30].to_string()),
        ("oversized", gw.sign(&claims(&|c| c["pad"] = json!("x".repeat(10_000))), &json!({}), "published")),
    ];
    let dir = tempfile::tempdir().unwrap();
    let upload = write(dir.path(), "up.bin", &pattern(2 << 20, 3));
    for (what, token) in &hostile {
        for (args, method) in [(vec![], "GET"), (vec!["--upload-file", upload.to_str().unwrap()], "PUT")] {
            let (status, headers, body) = gw.curl(Some(token), &args, "/bkt/file");
            assert_eq!(status, 401, "{what} ({method}): {}", String::from_utf8_lossy(&body));
            let challenge = header(&headers, "www-authenticate").unwrap_or_else(|| panic!("{what}: no challenge"));
            assert!(challenge.starts_with("Bearer realm=") && challenge.contains(r#"error="invalid_token""#), "{what}: {challenge}");
            assert!(challenge.contains("error_description=\""), "{what}: {challenge}");
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains(token.as_str()) && !challenge.contains(token.as_str()), "{what}: the answer quotes the token");
        }
        assert_eq!(gw.backend.requests_seen(), 0, "{what}: the backend was asked");
    }
    assert!(jku.accept().is_err(), "the jku URL was fetched");
    let (status, headers, _) = gw.curl(None, &[], "/bkt/file");
    assert_eq!((status, header(&headers, "www-authenticate")), (401, Some(r#"Bearer realm="lakeport""#)));

    // The counter counts: a good token does reach the backend.
    let (status, _, _) = gw.curl(Some(&good), &[], "/bkt/file");
    assert_eq!(status, 404);
    assert_eq!(gw.backend.requests_seen(), 1);

    let log = gw.log();
    for (what, token) in &hostile {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!log.contains(token.as_str()) && (signature.len() < 8 || !log.contains(signature)), "{what}: the token is in the log");
    }
    assert!(!log.contains("eyJ"), "a token in the log: {log}");
    assert_eq!(gw.access_log().iter().filter(|l| l["status"] == 401).count(), hostile.len() * 2 + 1);
}

#[test]
fn scope_violations_are_refused_naming_the_missing_scope() {
    let gw = Gateway::start("wlcg-scopes");
    std::fs::create_dir_all(gw.s3.data_dir.join("bkt/data")).unwrap();
    std::fs::write(gw.s3.data_dir.join("bkt/data/f"), b"data\n").unwrap();
    std::fs::create_dir_all(gw.s3.data_dir.join("bkt/data2")).unwrap();
    std::fs::write(gw.s3.data_dir.join("bkt/data2/f"), b"data2\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let upload = write(dir.path(), "up.bin", b"new bytes\n");
    let up = upload.to_str().unwrap();

    let read_only = gw.token("storage.read:/bkt/data");
    let create_only = gw.token("storage.read:/bkt storage.create:/bkt/data");
    let cases: Vec<(&str, &String, Vec<&str>, &str, u16, &str)> = vec![
        ("read-only token PUT", &read_only, vec!["--upload-file", up], "/bkt/data/new", 403, "storage.create:/bkt/data/new"),
        ("read-only token DELETE", &read_only, vec!["--request", "DELETE"], "/bkt/data/f", 403, "storage.modify:/bkt/data/f"),
        ("path outside the scope", &read_only, vec![], "/bkt/other", 403, "storage.read:/bkt/other"),
        ("/bkt/data scope on /bkt/data2", &read_only, vec![], "/bkt/data2/f", 403, "storage.read:/bkt/data2/f"),
        // No scope can allow a dot segment: it asks for a path outside
        // the one the scope names (the issue lists it among the 403s).
        ("..", &read_only, vec![], "/bkt/data/../data2/f", 403, "'.' or '..' segment, which could name a path outside the token's scope"),
        ("%2e%2e", &read_only, vec![], "/bkt/data/%2e%2e/data2/f", 403, "'.' or '..' segment, which could name a path outside the token's scope"),
    ];
    for (what, token, args, path, expected, says) in &cases {
        let (status, headers, body) = gw.curl(Some(token), args, path);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, *expected, "{what}: {text}");
        assert!(text.contains(says), "{what}: {text}");
        if *expected == 403 && says.starts_with("storage.") {
            let challenge = header(&headers, "www-authenticate").unwrap_or_default();
            assert!(challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(says), "{what}: {challenge}");
        }
    }
    assert_eq!(gw.backend.requests_seen(), 0, "a refused request reached the backend");
    assert_eq!(std::fs::read(gw.s3.data_dir.join("bkt/data2/f")).unwrap(), b"data2\n");

    // storage.create alone makes new objects but never replaces one (the
    // backend's If-None-Match: * refusal comes back as the missing scope).
    let (status, _, _) = gw.curl(Some(&create_only), &["--upload-file", up], "/bkt/data/new");
    assert_eq!(status, 200, "{}", gw.log());
    let (status, _, body) = gw.curl(Some(&create_only), &["--upload-file", up], "/bkt/data/f");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("storage.modify:/bkt/data/f"));
    assert_eq!(std::fs::read(gw.s3.data_dir.join("bkt/data/f")).unwrap(), b"data\n", "the object was overwritten");
}

/// The role moto lets web identities assume for S3.
const STS_ROLE: &str = "arn:aws:iam::123456789012:role/s3access";

/// A profile whose own keys come from STS with a client-credentials token,
/// and whose gateway gives each caller their own STS keys (backend mode).
fn sts_profile(op: &str, backend: &str, listen: &str) -> String {
    format!(
        "[profiles.gw]\nissuer = \"{op}\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"service-secret\"\naudience = \"{AUDIENCE}\"\n\
         sts_endpoint = \"{backend}/\"\nrole_arn = \"{STS_ROLE}\"\nregion = \"us-east-1\"\ns3_endpoint = \"{backend}/\"\n\
         [profiles.gw.gateway]\nissuer = \"{op}\"\naudience = \"{AUDIENCE}\"\nauthorization = \"backend\"\nlisten = \"{listen}\"\n"
    )
}

/// Makes the bucket `bkt` with the profile's own (service) keys: one STS call.
fn make_bucket(gw: &Gateway) {
    let out = gw.user.lakeport(&["s3", "mb", "s3://bkt"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(gw.s3.sts_calls(), 1);
}

#[test]
fn under_sts_each_caller_gets_their_own_keys_once() {
    let gw = Gateway::launch(Peer::oidc_provider(300, 3600), Peer::moto(&["s3access"]), sts_profile);
    make_bucket(&gw);

    let alice = gw.sign(&json!({ "iss": gw.op.endpoint, "sub": "alice", "aud": AUDIENCE, "exp": now() + 300 }), &json!({}), "published");
    let bob = gw.sign(&json!({ "iss": gw.op.endpoint, "sub": "bob", "aud": AUDIENCE, "exp": now() + 300 }), &json!({}), "published");
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(200_000, 11);
    let file = write(dir.path(), "up.bin", &data);
    let (status, _, body) = gw.curl(Some(&alice), &["--upload-file", file.to_str().unwrap()], "/bkt/shared.bin");
    assert_eq!(status, 200, "{}: {}", String::from_utf8_lossy(&body), gw.log());
    for token in [&alice, &bob] {
        for _ in 0..10 {
            let (status, _, body) = gw.curl(Some(token), &[], "/bkt/shared.bin");
            assert_eq!(status, 200);
            assert!(body == data, "GET differs");
        }
    }
    // Each caller's own keys, one STS call each for 21 requests (a shared
    // key would make none; keys per request, 21).
    assert_eq!(gw.s3.sts_calls(), 3, "{}", gw.s3.log());
    let log = gw.log();
    assert!(!log.contains(&alice) && !log.contains(&bob) && !log.contains("eyJ"), "a token in the log");
}

/// The `207` body's responses as (href, displayname, collection?, length).
fn multistatus(body: &[u8]) -> Vec<(String, String, bool, Option<u64>)> {
    let text = String::from_utf8(body.to_vec()).expect("a UTF-8 body");
    // A minimal reading: the elements this gateway writes, in its `D:` prefix.
    assert!(text.starts_with("<?xml") && text.contains("<D:multistatus xmlns:D=\"DAV:\">"), "{text}");
    let between = |s: &str, open: &str, close: &str| -> Option<String> {
        let start = s.find(open)? + open.len();
        Some(s[start..start + s[start..].find(close)?].to_string())
    };
    let unescape = |s: String| s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&");
    text.split("<D:response>")
        .skip(1)
        .map(|r| {
            assert!(r.contains("<D:status>HTTP/1.1 200 OK</D:status>"), "{r}");
            (
                between(r, "<D:href>", "</D:href>").unwrap(),
                unescape(between(r, "<D:displayname>", "</D:displayname>").unwrap()),
                r.contains("<D:collection/>"),
                between(r, "<D:getcontentlength>", "</D:getcontentlength>").map(|l| l.parse().unwrap()),
            )
        })
        .collect()
}

#[test]
fn webdav_propfind_mkcol_copy_move_and_delete_with_curl() {
    let gw = Gateway::start("wlcg-scopes");
    let root = gw.s3.data_dir.join("bkt/dav");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("a&b <c>.txt"), b"angle\n").unwrap();
    std::fs::write(root.join("sp ace \u{e9}.bin"), pattern(70_000, 5)).unwrap();
    std::fs::write(root.join("sub/x"), b"x").unwrap();
    let token = gw.token("storage.read:/bkt storage.create:/bkt storage.modify:/bkt");
    let propfind = |depth: &str, path: &str| gw.curl(Some(&token), &["--request", "PROPFIND", "--header", &format!("Depth: {depth}")], path);

    let (status, headers, body) = propfind("0", "/bkt/dav/a%26b%20%3Cc%3E.txt");
    assert_eq!(status, 207, "{}", String::from_utf8_lossy(&body));
    assert!(header(&headers, "content-type").unwrap_or_default().starts_with("application/xml"));
    assert_eq!(multistatus(&body), [("/bkt/dav/a%26b%20%3Cc%3E.txt".to_string(), "a&b <c>.txt".to_string(), false, Some(6))]);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("<D:getetag>") && text.contains("GMT</D:getlastmodified>"), "{text}");

    let (status, _, body) = propfind("1", "/bkt/dav/");
    assert_eq!(status, 207, "{}", String::from_utf8_lossy(&body));
    let mut listed = multistatus(&body);
    listed.sort();
    assert_eq!(
        listed,
        [
            ("/bkt/dav/".to_string(), "dav".to_string(), true, None),
            ("/bkt/dav/a%26b%20%3Cc%3E.txt".into(), "a&b <c>.txt".into(), false, Some(6)),
            ("/bkt/dav/sp%20ace%20%C3%A9.bin".into(), "sp ace \u{e9}.bin".into(), false, Some(70_000)),
            ("/bkt/dav/sub/".into(), "sub".into(), true, None),
        ]
    );
    let (status, _, body) = propfind("0", "/bkt/dav/");
    assert_eq!((status, multistatus(&body).len()), (207, 1));
    assert_eq!(propfind("0", "/bkt/nothing/here").0, 404);
    let (status, _, body) = propfind("infinity", "/bkt/dav/");
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("propfind-finite-depth"));

    // OPTIONS tells clients this is WebDAV, without a token.
    let (status, headers, _) = gw.curl(None, &["--request", "OPTIONS"], "/bkt/dav/");
    assert_eq!((status, header(&headers, "dav")), (200, Some("1")));
    assert!(header(&headers, "allow").unwrap_or_default().contains("PROPFIND"));

    // MKCOL: a marker (s3s-fs makes it a directory); none where a
    // collection or an object of that name is. (s3s-fs lists no empty
    // directory, so a repeated MKCOL of an empty one is shown against
    // moto, by rclone, below.)
    let (status, _, _) = gw.curl(Some(&token), &["--request", "MKCOL"], "/bkt/dav/new%20dir/");
    assert_eq!(status, 201, "{}", gw.log());
    assert!(root.join("new dir").is_dir());
    assert_eq!(gw.curl(Some(&token), &["--request", "MKCOL"], "/bkt/dav/sub/").0, 405);
    assert_eq!(gw.curl(Some(&token), &["--request", "MKCOL"], "/bkt/dav/a%26b%20%3Cc%3E.txt").0, 405);

    // COPY to an absolute URL on this gateway, byte-identical.
    let destination = |path: &str| format!("Destination: {}{path}", gw.endpoint);
    let src = "/bkt/dav/sp%20ace%20%C3%A9.bin";
    let (status, _, body) = gw.curl(Some(&token), &["--request", "COPY", "--header", &destination("/bkt/dav/sub/copy%20%C3%A9.bin")], src);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(std::fs::read(root.join("sub/copy \u{e9}.bin")).unwrap(), pattern(70_000, 5));
    // Overwrite: F keeps what is there.
    let (status, _, _) = gw.curl(Some(&token), &["--request", "MOVE", "--header", &destination("/bkt/dav/sub/x"), "--header", "Overwrite: F"], src);
    assert_eq!(status, 412);
    assert_eq!(std::fs::read(root.join("sub/x")).unwrap(), b"x");
    // MOVE with a path Destination: copied, then the source deleted.
    let (status, _, _) = gw.curl(Some(&token), &["--request", "MOVE", "--header", "Destination: /bkt/dav/moved.bin"], src);
    assert_eq!(status, 201, "{}", gw.log());
    assert_eq!(std::fs::read(root.join("moved.bin")).unwrap(), pattern(70_000, 5));
    assert!(!root.join("sp ace \u{e9}.bin").exists());
    // Another server's URL is refused (RFC 4918: 502).
    let (status, _, _) = gw.curl(Some(&token), &["--request", "COPY", "--header", "Destination: http://elsewhere.example/bkt/dav/x2"], "/bkt/dav/moved.bin");
    assert_eq!(status, 502);

    // Scopes: COPY reads its source and creates the destination; MOVE
    // needs storage.modify on its source.
    let read_create = gw.token("storage.read:/bkt/dav storage.create:/bkt/dav/sub");
    let (status, _, body) = gw.curl(Some(&read_create), &["--request", "COPY", "--header", "Destination: /bkt/dav/sub/c2"], "/bkt/dav/moved.bin");
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = gw.curl(Some(&read_create), &["--request", "COPY", "--header", "Destination: /bkt/dav/sub/x"], "/bkt/dav/moved.bin");
    assert_eq!(status, 403, "create-only may not replace");
    assert!(String::from_utf8_lossy(&body).contains("storage.modify:/bkt/dav/sub/x"));
    assert_eq!(std::fs::read(root.join("sub/x")).unwrap(), b"x");
    let (status, _, body) = gw.curl(Some(&read_create), &["--request", "MOVE", "--header", "Destination: /bkt/dav/sub/c3"], "/bkt/dav/moved.bin");
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("storage.modify:/bkt/dav/moved.bin"));
    let read_only = gw.token("storage.read:/bkt");
    let (status, _, body) = gw.curl(Some(&read_only), &["--request", "MKCOL"], "/bkt/dav/nope/");
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("storage.create:/bkt/dav/nope/"));

    // DELETE of a collection removes every object under it.
    let (status, _, _) = gw.curl(Some(&token), &["--request", "DELETE"], "/bkt/dav/sub/");
    assert_eq!(status, 204, "{}", gw.log());
    assert!(!root.join("sub/x").exists() && !root.join("sub/c2").exists() && !root.join("sub/copy \u{e9}.bin").exists());
    assert_eq!(propfind("0", "/bkt/dav/sub/").0, 404);
    assert!(root.join("moved.bin").exists());
    let log = gw.log();
    assert!(!log.contains(&token) && !log.contains("eyJ"), "a token in the log");
}

#[test]
fn rclone_webdav_with_bearer_token_command_copies_a_tree_up_and_down() {
    // Client-credentials tokens carry no storage scopes: the backend
    // decides, with each caller's own STS keys (moto keeps a flat key
    // space, as S3 and RGW do).
    let role = "arn:aws:iam::123456789012:role/s3access";
    let gw = Gateway::launch(Peer::oidc_provider(300, 3600), Peer::moto(&["s3access"]), |op, backend, listen| {
        format!(
            "[profiles.gw]\nissuer = \"{op}\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"service-secret\"\naudience = \"{AUDIENCE}\"\n\
             sts_endpoint = \"{backend}/\"\nrole_arn = \"{role}\"\nregion = \"us-east-1\"\ns3_endpoint = \"{backend}/\"\n\
             [profiles.gw.gateway]\nissuer = \"{op}\"\naudience = \"{AUDIENCE}\"\nauthorization = \"backend\"\nlisten = \"{listen}\"\n"
        )
    });
    let out = gw.user.lakeport(&["s3", "mb", "s3://bkt"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rclone.conf");
    std::fs::write(
        &conf,
        format!(
            "[dav]\ntype = webdav\nurl = {}/bkt\nvendor = other\nbearer_token_command = {} token get --profile gw\n",
            gw.endpoint,
            Lakeport::path().display()
        ),
    )
    .unwrap();
    let rclone = |args: &[&str]| -> String {
        let out = gw
            .user
            .tool(workspace_root().join(".venv/bin/rclone"))
            .env("RCLONE_CONFIG", &conf)
            .env("RCLONE_CACHE_DIR", dir.path().join("cache"))
            .args(["--retries", "1", "--low-level-retries", "1"])
            .args(args)
            .output()
            .expect("running rclone");
        assert!(out.status.success(), "rclone {args:?}: {}\n{}", String::from_utf8_lossy(&out.stderr), gw.log());
        String::from_utf8(out.stdout).unwrap()
    };
    let lsf = |remote: &str| -> Vec<String> {
        let mut names: Vec<String> = rclone(&["lsf", "-R", remote]).lines().map(String::from).collect();
        names.sort();
        names
    };

    let up = dir.path().join("up");
    std::fs::create_dir_all(up.join("sub/deeper")).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("top.txt", b"hello webdav\n".to_vec()),
        ("with space.txt", b"spaced\n".to_vec()),
        ("caf\u{e9} \u{3b1}.bin", pattern(10_000, 9)),
        ("empty.bin", Vec::new()),
        ("sub/deeper/big.bin", pattern(3 * (1 << 20) + 4321, 13)),
    ];
    for (name, bytes) in &files {
        std::fs::write(up.join(name), bytes).unwrap();
    }
    rclone(&["copy", up.to_str().unwrap(), "dav:tree"]);
    assert_eq!(
        lsf("dav:tree"),
        ["caf\u{e9} \u{3b1}.bin", "empty.bin", "sub/", "sub/deeper/", "sub/deeper/big.bin", "top.txt", "with space.txt"]
    );
    let sizes = rclone(&["ls", "dav:tree"]);
    assert!(sizes.lines().any(|l| l.trim() == format!("{} sub/deeper/big.bin", 3 * (1 << 20) + 4321)), "{sizes}");
    assert!(sizes.lines().any(|l| l.trim() == "0 empty.bin"), "{sizes}");

    let down = dir.path().join("down");
    rclone(&["copy", "dav:tree", down.to_str().unwrap()]);
    for (name, bytes) in &files {
        assert!(std::fs::read(down.join(name)).unwrap() == *bytes, "{name} differs after the round trip");
    }

    rclone(&["moveto", "dav:tree/top.txt", "dav:tree/sub/moved top.txt"]);
    assert_eq!(rclone(&["cat", "dav:tree/sub/moved top.txt"]), "hello webdav\n");
    rclone(&["delete", "dav:tree/sub/deeper"]);
    assert_eq!(lsf("dav:tree"), ["caf\u{e9} \u{3b1}.bin", "empty.bin", "sub/", "sub/deeper/", "sub/moved top.txt", "with space.txt"]);
    rclone(&["purge", "dav:tree"]);
    assert_eq!(lsf("dav:"), [] as [String; 0], "purge left objects behind");

    let log = gw.log();
    assert!(!log.contains("eyJ"), "a token in the log");
    let methods: std::collections::BTreeSet<String> = gw.access_log().iter().map(|l| l["method"].as_str().unwrap().to_string()).collect();
    for m in ["PROPFIND", "MKCOL", "PUT", "GET", "MOVE", "DELETE"] {
        assert!(methods.contains(m), "rclone sent no {m}: {methods:?}");
    }
}

#[test]
fn a_put_without_a_length_is_stored_in_parts_byte_identical() {
    let gw = Gateway::start("wlcg-scopes");
    let token = gw.token("storage.read:/bkt storage.create:/bkt storage.modify:/bkt");
    let dir = tempfile::tempdir().unwrap();
    // `curl -T -` reads stdin and sends it chunked, with no Content-Length.
    let put_stdin = |token: &str, bytes: &[u8], path: &str| -> (u16, String) {
        let input = write(dir.path(), "stdin.bin", bytes);
        let out = Command::new(tool_on_path("curl"))
            .args(["--silent", "--show-error", "--max-time", "120", "--upload-file", "-", "--write-out", "%{http_code}", "--output", "-"])
            .arg("--header")
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("{}{path}", gw.endpoint))
            .stdin(std::fs::File::open(input).unwrap())
            .output()
            .expect("running curl");
        assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.split_at(text.len() - 3);
        (status.parse().unwrap(), body.to_string())
    };
    // Within one part: one PUT. Across parts (8 MiB each): a multipart
    // upload whose last part is short.
    for (name, len) in [("small.bin", 100_000), ("large.bin", 2 * (8 << 20) + 12_345)] {
        let data = pattern(len, len as u32);
        let (status, body) = put_stdin(&token, &data, &format!("/bkt/piped/{name}"));
        assert_eq!(status, 200, "{body}\n{}", gw.log());
        assert!(std::fs::read(gw.s3.data_dir.join("bkt/piped").join(name)).unwrap() == data, "{name} differs from what was piped");
    }
    // storage.create alone never replaces, in parts either.
    let create_only = gw.token("storage.read:/bkt storage.create:/bkt");
    let (status, body) = put_stdin(&create_only, &pattern(9 << 20, 1), "/bkt/piped/large.bin");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("storage.modify:/bkt/piped/large.bin"), "{body}");
    assert_eq!(std::fs::metadata(gw.s3.data_dir.join("bkt/piped/large.bin")).unwrap().len(), 2 * (8 << 20) + 12_345);
    // What the backend saw: one PUT; CreateMultipartUpload, three parts,
    // CompleteMultipartUpload; one HEAD for the create-only refusal.
    assert_eq!(gw.backend.requests_seen(), 1 + 5 + 1);
    let log = gw.access_log();
    assert!(log.iter().all(|l| l["method"] == "PUT"), "{}", gw.log());
}

#[test]
fn under_sts_a_callers_first_requests_arriving_together_make_one_sts_call() {
    let role = "arn:aws:iam::123456789012:role/s3access";
    let gw = Gateway::launch(Peer::oidc_provider(300, 3600), Peer::moto(&["s3access"]), |op, backend, listen| {
        format!(
            "[profiles.gw]\nissuer = \"{op}\"\ngrant = \"client_credentials\"\nclient_id = \"service\"\nclient_secret = \"service-secret\"\naudience = \"{AUDIENCE}\"\n\
             sts_endpoint = \"{backend}/\"\nrole_arn = \"{role}\"\nregion = \"us-east-1\"\ns3_endpoint = \"{backend}/\"\n\
             [profiles.gw.gateway]\nissuer = \"{op}\"\naudience = \"{AUDIENCE}\"\nauthorization = \"backend\"\nlisten = \"{listen}\"\n"
        )
    });
    let out = gw.user.lakeport(&["s3", "mb", "s3://bkt"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = gw.s3.sts_calls();

    let carol = gw.sign(&json!({ "iss": gw.op.endpoint, "sub": "carol", "aud": AUDIENCE, "exp": now() + 300 }), &json!({}), "published");
    // 16 at once: each on its own gateway instance, which has no keys yet.
    // Then 84 more, on whichever instance is idle.
    std::thread::scope(|scope| {
        let together: Vec<_> = (0..16).map(|_| scope.spawn(|| gw.curl(Some(&carol), &[], "/bkt/missing").0)).collect();
        for t in together {
            assert_eq!(t.join().unwrap(), 404, "{}", gw.log());
        }
    });
    for _ in 0..84 {
        assert_eq!(gw.curl(Some(&carol), &[], "/bkt/missing").0, 404);
    }
    // Instances share the caller's keys through the host's store and one
    // of them at a time asks STS; each with a cache of its own would ask
    // once per instance.
    assert_eq!(gw.s3.sts_calls() - before, 1, "{}", gw.s3.log());
    let log = gw.access_log();
    assert_eq!(log.iter().filter(|l| l["status"] == 404).count(), 100, "{}", gw.log());
    // The access log tells the one miss from the hits: the instances that
    // waited took the keys from the shared store.
    let keys = |v: &str| log.iter().filter(|l| l["keys"] == v).count();
    assert_eq!((keys("miss"), keys("hit") + keys("hit-shared")), (1, 99), "{}", gw.log());
    assert!(keys("hit-shared") >= 1, "{}", gw.log());
}

#[test]
fn with_redirect_gets_and_overwriting_puts_go_straight_to_the_backend() {
    let gw = Gateway::start_with("wlcg-scopes", true);
    let may_overwrite = gw.token("storage.read:/bkt storage.create:/bkt storage.modify:/bkt");
    let create_only = gw.token("storage.read:/bkt storage.create:/bkt");
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(2 * (1 << 20) + 777, 5);
    let file = write(dir.path(), "up.bin", &data);
    let file = file.to_str().unwrap();

    // Without following: a 307 to a presigned backend URL, kept by nobody.
    let (status, headers, _) = gw.curl(Some(&may_overwrite), &[], "/bkt/a.bin");
    assert_eq!(status, 307, "{}", gw.log());
    let location = header(&headers, "location").expect("a Location").to_string();
    assert!(location.starts_with(&gw.backend.endpoint) && location.contains("X-Amz-Signature="), "{location}");
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));

    // PUT that may overwrite: redirected, the body goes to the backend
    // (curl sends it again to the Location, without the token there).
    let (status, _, _) = gw.curl(Some(&may_overwrite), &["--location", "--upload-file", file], "/bkt/a.bin");
    assert_eq!(status, 200, "{}", gw.log());
    assert_eq!(std::fs::read(gw.s3.data_dir.join("bkt/a.bin")).unwrap(), data);
    // Create-only PUT: carried by the gateway with If-None-Match: *; an
    // overwrite of 2 MiB is refused before its body is sent (s3s-fs
    // answers 412 at once and resets the connection under the body, which
    // lost the 412 and gave a 502).
    let (status, _, _) = gw.curl(Some(&create_only), &["--location", "--upload-file", file], "/bkt/b.bin");
    assert_eq!(status, 200, "{}", gw.log());
    let requests = gw.backend.requests_seen();
    let (status, _, body) = gw.curl(Some(&create_only), &["--location", "--upload-file", file], "/bkt/b.bin");
    assert_eq!(status, 403, "a create-only token cannot overwrite: {} {}", String::from_utf8_lossy(&body), gw.log());
    assert!(String::from_utf8_lossy(&body).contains("storage.modify:/bkt/b.bin"));
    assert_eq!(gw.backend.requests_seen() - requests, 1, "only the HEAD reached the backend");
    assert_eq!(std::fs::read(gw.s3.data_dir.join("bkt/b.bin")).unwrap(), data, "the object was overwritten");

    let (status, _, body) = gw.curl(Some(&may_overwrite), &["--location"], "/bkt/a.bin");
    assert_eq!(status, 200);
    assert!(body == data, "GET through the redirect differs");
    let (status, _, body) = gw.curl(Some(&may_overwrite), &["--location", "--range", "100-199"], "/bkt/b.bin");
    assert_eq!(status, 206);
    assert!(body == data[100..200], "Range GET through the redirect differs");

    // The gateway answered 307 for the GETs and the overwriting PUT, and
    // carried the create-only PUTs itself.
    let log = gw.access_log();
    let seen: Vec<(String, u64)> = log.iter().map(|l| (l["method"].as_str().unwrap().to_string(), l["status"].as_u64().unwrap())).collect();
    let expected: Vec<(String, u64)> = [("GET", 307), ("PUT", 307), ("PUT", 200), ("PUT", 403), ("GET", 307), ("GET", 307)].iter().map(|(m, s)| (m.to_string(), *s)).collect();
    assert_eq!(seen, expected, "{}", gw.log());
    assert!(!gw.log().contains("X-Amz-Signature"), "a presigned URL in the log");
}

/// The gateway's settings for `wasmtime serve` with static backend keys.
fn static_key_settings(issuer: &str, backend: &str) -> Vec<(&'static str, String)> {
    vec![
        ("issuer", issuer.to_string()),
        ("audience", AUDIENCE.to_string()),
        ("authorization", "wlcg-scopes".to_string()),
        ("s3_endpoint", format!("{backend}/")),
        ("region", "us-east-1".to_string()),
        ("access_key_id", ACCESS_KEY.to_string()),
        ("secret_access_key", SECRET_KEY.to_string()),
    ]
}

#[test]
fn under_wasmtime_serve_the_same_component_passes_the_curl_round_trip() {
    let s3 = Peer::s3s_fs();
    std::fs::create_dir_all(s3.data_dir.join("bkt")).unwrap();
    let gw = Gateway::wasmtime_serve(Peer::oidc_provider(300, 3600), s3, |_, _, _| String::new(), static_key_settings, &[]);
    let token = gw.token("openid storage.read:/bkt storage.create:/bkt storage.modify:/bkt");
    curl_round_trip(&gw, &token);
    let seen = gw.backend.requests_seen();

    // The settings given on the command line are the ones in force: a
    // read-only token's PUT is refused naming the scope, before the backend.
    let dir = tempfile::tempdir().unwrap();
    let upload = write(dir.path(), "up.bin", b"new bytes\n");
    let (status, _, body) = gw.curl(Some(&gw.token("storage.read:/bkt")), &["--upload-file", upload.to_str().unwrap()], "/bkt/new");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("storage.create:/bkt/new"));
    assert_eq!(gw.backend.requests_seen(), seen, "a refused request reached the backend");
}

/// Under `wasmtime serve` the per-caller key cache lives in the instance:
/// `alice` PUTs and GETs `gets` times, `bob` GETs `gets` times. Returns the
/// STS calls the gateway made for them.
fn sts_calls_under_wasmtime_serve(serve_args: &[&str], gets: usize) -> usize {
    let gw = Gateway::wasmtime_serve(
        Peer::oidc_provider(300, 3600),
        Peer::moto(&["s3access"]),
        sts_profile,
        |issuer, backend| {
            vec![
                ("issuer", issuer.to_string()),
                ("audience", AUDIENCE.to_string()),
                ("authorization", "backend".to_string()),
                ("s3_endpoint", format!("{backend}/")),
                ("region", "us-east-1".to_string()),
                ("sts_endpoint", format!("{backend}/")),
                ("role_arn", STS_ROLE.to_string()),
            ]
        },
        serve_args,
    );
    make_bucket(&gw);
    let claims = |sub: &str| json!({ "iss": gw.op.endpoint, "sub": sub, "aud": AUDIENCE, "exp": now() + 300 });
    let (alice, bob) = (gw.sign(&claims("alice"), &json!({}), "published"), gw.sign(&claims("bob"), &json!({}), "published"));
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(100_000, 5);
    let file = write(dir.path(), "up.bin", &data);
    let (status, _, body) = gw.curl(Some(&alice), &["--upload-file", file.to_str().unwrap()], "/bkt/shared.bin");
    assert_eq!(status, 200, "{}: {}", String::from_utf8_lossy(&body), gw.log());
    for token in [&alice, &bob] {
        for _ in 0..gets {
            let (status, _, body) = gw.curl(Some(token), &[], "/bkt/shared.bin");
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            assert!(body == data, "GET differs");
        }
    }
    gw.s3.sts_calls() - 1
}

#[test]
fn under_wasmtime_serve_caller_keys_are_cached_only_with_instance_reuse() {
    // wasmtime serve's default: a fresh instance per request, so each
    // request asks STS again (and fetches the issuer's keys again).
    assert_eq!(sts_calls_under_wasmtime_serve(&[], 3), 1 + 3 + 3);
    // Requests one after another reuse the instance and its cache: one STS
    // call per caller. The idle timeout keeps the instance between curls
    // (wasmtime's default drops it after 1 s idle).
    assert_eq!(sts_calls_under_wasmtime_serve(&["--max-instance-reuse-count", "1000", "--idle-instance-timeout", "60s"], 5), 2);
}
