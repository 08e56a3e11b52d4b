//! The `rucio-component` world: WIT conversions around the core, with
//! blocking round trips through wasi:http (Rucio calls are few and in
//! order), retried on dropped connections and 5xx.

lakeport_http::component_world!("rucio-component");

use std::cell::RefCell;

use exports::lakeport::plugins::rucio as wit;
use lakeport_http::{HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;

use crate::models::{Did, DidEntry, DidType, FileReplicas, Rule, RuleState};
use crate::requests::{NewReplica, RucioRequests, RuleRequest};
use crate::responses::{self, parse_done, parse_json, parse_list, Account, AuthToken, Whoami};
use crate::{matching_rule, needs_extension, pfn_target, same_adler32, RucioError};

struct Component;

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

pub struct Client {
    requests: RucioRequests,
    token: RefCell<Option<AuthToken>>,
    max_attempts: u32,
}

impl Client {
    /// One exchange, tried again on a dropped connection or a 502/503/504.
    fn exchange(&self, request: &HttpRequest) -> Result<HttpResponse, RucioError> {
        let mut attempt = 1;
        loop {
            let result = lakeport_http::send(request).map_err(|e| RucioError::from(&e));
            let retry = match &result {
                Err(RucioError::Transport(_)) => true,
                Ok(r) => matches!(r.status, 502..=504),
                Err(_) => false,
            };
            if !retry || attempt >= self.max_attempts {
                return result;
            }
            lakeport_http::aio::block_on(lakeport_http::aio::sleep_ms(200 << attempt));
            attempt += 1;
        }
    }

    fn call<T>(&self, build: impl Fn(&RucioRequests) -> HttpRequest, parse: impl Fn(&HttpResponse) -> Result<T, RucioError>) -> Result<T, RucioError> {
        parse(&self.exchange(&build(&self.requests))?)
    }

    /// `POST /rules/`: the new rules' IDs.
    fn create_rule(&self, rule: &RuleRequest) -> Result<Vec<String>, RucioError> {
        let http = self.requests.add_rule(rule)?;
        self.call(|_| http.clone(), responses::parse_rule_ids)
    }

    fn list<T: DeserializeOwned>(&self, build: impl Fn(&RucioRequests) -> HttpRequest) -> Result<Vec<T>, RucioError> {
        self.call(build, parse_list)
    }
}

/// Rucio errors that only say a step was done before (a re-run).
fn already_done(e: &RucioError, classes: &[&str]) -> bool {
    e.class().is_some_and(|c| classes.contains(&c))
}

impl Client {
    fn begin_upload(&self, rse: &str, files: Vec<wit::UploadFile>, dataset: Option<Did>, lifetime: Option<u64>) -> Result<Vec<wit::UploadTarget>, RucioError> {
        if files.is_empty() {
            return Err(RucioError::invalid_input("no files to upload"));
        }
        let rule_at = |dids: Vec<Did>, grouping: &str| RuleRequest {
            dids,
            copies: 1,
            rse_expression: rse.to_string(),
            lifetime,
            grouping: Some(grouping.to_string()),
            ..RuleRequest::default()
        };
        if let Some(ds) = &dataset {
            match self.call(|r| r.get_did(ds), parse_json::<DidEntry>) {
                Ok(_) if lifetime.is_some() => {
                    return Err(RucioError::invalid_input(format!(
                        "the dataset {ds} exists already, and its rules decide how long its files stay: upload without --lifetime, or into a new dataset"
                    )))
                }
                Ok(_) => {}
                // Its rule comes once the files are in it (finish-upload).
                Err(e) if e.class() == Some("DataIdentifierNotFound") => self.call(|r| r.add_collection(ds, false, None), parse_done)?,
                Err(e) => return Err(e),
            }
        }
        let mut dids = Vec::with_capacity(files.len());
        for f in files {
            let did = did_in(f.did);
            let registered = match self.call(|r| r.get_did(&did), parse_json::<DidEntry>) {
                Ok(existing) => {
                    if !existing.adler32.as_deref().is_some_and(|a| same_adler32(a, &f.adler32)) {
                        return Err(RucioError::invalid_input(format!(
                            "{did} is registered already with another adler32 ({}) than the local file ({}): upload it under another name",
                            existing.adler32.as_deref().unwrap_or("none"),
                            f.adler32
                        )));
                    }
                    let replicas: Vec<FileReplicas> = self.list(|r| r.list_replicas(std::slice::from_ref(&did), &[], None, true))?;
                    replicas.iter().any(|rep| rep.rses.contains_key(rse) || rep.states.contains_key(rse))
                }
                Err(e) if e.class() == Some("DataIdentifierNotFound") => false,
                Err(e) => return Err(e),
            };
            if !registered {
                // COPYING until the bytes are there: an interrupted upload
                // leaves nothing that claims to be available.
                let replica = NewReplica {
                    scope: did.scope.clone(),
                    name: did.name.clone(),
                    bytes: f.bytes,
                    adler32: f.adler32.clone(),
                    md5: f.md5.clone(),
                    pfn: None,
                    state: Some("C".into()),
                };
                self.call(|r| r.add_replicas(rse, std::slice::from_ref(&replica)), parse_done)?;
            }
            if dataset.is_none() {
                match self.create_rule(&rule_at(vec![did.clone()], "NONE")) {
                    Err(e) if !already_done(&e, &["DuplicateRule"]) => return Err(e),
                    _ => {}
                }
            }
            dids.push(did);
        }
        let pfns = self.call(|r| r.lfns2pfns(rse, &dids, None, "write"), responses::parse_lfns2pfns)?;
        dids.into_iter()
            .map(|did| {
                let pfn = pfns.get(&did.to_string()).ok_or_else(|| RucioError::invalid_answer(format!("Rucio gave no PFN for {did} at {rse}")))?;
                let t = pfn_target(pfn)?;
                Ok(wit::UploadTarget { did: did_out(did), pfn: pfn.clone(), scheme: t.scheme, authority: t.authority, bucket: t.bucket, key: t.key })
            })
            .collect()
    }

    fn finish_upload(&self, rse: &str, files: Vec<Did>, dataset: Option<Did>, lifetime: Option<u64>) -> Result<Vec<wit::Rule>, RucioError> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        self.call(|r| r.update_replica_states(rse, &files, "A"), parse_done)?;
        let mut rules = Vec::new();
        match &dataset {
            Some(ds) => {
                match self.call(|r| r.attach(ds, &files), parse_done) {
                    Err(e) if !already_done(&e, &["FileAlreadyExists", "DuplicateContent"]) => return Err(e),
                    _ => {}
                }
                // A new dataset gets the account's rule at the RSE now, over
                // files that are there: it is OK at once. An existing one
                // keeps its rules (Rucio's judge extends them to new files).
                let existing: Vec<Rule> = self.list(|r| r.did_rules(ds))?;
                if matching_rule(&existing, self.requests.account(), rse).is_none() {
                    let request = RuleRequest {
                        dids: vec![ds.clone()],
                        copies: 1,
                        rse_expression: rse.to_string(),
                        lifetime,
                        grouping: Some("DATASET".into()),
                        ..RuleRequest::default()
                    };
                    self.create_rule(&request)?;
                }
                rules.extend(self.list::<Rule>(|r| r.did_rules(ds))?);
            }
            None => {
                for f in &files {
                    rules.extend(self.list::<Rule>(|r| r.did_rules(f))?);
                }
            }
        }
        Ok(rules.into_iter().filter(|r| r.rse_expression == rse).map(rule_out).collect())
    }
}

impl wit::Guest for Component {
    type Client = Client;

    fn parse_did(text: String) -> Result<wit::Did, wit::RucioError> {
        Did::parse(&text, None).map(did_out).map_err(error)
    }

    fn parse_lifetime(text: String) -> Result<u64, wit::RucioError> {
        crate::parse_lifetime(&text).map_err(error)
    }
}

impl wit::GuestClient for Client {
    fn open(config: wit::ClientConfig) -> Result<wit::Client, wit::RucioError> {
        let requests = RucioRequests::new(&config.host, config.auth_host.as_deref(), &config.account, config.vo.as_deref()).map_err(error)?;
        let max_attempts = config.max_attempts.unwrap_or(3).max(1);
        let mut client = Client { requests, token: RefCell::new(None), max_attempts };
        let token = match config.auth {
            wit::Auth::Token(token) => AuthToken { token, expires_at: None },
            wit::Auth::Userpass(login) => {
                client.call(|r| r.userpass(&login.username, &login.password), responses::parse_userpass).map_err(error)?
            }
        };
        client.requests.set_token(&token.token);
        client.token.replace(Some(token));
        Ok(wit::Client::new(client))
    }

    fn session(&self) -> Option<wit::SessionToken> {
        self.token.borrow().as_ref().map(|t| wit::SessionToken { token: t.token.clone(), expires_at: t.expires_at })
    }

    fn whoami(&self) -> Result<wit::AccountInfo, wit::RucioError> {
        let account = match self.call(|r| r.whoami(), responses::parse_whoami).map_err(error)? {
            Whoami::Account(a) => a,
            Whoami::Redirect(location) => {
                let follow = self.requests.follow_whoami(&location).map_err(error)?;
                parse_json::<Account>(&self.exchange(&follow).map_err(error)?).map_err(error)?
            }
        };
        Ok(wit::AccountInfo { account: account.account, account_type: account.account_type, status: account.status, email: account.email })
    }

    fn search_dids(&self, scope: String, filters: Vec<(String, String)>) -> Result<Vec<wit::DidEntry>, wit::RucioError> {
        let found: Vec<DidEntry> = self.list(|r| r.search_dids(&scope, &filters, false)).map_err(error)?;
        Ok(found.into_iter().map(entry_out).collect())
    }

    fn get_did(&self, did: wit::Did) -> Result<wit::DidEntry, wit::RucioError> {
        let did = did_in(did);
        self.call(|r| r.get_did(&did), parse_json::<DidEntry>).map(entry_out).map_err(error)
    }

    fn list_content(&self, did: wit::Did) -> Result<Vec<wit::DidEntry>, wit::RucioError> {
        let did = did_in(did);
        let content: Vec<DidEntry> = self.list(|r| r.list_content(&did)).map_err(error)?;
        Ok(content.into_iter().map(entry_out).collect())
    }

    fn get_metadata(&self, did: wit::Did) -> Result<String, wit::RucioError> {
        let did = did_in(did);
        let meta: serde_json::Value = self.call(|r| r.get_metadata(&did), parse_json).map_err(error)?;
        Ok(meta.to_string())
    }

    fn add_dataset(&self, did: wit::Did, lifetime: Option<u64>) -> Result<(), wit::RucioError> {
        let did = did_in(did);
        self.call(|r| r.add_collection(&did, false, lifetime), parse_done).map_err(error)
    }

    fn add_container(&self, did: wit::Did, lifetime: Option<u64>) -> Result<(), wit::RucioError> {
        let did = did_in(did);
        self.call(|r| r.add_collection(&did, true, lifetime), parse_done).map_err(error)
    }

    fn attach(&self, collection: wit::Did, dids: Vec<wit::Did>) -> Result<(), wit::RucioError> {
        let collection = did_in(collection);
        let dids: Vec<Did> = dids.into_iter().map(did_in).collect();
        self.call(|r| r.attach(&collection, &dids), parse_done).map_err(error)
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
        let found: Vec<FileReplicas> = self.list(|r| r.list_replicas(&dids, &schemes, rse_expression.as_deref(), all_states)).map_err(error)?;
        Ok(found.into_iter().map(replicas_out).collect())
    }

    fn add_replicas(&self, rse: String, files: Vec<wit::NewReplica>) -> Result<(), wit::RucioError> {
        let files: Vec<NewReplica> = files
            .into_iter()
            .map(|f| NewReplica { scope: f.did.scope, name: f.did.name, bytes: f.bytes, adler32: f.adler32, md5: f.md5, pfn: f.pfn, state: f.state })
            .collect();
        self.call(|r| r.add_replicas(&rse, &files), parse_done).map_err(error)
    }

    fn update_replica_states(&self, rse: String, dids: Vec<wit::Did>, state: String) -> Result<(), wit::RucioError> {
        let dids: Vec<Did> = dids.into_iter().map(did_in).collect();
        self.call(|r| r.update_replica_states(&rse, &dids, &state), parse_done).map_err(error)
    }

    fn lfns2pfns(&self, rse: String, dids: Vec<wit::Did>, scheme: Option<String>, operation: String) -> Result<Vec<(wit::Did, String)>, wit::RucioError> {
        let dids: Vec<Did> = dids.into_iter().map(did_in).collect();
        let pfns = self.call(|r| r.lfns2pfns(&rse, &dids, scheme.as_deref(), &operation), responses::parse_lfns2pfns).map_err(error)?;
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
            grouping: rule.grouping,
            weight: rule.weight,
            activity: rule.activity,
            comment: rule.comment,
            asynchronous: rule.asynchronous,
            notify: rule.notify,
        };
        self.create_rule(&request).map_err(error)
    }

    fn get_rule(&self, id: String) -> Result<wit::Rule, wit::RucioError> {
        self.call(|r| r.get_rule(&id), parse_json::<Rule>).map(rule_out).map_err(error)
    }

    fn did_rules(&self, did: wit::Did) -> Result<Vec<wit::Rule>, wit::RucioError> {
        let did = did_in(did);
        let rules: Vec<Rule> = self.list(|r| r.did_rules(&did)).map_err(error)?;
        Ok(rules.into_iter().map(rule_out).collect())
    }

    fn account_rules(&self, account: String) -> Result<Vec<wit::Rule>, wit::RucioError> {
        let rules: Vec<Rule> = self.list(|r| r.account_rules(&account)).map_err(error)?;
        Ok(rules.into_iter().map(rule_out).collect())
    }

    fn update_rule_lifetime(&self, id: String, lifetime: Option<u64>) -> Result<(), wit::RucioError> {
        self.call(|r| r.update_rule_lifetime(&id, lifetime), parse_done).map_err(error)
    }

    fn delete_rule(&self, id: String, purge_replicas: bool) -> Result<(), wit::RucioError> {
        self.call(|r| r.delete_rule(&id, purge_replicas), parse_done).map_err(error)
    }

    fn begin_upload(
        &self,
        rse: String,
        files: Vec<wit::UploadFile>,
        dataset: Option<wit::Did>,
        lifetime: Option<u64>,
    ) -> Result<Vec<wit::UploadTarget>, wit::RucioError> {
        self.begin_upload(&rse, files, dataset.map(did_in), lifetime).map_err(error)
    }

    fn finish_upload(&self, rse: String, files: Vec<wit::Did>, dataset: Option<wit::Did>, lifetime: Option<u64>) -> Result<Vec<wit::Rule>, wit::RucioError> {
        self.finish_upload(&rse, files.into_iter().map(did_in).collect(), dataset.map(did_in), lifetime).map_err(error)
    }

    fn make_available(&self, did: wit::Did, rse_expression: String, lifetime: Option<u64>) -> Result<wit::Availability, wit::RucioError> {
        let did = did_in(did);
        let rules: Vec<Rule> = self.list(|r| r.did_rules(&did)).map_err(error)?;
        if let Some(existing) = matching_rule(&rules, self.requests.account(), &rse_expression) {
            let id = existing.id.clone();
            if needs_extension(existing, lifetime, now()) {
                self.call(|r| r.update_rule_lifetime(&id, lifetime), parse_done).map_err(error)?;
            }
            let rule = self.call(|r| r.get_rule(&id), parse_json::<Rule>).map_err(error)?;
            return Ok(wit::Availability { rule: rule_out(rule), created: false });
        }
        let request = RuleRequest { dids: vec![did], copies: 1, rse_expression, lifetime, ..RuleRequest::default() };
        let ids = self.create_rule(&request).map_err(error)?;
        let rule = self.call(|r| r.get_rule(&ids[0]), parse_json::<Rule>).map_err(error)?;
        Ok(wit::Availability { rule: rule_out(rule), created: true })
    }
}

export!(Component);
