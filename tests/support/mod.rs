//! Shared helpers for the end-to-end tests: real peers started on
//! 127.0.0.1 on free ports, the built `lakeport` binary with an isolated
//! cache, and small HTTP helpers.
//!
//! Peers run in their own process group and are killed (group and all) when
//! their [`Peer`] is dropped, also when a test panics. A peer binary that is
//! missing is a test failure that says to run `./dev setup`, never a skip.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// Credentials the S3 peers are started with. rclone refuses very short
/// keys (`AK,SK` answers InvalidAccessKeyId), so these are realistic lengths.
pub const ACCESS_KEY: &str = "lakeportTestAccessKey";
pub const SECRET_KEY: &str = "lakeportTestSecretKey0123456789";
pub const REGION: &str = "us-east-1";

/// How long a peer may take to answer its first HTTP request. Generous: the
/// machines have two cores and may be compiling at the same time.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root (the tests are compiled from `host/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

fn setup_hint() -> &'static str {
    "run `./dev setup` at the repository root to install the test peers"
}

/// A peer's binary: `$ENV_VAR` if set, else `<workspace>/<default>`.
/// Panics (fails the test) if it is not there.
pub fn peer_binary(env_var: &str, default: &str) -> PathBuf {
    let path = match std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join(default),
    };
    if !path.is_file() {
        panic!("test peer not found at {} (set {env_var} to override): {}", path.display(), setup_hint());
    }
    path
}

/// The wasmtime CLI `./dev setup` builds into `.tools` (`$LAKEPORT_WASMTIME`
/// overrides), for the components under `wasmtime serve` and `wasmtime run`.
pub fn wasmtime() -> PathBuf {
    peer_binary("LAKEPORT_WASMTIME", ".tools/bin/wasmtime")
}

/// Writes the component files (`sigv4.wasm`, `gateway.wasm`, ...) into `dir`
/// as a user gets them: `lakeport components --export DIR`.
pub fn export_components(dir: &Path) {
    Lakeport::new().run(&[Path::new("components").as_os_str(), "--export".as_ref(), dir.as_os_str()]);
}

/// A program expected on PATH (e.g. curl); fails the test if absent.
pub fn tool_on_path(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not on PATH: {}", setup_hint());
}

// Only libc calls, no extra dependency: every Rust program on Linux links libc.
unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
}
const SIGKILL: i32 = 9;
const PR_SET_PDEATHSIG: i32 = 1;

/// Asks a port of the OS and releases it for the peer to bind. Another
/// process could take it in between; [`Peer::start`] retries on that.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// When a starting peer counts as ready.
#[derive(Clone, Copy, Debug)]
pub enum Readiness {
    /// It answers an HTTP request on its port (any status).
    Http,
    /// Its output has a line starting with this text.
    LogLine(&'static str),
}

/// The role [`Peer::ceph_rgw`] creates for web identities (INFN Cloud's form).
pub const RGW_ROLE: &str = "arn:aws:iam:::role/IAMaccess";

/// One running peer server.
pub struct Peer {
    name: &'static str,
    child: Option<Child>,
    pub port: u16,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// The directory the peer serves.
    pub data_dir: PathBuf,
    log_path: PathBuf,
    _dir: TempDir,
}

impl Peer {
    /// `rclone serve s3` over a local directory, with SigV4 auth.
    pub fn rclone() -> Peer {
        let binary = peer_binary("LAKEPORT_RCLONE", ".venv/bin/rclone");
        Peer::start("rclone serve s3", &binary, |port, dir| {
            let data = dir.join("data");
            vec![
                "serve".into(),
                "s3".into(),
                "--auth-key".into(),
                format!("{ACCESS_KEY},{SECRET_KEY}").into(),
                "--addr".into(),
                format!("127.0.0.1:{port}").into(),
                // An empty config and a private cache: nothing from the user's rclone setup.
                "--config".into(),
                dir.join("rclone.conf").into(),
                "--cache-dir".into(),
                dir.join("cache").into(),
                data.into(),
            ]
        })
    }

    /// `s3s-fs` over a local directory, with SigV4 auth.
    pub fn s3s_fs() -> Peer {
        let binary = peer_binary("LAKEPORT_S3S_FS", ".tools/bin/s3s-fs");
        Peer::start("s3s-fs", &binary, |port, dir| {
            vec![
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string().into(),
                "--access-key".into(),
                ACCESS_KEY.into(),
                "--secret-key".into(),
                SECRET_KEY.into(),
                dir.join("data").into(),
            ]
        })
    }

    /// moto (STS, IAM, S3) through tests/peers/moto_server.py: every request
    /// but AssumeRoleWithWebIdentity authenticated; `roles` exist and may use S3.
    pub fn moto(roles: &[&str]) -> Peer {
        let python = peer_binary("LAKEPORT_MOTO_PYTHON", ".venv/bin/python");
        let script = workspace_root().join("tests/peers/moto_server.py");
        let env = [("LAKEPORT_MOTO_ROLES", roles.join(","))];
        Peer::start_with_env("moto", &python, &env, |port, _| vec![script.clone().into(), "-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string().into()])
    }

    /// A real Rucio server (tests/peers/rucio/start.py: gunicorn on SQLite)
    /// with accounts root and jdoe, scopes `test`, `user.root`,
    /// `user.jdoe`, and RSEs SITE-A and SITE-B whose protocols point at
    /// `s3_endpoint` (buckets rucio-site-a and rucio-site-b). Its scratch
    /// directory (database, `rucio.cfg`, `client-root.cfg`,
    /// `client-jdoe.cfg`) is `data_dir`.
    pub fn rucio(s3_endpoint: &str) -> Peer {
        Peer::rucio_with(s3_endpoint, &[])
    }

    /// [`Peer::rucio`] with more start.py options (e.g. `--oidc-issuer URL`:
    /// JWTs of that issuer accepted as tokens of account jdoe).
    pub fn rucio_with(s3_endpoint: &str, options: &[&str]) -> Peer {
        let python = peer_binary("LAKEPORT_RUCIO_PYTHON", ".venv-rucio/bin/python");
        let script = workspace_root().join("tests/peers/rucio/start.py");
        let s3 = s3_endpoint.to_string();
        let options: Vec<OsString> = options.iter().map(OsString::from).collect();
        Peer::start("rucio", &python, |port, dir| {
            let mut args: Vec<OsString> = vec![
                script.clone().into(),
                "--scratch".into(),
                dir.join("data").into(),
                "--port".into(),
                port.to_string().into(),
                "--s3".into(),
                s3.clone().into(),
            ];
            args.extend(options.iter().cloned());
            args
        })
    }

    /// A real Ceph RADOS Gateway 16.2 (tests/peers/ceph/start.py: one
    /// monitor, one memstore OSD, radosgw with STS on), with the user
    /// `tester` holding [`ACCESS_KEY`]/[`SECRET_KEY`]. With `oidc =
    /// Some((issuer, client_ids))` the issuer is registered with the
    /// gateway and the role [`RGW_ROLE`] trusts its tokens whose `aud` is
    /// the first client ID. Ready once the script has created the users.
    pub fn ceph_rgw(oidc: Option<(&str, &[&str])>) -> Peer {
        let python = peer_binary("LAKEPORT_MOTO_PYTHON", ".venv/bin/python");
        let script = workspace_root().join("tests/peers/ceph/start.py");
        let mut options: Vec<OsString> = Vec::new();
        if let Some((issuer, client_ids)) = oidc {
            options.extend(["--oidc-issuer".into(), issuer.into()]);
            for id in client_ids {
                options.extend(["--client-id".into(), OsString::from(id)]);
            }
        }
        let radosgw = Path::new("/usr/bin/radosgw");
        assert!(radosgw.is_file(), "radosgw is not installed: {}", setup_hint());
        Peer::start_until("ceph rgw", &python, &[], Readiness::LogLine("READY "), |port, dir| {
            let mut args: Vec<OsString> = vec![script.clone().into(), "--scratch".into(), dir.join("data").into(), "--port".into(), port.to_string().into()];
            args.extend(options.iter().cloned());
            args
        })
    }

    /// How many AssumeRole* calls moto or the Ceph RGW has answered (their
    /// access logs; RGW's IAM calls, made as `admin` at start-up, aside).
    pub fn sts_calls(&self) -> usize {
        let log = match self.name {
            "ceph rgw" => std::fs::read_to_string(self.data_dir.join("log/client.rgw.log")).unwrap_or_default(),
            _ => self.log(),
        };
        log.lines().filter(|l| l.contains("\"POST / HTTP/1.1\"") && !l.contains(" - admin [")).count()
    }

    /// node `oidc-provider` (tests/peers/oidc-provider.mjs) with access and
    /// refresh tokens living `access_ttl` and `refresh_ttl` seconds.
    pub fn oidc_provider(access_ttl: u64, refresh_ttl: u64) -> Peer {
        let node = tool_on_path("node");
        let script = workspace_root().join("tests/peers/oidc-provider.mjs");
        assert!(
            workspace_root().join("tests/peers/node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: {}",
            setup_hint()
        );
        let env = [("ACCESS_TTL", access_ttl.to_string()), ("REFRESH_TTL", refresh_ttl.to_string())];
        Peer::start_with_env("oidc-provider", &node, &env, |port, _| vec![script.clone().into(), port.to_string().into()])
    }

    /// Starts `binary` with the arguments `args(port, tempdir)` and waits
    /// until it answers HTTP on the port.
    pub fn start(name: &'static str, binary: &Path, args: impl Fn(u16, &Path) -> Vec<OsString>) -> Peer {
        Peer::start_with_env(name, binary, &[], args)
    }

    /// [`Peer::start`] with extra environment variables.
    pub fn start_with_env(name: &'static str, binary: &Path, env: &[(&str, String)], args: impl Fn(u16, &Path) -> Vec<OsString>) -> Peer {
        Peer::start_until(name, binary, env, Readiness::Http, args)
    }

    /// [`Peer::start_with_env`], ready when `readiness` says so.
    pub fn start_until(
        name: &'static str,
        binary: &Path,
        env: &[(&str, String)],
        readiness: Readiness,
        args: impl Fn(u16, &Path) -> Vec<OsString>,
    ) -> Peer {
        const ATTEMPTS: usize = 5;
        let mut last_failure = String::new();
        for _ in 0..ATTEMPTS {
            let dir = tempfile::Builder::new().prefix("lakeport-peer-").tempdir().expect("creating a temp dir");
            let data_dir = dir.path().join("data");
            std::fs::create_dir_all(&data_dir).unwrap();
            std::fs::write(dir.path().join("rclone.conf"), "").unwrap();
            let log_path = dir.path().join("peer.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let port = free_port();

            let mut cmd = Command::new(binary);
            cmd.args(args(port, dir.path()))
                .envs(env.iter().map(|(k, v)| (k, v)))
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0);
            // Keep the peers free of the caller's settings for them.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("RCLONE_") {
                    cmd.env_remove(key);
                }
            }
            // SAFETY: prctl is async-signal-safe. If the test thread dies without
            // running Drop (e.g. the harness is killed), the kernel kills the peer.
            unsafe {
                cmd.pre_exec(|| {
                    prctl(PR_SET_PDEATHSIG, SIGKILL as u64, 0, 0, 0);
                    Ok(())
                });
            }
            let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name} ({}): {e}: {}", binary.display(), setup_hint()));
            let mut peer = Peer { name, child: Some(child), port, endpoint: format!("http://127.0.0.1:{port}"), data_dir, log_path, _dir: dir };
            match peer.wait_ready(readiness) {
                Ok(()) => return peer,
                Err(why) => {
                    last_failure = format!("{why}\n--- {name} log ---\n{}", peer.log());
                    // The port was probably taken by someone else: try another.
                    if !why.contains("exited") {
                        break;
                    }
                }
            }
        }
        panic!("{name} did not start: {last_failure}");
    }

    /// Polls until the peer answers an HTTP request (any status), it exits,
    /// or the timeout passes.
    fn wait_ready(&mut self, readiness: Readiness) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().map_err(|e| e.to_string())? {
                return Err(format!("{} exited during startup ({status})", self.name));
            }
            if let Readiness::LogLine(prefix) = readiness {
                if self.log().lines().any(|l| l.starts_with(prefix)) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(format!("{} did not print {prefix:?} within {READY_TIMEOUT:?}", self.name));
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port);
                let mut head = [0u8; 8];
                if stream.write_all(request.as_bytes()).is_ok() && stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                    // Answered; make sure it was our process and it is still up.
                    if let Some(status) = self.child.as_mut().unwrap().try_wait().map_err(|e| e.to_string())? {
                        return Err(format!("{} exited during startup ({status})", self.name));
                    }
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("{} did not answer HTTP on port {} within {READY_TIMEOUT:?}", self.name, self.port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `endpoint` + `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.endpoint)
    }

    /// What the peer has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // SAFETY: plain syscall; the negative pid names the process group
            // the peer leads (process_group(0) made its pgid its pid).
            unsafe {
                kill(-pid, SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The built `lakeport` binary, run with its own empty cache directory and
/// without the caller's AWS settings.
pub struct Lakeport {
    cache: TempDir,
}

/// What `lakeport sign --output json` prints, in the parts a test sends.
#[derive(Clone, Debug)]
pub struct Signed {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub json: serde_json::Value,
}

impl Lakeport {
    pub fn new() -> Lakeport {
        Lakeport { cache: tempfile::Builder::new().prefix("lakeport-cache-").tempdir().expect("creating a temp dir") }
    }

    pub fn path() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_lakeport"))
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(Self::path());
        cmd.env("XDG_CACHE_HOME", self.cache.path()).stdin(Stdio::null());
        for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_PROFILE", "LAKEPORT_CONFIG"] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Its cache directory (XDG_CACHE_HOME).
    pub fn cache_dir(&self) -> &Path {
        self.cache.path()
    }

    /// Runs lakeport with `args`, whatever the outcome.
    pub fn output<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.command().args(args).output().expect("running lakeport")
    }

    /// Runs lakeport with `args`; fails the test unless it exits 0. Returns stdout.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = self.command().args(args).output().expect("running lakeport");
        if !out.status.success() {
            panic!(
                "lakeport {:?} failed ({}):\n{}",
                args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(out.stdout).expect("lakeport prints UTF-8")
    }

    /// `lakeport sign --output json` with the test credentials plus `extra`
    /// arguments (before METHOD URL).
    pub fn sign(&self, method: &str, url: &str, extra: &[&str]) -> Signed {
        self.sign_with(method, url, extra, ACCESS_KEY, SECRET_KEY)
    }

    pub fn sign_with(&self, method: &str, url: &str, extra: &[&str], access_key: &str, secret_key: &str) -> Signed {
        let mut args: Vec<&str> = vec!["sign", "--output", "json", "--region", REGION, "--access-key", access_key, "--secret-key", secret_key];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[method, url]);
        let out = self.run(&args);
        let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("lakeport sign printed bad JSON ({e}): {out}"));
        let headers = json["headers"]
            .as_array()
            .expect("headers is an array")
            .iter()
            .map(|pair| (pair[0].as_str().unwrap().to_string(), pair[1].as_str().unwrap().to_string()))
            .collect();
        Signed {
            method: json["method"].as_str().expect("method").to_string(),
            url: json["url"].as_str().expect("url").to_string(),
            headers,
            json,
        }
    }

    /// `lakeport presign` (text output: the URL) with the test credentials.
    pub fn presign(&self, method: &str, url: &str, extra: &[&str]) -> String {
        let mut args: Vec<&str> = vec!["presign", "--region", REGION, "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[method, url]);
        self.run(&args).trim().to_string()
    }
}

/// A finished HTTP exchange.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Fails the test unless the status is `expected`, showing the body.
    #[track_caller]
    pub fn expect_status(&self, expected: u16, what: &str) -> &Self {
        assert_eq!(self.status, expected, "{what}: expected HTTP {expected}, got {}: {}", self.status, self.text());
        self
    }
}

/// Sends `method url` with exactly `headers` (in order) and `body`, with no
/// redirects and no retries. Any HTTP status is a [`Reply`]; only transport
/// errors fail the test.
pub fn send(method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Reply {
    try_send(method, url, headers, body).unwrap_or_else(|e| panic!("{e}"))
}

/// [`send`], with transport errors (e.g. a server that answers and closes
/// before the body is sent) as `Err`.
pub fn try_send(method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<Reply, String> {
    let agent = ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(120)).build();
    let mut request = agent.request(method, url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = if body.is_empty() && method != "PUT" && method != "POST" { request.call() } else { request.send_bytes(body) };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{method} {url}: {e}")),
    };
    let status = response.status();
    let headers = response.headers_names().into_iter().map(|n| (n.clone(), response.header(&n).unwrap_or("").to_string())).collect();
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body).map_err(|e| format!("{method} {url}: reading the response body: {e}"))?;
    Ok(Reply { status, headers, body })
}

/// Sends a request as `lakeport sign` described it.
pub fn send_signed(signed: &Signed, body: &[u8]) -> Reply {
    send(&signed.method, &signed.url, &signed.headers, body)
}

/// `curl` GET of `url`: (status, body). curl sends the URL as given.
pub fn curl_get(url: &str) -> (u16, Vec<u8>) {
    let curl = tool_on_path("curl");
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("body");
    let out = Command::new(curl)
        .args(["--silent", "--show-error", "--globoff", "--path-as-is", "--max-time", "120", "--output"])
        .arg(&out_file)
        .args(["--write-out", "%{http_code}", "--", url])
        .stdin(Stdio::null())
        .output()
        .expect("running curl");
    assert!(out.status.success(), "curl {url} failed: {}", String::from_utf8_lossy(&out.stderr));
    let status: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("curl printed the status");
    (status, std::fs::read(&out_file).unwrap_or_default())
}

/// `X-Amz-Date` form (YYYYMMDDTHHMMSSZ) of a time.
pub fn amz_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Deterministic, non-repeating-looking bytes (so an offset mix-up shows).
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `bytes` to a file in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

static LIBRARY_CACHE: Once = Once::new();

/// Points the in-process runtime's compiled-component cache at a directory
/// under the target dir, so tests that use the library never touch
/// `~/.cache`. Call before `Runtime::new()`.
pub fn isolate_library_cache() {
    LIBRARY_CACHE.call_once(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lakeport-test-cache");
        std::fs::create_dir_all(&dir).unwrap();
        // Set once, before any runtime reads it; std serialises environment
        // access with process spawning.
        std::env::set_var("XDG_CACHE_HOME", &dir);
    });
}

/// A user's machine for CLI tests: a temporary HOME with its XDG folders and
/// a lakeport configuration, and none of the caller's AWS, rclone, restic or
/// lakeport settings.
pub struct UserEnv {
    dir: TempDir,
    pub config: PathBuf,
}

impl UserEnv {
    pub fn new(profiles: &str) -> UserEnv {
        let dir = tempfile::Builder::new().prefix("lakeport-home-").tempdir().expect("creating a temp dir");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, profiles).unwrap();
        UserEnv { dir, config }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// PATH with lakeport, the venv's tools (aws, rclone) and the system's.
    fn path_var(&self) -> String {
        let lakeport = Lakeport::path();
        let venv = workspace_root().join(".venv/bin");
        format!("{}:{}:{}", lakeport.parent().unwrap().display(), venv.display(), std::env::var("PATH").unwrap_or_default())
    }

    /// Any program, run as this user.
    pub fn tool(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if ["AWS_", "RCLONE_", "RESTIC_", "LAKEPORT_", "OIDC_"].iter().any(|p| key.starts_with(p)) {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", self.home())
            .env("PATH", self.path_var())
            .env("LAKEPORT_CONFIG", &self.config)
            .env("XDG_CACHE_HOME", self.home().join("cache"))
            .env("XDG_DATA_HOME", self.home().join("data"))
            .env("XDG_CONFIG_HOME", self.home().join("config"))
            .stdin(Stdio::null());
        cmd
    }

    pub fn lakeport_command(&self, args: &[&str]) -> Command {
        let mut cmd = self.tool(Lakeport::path());
        cmd.args(args);
        cmd
    }

    pub fn lakeport(&self, args: &[&str]) -> Output {
        self.lakeport_command(args).output().expect("running lakeport")
    }
}

/// The claims of a JWT, not verified: the provider signed it, a test only
/// reads it.
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1].trim_end_matches('=')).unwrap_or_else(|e| panic!("JWT payload is not base64url ({e}): {token}"));
    serde_json::from_slice(&payload).unwrap_or_else(|e| panic!("JWT payload is not JSON ({e}): {token}"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// stdout of a run that must have succeeded.
pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed ({}): {}\n{}", out.status, stderr(out), String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Failed with one line on stderr that mentions `needle`, nothing on stdout.
pub fn failed_with(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "expected failure: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(err.starts_with("lakeport: error: ") && err.trim_end().lines().count() == 1, "one line: {err:?}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

/// The component's own error from a call that gave none of its values; a
/// stopped component (a trap) fails the test with its reason.
pub trait Refused<E> {
    fn refused(self) -> E;
}

impl<E> Refused<E> for lakeport::instance::CallError<E> {
    fn refused(self) -> E {
        match self {
            lakeport::instance::CallError::Refused(e) => e,
            lakeport::instance::CallError::Stopped(e) => panic!("the component was stopped: {e:#}"),
        }
    }
}
