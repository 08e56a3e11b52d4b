//! The rucio component as the host sees it: every Rucio call runs inside
//! the component, which may reach only the profile's Rucio hosts. The host
//! caches the session token (0600, until it expires) so a command does not
//! log in again.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use wasmtime::component::ResourceAny;
use wasmtime::Store;

use crate::egress::EgressPolicy;
use crate::runtime::{arm_deadline, call_error, Grant, HostState, Runtime};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "rucio-component",
    require_store_data_send: true,
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

pub use exports::lakeport::plugins::rucio::{
    AccountInfo, Auth, Availability, ClientConfig, Did, DidEntry, DidType, FileReplicas, NewReplica, RucioError, Rule, RuleRequest, RuleState,
    ServerError, SessionToken, UploadFile, UploadTarget, UserpassLogin,
};

const NAME: &str = "rucio";

impl RucioError {
    /// The component's message, which already says what to do.
    pub fn message(&self) -> String {
        match self {
            RucioError::HostDenied(m) | RucioError::Transport(m) | RucioError::InvalidAnswer(m) | RucioError::InvalidInput(m) => m.clone(),
            RucioError::Server(e) => e.message.clone(),
        }
    }

    pub fn class(&self) -> Option<&str> {
        match self {
            RucioError::Server(e) => Some(&e.class),
            _ => None,
        }
    }
}

impl RuleState {
    pub fn as_str(&self) -> &'static str {
        match self {
            RuleState::Ok => "OK",
            RuleState::Replicating => "REPLICATING",
            RuleState::Stuck => "STUCK",
            RuleState::Suspended => "SUSPENDED",
            RuleState::WaitingApproval => "WAITING_APPROVAL",
            RuleState::Inject => "INJECT",
        }
    }
}

impl std::fmt::Display for Did {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.scope, self.name)
    }
}

/// A cached Rucio session token, and whose it is.
#[derive(Serialize, Deserialize)]
struct CachedToken {
    host: String,
    account: String,
    username: String,
    token: String,
    expires_at: i64,
}

fn token_cache(profile: &str) -> Option<PathBuf> {
    crate::paths::cache_dir().map(|d| d.join("rucio").join(format!("{profile}.json")))
}

/// A cached token of `profile` for this host, account and user, valid for
/// at least another minute.
pub fn cached_token(profile: &str, host: &str, account: &str, username: &str) -> Option<String> {
    let cached: CachedToken = serde_json::from_slice(&crate::paths::read_cache(&token_cache(profile)?)?).ok()?;
    let fresh = cached.expires_at - crate::tokens::now() > 60;
    (fresh && cached.host == host && cached.account == account && cached.username == username).then_some(cached.token)
}

pub fn cache_token(profile: &str, host: &str, account: &str, username: &str, session: &SessionToken) {
    let (Some(path), Some(expires_at)) = (token_cache(profile), session.expires_at) else { return };
    let entry = CachedToken { host: host.into(), account: account.into(), username: username.into(), token: session.token.clone(), expires_at };
    let written = serde_json::to_vec(&entry).map_err(std::io::Error::other).and_then(|bytes| crate::paths::write_private(&path, &bytes));
    if let Err(e) = written {
        crate::log::verbose(format_args!("not caching the Rucio token: {e}"));
    }
}

pub fn forget_token(profile: &str) {
    if let Some(path) = token_cache(profile) {
        let _ = std::fs::remove_file(path);
    }
}

/// A Rucio client: one component instance, which parses DIDs and
/// lifetimes (one parser for every host) and holds a session once
/// [`Rucio::login`] opened one.
pub struct Rucio {
    store: Store<HostState>,
    bindings: RucioComponent,
    client: Option<ResourceAny>,
}

macro_rules! call {
    ($self:ident, $method:ident $(, $arg:expr)*) => {{
        let client = $self.client.ok_or_else(|| anyhow!("no Rucio session is open"))?;
        arm_deadline(&mut $self.store);
        $self.bindings.lakeport_plugins_rucio().client().$method(&mut $self.store, client $(, $arg)*).map_err(|e| call_error(NAME, e))
    }};
}

impl Rucio {
    /// An instance that may reach only the hosts of `policy`; no request
    /// is made until [`Rucio::login`].
    pub fn new(runtime: &Runtime, policy: EgressPolicy) -> Result<Self> {
        let loaded = runtime.load(NAME, Grant::http_to(policy))?;
        let (mut store, linker) = runtime.store_for(&loaded)?;
        let bindings = RucioComponent::instantiate(&mut store, &loaded.component, &linker).map_err(|e| call_error(NAME, e))?;
        Ok(Rucio { store, bindings, client: None })
    }

    pub fn did(&mut self, text: &str) -> Result<Did> {
        arm_deadline(&mut self.store);
        self.bindings.lakeport_plugins_rucio().call_parse_did(&mut self.store, text).map_err(|e| call_error(NAME, e))?.map_err(failed)
    }

    /// Seconds; `never` is none.
    pub fn lifetime(&mut self, text: &str) -> Result<Option<u64>> {
        if text.trim().eq_ignore_ascii_case("never") {
            return Ok(None);
        }
        arm_deadline(&mut self.store);
        self.bindings.lakeport_plugins_rucio().call_parse_lifetime(&mut self.store, text).map_err(|e| call_error(NAME, e))?.map(Some).map_err(failed)
    }

    /// Opens a session (logging in for userpass), in place of any before.
    pub fn login(&mut self, config: &ClientConfig) -> Result<std::result::Result<(), RucioError>> {
        if let Some(old) = self.client.take() {
            old.resource_drop(&mut self.store).map_err(|e| call_error(NAME, e))?;
        }
        arm_deadline(&mut self.store);
        let opened = self.bindings.lakeport_plugins_rucio().client().call_open(&mut self.store, config).map_err(|e| call_error(NAME, e))?;
        Ok(opened.map(|client| self.client = Some(client)))
    }

    pub fn session(&mut self) -> Result<Option<SessionToken>> {
        call!(self, call_session)
    }

    pub fn whoami(&mut self) -> Result<std::result::Result<AccountInfo, RucioError>> {
        call!(self, call_whoami)
    }

    pub fn search_dids(&mut self, scope: &str, filters: &[(String, String)]) -> Result<std::result::Result<Vec<DidEntry>, RucioError>> {
        call!(self, call_search_dids, scope, filters)
    }

    pub fn get_did(&mut self, did: &Did) -> Result<std::result::Result<DidEntry, RucioError>> {
        call!(self, call_get_did, did)
    }

    pub fn list_content(&mut self, did: &Did) -> Result<std::result::Result<Vec<DidEntry>, RucioError>> {
        call!(self, call_list_content, did)
    }

    pub fn get_metadata(&mut self, did: &Did) -> Result<std::result::Result<String, RucioError>> {
        call!(self, call_get_metadata, did)
    }

    pub fn add_collection(&mut self, did: &Did, container: bool, lifetime: Option<u64>) -> Result<std::result::Result<(), RucioError>> {
        if container {
            call!(self, call_add_container, did, lifetime)
        } else {
            call!(self, call_add_dataset, did, lifetime)
        }
    }

    pub fn attach(&mut self, collection: &Did, dids: &[Did]) -> Result<std::result::Result<(), RucioError>> {
        call!(self, call_attach, collection, dids)
    }

    pub fn list_replicas(&mut self, dids: &[Did], schemes: &[String], rse_expression: Option<&str>, all_states: bool) -> Result<std::result::Result<Vec<FileReplicas>, RucioError>> {
        call!(self, call_list_replicas, dids, schemes, rse_expression, all_states)
    }

    pub fn add_rule(&mut self, rule: &RuleRequest) -> Result<std::result::Result<Vec<String>, RucioError>> {
        call!(self, call_add_rule, rule)
    }

    pub fn get_rule(&mut self, id: &str) -> Result<std::result::Result<Rule, RucioError>> {
        call!(self, call_get_rule, id)
    }

    pub fn did_rules(&mut self, did: &Did) -> Result<std::result::Result<Vec<Rule>, RucioError>> {
        call!(self, call_did_rules, did)
    }

    pub fn account_rules(&mut self, account: &str) -> Result<std::result::Result<Vec<Rule>, RucioError>> {
        call!(self, call_account_rules, account)
    }

    pub fn update_rule_lifetime(&mut self, id: &str, lifetime: Option<u64>) -> Result<std::result::Result<(), RucioError>> {
        call!(self, call_update_rule_lifetime, id, lifetime)
    }

    pub fn delete_rule(&mut self, id: &str, purge_replicas: bool) -> Result<std::result::Result<(), RucioError>> {
        call!(self, call_delete_rule, id, purge_replicas)
    }

    pub fn begin_upload(&mut self, rse: &str, files: &[UploadFile], dataset: Option<&Did>, lifetime: Option<u64>) -> Result<std::result::Result<Vec<UploadTarget>, RucioError>> {
        call!(self, call_begin_upload, rse, files, dataset, lifetime)
    }

    pub fn finish_upload(&mut self, rse: &str, files: &[Did], dataset: Option<&Did>, lifetime: Option<u64>) -> Result<std::result::Result<Vec<Rule>, RucioError>> {
        call!(self, call_finish_upload, rse, files, dataset, lifetime)
    }

    pub fn make_available(&mut self, did: &Did, rse_expression: &str, lifetime: Option<u64>) -> Result<std::result::Result<Availability, RucioError>> {
        call!(self, call_make_available, did, rse_expression, lifetime)
    }
}

/// A Rucio error as the CLI's error.
pub fn failed(e: RucioError) -> anyhow::Error {
    anyhow!(e.message())
}
