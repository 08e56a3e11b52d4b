//! The component files built by build.rs and embedded in the binary.

pub struct EmbeddedComponent {
    pub name: &'static str,
    /// The WIT world it implements, in package `lakeport:plugins`.
    pub world: &'static str,
    /// Hex SHA-256 of `bytes`; part of the compiled-cache key.
    pub sha256: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded_components.rs"));

pub fn find(name: &str) -> Option<&'static EmbeddedComponent> {
    EMBEDDED.iter().find(|c| c.name == name)
}

/// The interfaces (versions aside) a component may import: what its job
/// needs, and nothing Rust std or a dependency drags in. Each embedding
/// host must supply every import, so each one widens the sandbox of every
/// host that runs the file. A test checks the built files against these;
/// `lakeport components` shows any import beyond them.
pub fn allowed_imports(name: &str) -> &'static [&'static str] {
    match name {
        // Shared records only: a type import the host supplies nothing for.
        "sigv4" => &["lakeport:plugins/types"],
        // wasi:http speaks in wasi:io streams, pollables and errors; its
        // request options take monotonic-clock's `duration` (a type only)
        // for the connect and first-byte timeouts.
        "sts" => &[
            "wasi:http/types",
            "wasi:http/outgoing-handler",
            "wasi:io/poll",
            "wasi:io/error",
            "wasi:io/streams",
            "wasi:clocks/monotonic-clock",
        ],
        // As sts, plus the wall clock: token expiry (oidc); the time of
        // replication rules and the seed of the retries' jitter (rucio).
        "oidc" | "rucio" => &[
            "wasi:http/types",
            "wasi:http/outgoing-handler",
            "wasi:io/poll",
            "wasi:io/error",
            "wasi:io/streams",
            "wasi:clocks/monotonic-clock",
            "wasi:clocks/wall-clock",
        ],
        // As oidc, plus random (the seed of the retries' jitter), the
        // host's files, and fresh S3 keys when the server refuses the old
        // ones (credential-source); `types` holds shared records.
        "transfer" => &[
            "wasi:http/types",
            "wasi:http/outgoing-handler",
            "wasi:io/poll",
            "wasi:io/error",
            "wasi:io/streams",
            "wasi:clocks/monotonic-clock",
            "wasi:clocks/wall-clock",
            "wasi:random/random",
            "lakeport:plugins/files",
            "lakeport:plugins/credential-source",
            "lakeport:plugins/types",
        ],
        // As oidc (the issuer's discovery and keys, the backend; the wall
        // clock for exp/nbf and the signing time), plus its settings.
        "gateway" => &[
            "wasi:http/types",
            "wasi:http/outgoing-handler",
            "wasi:io/poll",
            "wasi:io/error",
            "wasi:io/streams",
            "wasi:clocks/monotonic-clock",
            "wasi:clocks/wall-clock",
            "wasi:config/store",
            // Callers' STS keys shared between instances, one fetch at a time.
            "wasi:keyvalue/store",
            "wasi:keyvalue/atomics",
        ],
        _ => &[],
    }
}

/// Imports of component `name` beyond [`allowed_imports`].
pub fn imports_beyond_allowance<'a>(name: &str, imports: &'a [String]) -> Vec<&'a str> {
    let allowed = allowed_imports(name);
    imports.iter().map(String::as_str).filter(|i| !allowed.contains(&i.split('@').next().unwrap_or(i))).collect()
}
