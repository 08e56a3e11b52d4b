use std::fmt;

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
