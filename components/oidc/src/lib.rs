//! OIDC token acquisition as a sans-I/O core: discovery, the device
//! authorization grant, refresh (keeping rotated refresh tokens), client
//! credentials, token exchange and revocation, with typed results. Requests
//! are built and responses parsed here; the `component` feature adds the
//! bindings that send them through `wasi:http`.

pub mod agent;
pub mod device;
pub mod discovery;
pub mod error;
pub mod github;
pub mod grants;
pub use lakeport_http as http;
pub mod jwt;

pub use agent::{agent_request, parse_agent_response, AgentToken};
pub use device::{parse_device_authorization, DeviceAuthorization, DeviceFlow, DevicePoll};
pub use discovery::{discovery_request, parse_discovery, ProviderMetadata};
pub use error::OidcError;
pub use github::{github_actions_request, parse_github_actions_response};
pub use grants::{parse_revocation_response, parse_token_response, Client, ClientAuth, TokenSet};
pub use http::{HttpRequest, HttpResponse};
pub use jwt::{decode_claims, Claims};

/// When an access token stops being valid: the JWT's `exp` when it has one,
/// else `now + expires_in`, else unknown.
pub fn access_token_expiry(tokens: &TokenSet, now: i64) -> Option<i64> {
    decode_claims(&tokens.access_token)
        .ok()
        .and_then(|c| c.expires_at)
        .or_else(|| tokens.expires_in.map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX))))
}

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod bindings;
