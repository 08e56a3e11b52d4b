//! The oidc component as the host sees it: every protocol step runs inside
//! the component; the host grants it HTTP to the profile's hosts only.

use anyhow::Result;
use wasmtime::component::ResourceAny;

use crate::egress::EgressPolicy;
use crate::instance::{CallError, ComponentError, Instance};
use crate::runtime::{Grant, Runtime};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "oidc-component",
    require_store_data_send: true,
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
    // Issuer metadata is cached as the record itself.
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use exports::lakeport::plugins::oidc::{
    AgentToken, Claims, Client, ClientAuth, DeviceAuthorization, DevicePoll, OauthError, OidcError, ProviderMetadata, TokenSet,
};

const NAME: &str = "oidc";

impl ComponentError for OidcError {
    fn message(&self) -> String {
        match self {
            OidcError::Transport(m) | OidcError::InvalidResponse(m) | OidcError::InvalidInput(m) => m.clone(),
            OidcError::Agent(m) => format!("oidc-agent refused: {m}"),
            OidcError::HostDenied(host) => format!("requests to {host} are not allowed for this profile"),
            OidcError::Oauth(OauthError { code, description: Some(d), status }) => format!("the issuer refused (HTTP {status}, {code}): {d}"),
            OidcError::Oauth(OauthError { code, description: None, status }) => format!("the issuer refused (HTTP {status}, {code})"),
        }
    }
}

impl OidcError {
    pub fn oauth_code(&self) -> Option<&str> {
        match self {
            OidcError::Oauth(e) => Some(&e.code),
            _ => None,
        }
    }
}

pub struct Oidc(Instance<OidcComponent>);

/// A `device-flow` resource inside the component.
pub struct DeviceFlowHandle(ResourceAny);

type Answer<T> = std::result::Result<T, CallError<OidcError>>;

impl Oidc {
    /// An instance that may reach only the hosts of `policy`.
    pub fn new(runtime: &Runtime, policy: EgressPolicy) -> Result<Self> {
        Instance::new(runtime, NAME, Grant::http_to(policy), None, |store, component, linker| OidcComponent::instantiate(store, component, linker)).map(Oidc)
    }

    pub fn discover(&mut self, issuer: &str) -> Answer<ProviderMetadata> {
        self.0.call(|b, store| b.lakeport_plugins_oidc().call_discover(store, issuer))
    }

    pub fn client_credentials(&mut self, provider: &ProviderMetadata, client: &Client) -> Answer<TokenSet> {
        self.0.call(|b, store| b.lakeport_plugins_oidc().call_client_credentials(store, provider, client))
    }

    pub fn refresh(&mut self, provider: &ProviderMetadata, client: &Client, refresh_token: &str) -> Answer<TokenSet> {
        self.0.call(|b, store| b.lakeport_plugins_oidc().call_refresh(store, provider, client, refresh_token))
    }

    pub fn exchange(&mut self, provider: &ProviderMetadata, client: &Client, subject_token: &str) -> Answer<TokenSet> {
        self.0.call(|b, store| b.lakeport_plugins_oidc().call_exchange(store, provider, client, subject_token))
    }

    pub fn revoke(&mut self, provider: &ProviderMetadata, client: &Client, token: &str, hint: &str) -> Answer<bool> {
        self.0.call(|b, store| b.lakeport_plugins_oidc().call_revoke(store, provider, client, token, hint))
    }

    /// A GitHub Actions job's token from its token service.
    pub fn github_actions_token(&mut self, request_url: &str, request_token: &str, audience: Option<&str>) -> Answer<String> {
        self.0.call(|b, store| b.lakeport_plugins_oidc().call_github_actions_token(store, request_url, request_token, audience))
    }

    pub fn decode_claims(&mut self, token: &str) -> Answer<Claims> {
        self.0.call(|b, store| b.lakeport_plugins_oidc().call_decode_claims(store, token))
    }

    /// The claims of a token, or none when it is not one the component can
    /// read (opaque); a stopped component is still an error.
    pub fn claims_if_readable(&mut self, token: &str) -> Result<Option<Claims>> {
        match self.decode_claims(token) {
            Ok(claims) => Ok(Some(claims)),
            Err(CallError::Refused(_)) => Ok(None),
            Err(CallError::Stopped(e)) => Err(e),
        }
    }

    pub fn oidc_agent_request(&mut self, account: &str, min_valid: u64, audience: Option<&str>, scopes: Option<&str>) -> Result<String> {
        self.0.run(|b, store| b.lakeport_plugins_oidc().call_oidc_agent_request(store, account, min_valid, audience, scopes))
    }

    pub fn parse_oidc_agent_response(&mut self, response: &[u8]) -> Answer<AgentToken> {
        self.0.call(|b, store| b.lakeport_plugins_oidc().call_parse_oidc_agent_response(store, response))
    }

    /// Starts a device flow: the component asks the issuer for the codes.
    pub fn start_device_flow(&mut self, provider: &ProviderMetadata, client: &Client) -> Result<(DeviceFlowHandle, Answer<DeviceAuthorization>)> {
        let (handle, auth) = self.0.run(|b, store| {
            let api = b.lakeport_plugins_oidc().device_flow();
            let handle = api.call_constructor(&mut *store, provider, client)?;
            Ok((handle, api.call_authorization(store, handle)?))
        })?;
        Ok((DeviceFlowHandle(handle), auth.map_err(CallError::Refused)))
    }

    pub fn poll_device_flow(&mut self, flow: &DeviceFlowHandle) -> Answer<DevicePoll> {
        self.0.call(|b, store| b.lakeport_plugins_oidc().device_flow().call_poll(store, flow.0))
    }

    /// Blocks until the user approved, denied, or the code expired; the
    /// time limit of this call is the device code's lifetime (plus a margin).
    pub fn wait_device_flow(&mut self, flow: &DeviceFlowHandle, expires_in: std::time::Duration) -> Answer<TokenSet> {
        self.0.call_within(expires_in + std::time::Duration::from_secs(60), |b, store| b.lakeport_plugins_oidc().device_flow().call_wait(store, flow.0))
    }

    pub fn drop_device_flow(&mut self, flow: DeviceFlowHandle) -> Result<()> {
        self.0.run(|_, store| flow.0.resource_drop(store))
    }
}
