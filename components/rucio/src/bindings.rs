//! The `rucio-component` world: WIT conversions around the core's
//! [`RucioClient`], which makes blocking round trips through wasi:http
//! (Rucio calls are few and in order).

lakeport_http::component_world!("rucio-component");

use lakeport_no_cli as _;

use std::cell::RefCell;

use exports::lakeport::plugins::rucio as wit;
use lakeport_http::{HttpError, HttpRequest, HttpResponse};

use crate::models::{Did, DidEntry, DidType, FileReplicas, Rule, RuleState};
use crate::requests::{Grouping, NewReplica, Notify, ReplicaState, RucioRequests, RuleRequest};
use crate::responses::{self, parse_done, parse_json, Account, AuthToken, Whoami};
use crate::workflows::{RucioClient, RucioExchange, UploadFile, UploadTarget};
use crate::RucioError;

struct Component;

fn grouping_in(g: wit::Grouping) -> Grouping {
    match g {
        wit::Grouping::All => Grouping::All,
        wit::Grouping::Dataset => Grouping::Dataset,
        wit::Grouping::None => Grouping::None,
    }
}

fn notify_in(n: wit::Notify) -> Notify {
    match n {
        wit::Notify::Yes => Notify::Yes,
        wit::Notify::No => Notify::No,
        wit::Notify::OnClose => Notify::OnClose,
        wit::Notify::Progress => Notify::Progress,
    }
}

fn replica_state_in(s: wit::ReplicaState) -> ReplicaState {
    match s {
        wit::ReplicaState::Available => ReplicaState::Available,
        wit::ReplicaState::Unavailable => ReplicaState::Unavailable,
        wit::ReplicaState::Copying => ReplicaState::Copying,
        wit::ReplicaState::BeingDeleted => ReplicaState::BeingDeleted,
        wit::ReplicaState::Bad => ReplicaState::Bad,
        wit::ReplicaState::TemporaryUnavailable => ReplicaState::TemporaryUnavailable,
    }
}

fn error(e: RucioError) -> wit::RucioError {
    match e {
        RucioError::HostDenied(m) => wit::RucioError::HostDenied(m),
        RucioError::Transport(m) => wit::RucioError::Transport(m),
        RucioError::InvalidAnswer(m) => wit::RucioError::InvalidAnswer(m),
        RucioError::InvalidInput(m) => wit::RucioError::InvalidInput(m),
        e @ RucioError::Server(_) => {
            let message = e.to_string();
            let RucioError::Server(s) = e else { unreachable!() };
            wit::RucioError::Server(wit::ServerError { status: s.status, class: s.class, message })
        }
    }
}

use lakeport_http::unix_now as now;

fn did_in(d: wit::Did) -> Did {
    Did { scope: d.scope, name: d.name }
}

fn did_out(d: Did) -> wit::Did {
    wit::Did { scope: d.scope, name: d.name }
}

fn entry_out(e: DidEntry) -> wit::DidEntry {
    wit::DidEntry {
        did: wit::Did { scope: e.scope, name: e.name },
        did_type: e.did_type.map(|t| match t {
            DidType::File => wit::DidType::File,
            DidType::Dataset => wit::DidType::Dataset,
            DidType::Container => wit::DidType::Container,
            DidType::Other => wit::DidType::Other,
        }),
        bytes: e.bytes,
        adler32: e.adler32,
        md5: e.md5,
    }
}

fn rule_out(r: Rule) -> wit::Rule {
    wit::Rule {
        did: wit::Did { scope: r.scope, name: r.name },
        id: r.id,
        account: r.account,
        state: match r.state {
            RuleState::Ok => wit::RuleState::Ok,
            RuleState::Replicating => wit::RuleState::Replicating,
            RuleState::Stuck => wit::RuleState::Stuck,
            RuleState::Suspended => wit::RuleState::Suspended,
            RuleState::WaitingApproval => wit::RuleState::WaitingApproval,
            RuleState::Inject => wit::RuleState::Inject,
        },
        rse_expression: r.rse_expression,
        copies: r.copies,
        expires_at: r.expires_at,
        locks_ok: r.locks_ok_cnt,
        locks_replicating: r.locks_replicating_cnt,
        locks_stuck: r.locks_stuck_cnt,
        grouping: r.grouping,
        activity: r.activity,
        comment: r.comments,
        error: r.error,
        created_at: r.created_at,
    }
}

fn replicas_out(f: FileReplicas) -> wit::FileReplicas {
    wit::FileReplicas {
        did: wit::Did { scope: f.scope, name: f.name },
        bytes: f.bytes,
        adler32: f.adler32,
        md5: f.md5,
        rses: f.rses.into_iter().collect(),
        states: f.states.into_iter().collect(),
    }
}

/// Blocking wasi:http.
struct WasiHttp;

impl RucioExchange for WasiHttp {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        lakeport_http::send(request)
    }
    fn sleep_ms(&self, ms: u64) {
        lakeport_http::aio::block_on(lakeport_http::aio::sleep_ms(ms));
    }
    /// The clock's nanoseconds: the component imports no random source.
    fn jitter_seed(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.subsec_nanos().into())
    }
}

pub struct Client {
    rucio: RucioClient<WasiHttp>,
    token: RefCell<Option<AuthToken>>,
}

fn upload_target_out(t: UploadTarget) -> wit::UploadTarget {
    let p = t.target;
    wit::UploadTarget { did: did_out(t.did), pfn: t.pfn, scheme: p.scheme, authority: p.authority, bucket: p.bucket, key: p.key }
}

impl wit::Guest for Component {
    type Client = Client;

    fn parse_did(text: String) -> Result<wit::Did, wit::RucioError> {
        Did::parse(&text, None).map(did_out).map_err(error)
    }

    fn parse_lifetime(text: String) -> Result<Option<u64>, wit::RucioError> {
        crate::parse_lifetime(&text).map_err(error)
    }
}

impl wit::GuestClient for Client {
    fn open(config: wit::ClientConfig) -> Result<wit::Client, wit::RucioError> {
        let requests = RucioRequests::new(&config.host, config.auth_host.as_deref(), &config.account, config.vo.as_deref()).map_err(error)?;
        let max_attempts = config.max_attempts.unwrap_or(3);
        let mut client = Client { rucio: RucioClient::new(requests, max_attempts, WasiHttp), token: RefCell::new(None) };
        let token = match config.auth {
            wit::Auth::Token(token) => AuthToken { token, expires_at: None },
            wit::Auth::Userpass(login) => {
                client.rucio.call(|r| r.userpass(&login.username, &login.password), responses::parse_userpass).map_err(error)?
            }
        };
        client.rucio.requests.set_token(&token.token);
        client.token.replace(Some(token));
        Ok(wit::Client::new(client))
    }

    fn session(&self) -> Option<wit::SessionToken> {
        self.token.borrow().as_ref().map(|t| wit::SessionToken { token: t.token.clone(), expires_at: t.expires_at })
    }

    fn whoami(&self) -> Result<wit::AccountInfo, wit::RucioError> {
        let account = match self.rucio.call(|r| r.whoami(), responses::parse_whoami).map_err(error)? {
            Whoami::Account(a) => a,
            Whoami::Redirect(location) => {
                let follow = self.rucio.requests.follow_whoami(&location).map_err(error)?;
                parse_json::<Account>(&self.rucio.exchange(&follow).map_err(error)?).map_err(error)?
            }
        };
        Ok(wit::AccountInfo { account: account.account, account_type: account.account_type, status: account.status, email: account.email })
    }

    fn search_dids(&self, scope: String, filters: Vec<(String, String)>) -> Result<Vec<wit::DidEntry>, wit::RucioError> {
        let found: Vec<DidEntry> = self.rucio.list(|r| r.search_dids(&scope, &filters, false)).map_err(error)?;
        Ok(found.into_iter().map(entry_out).collect())
    }

    fn get_did(&self, did: wit::Did) -> Result<wit::DidEntry, wit::RucioError> {
        let did = did_in(did);
        self.rucio.call(|r| r.get_did(&did), parse_json::<DidEntry>).map(entry_out).map_err(error)
    }

    fn list_content(&self, did: wit::Did) -> Result<Vec<wit::DidEntry>, wit::RucioError> {
        let did = did_in(did);
        let content: Vec<DidEntry> = self.rucio.list(|r| r.list_content(&did)).map_err(error)?;
        Ok(content.into_iter().map(entry_out).collect())
    }

    fn get_metadata(&self, did: wit::Did) -> Result<String, wit::RucioError> {
        let did = did_in(did);
        let meta: serde_json::Value = self.rucio.call(|r| r.get_metadata(&did), parse_json).map_err(error)?;
        Ok(meta.to_string())
    }

    fn add_dataset(&self, did: wit::Did, lifetime: Option<u64>) -> Result<(), wit::RucioError> {
        let did = did_in(did);
        self.rucio.call(|r| r.add_collection(&did, false, lifetime), parse_done).map_err(error)
    }

    fn add_container(&self, did: wit::Did, lifetime: Option<u64>) -> Result<(), wit::RucioError> {
        let did = did_in(did);
        self.rucio.call(|r| r.add_collection(&did, true, lifetime), parse_done).map_err(error)
    }

    fn attach(&self, collection: wit::Did, dids: Vec<wit::Did>) -> Result<(), wit::RucioError> {
        let collection = did_in(collection);
        let dids: Vec<Did> = dids.into_iter().map(did_in).collect();
        self.rucio.call(|r| r.attach(&collection, &dids), parse_done).map_err(error)
    }

    fn list_replicas(
        &self,
        dids: Vec<wit::Did>,
        schemes: Vec<String>,
        rse_expression: Option<String>,
        all_states: bool,
    ) -> Result<Vec<wit::FileReplicas>, wit::RucioError> {
        let dids: Vec<Did> = dids.into_iter().map(did_in).collect();
        let schemes: Vec<&str> = schemes.iter().map(String::as_str).collect();
        let found: Vec<FileReplicas> = self.rucio.list(|r| r.list_replicas(&dids, &schemes, rse_expression.as_deref(), all_states)).map_err(error)?;
        Ok(found.into_iter().map(replicas_out).collect())
    }

    fn add_replicas(&self, rse: String, files: Vec<wit::NewReplica>) -> Result<(), wit::RucioError> {
        let files: Vec<NewReplica> = files
            .into_iter()
            .map(|f| NewReplica { scope: f.did.scope, name: f.did.name, bytes: f.bytes, adler32: f.adler32, md5: f.md5, pfn: f.pfn, state: f.state.map(replica_state_in) })
            .collect();
        self.rucio.call(|r| r.add_replicas(&rse, &files), parse_done).map_err(error)
    }

    fn update_replica_states(&self, rse: String, dids: Vec<wit::Did>, state: wit::ReplicaState) -> Result<(), wit::RucioError> {
        let dids: Vec<Did> = dids.into_iter().map(did_in).collect();
        self.rucio.call(|r| r.update_replica_states(&rse, &dids, replica_state_in(state)), parse_done).map_err(error)
    }

    fn lfns2pfns(&self, rse: String, dids: Vec<wit::Did>, scheme: Option<String>, operation: String) -> Result<Vec<(wit::Did, String)>, wit::RucioError> {
        let dids: Vec<Did> = dids.into_iter().map(did_in).collect();
        let pfns = self.rucio.call(|r| r.lfns2pfns(&rse, &dids, scheme.as_deref(), &operation), responses::parse_lfns2pfns).map_err(error)?;
        dids.into_iter()
            .map(|d| match pfns.get(&d.to_string()) {
                Some(pfn) => Ok((did_out(d), pfn.clone())),
                None => Err(error(RucioError::invalid_answer(format!("Rucio gave no PFN for {d} at {rse}")))),
            })
            .collect()
    }

    fn add_rule(&self, rule: wit::RuleRequest) -> Result<Vec<String>, wit::RucioError> {
        let request = RuleRequest {
            dids: rule.dids.into_iter().map(did_in).collect(),
            copies: rule.copies,
            rse_expression: rule.rse_expression,
            lifetime: rule.lifetime,
            grouping: rule.grouping.map(grouping_in),
            weight: rule.weight,
            activity: rule.activity,
            comment: rule.comment,
            asynchronous: rule.asynchronous,
            notify: rule.notify.map(notify_in),
        };
        self.rucio.create_rule(&request).map_err(error)
    }

    fn get_rule(&self, id: String) -> Result<wit::Rule, wit::RucioError> {
        self.rucio.call(|r| r.get_rule(&id), parse_json::<Rule>).map(rule_out).map_err(error)
    }

    fn did_rules(&self, did: wit::Did) -> Result<Vec<wit::Rule>, wit::RucioError> {
        let did = did_in(did);
        let rules: Vec<Rule> = self.rucio.list(|r| r.did_rules(&did)).map_err(error)?;
        Ok(rules.into_iter().map(rule_out).collect())
    }

    fn account_rules(&self, account: String) -> Result<Vec<wit::Rule>, wit::RucioError> {
        let rules: Vec<Rule> = self.rucio.list(|r| r.account_rules(&account)).map_err(error)?;
        Ok(rules.into_iter().map(rule_out).collect())
    }

    fn update_rule_lifetime(&self, id: String, lifetime: Option<u64>) -> Result<(), wit::RucioError> {
        self.rucio.call(|r| r.update_rule_lifetime(&id, lifetime), parse_done).map_err(error)
    }

    fn delete_rule(&self, id: String, purge_replicas: bool) -> Result<(), wit::RucioError> {
        self.rucio.call(|r| r.delete_rule(&id, purge_replicas), parse_done).map_err(error)
    }

    fn begin_upload(
        &self,
        rse: String,
        files: Vec<wit::UploadFile>,
        dataset: Option<wit::Did>,
        lifetime: Option<u64>,
    ) -> Result<Vec<wit::UploadTarget>, wit::RucioError> {
        let files = files.into_iter().map(|f| UploadFile { did: did_in(f.did), bytes: f.bytes, adler32: f.adler32, md5: f.md5 }).collect();
        let targets = self.rucio.begin_upload(&rse, files, dataset.map(did_in), lifetime).map_err(error)?;
        Ok(targets.into_iter().map(upload_target_out).collect())
    }

    fn finish_upload(&self, rse: String, files: Vec<wit::Did>, dataset: Option<wit::Did>, lifetime: Option<u64>) -> Result<Vec<wit::Rule>, wit::RucioError> {
        let rules = self.rucio.finish_upload(&rse, files.into_iter().map(did_in).collect(), dataset.map(did_in), lifetime).map_err(error)?;
        Ok(rules.into_iter().map(rule_out).collect())
    }

    fn make_available(&self, did: wit::Did, rse_expression: String, lifetime: Option<u64>) -> Result<wit::Availability, wit::RucioError> {
        let a = self.rucio.make_available(did_in(did), rse_expression, lifetime, now()).map_err(error)?;
        Ok(wit::Availability { rule: rule_out(a.rule), created: a.created })
    }
}

export!(Component);
