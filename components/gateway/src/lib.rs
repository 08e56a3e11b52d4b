//! The gateway's sans-I/O core: it decides whether a request that came in
//! with `Authorization: Bearer <JWT>` may pass to the S3 backend.
//!
//! Decided here, with no network and no clock (time and fetched documents
//! are passed in):
//! - whether the token is well formed and small enough ([`jwt::decode`],
//!   [`jwt::MAX_TOKEN_BYTES`]), uses an allowed asymmetric algorithm (never
//!   `none` or HS*; `jku`, `x5u`, `jwk` and `x5c` are never read), has the
//!   configured issuer and audience and is within `exp`/`nbf` give or take
//!   the leeway ([`jwt::Validation`]);
//! - which of the issuer's keys verifies it, each key bound to the
//!   algorithms its type allows, and whether the signature holds ([`jwks`]);
//! - when the issuer's JWKS must be fetched: first use, after the TTL, or
//!   once per interval for an unknown `kid` ([`keys::JwksCache`]);
//! - under the `wlcg-scopes` profile, whether the token's storage scopes
//!   allow the method on the normalised path ([`scopes::authorize`]); under
//!   the `backend` profile any valid token passes and the backend decides,
//!   but the path still goes through [`scopes::normalize_path`];
//! - the RFC 6750 `WWW-Authenticate` values for each refusal ([`challenge`]);
//! - what to ask the backend and what to answer ([`proxy`]), and whose keys
//!   sign it: static ones, or each caller's own from STS, cached until
//!   shortly before they expire ([`backend_keys`]).
//! - the WebDAV subset (`PROPFIND` Depth 0/1 as `207 Multi-Status`,
//!   `MKCOL`, `COPY`, `MOVE`, collection `DELETE`) as sequences of S3
//!   requests, and that a `Destination` stays on this gateway ([`dav`]);
//! - a `PUT` of unknown length as a multipart upload in bounded parts
//!   ([`upload`]).
//!
//! Left to the component: reading its configuration, OIDC discovery of the
//! issuer's `jwks_uri`, the HTTP fetches [`Authentication::FetchKeys`] asks
//! for, the clock, finding out (or enforcing with `If-None-Match: *`, see
//! [`scopes::Grant`]) whether a `PUT` target exists, refusing S3
//! sub-resource queries (`?acl`, `?uploads`, …) it does not mean to serve,
//! and building, signing (SigV4) and sending the backend request for the
//! normalised path.

pub mod backend_keys;
pub mod challenge;
pub mod dav;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod proxy;
pub mod scopes;
pub mod upload;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod bindings;

pub use challenge::{bearer_token, Credentials};
pub use jwks::{parse_jwks, Jwk, Jwks, JwksError};
pub use jwt::{Alg, Claims, TokenError, Validation};
pub use keys::{CachePolicy, JwksCache, Lookup, TokenDigest, MAX_VERIFIED_TOKENS};
pub use scopes::{authorize, normalize_path, parse_scopes, Denied, Grant, PathError, ResourcePath, StorageScope};

/// The outcome of one step of token verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Signature and claims hold.
    Valid(Claims),
    /// Fetch the issuer's JWKS, [`JwksCache::store`] it and call
    /// [`authenticate`] again (it asks at most once per fetch interval).
    FetchKeys,
    /// `401` with [`challenge::invalid_token`].
    Invalid(TokenError),
    /// The issuer's keys could not be had: `503`, the token may be fine.
    KeysUnavailable,
}

/// Verifies a bearer token against one trusted issuer's cached keys.
/// Claims are checked before any key is looked up, so a token that would
/// be refused anyway (wrong issuer or audience, expired) never causes a
/// JWKS fetch; the signature decides last, unless the held keys verified
/// this very token before.
pub fn authenticate(token: &str, validation: &Validation, keys: &mut JwksCache) -> Authentication {
    let encoded = token;
    let token = match jwt::decode(encoded) {
        Ok(t) => t,
        Err(e) => return Authentication::Invalid(e),
    };
    if let Err(e) = validation.check(&token.claims) {
        return Authentication::Invalid(e);
    }
    let digest = keys::TokenDigest::of(encoded);
    if keys.verified(&digest, validation.now) {
        return Authentication::Valid(token.claims);
    }
    let key = match keys.lookup(token.header.kid.as_deref(), token.header.alg, validation.now) {
        Lookup::Hit(key) => key,
        Lookup::Fetch | Lookup::Refetch => return Authentication::FetchKeys,
        Lookup::Refused(e) => return Authentication::Invalid(e),
        Lookup::Unavailable => return Authentication::KeysUnavailable,
    };
    match key.verify(token.header.alg, token.signing_input.as_bytes(), &token.signature) {
        Ok(()) => {
            // `check` required `exp`.
            keys.remember(digest, token.claims.exp.unwrap_or(i64::MIN), validation.now);
            Authentication::Valid(token.claims)
        }
        Err(e) => Authentication::Invalid(e),
    }
}
