//! A real `oidc-agent` (Debian's `oidc-agent-cli`, 4.2.x) for the tests:
//! started unprivileged with its own config dir and socket in a temp dir,
//! with an account registered against a test [`Peer::oidc_provider`] by
//! `oidc-gen`'s device flow, the device code approved through the
//! provider's test route. The agent (its whole process group: it forks a
//! second process) is killed on drop.
//!
//! Include next to the shared helpers:
//!
//! ```ignore
//! #[path = "support/mod.rs"] mod support;
//! #[path = "support/oidc_agent.rs"] mod oidc_agent;
//! ```
//!
//! What the agent does that a caller may trip over (4.2.6):
//! - IPC: one JSON request per connection, written in ONE write; no
//!   terminator needed (a trailing newline or NUL is tolerated). The agent
//!   reads exactly the bytes that are in the socket when it wakes up
//!   (`FIONREAD`), answers with one JSON object, unterminated, and closes
//!   the connection. So: write the whole request at once, then read to EOF,
//!   with a timeout. A read that is not a JSON object is taken for the
//!   client's key of the encrypted protocol `oidc-gen` and `oidc-add` use:
//!   the agent sends its key and waits on that connection, without timeout.
//! - The issuer is stored and reported with a trailing slash
//!   (`http://127.0.0.1:PORT/`) although the provider's has none.
//! - Plain-http issuers are accepted as they are (libcurl, no https check).
//!   `oidc-token URL` only takes an issuer that starts with `https://`; an
//!   `http://` one is read as an account name. The IPC `issuer` field works.
//! - The agent authenticates the client with HTTP Basic on every call, also
//!   when the secret is empty; oidc-provider rejects an empty Basic secret,
//!   so the public `device-public` client cannot be used through the agent.
//! - `audience` goes only to the token endpoint, never to the device
//!   authorization request: the test provider's approval route grants it
//!   (`&audience=object`), as a user consents to it on an IAM page.
//! - Every request with an `audience` (or `scope`) refreshes, and so rotates
//!   the refresh token and re-encrypts the account file (Argon2id): about
//!   0.5 s here. Only a request without them is answered from the cache.
//! - The `expires_at` of an `audience` (or `scope`) reply is that of the
//!   cached default token, not of the token returned (it may even be past):
//!   read `exp` from the token.
//! - One client at a time: a slow or half-written request holds up the rest.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::support::{self, Peer};

/// The scopes accounts are registered with (all the test provider has).
pub const SCOPES: &str = "openid offline_access profile s3 rucio";
/// The audience the approval grants, as `audience=object` asks.
pub const AUDIENCE: &str = "object";

/// How long the agent may take to listen, and `oidc-gen` to finish.
const AGENT_TIMEOUT: Duration = Duration::from_secs(30);
const GEN_TIMEOUT: Duration = Duration::from_secs(90);

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
}
const SIGKILL: i32 = 9;
const PR_SET_PDEATHSIG: i32 = 1;

/// One `oidc-agent`, with one account registered when started.
pub struct OidcAgent {
    /// The agent's UNIX socket (what `OIDC_SOCK` names).
    pub socket: PathBuf,
    /// The account registered by [`OidcAgent::start`].
    pub account: String,
    /// `OIDC_CONFIG_DIR`: where `oidc-gen` writes the (encrypted) account files.
    pub config_dir: PathBuf,
    /// The provider's issuer as the agent reports it (trailing slash).
    pub issuer: String,
    /// The provider endpoint (for approvals of further accounts).
    provider: String,
    password: String,
    child: Option<Child>,
    log_path: PathBuf,
    dir: TempDir,
}

fn setup_hint() -> &'static str {
    "oidc-agent is not installed: run `./dev setup` at the repository root (it installs Debian's oidc-agent-cli)"
}

/// `name` on PATH, or a test failure that says to run `./dev setup`.
pub fn oidc_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()).unwrap_or_else(|| panic!("`{name}` is not on PATH: {}", setup_hint()))
}

/// The caller's oidc-agent settings must not leak into the tests.
fn clean_env(cmd: &mut Command) {
    for var in ["OIDC_SOCK", "OIDCD_PID", "OIDC_CONFIG_DIR", "OIDC_ENCRYPTION_PW", "OIDC_REFRESH_TOKEN", "OIDC_AGENT_ACCOUNT"] {
        cmd.env_remove(var);
    }
}

impl OidcAgent {
    /// Starts an agent and registers the account `"lakeport-test"` with
    /// `client` = (client id, secret), approving it for subject `alice` and
    /// audience [`AUDIENCE`].
    pub fn start(provider: &Peer, client: (&str, Option<&str>)) -> OidcAgent {
        let mut agent = OidcAgent::start_empty(provider);
        agent.register("lakeport-test", client);
        agent.account = "lakeport-test".into();
        agent
    }

    /// Starts an agent with no account, and waits until its socket accepts.
    pub fn start_empty(provider: &Peer) -> OidcAgent {
        let binary = oidc_tool("oidc-agent");
        // Short path: a UNIX socket path has at most 107 bytes.
        let dir = tempfile::Builder::new().prefix("lakeport-oa-").tempdir().expect("creating a temp dir");
        let config_dir = dir.path().join("config");
        std::fs::create_dir(&config_dir).unwrap();
        std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let socket = dir.path().join("agent.sock");
        let log_path = dir.path().join("agent.log");
        let log = std::fs::File::create(&log_path).unwrap();

        let mut cmd = Command::new(&binary);
        // -d: stay in the foreground (our child, in our process group) instead
        // of daemonizing; --log-stderr: log to the log file too. The agent logs
        // to syslog, and without /dev/log to /dev/console: so debug level (-g)
        // only when asked for.
        cmd.args(["-d", "--json", "--log-stderr", "--socket-path"]).arg(&socket);
        if std::env::var_os("LAKEPORT_OIDC_AGENT_DEBUG").is_some_and(|v| !v.is_empty()) {
            cmd.arg("--debug");
        }
        cmd.env("OIDC_CONFIG_DIR", &config_dir)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        clean_env(&mut cmd);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}: {}", binary.display(), setup_hint()));
        let password = format!("lakeport-test-{}-{}", std::process::id(), support::free_port());
        let mut agent = OidcAgent {
            socket,
            account: String::new(),
            config_dir,
            issuer: format!("{}/", provider.endpoint),
            provider: provider.endpoint.clone(),
            password,
            child: Some(child),
            log_path,
            dir,
        };
        agent.wait_listening();
        agent
    }

    /// The agent prints its socket before it listens: poll until a
    /// connection is accepted (and closed again: an empty connection is a
    /// disconnect to the agent).
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + AGENT_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("oidc-agent exited during startup ({status}):\n{}", self.log());
            }
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                panic!("oidc-agent did not listen on {} within {AGENT_TIMEOUT:?}:\n{}", self.socket.display(), self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Registers (and loads into the agent) account `name` with `oidc-gen`
    /// non-interactively: a manually registered client, device flow, the
    /// encryption password from the environment, no browser, no prompts.
    /// The user code is read from `oidc-gen`'s stderr and approved at the
    /// provider's `/test/device/approve` with `audience=object`.
    pub fn register(&mut self, name: &str, (client_id, client_secret): (&str, Option<&str>)) {
        let binary = oidc_tool("oidc-gen");
        let out_path = self.dir.path().join(format!("oidc-gen-{name}.out"));
        let err_path = self.dir.path().join(format!("oidc-gen-{name}.err"));
        let mut cmd = Command::new(&binary);
        cmd.arg(name)
            .arg(format!("--iss={}", self.provider))
            .arg(format!("--client-id={client_id}"))
            // Without a secret oidc-gen stops ("Required argument client secret
            // not given"); an empty one is how a public client is given.
            .arg(format!("--client-secret={}", client_secret.unwrap_or("")))
            .arg(format!("--scope={SCOPES}"))
            .args(["--flow=device", "--pw-env", "--no-url-call", "--confirm-default", "--prompt=none"]);
        clean_env(&mut cmd);
        cmd.env("OIDC_SOCK", &self.socket)
            .env("OIDC_CONFIG_DIR", &self.config_dir)
            .env("OIDC_ENCRYPTION_PW", &self.password)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .process_group(0);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}: {}", binary.display(), setup_hint()));
        let output = || {
            let strip = |s: String| s.lines().filter(|l| !l.contains("\x1b[")).collect::<Vec<_>>().join("\n");
            format!(
                "--- oidc-gen stdout ---\n{}\n--- oidc-gen stderr ---\n{}\n--- oidc-agent log (tail) ---\n{}",
                strip(std::fs::read_to_string(&out_path).unwrap_or_default()),
                strip(std::fs::read_to_string(&err_path).unwrap_or_default()),
                tail(&self.log(), 40)
            )
        };

        let deadline = Instant::now() + GEN_TIMEOUT;
        let mut approved = false;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if !approved {
                if let Some(code) = user_code(&std::fs::read_to_string(&err_path).unwrap_or_default()) {
                    let url = format!("{}/test/device/approve?user_code={code}&audience={AUDIENCE}", self.provider);
                    let reply = support::send("POST", &url, &[], b"");
                    assert_eq!(reply.status, 204, "approving {code}: {}\n{}", reply.text(), output());
                    approved = true;
                }
            }
            if Instant::now() >= deadline {
                // SAFETY: plain syscall on the group oidc-gen leads.
                unsafe {
                    kill(-(child.id() as i32), SIGKILL);
                }
                let _ = child.wait();
                panic!("oidc-gen {name} did not finish within {GEN_TIMEOUT:?} (approved: {approved}):\n{}", output());
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        assert!(status.success(), "oidc-gen {name} failed ({status}):\n{}", output());
        assert!(self.config_dir.join(name).is_file(), "oidc-gen {name} wrote no account file:\n{}", output());
    }

    /// One IPC exchange: `request` written at once, the reply read to EOF.
    pub fn request(&self, request: &serde_json::Value) -> serde_json::Value {
        let mut stream = UnixStream::connect(&self.socket).unwrap_or_else(|e| panic!("connecting to {}: {e}", self.socket.display()));
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        stream.write_all(serde_json::to_string(request).unwrap().as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap_or_else(|e| panic!("reading the agent's reply: {e}\n{}", self.log()));
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("the agent's reply is not JSON ({e}): {reply:?}"))
    }

    /// `{"request":"access_token","account":...}` for `account`.
    pub fn access_token(&self, account: &str, audience: Option<&str>) -> serde_json::Value {
        let mut request = serde_json::json!({
            "request": "access_token",
            "account": account,
            "min_valid_period": 60,
            "application_hint": "lakeport-tests",
        });
        if let Some(audience) = audience {
            request["audience"] = audience.into();
        }
        self.request(&request)
    }

    /// `oidc-token ARGS` against this agent.
    pub fn oidc_token(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(oidc_tool("oidc-token"));
        clean_env(&mut cmd);
        cmd.args(args).env("OIDC_SOCK", &self.socket).env("OIDC_CONFIG_DIR", &self.config_dir).stdin(Stdio::null());
        cmd.output().expect("running oidc-token")
    }

    /// The environment a program needs to use this agent.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![("OIDC_SOCK", self.socket.clone()), ("OIDC_CONFIG_DIR", self.config_dir.clone())]
    }

    /// What the agent has logged so far (debug level with
    /// `LAKEPORT_OIDC_AGENT_DEBUG=1`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The agent's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for OidcAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain syscall; the group the agent leads, with the
            // process it forks.
            unsafe {
                kill(-(child.id() as i32), SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// If the test process dies without running Drop (e.g. the harness is
/// killed), the kernel kills the child; the agent's forked second process
/// exits when its pipe to the first closes.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL as u64, 0, 0, 0);
            Ok(())
        });
    }
}

/// The user code in oidc-gen's "And enter the code: ABCD-EFGH".
fn user_code(stderr: &str) -> Option<String> {
    let rest = &stderr[stderr.find("enter the code:")? + "enter the code:".len()..];
    let code: String = rest.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    // Only once the whole line is there.
    (code.len() >= 4 && rest.trim_start()[code.len()..].starts_with('\n')).then_some(code)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
