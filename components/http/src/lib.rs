//! HTTP as plain values: the cores build [`HttpRequest`]s and parse
//! [`HttpResponse`]s without doing I/O; inside a component, [`send`] moves
//! them through `wasi:http`, where the host decides which hosts are allowed.

pub mod date;
pub mod retry;
mod values;
#[cfg(target_arch = "wasm32")]
pub mod aio;
#[cfg(target_arch = "wasm32")]
mod wasi;

pub use values::{HttpRequest, HttpResponse};
#[cfg(target_arch = "wasm32")]
pub use wasi::send;

/// `wit_bindgen::generate!` for a component world in `wit/` that imports
/// wasi:http, with the WASI interfaces taken from the `wasip2` crate (which
/// `aio` uses too), plus any further `{ "interface": path, }` mappings. For
/// the crates under `components/`, which depend on wit-bindgen and wasip2.
#[macro_export]
macro_rules! component_world {
    ($world:literal $(, { $($extra:tt)* })?) => {
        wit_bindgen::generate!({
            path: "../../wit",
            world: $world,
            with: {
                "wasi:http/types@0.2.12": wasip2::http::types,
                "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
                "wasi:io/poll@0.2.12": wasip2::io::poll,
                "wasi:io/error@0.2.12": wasip2::io::error,
                "wasi:io/streams@0.2.12": wasip2::io::streams,
                "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
                $($($extra)*)?
            },
        });
    };
}

/// Why a request got no HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The host's egress policy refused this host.
    Denied { host: String },
    /// No answer: DNS, refused connection, TLS, timeout, dropped connection.
    Transport { kind: TransportKind, message: String },
    /// The local end of a body failed: the host's stream of a file to send,
    /// or of one to write an answer into (read error, file shrank, disk full).
    Local(String),
}

/// What kind of failure left a request without an answer: callers decide
/// from it whether trying again can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// The name did not resolve.
    Dns,
    /// Nothing listens there.
    Refused,
    /// The connection was reset or closed before the answer was complete.
    Reset,
    Timeout,
    /// The server's TLS certificate is not trusted.
    TlsCertificate,
    /// Anything else.
    Other,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Denied { host } => write!(f, "requests to {host} are not allowed for this profile"),
            HttpError::Transport { message, .. } | HttpError::Local(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for HttpError {}

/// `scheme`, `host[:port]` and `/path?query` of an absolute http(s) URL.
/// The wall clock in Unix seconds (0 before 1970): the one clock helper of
/// the components and the host. In a component it reads wasi:clocks.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

pub fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((scheme, authority, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(split_url("https://iam.example/token?x=1"), Some(("https", "iam.example", "/token?x=1")));
        assert_eq!(split_url("http://127.0.0.1:8080"), Some(("http", "127.0.0.1:8080", "")));
        assert_eq!(split_url("http://[::1]:80/a"), Some(("http", "[::1]:80", "/a")));
        assert_eq!(split_url("ftp://x/"), None);
        assert_eq!(split_url("https://u:p@h/"), None);
    }
}
