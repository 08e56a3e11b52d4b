use std::fmt;

use crate::http::HttpResponse;

/// Everything that can go wrong getting a token. The host turns these into
/// advice (e.g. `invalid_grant` on refresh means: log in again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OidcError {
    /// The request never got an HTTP answer (DNS, refused, TLS, timeout).
    Transport(String),
    /// The host's egress policy refused this host.
    HostDenied(String),
    /// The server answered, but not with what the protocol says.
    InvalidResponse(String),
    /// The server refused with an OAuth error (RFC 6749 §5.2, RFC 8628 §3.5).
    OAuth { code: String, description: Option<String>, status: u16 },
    /// The caller's input cannot work (missing endpoint, bad config).
    InvalidInput(String),
    /// oidc-agent refused (its own error message).
    Agent(String),
}

impl OidcError {
    pub fn oauth_code(&self) -> Option<&str> {
        match self {
            OidcError::OAuth { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for OidcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OidcError::Transport(m) | OidcError::InvalidResponse(m) | OidcError::InvalidInput(m) => f.write_str(m),
            OidcError::HostDenied(host) => write!(f, "requests to {host} are not allowed for this profile"),
            OidcError::Agent(m) => write!(f, "oidc-agent: {m}"),
            OidcError::OAuth { code, description: Some(d), status } => write!(f, "the server refused (HTTP {status}, {code}): {d}"),
            OidcError::OAuth { code, description: None, status } => write!(f, "the server refused (HTTP {status}, {code})"),
        }
    }
}

impl std::error::Error for OidcError {}

/// Characters of bearer tokens, device codes and JWTs (base64, base64url,
/// RFC 6750's b64token).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=')
}

/// Runs of token characters this long are taken for secrets: no word of
/// a proxy's error page is that long.
const TOKEN_RUN: usize = 24;

/// [`HttpResponse::excerpt`] for answers that may hold tokens or device
/// codes (a server that answers an error status with a token document, a
/// mangled success answer): long token-like runs become `…`.
pub fn excerpt_without_tokens(response: &HttpResponse) -> String {
    let excerpt = response.excerpt();
    let mut out = String::with_capacity(excerpt.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        out.push_str(if run.chars().count() >= TOKEN_RUN { "…" } else { run.as_str() });
        run.clear();
    };
    for c in excerpt.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// What is wrong with a JSON answer, without quoting it: serde's messages
/// quote values of the wrong type, and such a value may be a token.
pub fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let message = e.to_string();
    let what = match e.classify() {
        Category::Io | Category::Syntax => "not JSON",
        Category::Eof => "cut short",
        // These name a field, never a value.
        Category::Data if message.starts_with("missing field") || message.starts_with("duplicate field") => {
            return message;
        }
        Category::Data => "a field with a value of the wrong type",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}
