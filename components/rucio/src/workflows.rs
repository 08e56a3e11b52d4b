//! Rucio calls and the workflows made of several (upload and register,
//! make available), generic over the [`RucioExchange`] that carries them:
//! the component's is blocking wasi:http; tests use a simulated Rucio.

use std::cell::RefCell;

use lakeport_http::retry::{Jitter, RetryPolicy};
use lakeport_http::{HttpError, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;

use crate::models::{Did, DidEntry, FileReplicas, Rule};
use crate::requests::{Grouping, NewReplica, ReplicaState, RucioRequests, RuleRequest};
use crate::responses::{self, parse_done, parse_json, parse_list};
use crate::{matching_rule, needs_extension, pfn_target, same_adler32, PfnTarget, RucioError};

/// One HTTP round trip, and waiting between attempts.
pub trait RucioExchange {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError>;
    fn sleep_ms(&self, ms: u64);
    /// Seeds the backoff's jitter (any value that differs between runs).
    fn jitter_seed(&self) -> u64;
}

/// A file to upload and register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadFile {
    pub did: Did,
    pub bytes: u64,
    /// 8 lowercase hex digits.
    pub adler32: String,
    /// 32 lowercase hex digits.
    pub md5: String,
}

/// Where a file's bytes go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadTarget {
    pub did: Did,
    pub pfn: String,
    pub target: PfnTarget,
}

/// A rule that keeps a DID at an RSE expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Availability {
    pub rule: Rule,
    /// False when a matching rule of the account existed already.
    pub created: bool,
}

pub struct RucioClient<X: RucioExchange> {
    pub requests: RucioRequests,
    retry: RetryPolicy,
    jitter: RefCell<Jitter>,
    http: X,
}

/// Rucio errors that only say a step was done before (a re-run).
fn already_done(e: &RucioError, classes: &[&str]) -> bool {
    e.class().is_some_and(|c| classes.contains(&c))
}

impl<X: RucioExchange> RucioClient<X> {
    pub fn new(requests: RucioRequests, max_attempts: u32, http: X) -> Self {
        let retry = RetryPolicy { max_attempts: max_attempts.max(1), ..RetryPolicy::default() };
        RucioClient { requests, retry, jitter: RefCell::new(Jitter::new(http.jitter_seed())), http }
    }

    /// What the client sends through.
    pub fn http(&self) -> &X {
        &self.http
    }

    /// One exchange, tried again (after the shared policy's backoff) on a
    /// dropped connection or a 502/503/504.
    /// A refused token is not: the caller logs in again and repeats the
    /// call that was refused, and only that one.
    pub fn exchange(&self, request: &HttpRequest) -> Result<HttpResponse, RucioError> {
        let mut attempt = 1;
        loop {
            let result = self.http.send(request).map_err(|e| RucioError::from(&e));
            let retry = match &result {
                Err(RucioError::Transport(_)) => true,
                Ok(r) => matches!(r.status, 502..=504),
                Err(_) => false,
            };
            if !retry || attempt >= self.retry.max_attempts {
                return result;
            }
            let random = self.jitter.borrow_mut().next_u64();
            self.http.sleep_ms(self.retry.backoff_ms(attempt, random));
            attempt += 1;
        }
    }

    pub fn call<T>(&self, build: impl Fn(&RucioRequests) -> HttpRequest, parse: impl Fn(&HttpResponse) -> Result<T, RucioError>) -> Result<T, RucioError> {
        parse(&self.exchange(&build(&self.requests))?)
    }

    /// `POST /rules/`: the new rules' IDs.
    pub fn create_rule(&self, rule: &RuleRequest) -> Result<Vec<String>, RucioError> {
        let http = self.requests.add_rule(rule)?;
        self.call(|_| http.clone(), responses::parse_rule_ids)
    }

    pub fn list<T: DeserializeOwned>(&self, build: impl Fn(&RucioRequests) -> HttpRequest) -> Result<Vec<T>, RucioError> {
        self.call(build, parse_list)
    }

    /// Registers `files` at `rse` (replicas COPYING, a rule each, or the
    /// dataset made), skipping what a run before did; where to PUT each.
    pub fn begin_upload(&self, rse: &str, files: Vec<UploadFile>, dataset: Option<Did>, lifetime: Option<u64>) -> Result<Vec<UploadTarget>, RucioError> {
        if files.is_empty() {
            return Err(RucioError::invalid_input("no files to upload"));
        }
        let rule_at = |dids: Vec<Did>, grouping: Grouping| RuleRequest {
            dids,
            copies: 1,
            rse_expression: rse.to_string(),
            lifetime,
            grouping: Some(grouping),
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
            let did = f.did;
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
                    state: Some(ReplicaState::Copying),
                };
                self.call(|r| r.add_replicas(rse, std::slice::from_ref(&replica)), parse_done)?;
            }
            if dataset.is_none() {
                match self.create_rule(&rule_at(vec![did.clone()], Grouping::None)) {
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
                Ok(UploadTarget { target: pfn_target(pfn)?, did, pfn: pfn.clone() })
            })
            .collect()
    }

    /// Marks the uploaded replicas available and puts them under their
    /// dataset and its rule; the rules at `rse` that now keep them.
    pub fn finish_upload(&self, rse: &str, files: Vec<Did>, dataset: Option<Did>, lifetime: Option<u64>) -> Result<Vec<Rule>, RucioError> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        self.call(|r| r.update_replica_states(rse, &files, ReplicaState::Available), parse_done)?;
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
                        grouping: Some(Grouping::Dataset),
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
        Ok(rules.into_iter().filter(|r| r.rse_expression == rse).collect())
    }

    /// A rule of the account that keeps `did` at `rse_expression` for at
    /// least `lifetime` from `now`: an existing one (extended if need be) or
    /// a new one.
    pub fn make_available(&self, did: Did, rse_expression: String, lifetime: Option<u64>, now: i64) -> Result<Availability, RucioError> {
        let rules: Vec<Rule> = self.list(|r| r.did_rules(&did))?;
        if let Some(existing) = matching_rule(&rules, self.requests.account(), &rse_expression) {
            let id = existing.id.clone();
            if needs_extension(existing, lifetime, now) {
                self.call(|r| r.update_rule_lifetime(&id, lifetime), parse_done)?;
            }
            let rule = self.call(|r| r.get_rule(&id), parse_json::<Rule>)?;
            return Ok(Availability { rule, created: false });
        }
        let request = RuleRequest { dids: vec![did], copies: 1, rse_expression, lifetime, ..RuleRequest::default() };
        let ids = self.create_rule(&request)?;
        let rule = self.call(|r| r.get_rule(&ids[0]), parse_json::<Rule>)?;
        Ok(Availability { rule, created: true })
    }
}
