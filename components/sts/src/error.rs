use std::fmt;

/// Everything that can go wrong exchanging a token for credentials. Every
/// message says what to do; none quotes a response body, the web identity
/// token or a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StsError {
    /// The request never got an HTTP answer (DNS, refused, TLS, timeout).
    Transport(String),
    /// The host's egress policy refused this host (the host name).
    HostDenied(String),
    /// The server answered, but not with STS XML: an HTML page from a
    /// proxy, an empty or truncated body, XML without credentials.
    InvalidResponse(String),
    /// The STS service refused with an error document.
    Sts { code: String, message: String, status: u16, request_id: Option<String> },
    /// The request cannot work as configured (no endpoint, bad duration).
    InvalidInput(String),
}

/// What to do about an STS error code (AWS, Ceph RGW, MinIO and moto codes).
pub fn hint_for_code(code: &str, status: u16) -> Option<&'static str> {
    let hint = match code {
        // Ceph RGW answers every refusal of the token or role with a bare
        // AccessDenied and no message: name every likely cause.
        "AccessDenied" | "AccessDeniedException" => {
            "the token was not accepted for this role; likely causes: role_arn names no role on this service, \
             the role's trust policy does not accept this token's issuer or audience (audience), \
             the issuer is not registered with the STS service, or the token has expired; \
             check role_arn and audience, and try `lakeport token get` for a fresh token"
        }
        "InvalidIdentityToken" | "IDPRejectedClaim" => {
            "check role_arn, and that the role's trust policy accepts this token's issuer and audience (the OIDC provider must be registered with the STS service)"
        }
        "ExpiredToken" | "ExpiredTokenException" => "the OIDC token has expired: get a fresh token and try again",
        "IDPCommunicationError" => "the STS service could not reach the identity provider to check the token: try again later",
        "NoSuchEntity" | "NoSuchRole" => "the role in role_arn does not exist on this STS service: check role_arn",
        "InvalidParameterValue" | "InvalidParameterCombination" | "MissingParameter" | "ValidationError" | "InvalidArgument"
        | "InvalidInput" => {
            "check role_arn, duration_seconds (at least 900 and at most the role's maximum session duration), session_name and policy"
        }
        "MalformedPolicyDocument" | "MalformedPolicy" | "PackedPolicyTooLarge" => "check the session policy (policy): it must be valid IAM policy JSON within the size limit",
        "RegionDisabledException" => "STS is not activated in this region for the account: use another endpoint or ask the account's administrators",
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "SlowDown" | "TooManyRequests" => {
            "the STS service is throttling requests: wait a little and try again"
        }
        "InvalidAction" | "UnknownOperation" | "NotImplemented" | "MethodNotAllowed" | "UnsupportedOperation" => {
            "this endpoint does not offer AssumeRoleWithWebIdentity: check sts_endpoint (on Ceph RGW, STS must be enabled)"
        }
        "InternalFailure" | "InternalError" | "ServiceUnavailable" | "ServiceUnavailableException" => {
            "the STS service failed: try again later"
        }
        _ if status >= 500 => "the STS service failed: try again later",
        _ => return None,
    };
    Some(hint)
}

impl StsError {
    /// The STS error code, if the service answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            StsError::Sts { code, .. } => Some(code),
            _ => None,
        }
    }

    /// What to do about a refusal by the STS service, if known.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StsError::Sts { code, status, .. } => hint_for_code(code, *status),
            _ => None,
        }
    }

    /// The server's message followed by what to do: the text hosts show for
    /// an [`StsError::Sts`] (in the WIT record's `message`).
    pub fn message_with_hint(&self) -> String {
        match self {
            StsError::Sts { message, .. } => {
                let message = message.trim_end_matches('.');
                match (message.is_empty(), self.hint()) {
                    (false, Some(hint)) => format!("{message}; {hint}"),
                    (false, None) => message.to_string(),
                    (true, Some(hint)) => hint.to_string(),
                    (true, None) => "the service gave no reason".to_string(),
                }
            }
            other => other.to_string(),
        }
    }

    /// Replaces every occurrence of `secret` (the web identity token) in the
    /// error's text: a server may echo what it was sent.
    pub fn redact(self, secret: &str) -> StsError {
        if secret.is_empty() {
            return self;
        }
        let clean = |s: String| if s.contains(secret) { s.replace(secret, "[redacted]") } else { s };
        match self {
            StsError::Transport(m) => StsError::Transport(clean(m)),
            StsError::HostDenied(h) => StsError::HostDenied(clean(h)),
            StsError::InvalidResponse(m) => StsError::InvalidResponse(clean(m)),
            StsError::InvalidInput(m) => StsError::InvalidInput(clean(m)),
            StsError::Sts { code, message, status, request_id } => {
                StsError::Sts { code: clean(code), message: clean(message), status, request_id: request_id.map(clean) }
            }
        }
    }
}

impl fmt::Display for StsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StsError::Transport(m) | StsError::InvalidResponse(m) | StsError::InvalidInput(m) => f.write_str(m),
            StsError::HostDenied(host) => {
                write!(f, "requests to {host} are not allowed for this profile: check sts_endpoint, or add the host to allowed_hosts")
            }
            StsError::Sts { code, status, request_id, .. } => {
                write!(f, "STS refused (HTTP {status}, {code}): {}", self.message_with_hint())?;
                if let Some(id) = request_id {
                    write!(f, " [request id {id}]")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StsError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(code: &str, message: &str, status: u16) -> StsError {
        StsError::Sts { code: code.into(), message: message.into(), status, request_id: Some("r-1".into()) }
    }

    #[test]
    fn messages_carry_hints() {
        let e = sts("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider.", 400);
        assert_eq!(
            e.to_string(),
            "STS refused (HTTP 400, InvalidIdentityToken): Couldn't retrieve verification key from your identity provider; \
             check role_arn, and that the role's trust policy accepts this token's issuer and audience \
             (the OIDC provider must be registered with the STS service) [request id r-1]"
        );
        assert!(sts("ExpiredTokenException", "Token expired", 400).message_with_hint().contains("get a fresh token"));
        // Ceph RGW's bare refusal: no "no message", the likely causes instead, once.
        let bare = sts("AccessDenied", "", 403);
        assert!(bare.message_with_hint().starts_with("the token was not accepted for this role; likely causes: role_arn"));
        for cause in ["role_arn", "trust policy", "audience", "not registered", "expired"] {
            assert!(bare.message_with_hint().contains(cause), "{cause}");
        }
        assert_eq!(bare.to_string().matches("STS refused").count(), 1);
        assert_eq!(sts("SomethingNew", "", 400).message_with_hint(), "the service gave no reason");
        assert_eq!(sts("SomethingNew", "odd", 400).message_with_hint(), "odd");
        assert!(sts("SomethingNew", "odd", 503).message_with_hint().ends_with("try again later"));
        assert_eq!(StsError::InvalidInput("x".into()).message_with_hint(), "x");
        assert!(StsError::HostDenied("sts.example".into()).to_string().contains("allowed_hosts"));
    }

    #[test]
    fn redacts_echoed_tokens() {
        let e = sts("InvalidIdentityToken", "token eyJ.abc.def is not valid", 400).redact("eyJ.abc.def");
        assert_eq!(e.code(), Some("InvalidIdentityToken"));
        assert!(e.to_string().contains("token [redacted] is not valid"));
        let e = StsError::InvalidResponse("x".into()).redact("");
        assert_eq!(e, StsError::InvalidResponse("x".into()));
    }
}
