//! What can go wrong talking to Rucio, each with what to do about it.
//! Rucio answers errors with `{"ExceptionClass": …, "ExceptionMessage": …}`
//! (and the same two as headers, which is all a HEAD gets).

use lakeport_http::{HttpError, HttpResponse};
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RucioError {
    /// The profile's egress policy does not allow the host.
    HostDenied(String),
    /// No answer (DNS, refused, reset, timeout, TLS).
    Transport(String),
    /// Rucio answered with an error.
    Server(ServerError),
    /// An answer that is not what Rucio sends.
    InvalidAnswer(String),
    /// A request that cannot be made as asked.
    InvalidInput(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    pub status: u16,
    /// Rucio's exception class, e.g. `DataIdentifierNotFound`.
    pub class: String,
    pub message: String,
}

impl RucioError {
    pub fn invalid_answer(message: impl Into<String>) -> Self {
        RucioError::InvalidAnswer(message.into())
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        RucioError::InvalidInput(message.into())
    }

    /// The exception class of a server error.
    pub fn class(&self) -> Option<&str> {
        match self {
            RucioError::Server(e) => Some(&e.class),
            _ => None,
        }
    }
}

impl From<&HttpError> for RucioError {
    fn from(e: &HttpError) -> Self {
        match e {
            HttpError::Denied { host } => {
                RucioError::HostDenied(format!("requests to {host} are not allowed for this profile: check rucio_host and rucio_auth_host"))
            }
            HttpError::Transport { message, .. } | HttpError::Local(message) => {
                RucioError::Transport(format!("{message}: is the Rucio server up, and rucio_host right?"))
            }
        }
    }
}

/// What to do about an exception class, where there is something to say.
fn advice(class: &str) -> Option<&'static str> {
    Some(match class {
        "CannotAuthenticate" => "check rucio_account, rucio_username and the password (or the token's issuer and audience)",
        "AccessDenied" => "this account may not do this: ask the Rucio administrators, or use another rucio_account",
        "DataIdentifierNotFound" => "check the scope:name (`lakeport rucio ls SCOPE:*` lists a scope)",
        "ScopeNotFound" => "check the scope, or ask the Rucio administrators to create it",
        "DuplicateRule" => "a rule for this DID and RSE expression exists already: `lakeport rucio rule list DID` shows it",
        "RuleNotFound" => "check the rule ID (`lakeport rucio rule list DID` lists a DID's rules)",
        "InvalidRSEExpression" => "the RSE expression matches no RSE: check its spelling and attributes",
        "RSENotFound" => "check the RSE name",
        "RSEWriteBlocked" | "RSEOperationNotSupported" => "the RSE does not take writes now: choose another RSE",
        "InsufficientAccountLimit" | "InsufficientTargetRSEs" => "the account's quota on the RSEs is used up or missing: choose other RSEs or ask for quota",
        "DataIdentifierAlreadyExists" | "Duplicate" => "the DID exists already: choose another name",
        "UnsupportedOperation" => "Rucio does not allow this on this DID",
        "InvalidObject" | "InvalidValueForKey" | "KeyNotFound" => "the request was refused as malformed",
        _ => return None,
    })
}

impl std::fmt::Display for RucioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RucioError::HostDenied(m) | RucioError::Transport(m) | RucioError::InvalidAnswer(m) | RucioError::InvalidInput(m) => f.write_str(m),
            RucioError::Server(e) => {
                write!(f, "Rucio refused (HTTP {}, {})", e.status, e.class)?;
                if !e.message.is_empty() {
                    write!(f, ": {}", e.message)?;
                }
                if let Some(advice) = advice(&e.class) {
                    write!(f, "; {advice}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for RucioError {}

/// Longest server message passed on.
const MAX_MESSAGE_CHARS: usize = 400;

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "ExceptionClass")]
    class: Option<String>,
    #[serde(rename = "ExceptionMessage")]
    message: Option<String>,
}

/// The error a non-2xx answer stands for.
pub fn error_from_response(response: &HttpResponse) -> RucioError {
    let body: Option<ErrorBody> = serde_json::from_slice(&response.body).ok();
    let class = body
        .as_ref()
        .and_then(|b| b.class.clone())
        .or_else(|| response.header("ExceptionClass").map(str::to_string))
        .filter(|c| !c.is_empty() && c.len() <= 80 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'));
    let Some(class) = class else {
        // Rucio answers an error it does not map with a 500 and the
        // exception's text; anything else is not Rucio's.
        return RucioError::InvalidAnswer(if response.status >= 500 {
            format!("the Rucio server failed (HTTP {}): {}", response.status, response.excerpt())
        } else {
            format!("HTTP {} without a Rucio error: {} (is rucio_host a Rucio server?)", response.status, response.excerpt())
        });
    };
    let message = body.and_then(|b| b.message).or_else(|| response.header("ExceptionMessage").map(str::to_string)).unwrap_or_default();
    let message: String = message.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(MAX_MESSAGE_CHARS).collect();
    RucioError::Server(ServerError { status: response.status, class, message })
}
