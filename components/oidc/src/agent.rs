//! oidc-agent's IPC protocol (one JSON request per connection on the
//! agent's UNIX socket, one JSON answer). The socket I/O is the host's: WASI
//! has no UNIX sockets; the messages are built and read here.

use serde::Deserialize;

use crate::grants::TokenSet;
use crate::OidcError;

pub fn agent_request(account: &str, min_valid_period: u64, audience: Option<&str>, scope: Option<&str>) -> String {
    let mut request = serde_json::json!({
        "request": "access_token",
        "account": account,
        "min_valid_period": min_valid_period,
        "application_hint": "lakeport",
    });
    if let Some(a) = audience {
        request["audience"] = a.into();
    }
    if let Some(s) = scope {
        request["scope"] = s.into();
    }
    request.to_string()
}

#[derive(Deserialize)]
struct AgentResponse {
    status: String,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    error: Option<String>,
}

/// A token from oidc-agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentToken {
    pub tokens: TokenSet,
    pub issuer: String,
    /// Unix seconds. The agent's `expires_at` describes its cached default
    /// token, not necessarily this one (for an audience request it can even
    /// be in the past), so the JWT's own `exp` wins when there is one.
    pub expires_at: Option<i64>,
}

pub fn parse_agent_response(bytes: &[u8]) -> Result<AgentToken, OidcError> {
    // The reply is not echoed: even a broken one may hold a token.
    let response: AgentResponse = serde_json::from_slice(bytes).map_err(|_| {
        OidcError::InvalidResponse(format!("oidc-agent answered with something that is not its JSON reply ({} bytes)", bytes.len()))
    })?;
    match (response.status.as_str(), response.access_token) {
        ("success", Some(token)) if !token.is_empty() => {
            let expires_at = crate::decode_claims(&token).ok().and_then(|c| c.expires_at).or(response.expires_at);
            let tokens = TokenSet {
                access_token: token,
                token_type: Some("Bearer".into()),
                expires_in: None,
                refresh_token: None,
                scope: None,
                id_token: None,
                issued_token_type: None,
            };
            Ok(AgentToken { tokens, issuer: response.issuer.unwrap_or_default(), expires_at })
        }
        ("failure", _) => Err(OidcError::Agent(response.error.unwrap_or_else(|| "unknown error".into()))),
        _ => Err(OidcError::InvalidResponse("oidc-agent answered without a token".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_requests_and_reads_answers() {
        let r: serde_json::Value = serde_json::from_str(&agent_request("infn", 60, Some("object"), None)).unwrap();
        assert_eq!(r["request"], "access_token");
        assert_eq!(r["audience"], "object");
        assert!(r.get("scope").is_none());
        let t = parse_agent_response(br#"{"status":"success","access_token":"opaque","issuer":"https://iam/","expires_at":1700000000}"#).unwrap();
        assert_eq!((t.tokens.access_token.as_str(), t.issuer.as_str(), t.expires_at), ("opaque", "https://iam/", Some(1_700_000_000)));
        let err = parse_agent_response(br#"{"status":"failure","error":"No account configured with that short name"}"#).unwrap_err();
        assert_eq!(err, OidcError::Agent("No account configured with that short name".into()));
        assert!(parse_agent_response(b"\x01\x02garbage").is_err());
    }
}
