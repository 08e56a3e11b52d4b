//! Token endpoint requests for every grant lakeport uses, and the parsing of
//! token and error responses (RFC 6749, RFC 8628, RFC 8693, RFC 7009).

use base64::Engine as _;
use serde::Deserialize;

use crate::discovery::ProviderMetadata;
use crate::error::{excerpt_without_tokens, json_problem};
use crate::http::{HttpRequest, HttpResponse};
use crate::OidcError;

pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// A public client: `client_id` only.
    None,
}

/// A registered client and what it asks for.
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub auth: ClientAuth,
    /// Space-separated scopes.
    pub scopes: Option<String>,
    /// Sent as `audience` (INDIGO IAM style).
    pub audience: Option<String>,
    /// Sent as `resource` (RFC 8707).
    pub resource: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("auth", &self.auth)
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("resource", &self.resource)
            .finish()
    }
}

/// A token response (RFC 6749 §5.1).
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub issued_token_type: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl Client {
    /// Client authentication: headers and form fields.
    fn authenticate(&self, fields: &mut Vec<(&'static str, String)>) -> Vec<(String, String)> {
        match (self.auth, &self.client_secret) {
            (ClientAuth::Basic, Some(secret)) => {
                let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", enc(&self.client_id), enc(secret));
                vec![("Authorization".into(), format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))]
            }
            (ClientAuth::Post, Some(secret)) => {
                fields.push(("client_id", self.client_id.clone()));
                fields.push(("client_secret", secret.clone()));
                vec![]
            }
            _ => {
                fields.push(("client_id", self.client_id.clone()));
                vec![]
            }
        }
    }

    fn audience_fields(&self, fields: &mut Vec<(&'static str, String)>) {
        if let Some(a) = &self.audience {
            fields.push(("audience", a.clone()));
        }
        if let Some(r) = &self.resource {
            fields.push(("resource", r.clone()));
        }
    }

    fn post(&self, url: &str, mut fields: Vec<(&'static str, String)>) -> HttpRequest {
        let headers = self.authenticate(&mut fields);
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        HttpRequest::form(url.to_string(), &pairs, headers)
    }

    pub fn device_authorization_request(&self, meta: &ProviderMetadata) -> Result<HttpRequest, OidcError> {
        let url = meta.device_authorization_endpoint.as_deref().ok_or_else(|| {
            OidcError::InvalidInput(format!("the issuer {} offers no device authorization endpoint; use another grant", meta.issuer))
        })?;
        let mut fields = Vec::new();
        if let Some(s) = &self.scopes {
            fields.push(("scope", s.clone()));
        }
        self.audience_fields(&mut fields);
        Ok(self.post(url, fields))
    }

    pub fn device_token_request(&self, meta: &ProviderMetadata, device_code: &str) -> HttpRequest {
        let fields = vec![("grant_type", DEVICE_CODE_GRANT.to_string()), ("device_code", device_code.to_string())];
        self.post(&meta.token_endpoint, fields)
    }

    pub fn refresh_request(&self, meta: &ProviderMetadata, refresh_token: &str) -> HttpRequest {
        let mut fields = vec![("grant_type", "refresh_token".to_string()), ("refresh_token", refresh_token.to_string())];
        self.audience_fields(&mut fields);
        self.post(&meta.token_endpoint, fields)
    }

    pub fn client_credentials_request(&self, meta: &ProviderMetadata) -> Result<HttpRequest, OidcError> {
        if self.client_secret.is_none() {
            return Err(OidcError::InvalidInput("the client credentials grant needs a client secret".into()));
        }
        let mut fields = vec![("grant_type", "client_credentials".to_string())];
        if let Some(s) = &self.scopes {
            fields.push(("scope", s.clone()));
        }
        self.audience_fields(&mut fields);
        Ok(self.post(&meta.token_endpoint, fields))
    }

    /// RFC 8693: trade an access token for one with another audience.
    pub fn token_exchange_request(&self, meta: &ProviderMetadata, subject_token: &str) -> HttpRequest {
        let mut fields = vec![
            ("grant_type", TOKEN_EXCHANGE_GRANT.to_string()),
            ("subject_token", subject_token.to_string()),
            ("subject_token_type", ACCESS_TOKEN_TYPE.to_string()),
            ("requested_token_type", ACCESS_TOKEN_TYPE.to_string()),
        ];
        if let Some(s) = &self.scopes {
            fields.push(("scope", s.clone()));
        }
        self.audience_fields(&mut fields);
        self.post(&meta.token_endpoint, fields)
    }

    /// RFC 7009 revocation, when the issuer has an endpoint for it.
    pub fn revocation_request(&self, meta: &ProviderMetadata, token: &str, hint: &str) -> Option<HttpRequest> {
        let url = meta.revocation_endpoint.as_deref()?;
        let fields = vec![("token", token.to_string()), ("token_type_hint", hint.to_string())];
        Some(self.post(url, fields))
    }
}

/// The OAuth error in a 4xx/5xx answer, or a description of what came
/// instead (a proxy's HTML page, an empty body).
pub fn error_from(endpoint: &str, response: &HttpResponse) -> OidcError {
    match serde_json::from_slice::<ErrorBody>(&response.body) {
        Ok(e) => OidcError::OAuth { code: e.error, description: e.error_description, status: response.status },
        Err(_) => OidcError::InvalidResponse(format!(
            "the {endpoint} answered HTTP {} without an OAuth error: {}",
            response.status,
            excerpt_without_tokens(response)
        )),
    }
}

pub fn parse_token_response(response: &HttpResponse) -> Result<TokenSet, OidcError> {
    if response.status != 200 {
        return Err(error_from("token endpoint", response));
    }
    // No excerpt of the body here: a malformed success answer may still
    // hold tokens, and error messages must never carry them.
    let tokens: TokenSet = serde_json::from_slice(&response.body)
        .map_err(|e| OidcError::InvalidResponse(format!("the token endpoint answered with an invalid token response ({})", json_problem(&e))))?;
    if tokens.access_token.is_empty() {
        return Err(OidcError::InvalidResponse("the token endpoint returned an empty access token".into()));
    }
    if let Some(t) = &tokens.token_type {
        if !t.eq_ignore_ascii_case("bearer") && !t.eq_ignore_ascii_case("N_A") {
            return Err(OidcError::InvalidResponse(format!("unsupported token type '{t}' (only Bearer tokens are supported)")));
        }
    }
    Ok(tokens)
}

/// Revocation succeeds with 200 (RFC 7009 §2.2), whatever the body.
pub fn parse_revocation_response(response: &HttpResponse) -> Result<(), OidcError> {
    if response.status == 200 {
        Ok(())
    } else {
        Err(error_from("revocation endpoint", response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ProviderMetadata {
        serde_json::from_str(
            r#"{"issuer":"https://iam.example/","token_endpoint":"https://iam.example/token",
                "device_authorization_endpoint":"https://iam.example/devicecode","revocation_endpoint":"https://iam.example/revoke"}"#,
        )
        .unwrap()
    }

    fn client(auth: ClientAuth, secret: Option<&str>) -> Client {
        Client {
            client_id: "my client".into(),
            client_secret: secret.map(Into::into),
            auth,
            scopes: Some("openid offline_access".into()),
            audience: Some("object".into()),
            resource: None,
        }
    }

    fn body(r: &HttpRequest) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    #[test]
    fn client_authentication_methods() {
        let basic = client(ClientAuth::Basic, Some("s3cr:t")).refresh_request(&meta(), "RT");
        let auth = basic.headers.iter().find(|(n, _)| n == "Authorization").unwrap();
        // base64("my+client:s3cr%3At")
        assert_eq!(auth.1, "Basic bXkrY2xpZW50OnMzY3IlM0F0");
        assert_eq!(body(&basic), "grant_type=refresh_token&refresh_token=RT&audience=object");
        let post = client(ClientAuth::Post, Some("pw")).refresh_request(&meta(), "RT");
        assert!(body(&post).ends_with("client_id=my+client&client_secret=pw"), "{}", body(&post));
        assert!(!post.headers.iter().any(|(n, _)| n == "Authorization"));
        let public = client(ClientAuth::None, None).device_token_request(&meta(), "DC");
        assert_eq!(
            body(&public),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=DC&client_id=my+client"
        );
    }

    #[test]
    fn grants_carry_scope_and_audience() {
        let c = client(ClientAuth::Basic, Some("pw"));
        let dev = c.device_authorization_request(&meta()).unwrap();
        assert_eq!(dev.url, "https://iam.example/devicecode");
        assert_eq!(body(&dev), "scope=openid+offline_access&audience=object");
        let cc = c.client_credentials_request(&meta()).unwrap();
        assert_eq!(body(&cc), "grant_type=client_credentials&scope=openid+offline_access&audience=object");
        assert!(client(ClientAuth::None, None).client_credentials_request(&meta()).is_err());
        let mut with_resource = c.clone();
        with_resource.resource = Some("https://rgw.example".into());
        let ex = with_resource.token_exchange_request(&meta(), "AT");
        assert!(body(&ex).contains("subject_token=AT&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"));
        assert!(body(&ex).ends_with("audience=object&resource=https%3A%2F%2Frgw.example"));
        let rev = c.revocation_request(&meta(), "RT", "refresh_token").unwrap();
        assert_eq!(body(&rev), "token=RT&token_type_hint=refresh_token");
    }

    #[test]
    fn token_and_error_responses() {
        let ok = HttpResponse { status: 200, headers: vec![], body: br#"{"access_token":"AT","token_type":"Bearer","expires_in":3600,"refresh_token":"RT2"}"#.to_vec() };
        let t = parse_token_response(&ok).unwrap();
        assert_eq!((t.access_token.as_str(), t.expires_in, t.refresh_token.as_deref()), ("AT", Some(3600), Some("RT2")));
        assert!(!format!("{t:?}").contains("AT\""), "Debug hides tokens");
        let denied = HttpResponse { status: 400, headers: vec![], body: br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#.to_vec() };
        let err = parse_token_response(&denied).unwrap_err();
        assert_eq!(err.oauth_code(), Some("invalid_grant"));
        let proxy = HttpResponse { status: 502, headers: vec![], body: b"<html><body>Bad   Gateway</body></html>".to_vec() };
        let err = parse_token_response(&proxy).unwrap_err();
        assert_eq!(err.to_string(), "the token endpoint answered HTTP 502 without an OAuth error: <html><body>Bad Gateway</body></html>");
        for bad in [&b"{}"[..], b"not json", b"{\"access_token\":\"\"}", b"{\"access_token\":\"x\",\"token_type\":\"mac\"}"] {
            let r = HttpResponse { status: 200, headers: vec![], body: bad.to_vec() };
            assert!(matches!(parse_token_response(&r), Err(OidcError::InvalidResponse(_))), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
