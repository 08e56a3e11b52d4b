//! OpenID Connect discovery (`/.well-known/openid-configuration`).

use serde::{Deserialize, Serialize};

use crate::http::{HttpRequest, HttpResponse};
use crate::OidcError;

/// The parts of the provider metadata lakeport uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

fn trim_slash(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

/// Issuers compare equal up to one trailing slash (INFN IAM's issuer has
/// one; many configurations leave it off).
pub fn same_issuer(a: &str, b: &str) -> bool {
    trim_slash(a) == trim_slash(b)
}

pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", trim_slash(issuer))
}

pub fn discovery_request(issuer: &str) -> Result<HttpRequest, OidcError> {
    check_endpoint("issuer", issuer)?;
    Ok(HttpRequest::get(discovery_url(issuer)))
}

/// Endpoints must be https, except on loopback (local test servers).
pub fn check_endpoint(what: &str, url: &str) -> Result<(), OidcError> {
    let host = url_host(url).ok_or_else(|| OidcError::InvalidInput(format!("the {what} '{url}' is not an http(s) URL")))?;
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host.starts_with("127.");
    if url.starts_with("https://") || (url.starts_with("http://") && loopback) {
        Ok(())
    } else {
        Err(OidcError::InvalidInput(format!("the {what} '{url}' must use https (http is accepted only on loopback)")))
    }
}

/// The host of an http(s) URL, without port or brackets removed.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority.split_once(']').map(|(h, _)| &authority[..h.len() + 1])?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

pub fn parse_discovery(issuer: &str, response: &HttpResponse) -> Result<ProviderMetadata, OidcError> {
    let url = discovery_url(issuer);
    if response.status != 200 {
        return Err(OidcError::InvalidResponse(format!(
            "discovery at {url} answered HTTP {}: {}; check the issuer URL",
            response.status,
            response.excerpt()
        )));
    }
    let meta: ProviderMetadata = serde_json::from_slice(&response.body).map_err(|e| {
        OidcError::InvalidResponse(format!("the discovery document at {url} is not valid provider metadata ({e}): {}", response.excerpt()))
    })?;
    if !same_issuer(&meta.issuer, issuer) {
        return Err(OidcError::InvalidResponse(format!(
            "the discovery document at {url} names issuer '{}', not '{issuer}'; check the profile's issuer",
            meta.issuer
        )));
    }
    check_endpoint("token endpoint", &meta.token_endpoint)?;
    for (what, endpoint) in [
        ("device authorization endpoint", &meta.device_authorization_endpoint),
        ("revocation endpoint", &meta.revocation_endpoint),
    ] {
        if let Some(e) = endpoint {
            check_endpoint(what, e)?;
        }
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse { status, headers: vec![], body: body.as_bytes().to_vec() }
    }

    #[test]
    fn parses_and_checks_the_issuer() {
        let doc = r#"{"issuer":"https://iam.example/","token_endpoint":"https://iam.example/token","device_authorization_endpoint":"https://iam.example/devicecode","extra":1}"#;
        let meta = parse_discovery("https://iam.example", &response(200, doc)).unwrap();
        assert_eq!(meta.device_authorization_endpoint.as_deref(), Some("https://iam.example/devicecode"));
        let err = parse_discovery("https://other.example", &response(200, doc)).unwrap_err();
        assert!(err.to_string().contains("names issuer"), "{err}");
    }

    #[test]
    fn malformed_documents_are_clear_errors() {
        for body in ["", "<html>502 Bad Gateway</html>", "{\"issuer\":\"https://iam.example\"}", "[]"] {
            let err = parse_discovery("https://iam.example", &response(200, body)).unwrap_err();
            assert!(err.to_string().contains("not valid provider metadata"), "{err}");
        }
        let err = parse_discovery("https://iam.example", &response(404, "not found")).unwrap_err();
        assert!(err.to_string().contains("HTTP 404"), "{err}");
        let doc = r#"{"issuer":"https://iam.example","token_endpoint":"http://evil.example/token"}"#;
        assert!(parse_discovery("https://iam.example", &response(200, doc)).unwrap_err().to_string().contains("must use https"));
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(url_host("https://iam.example:8443/x"), Some("iam.example"));
        assert_eq!(url_host("http://[::1]:9000/"), Some("[::1]"));
        assert_eq!(url_host("http://127.0.0.1"), Some("127.0.0.1"));
        assert_eq!(url_host("ftp://x"), None);
        assert!(discovery_request("http://iam.example").is_err());
        assert!(discovery_request("http://127.0.0.1:3000").is_ok());
    }
}
