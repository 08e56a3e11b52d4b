//! The oidc component as the host sees it: every protocol step runs inside
//! the component; the host grants it HTTP to the profile's hosts only.

use anyhow::Result;
use wasmtime::component::ResourceAny;
use wasmtime::Store;

use crate::egress::EgressPolicy;
use crate::runtime::{arm_deadline, arm_deadline_for, call_error, Grant, HostState, Runtime};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "oidc-component",
    require_store_data_send: true,
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

pub use exports::lakeport::plugins::oidc::{
    AgentToken, Claims, Client, ClientAuth, DeviceAuthorization, DevicePoll, OauthError, OidcError, ProviderMetadata, TokenSet,
};

const NAME: &str = "oidc";

impl OidcError {
    pub fn message(&self) -> String {
        match self {
            OidcError::Transport(m) | OidcError::InvalidResponse(m) | OidcError::InvalidInput(m) => m.clone(),
            OidcError::Agent(m) => format!("oidc-agent refused: {m}"),
            OidcError::HostDenied(host) => format!("requests to {host} are not allowed for this profile"),
            OidcError::Oauth(OauthError { code, description: Some(d), status }) => format!("the issuer refused (HTTP {status}, {code}): {d}"),
            OidcError::Oauth(OauthError { code, description: None, status }) => format!("the issuer refused (HTTP {status}, {code})"),
        }
    }

    pub fn oauth_code(&self) -> Option<&str> {
        match self {
            OidcError::Oauth(e) => Some(&e.code),
            _ => None,
        }
    }
}

pub struct Oidc {
    store: Store<HostState>,
    bindings: OidcComponent,
}

/// A `device-flow` resource inside the component.
pub struct DeviceFlowHandle(ResourceAny);

macro_rules! call {
    ($self:ident, $method:ident $(, $arg:expr)*) => {{
        arm_deadline(&mut $self.store);
        $self.bindings.lakeport_plugins_oidc().$method(&mut $self.store $(, $arg)*).map_err(|e| call_error(NAME, e))
    }};
}

impl Oidc {
    /// An instance that may reach only the hosts of `policy`.
    pub fn new(runtime: &Runtime, policy: EgressPolicy) -> Result<Self> {
        let loaded = runtime.load(NAME, Grant::http_to(policy))?;
        let (mut store, linker) = runtime.store_for(&loaded)?;
        let bindings = OidcComponent::instantiate(&mut store, &loaded.component, &linker).map_err(|e| call_error(NAME, e))?;
        Ok(Oidc { store, bindings })
    }

    pub fn discover(&mut self, issuer: &str) -> Result<Result<ProviderMetadata, OidcError>> {
        call!(self, call_discover, issuer)
    }

    pub fn client_credentials(&mut self, provider: &ProviderMetadata, client: &Client) -> Result<Result<TokenSet, OidcError>> {
        call!(self, call_client_credentials, provider, client)
    }

    pub fn refresh(&mut self, provider: &ProviderMetadata, client: &Client, refresh_token: &str) -> Result<Result<TokenSet, OidcError>> {
        call!(self, call_refresh, provider, client, refresh_token)
    }

    pub fn exchange(&mut self, provider: &ProviderMetadata, client: &Client, subject_token: &str) -> Result<Result<TokenSet, OidcError>> {
        call!(self, call_exchange, provider, client, subject_token)
    }

    pub fn revoke(&mut self, provider: &ProviderMetadata, client: &Client, token: &str, hint: &str) -> Result<Result<bool, OidcError>> {
        call!(self, call_revoke, provider, client, token, hint)
    }

    pub fn decode_claims(&mut self, token: &str) -> Result<Result<Claims, OidcError>> {
        call!(self, call_decode_claims, token)
    }

    pub fn oidc_agent_request(&mut self, account: &str, min_valid: u64, audience: Option<&str>, scopes: Option<&str>) -> Result<String> {
        call!(self, call_oidc_agent_request, account, min_valid, audience, scopes)
    }

    pub fn parse_oidc_agent_response(&mut self, response: &[u8]) -> Result<Result<AgentToken, OidcError>> {
        call!(self, call_parse_oidc_agent_response, response)
    }

    /// Starts a device flow: the component asks the issuer for the codes.
    pub fn start_device_flow(&mut self, provider: &ProviderMetadata, client: &Client) -> Result<(DeviceFlowHandle, Result<DeviceAuthorization, OidcError>)> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_oidc().device_flow();
        let handle = api.call_constructor(&mut self.store, provider, client).map_err(|e| call_error(NAME, e))?;
        let auth = api.call_authorization(&mut self.store, handle).map_err(|e| call_error(NAME, e))?;
        Ok((DeviceFlowHandle(handle), auth))
    }

    pub fn poll_device_flow(&mut self, flow: &DeviceFlowHandle) -> Result<Result<DevicePoll, OidcError>> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_oidc().device_flow();
        api.call_poll(&mut self.store, flow.0).map_err(|e| call_error(NAME, e))
    }

    /// Blocks until the user approved, denied, or the code expired; the
    /// time limit of this call is the device code's lifetime (plus a margin).
    pub fn wait_device_flow(&mut self, flow: &DeviceFlowHandle, expires_in: std::time::Duration) -> Result<Result<TokenSet, OidcError>> {
        arm_deadline_for(&mut self.store, expires_in + std::time::Duration::from_secs(60));
        let api = self.bindings.lakeport_plugins_oidc().device_flow();
        api.call_wait(&mut self.store, flow.0).map_err(|e| call_error(NAME, e))
    }

    pub fn drop_device_flow(&mut self, flow: DeviceFlowHandle) -> Result<()> {
        arm_deadline(&mut self.store);
        flow.0.resource_drop(&mut self.store).map_err(|e| call_error(NAME, e))
    }
}
