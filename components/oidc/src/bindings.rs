//! The `oidc-component` world: WIT conversions plus the I/O loop — send
//! what the core builds through wasi:http, hand the answers back.

use std::cell::RefCell;
use std::time::Duration;

lakeport_http::component_world!("oidc-component", { "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock, });

use lakeport_no_cli as _;

use exports::lakeport::plugins::oidc as wit;

use crate::{DeviceFlow, DevicePoll, HttpRequest, HttpResponse, OidcError};

struct Component;

use lakeport_http::unix_now as now;

fn send(request: &HttpRequest) -> Result<HttpResponse, OidcError> {
    lakeport_http::send(request).map_err(|e| match e {
        lakeport_http::HttpError::Denied { host } => OidcError::HostDenied(host),
        lakeport_http::HttpError::Transport { message, .. } | lakeport_http::HttpError::Local(message) => OidcError::Transport(message),
    })
}

fn error(e: OidcError) -> wit::OidcError {
    match e {
        OidcError::Transport(m) => wit::OidcError::Transport(m),
        OidcError::HostDenied(h) => wit::OidcError::HostDenied(h),
        OidcError::InvalidResponse(m) => wit::OidcError::InvalidResponse(m),
        OidcError::OAuth { code, description, status } => wit::OidcError::Oauth(wit::OauthError { code, description, status }),
        OidcError::InvalidInput(m) => wit::OidcError::InvalidInput(m),
        OidcError::Agent(m) => wit::OidcError::Agent(m),
    }
}

fn client(c: wit::Client) -> crate::Client {
    crate::Client {
        client_id: c.client_id,
        client_secret: c.client_secret,
        auth: match c.auth {
            wit::ClientAuth::Basic => crate::ClientAuth::Basic,
            wit::ClientAuth::Post => crate::ClientAuth::Post,
            wit::ClientAuth::None => crate::ClientAuth::None,
        },
        scopes: c.scopes,
        audience: c.audience,
        resource: c.resource,
    }
}

fn provider(p: wit::ProviderMetadata) -> crate::ProviderMetadata {
    crate::ProviderMetadata {
        issuer: p.issuer,
        token_endpoint: p.token_endpoint,
        device_authorization_endpoint: p.device_authorization_endpoint,
        revocation_endpoint: p.revocation_endpoint,
        userinfo_endpoint: None,
        jwks_uri: None,
        grant_types_supported: p.grant_types_supported,
        token_endpoint_auth_methods_supported: Vec::new(),
        scopes_supported: Vec::new(),
    }
}

fn tokens(t: crate::TokenSet) -> wit::TokenSet {
    let expires_at = crate::access_token_expiry(&t, now());
    wit::TokenSet {
        access_token: t.access_token,
        token_type: t.token_type,
        refresh_token: t.refresh_token,
        scope: t.scope,
        id_token: t.id_token,
        expires_at,
    }
}

fn token_request(request: HttpRequest) -> Result<wit::TokenSet, wit::OidcError> {
    let response = send(&request).map_err(error)?;
    crate::parse_token_response(&response).map(tokens).map_err(error)
}

impl wit::Guest for Component {
    type DeviceFlow = Device;

    fn discover(issuer: String) -> Result<wit::ProviderMetadata, wit::OidcError> {
        let request = crate::discovery_request(&issuer).map_err(error)?;
        let response = send(&request).map_err(error)?;
        let meta = crate::parse_discovery(&issuer, &response).map_err(error)?;
        Ok(wit::ProviderMetadata {
            issuer: meta.issuer,
            token_endpoint: meta.token_endpoint,
            device_authorization_endpoint: meta.device_authorization_endpoint,
            revocation_endpoint: meta.revocation_endpoint,
            grant_types_supported: meta.grant_types_supported,
        })
    }

    fn client_credentials(p: wit::ProviderMetadata, c: wit::Client) -> Result<wit::TokenSet, wit::OidcError> {
        token_request(client(c).client_credentials_request(&provider(p)).map_err(error)?)
    }

    fn refresh(p: wit::ProviderMetadata, c: wit::Client, refresh_token: String) -> Result<wit::TokenSet, wit::OidcError> {
        token_request(client(c).refresh_request(&provider(p), &refresh_token))
    }

    fn exchange(p: wit::ProviderMetadata, c: wit::Client, subject_token: String) -> Result<wit::TokenSet, wit::OidcError> {
        token_request(client(c).token_exchange_request(&provider(p), &subject_token))
    }

    fn revoke(p: wit::ProviderMetadata, c: wit::Client, token: String, hint: String) -> Result<bool, wit::OidcError> {
        let Some(request) = client(c).revocation_request(&provider(p), &token, &hint) else {
            return Ok(false);
        };
        let response = send(&request).map_err(error)?;
        crate::parse_revocation_response(&response).map(|()| true).map_err(error)
    }

    fn oidc_agent_request(account: String, min_valid_period: u64, audience: Option<String>, scopes: Option<String>) -> String {
        crate::agent_request(&account, min_valid_period, audience.as_deref(), scopes.as_deref())
    }

    fn parse_oidc_agent_response(response: Vec<u8>) -> Result<wit::AgentToken, wit::OidcError> {
        let t = crate::parse_agent_response(&response).map_err(error)?;
        let mut token = tokens(t.tokens);
        token.expires_at = t.expires_at;
        Ok(wit::AgentToken { token, issuer: t.issuer })
    }

    fn github_actions_token(request_url: String, request_token: String, audience: Option<String>) -> Result<String, wit::OidcError> {
        let request = crate::github_actions_request(&request_url, &request_token, audience.as_deref()).map_err(error)?;
        let response = send(&request).map_err(error)?;
        crate::parse_github_actions_response(&response).map_err(error)
    }

    fn decode_claims(token: String) -> Result<wit::Claims, wit::OidcError> {
        let c = crate::decode_claims(&token).map_err(error)?;
        Ok(wit::Claims {
            issuer: c.issuer,
            subject: c.subject,
            audience: c.audience,
            expires_at: c.expires_at,
            issued_at: c.issued_at,
            scope: c.scope,
            client_id: c.client_id,
        })
    }
}

struct DeviceState {
    provider: crate::ProviderMetadata,
    client: crate::Client,
    started: Result<(crate::DeviceAuthorization, DeviceFlow), OidcError>,
}

struct Device(RefCell<DeviceState>);

impl wit::GuestDeviceFlow for Device {
    fn new(p: wit::ProviderMetadata, c: wit::Client) -> Self {
        let (provider, client) = (provider(p), client(c));
        let started = client
            .device_authorization_request(&provider)
            .and_then(|r| send(&r))
            .and_then(|response| crate::parse_device_authorization(&response))
            .map(|auth| {
                let flow = DeviceFlow::new(&auth, now());
                (auth, flow)
            });
        Device(RefCell::new(DeviceState { provider, client, started }))
    }

    fn authorization(&self) -> Result<wit::DeviceAuthorization, wit::OidcError> {
        let state = self.0.borrow();
        let (auth, flow) = state.started.as_ref().map_err(|e| error(e.clone()))?;
        Ok(wit::DeviceAuthorization {
            user_code: auth.user_code.clone(),
            verification_uri: auth.verification_uri.clone(),
            verification_uri_complete: auth.verification_uri_complete.clone(),
            expires_in: auth.expires_in,
            interval: flow.interval(),
        })
    }

    fn poll(&self) -> Result<wit::DevicePoll, wit::OidcError> {
        let mut state = self.0.borrow_mut();
        let DeviceState { provider, client, started } = &mut *state;
        let (_, flow) = started.as_mut().map_err(|e| error(e.clone()))?;
        let request = flow.poll_request(client, provider, now()).map_err(error)?;
        let response = send(&request).map_err(error)?;
        match flow.handle_response(&response).map_err(error)? {
            DevicePoll::Pending { retry_after } => Ok(wit::DevicePoll::Pending(retry_after)),
            DevicePoll::Complete(t) => Ok(wit::DevicePoll::Complete(tokens(t))),
        }
    }

    fn wait(&self) -> Result<wit::TokenSet, wit::OidcError> {
        loop {
            let interval = {
                let state = self.0.borrow();
                let (_, flow) = state.started.as_ref().map_err(|e| error(e.clone()))?;
                flow.interval()
            };
            std::thread::sleep(Duration::from_secs(interval));
            if let wit::DevicePoll::Complete(t) = self.poll()? {
                return Ok(t);
            }
        }
    }
}

export!(Component);
