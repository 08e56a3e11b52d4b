//! The device authorization grant (RFC 8628) as a state machine: the caller
//! sends what `poll_request` builds, feeds back the answer, and waits as long
//! as `handle_response` says.

use serde::Deserialize;

use crate::discovery::ProviderMetadata;
use crate::error::{excerpt_without_tokens, json_problem};
use crate::grants::{error_from, parse_token_response, Client, TokenSet};
use crate::http::{HttpRequest, HttpResponse};
use crate::OidcError;

/// RFC 8628 §3.2. The default polling interval is 5 s.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    #[serde(default)]
    pub interval: Option<u64>,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

pub fn parse_device_authorization(response: &HttpResponse) -> Result<DeviceAuthorization, OidcError> {
    if response.status != 200 {
        return Err(error_from("device authorization endpoint", response));
    }
    serde_json::from_slice(&response.body).map_err(|e| {
        OidcError::InvalidResponse(format!("invalid device authorization response ({}): {}", json_problem(&e), excerpt_without_tokens(response)))
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevicePoll {
    /// Not approved yet: poll again after this many seconds.
    Pending { retry_after: u64 },
    Complete(TokenSet),
}

pub struct DeviceFlow {
    device_code: String,
    interval: u64,
    /// Unix seconds after which the device code is dead.
    deadline: i64,
    done: bool,
}

pub const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 §3.5: on `slow_down` the interval grows by 5 seconds.
pub const SLOW_DOWN_STEP: u64 = 5;
/// The longest wait between polls, whatever the server asks: a user who
/// approved the code should not wait longer than this to be let in (and a
/// hostile interval must not park the login for ever).
pub const MAX_INTERVAL: u64 = 60;

impl DeviceFlow {
    pub fn new(authorization: &DeviceAuthorization, now: i64) -> Self {
        DeviceFlow {
            device_code: authorization.device_code.clone(),
            interval: authorization.interval.unwrap_or(DEFAULT_INTERVAL).clamp(1, MAX_INTERVAL),
            deadline: now.saturating_add(i64::try_from(authorization.expires_in).unwrap_or(i64::MAX)),
            done: false,
        }
    }

    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// The next token request, or an error once the code expired or the
    /// flow completed (polling a used code makes some servers revoke the grant).
    pub fn poll_request(&self, client: &Client, meta: &ProviderMetadata, now: i64) -> Result<HttpRequest, OidcError> {
        if self.done {
            return Err(OidcError::InvalidInput("this device code was already used".into()));
        }
        if now >= self.deadline {
            return Err(OidcError::OAuth {
                code: "expired_token".into(),
                description: Some("the device code expired before it was approved".into()),
                status: 400,
            });
        }
        Ok(client.device_token_request(meta, &self.device_code))
    }

    pub fn handle_response(&mut self, response: &HttpResponse) -> Result<DevicePoll, OidcError> {
        if response.status == 200 {
            self.done = true;
            return parse_token_response(response).map(DevicePoll::Complete);
        }
        let err = error_from("token endpoint", response);
        match err.oauth_code() {
            Some("authorization_pending") => Ok(DevicePoll::Pending { retry_after: self.interval }),
            Some("slow_down") => {
                self.interval = self.interval.saturating_add(SLOW_DOWN_STEP).min(MAX_INTERVAL);
                Ok(DevicePoll::Pending { retry_after: self.interval })
            }
            _ => {
                self.done = true;
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::ClientAuth;

    fn reply(status: u16, body: &str) -> HttpResponse {
        HttpResponse { status, headers: vec![], body: body.as_bytes().to_vec() }
    }

    fn setup() -> (DeviceFlow, Client, ProviderMetadata) {
        let auth = parse_device_authorization(&reply(
            200,
            r#"{"device_code":"DC","user_code":"ABCD-EFGH","verification_uri":"https://iam.example/device","expires_in":600,"interval":2}"#,
        ))
        .unwrap();
        let client = Client { client_id: "c".into(), client_secret: None, auth: ClientAuth::None, scopes: None, audience: None, resource: None };
        let meta = serde_json::from_str(r#"{"issuer":"https://iam.example","token_endpoint":"https://iam.example/token"}"#).unwrap();
        (DeviceFlow::new(&auth, 1000), client, meta)
    }

    #[test]
    fn pending_slow_down_then_tokens() {
        let (mut flow, client, meta) = setup();
        assert!(flow.poll_request(&client, &meta, 1001).is_ok());
        assert_eq!(flow.handle_response(&reply(400, r#"{"error":"authorization_pending"}"#)).unwrap(), DevicePoll::Pending { retry_after: 2 });
        assert_eq!(flow.handle_response(&reply(400, r#"{"error":"slow_down"}"#)).unwrap(), DevicePoll::Pending { retry_after: 7 });
        assert_eq!(flow.handle_response(&reply(400, r#"{"error":"authorization_pending"}"#)).unwrap(), DevicePoll::Pending { retry_after: 7 });
        let done = flow.handle_response(&reply(200, r#"{"access_token":"AT","token_type":"Bearer","refresh_token":"RT"}"#)).unwrap();
        assert!(matches!(done, DevicePoll::Complete(t) if t.refresh_token.as_deref() == Some("RT")));
        assert!(flow.poll_request(&client, &meta, 1002).is_err(), "never poll a used code");
    }

    #[test]
    fn denied_and_expired() {
        let (mut flow, client, meta) = setup();
        let err = flow.handle_response(&reply(400, r#"{"error":"access_denied","error_description":"End-User aborted interaction"}"#)).unwrap_err();
        assert_eq!(err.oauth_code(), Some("access_denied"));
        let (flow, ..) = setup();
        let err = flow.poll_request(&client, &meta, 1600).unwrap_err();
        assert_eq!(err.oauth_code(), Some("expired_token"));
        assert!(parse_device_authorization(&reply(200, "{}")).is_err());
        assert_eq!(parse_device_authorization(&reply(401, r#"{"error":"invalid_client"}"#)).unwrap_err().oauth_code(), Some("invalid_client"));
    }
}
