//! The rucio component as the host sees it: every Rucio call runs inside
//! the component, which may reach only the profile's Rucio hosts. The host
//! caches the session token (0600, until it expires) so a command does not
//! log in again ([`session`]); an upload stores the bytes through the
//! transfer component ([`upload`]).

pub mod availability;
pub mod checksum;
pub mod dids;
pub mod session;
pub mod upload;

use anyhow::{anyhow, Result};
use wasmtime::component::ResourceAny;

use crate::egress::EgressPolicy;
use crate::instance::{CallError, ComponentError, Instance};
use crate::runtime::{Grant, Runtime};

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
    AccountInfo, Auth, Availability, ClientConfig, Did, DidEntry, DidType, FileReplicas, Grouping, NewReplica, Notify, ReplicaState, RucioError, Rule,
    RuleRequest, RuleState,
    ServerError, SessionToken, UploadFile, UploadTarget, UserpassLogin,
};

const NAME: &str = "rucio";

impl ComponentError for RucioError {
    /// The component's message, which already says what to do.
    fn message(&self) -> String {
        match self {
            RucioError::HostDenied(m) | RucioError::Transport(m) | RucioError::InvalidAnswer(m) | RucioError::InvalidInput(m) => m.clone(),
            RucioError::Server(e) => e.message.clone(),
        }
    }
}

impl RucioError {
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

    /// No change is coming without someone acting (an admin, a fix): what
    /// waiting for a rule waits for.
    pub fn is_final(self) -> bool {
        matches!(self, RuleState::Ok | RuleState::Stuck | RuleState::Suspended)
    }
}

impl std::fmt::Display for Did {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.scope, self.name)
    }
}

/// A Rucio client: one component instance, which parses DIDs and
/// lifetimes (one parser for every host) and holds a session once
/// [`Rucio::login`] opened one.
pub struct Rucio {
    instance: Instance<RucioComponent>,
    client: Option<ResourceAny>,
}

/// A Rucio answer: the value, or Rucio's (or the component's) error.
pub type Answer<T> = std::result::Result<T, CallError<RucioError>>;

impl Rucio {
    /// An instance that may reach only the hosts of `policy`; no request
    /// is made until [`Rucio::login`].
    pub fn new(runtime: &Runtime, policy: EgressPolicy) -> Result<Self> {
        let instance = Instance::new(runtime, NAME, Grant::http_to(policy), None, |store, component, linker| RucioComponent::instantiate(store, component, linker))?;
        Ok(Rucio { instance, client: None })
    }

    pub fn did(&mut self, text: &str) -> Answer<Did> {
        self.instance.call(|b, store| b.lakeport_plugins_rucio().call_parse_did(store, text))
    }

    /// Seconds; `never` is none.
    pub fn lifetime(&mut self, text: &str) -> Answer<Option<u64>> {
        self.instance.call(|b, store| b.lakeport_plugins_rucio().call_parse_lifetime(store, text))
    }

    /// Opens a session (logging in for userpass), in place of any before.
    pub fn login(&mut self, config: &ClientConfig) -> Answer<()> {
        if let Some(old) = self.client.take() {
            self.instance.run(|_, store| old.resource_drop(store)).map_err(CallError::Stopped)?;
        }
        self.client = Some(self.instance.call(|b, store| b.lakeport_plugins_rucio().client().call_open(store, config))?);
        Ok(())
    }

    pub fn session(&mut self) -> Result<Option<SessionToken>> {
        let client = self.client.ok_or_else(|| anyhow!("no Rucio session is open"))?;
        self.instance.run(|b, store| b.lakeport_plugins_rucio().client().call_session(store, client))
    }

    /// Calls a method of the open session's `client` resource.
    fn on_client<T>(
        &mut self,
        work: impl FnOnce(exports::lakeport::plugins::rucio::GuestClient<'_>, &mut wasmtime::Store<crate::runtime::HostState>, ResourceAny) -> wasmtime::Result<std::result::Result<T, RucioError>>,
    ) -> Answer<T> {
        let client = self.client.ok_or_else(|| CallError::Stopped(anyhow!("no Rucio session is open")))?;
        self.instance.call(|b, store| work(b.lakeport_plugins_rucio().client(), store, client))
    }

    pub fn whoami(&mut self) -> Answer<AccountInfo> {
        self.on_client(|c, store, me| c.call_whoami(store, me))
    }

    pub fn search_dids(&mut self, scope: &str, filters: &[(String, String)]) -> Answer<Vec<DidEntry>> {
        self.on_client(|c, store, me| c.call_search_dids(store, me, scope, filters))
    }

    pub fn get_did(&mut self, did: &Did) -> Answer<DidEntry> {
        self.on_client(|c, store, me| c.call_get_did(store, me, did))
    }

    pub fn list_content(&mut self, did: &Did) -> Answer<Vec<DidEntry>> {
        self.on_client(|c, store, me| c.call_list_content(store, me, did))
    }

    pub fn get_metadata(&mut self, did: &Did) -> Answer<String> {
        self.on_client(|c, store, me| c.call_get_metadata(store, me, did))
    }

    pub fn add_collection(&mut self, did: &Did, container: bool, lifetime: Option<u64>) -> Answer<()> {
        if container {
            self.on_client(|c, store, me| c.call_add_container(store, me, did, lifetime))
        } else {
            self.on_client(|c, store, me| c.call_add_dataset(store, me, did, lifetime))
        }
    }

    pub fn attach(&mut self, collection: &Did, dids: &[Did]) -> Answer<()> {
        self.on_client(|c, store, me| c.call_attach(store, me, collection, dids))
    }

    pub fn list_replicas(&mut self, dids: &[Did], schemes: &[String], rse_expression: Option<&str>, all_states: bool) -> Answer<Vec<FileReplicas>> {
        self.on_client(|c, store, me| c.call_list_replicas(store, me, dids, schemes, rse_expression, all_states))
    }

    pub fn add_rule(&mut self, rule: &RuleRequest) -> Answer<Vec<String>> {
        self.on_client(|c, store, me| c.call_add_rule(store, me, rule))
    }

    pub fn get_rule(&mut self, id: &str) -> Answer<Rule> {
        self.on_client(|c, store, me| c.call_get_rule(store, me, id))
    }

    pub fn did_rules(&mut self, did: &Did) -> Answer<Vec<Rule>> {
        self.on_client(|c, store, me| c.call_did_rules(store, me, did))
    }

    pub fn account_rules(&mut self, account: &str) -> Answer<Vec<Rule>> {
        self.on_client(|c, store, me| c.call_account_rules(store, me, account))
    }

    pub fn update_rule_lifetime(&mut self, id: &str, lifetime: Option<u64>) -> Answer<()> {
        self.on_client(|c, store, me| c.call_update_rule_lifetime(store, me, id, lifetime))
    }

    pub fn delete_rule(&mut self, id: &str, purge_replicas: bool) -> Answer<()> {
        self.on_client(|c, store, me| c.call_delete_rule(store, me, id, purge_replicas))
    }

    pub fn begin_upload(&mut self, rse: &str, files: &[UploadFile], dataset: Option<&Did>, lifetime: Option<u64>) -> Answer<Vec<UploadTarget>> {
        self.on_client(|c, store, me| c.call_begin_upload(store, me, rse, files, dataset, lifetime))
    }

    pub fn finish_upload(&mut self, rse: &str, files: &[Did], dataset: Option<&Did>, lifetime: Option<u64>) -> Answer<Vec<Rule>> {
        self.on_client(|c, store, me| c.call_finish_upload(store, me, rse, files, dataset, lifetime))
    }

    pub fn make_available(&mut self, did: &Did, rse_expression: &str, lifetime: Option<u64>) -> Answer<Availability> {
        self.on_client(|c, store, me| c.call_make_available(store, me, did, rse_expression, lifetime))
    }
}
