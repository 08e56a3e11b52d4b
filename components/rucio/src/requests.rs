//! The HTTP requests of Rucio's REST API, as plain values.
//!
//! Paths take scopes, names and rule IDs percent-encoded (RFC 3986, `/`
//! too); lists come back as `application/x-json-stream`. Every request
//! but the authentication itself carries the token in `X-Rucio-Auth-Token`.

use lakeport_http::HttpRequest;
use lakeport_sigv4::encoding::uri_encode;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::RucioError;
use crate::models::Did;

/// Sent as `X-Rucio-AppID`, which Rucio logs.
const APP_ID: &str = "lakeport";

#[derive(Clone, Debug)]
pub struct RucioRequests {
    /// `https://rucio.example:443`, no trailing slash.
    host: String,
    auth_host: String,
    account: String,
    vo: Option<String>,
    token: Option<String>,
}

/// One path segment, percent-encoded.
fn seg(s: &str) -> String {
    uri_encode(s.as_bytes(), false)
}

fn base(url: &str, what: &str) -> Result<String, RucioError> {
    let trimmed = url.trim().trim_end_matches('/');
    match lakeport_http::split_url(trimmed) {
        Some((_, authority, _)) if !authority.is_empty() => Ok(trimmed.to_string()),
        _ => Err(RucioError::invalid_input(format!("{what} '{url}' is not an http(s) URL"))),
    }
}

/// A new rule, as `POST /rules/` takes it. Unset options are Rucio's
/// defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleRequest {
    pub dids: Vec<Did>,
    pub copies: u32,
    pub rse_expression: String,
    /// Seconds; none for a rule that does not expire.
    pub lifetime: Option<u64>,
    /// Rucio's default: `DATASET`.
    pub grouping: Option<Grouping>,
    pub weight: Option<String>,
    pub activity: Option<String>,
    pub comment: Option<String>,
    pub asynchronous: bool,
    /// Rucio's default: no mail.
    pub notify: Option<Notify>,
}

/// How a rule over a collection places its files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Grouping {
    /// All files on the same RSE.
    All,
    /// The files of each dataset on the same RSE.
    #[default]
    Dataset,
    /// Each file wherever it fits.
    None,
}

/// When Rucio mails about a rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Notify {
    #[serde(rename = "Y")]
    Yes,
    #[default]
    #[serde(rename = "N")]
    No,
    /// When the rule's locks are all OK.
    #[serde(rename = "C")]
    OnClose,
    /// As the rule progresses.
    #[serde(rename = "P")]
    Progress,
}

/// A replica's state, as Rucio's replica API writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ReplicaState {
    #[serde(rename = "A")]
    Available,
    #[serde(rename = "U")]
    Unavailable,
    #[serde(rename = "C")]
    Copying,
    #[serde(rename = "B")]
    BeingDeleted,
    #[serde(rename = "D")]
    Bad,
    #[serde(rename = "T")]
    TemporaryUnavailable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewReplica {
    pub scope: String,
    pub name: String,
    pub bytes: u64,
    pub adler32: String,
    pub md5: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pfn: Option<String>,
    /// Rucio's default: available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ReplicaState>,
}

impl RucioRequests {
    pub fn new(host: &str, auth_host: Option<&str>, account: &str, vo: Option<&str>) -> Result<Self, RucioError> {
        let host = base(host, "rucio_host")?;
        let auth_host = match auth_host {
            Some(a) => base(a, "rucio_auth_host")?,
            None => host.clone(),
        };
        if account.is_empty() {
            return Err(RucioError::invalid_input("no Rucio account: set rucio_account in the profile"));
        }
        Ok(RucioRequests { host, auth_host, account: account.to_string(), vo: vo.map(str::to_string), token: None })
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn auth_host(&self) -> &str {
        &self.auth_host
    }

    /// Uses `token` (from `/auth/userpass`, or an OIDC JWT) from now on.
    pub fn set_token(&mut self, token: &str) {
        self.token = Some(token.to_string());
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn identity_headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![("X-Rucio-Account".to_string(), self.account.clone()), ("X-Rucio-AppID".to_string(), APP_ID.to_string())];
        if let Some(vo) = &self.vo {
            headers.push(("X-Rucio-VO".to_string(), vo.clone()));
        }
        headers
    }

    fn request(&self, method: &'static str, path: &str, query: &[(&str, &str)], body: Option<Value>) -> HttpRequest {
        let mut url = format!("{}{path}", self.host);
        if !query.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                q.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&q.finish());
        }
        // No Accept: Rucio answers 406 to a type an endpoint does not make.
        let mut headers = self.identity_headers();
        if let Some(token) = &self.token {
            headers.push(("X-Rucio-Auth-Token".into(), token.clone()));
        }
        let body = match body {
            Some(value) => {
                headers.push(("Content-Type".into(), "application/json".into()));
                value.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        HttpRequest { method, url, headers, body }
    }

    // ---- authentication and account ----

    /// `GET /auth/userpass`: the token comes back in `X-Rucio-Auth-Token`.
    pub fn userpass(&self, username: &str, password: &str) -> HttpRequest {
        let mut headers = self.identity_headers();
        headers.push(("X-Rucio-Username".into(), username.to_string()));
        headers.push(("X-Rucio-Password".into(), password.to_string()));
        HttpRequest { method: "GET", url: format!("{}/auth/userpass", self.auth_host), headers, body: Vec::new() }
    }

    /// `GET /accounts/whoami`, which redirects to the account itself.
    pub fn whoami(&self) -> HttpRequest {
        self.request("GET", "/accounts/whoami", &[], None)
    }

    /// The GET of where `/accounts/whoami` redirected: an absolute path, a
    /// URL on the same host, or (Rucio's way) a path relative to
    /// `/accounts/`.
    pub fn follow_whoami(&self, location: &str) -> Result<HttpRequest, RucioError> {
        let path = if location.starts_with('/') {
            location.to_string()
        } else if let Some(rest) = location.strip_prefix(&self.host).filter(|r| r.starts_with('/')) {
            rest.to_string()
        } else if !location.contains("://") && !location.is_empty() {
            format!("/accounts/{location}")
        } else {
            return Err(RucioError::invalid_answer(format!("Rucio redirected whoami to another host ({location})")));
        };
        Ok(self.request("GET", &path, &[], None))
    }

    // ---- DIDs ----

    /// `GET /dids/{scope}/dids/search`: DIDs of a scope matching `filters`
    /// (`name=data*`, `type=dataset`, metadata keys), with their types.
    pub fn search_dids(&self, scope: &str, filters: &[(String, String)], recursive: bool) -> HttpRequest {
        let mut query: Vec<(&str, &str)> = filters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if !filters.iter().any(|(k, _)| k == "type") {
            query.push(("type", "all"));
        }
        query.push(("long", "True"));
        if recursive {
            query.push(("recursive", "True"));
        }
        self.request("GET", &format!("/dids/{}/dids/search", seg(scope)), &query, None)
    }

    /// `GET /dids/{scope}/{name}`: one DID.
    pub fn get_did(&self, did: &Did) -> HttpRequest {
        self.request("GET", &format!("/dids/{}/{}", seg(&did.scope), seg(&did.name)), &[], None)
    }

    /// `GET /dids/{scope}/{name}/dids`: the content of a collection.
    pub fn list_content(&self, did: &Did) -> HttpRequest {
        self.request("GET", &format!("/dids/{}/{}/dids", seg(&did.scope), seg(&did.name)), &[], None)
    }

    /// `GET /dids/{scope}/{name}/meta`.
    pub fn get_metadata(&self, did: &Did) -> HttpRequest {
        self.request("GET", &format!("/dids/{}/{}/meta", seg(&did.scope), seg(&did.name)), &[], None)
    }

    /// `POST /dids/{scope}/{name}`: a new dataset or container.
    pub fn add_collection(&self, did: &Did, container: bool, lifetime: Option<u64>) -> HttpRequest {
        let mut body = json!({ "type": if container { "CONTAINER" } else { "DATASET" } });
        if let Some(l) = lifetime {
            body["lifetime"] = json!(l);
        }
        self.request("POST", &format!("/dids/{}/{}", seg(&did.scope), seg(&did.name)), &[], Some(body))
    }

    /// `POST /dids/{scope}/{name}/dids`: attaches DIDs to a collection.
    pub fn attach(&self, collection: &Did, dids: &[Did]) -> HttpRequest {
        let body = json!({ "dids": dids });
        self.request("POST", &format!("/dids/{}/{}/dids", seg(&collection.scope), seg(&collection.name)), &[], Some(body))
    }

    // ---- replicas ----

    /// `POST /replicas/list`: the replicas of `dids` (files, or the files
    /// of collections) with PFNs for `schemes`, at RSEs matching
    /// `rse_expression` if given.
    pub fn list_replicas(&self, dids: &[Did], schemes: &[&str], rse_expression: Option<&str>, all_states: bool) -> HttpRequest {
        let mut body = json!({ "dids": dids, "all_states": all_states });
        if !schemes.is_empty() {
            body["schemes"] = json!(schemes);
        }
        if let Some(expr) = rse_expression {
            body["rse_expression"] = json!(expr);
        }
        self.request("POST", "/replicas/list", &[], Some(body))
    }

    /// `POST /replicas`: registers replicas at `rse`.
    pub fn add_replicas(&self, rse: &str, files: &[NewReplica]) -> HttpRequest {
        self.request("POST", "/replicas", &[], Some(json!({ "rse": rse, "files": files })))
    }

    /// `PUT /replicas`: sets the state of replicas at `rse`.
    pub fn update_replica_states(&self, rse: &str, dids: &[Did], state: ReplicaState) -> HttpRequest {
        let files: Vec<Value> = dids.iter().map(|d| json!({ "scope": d.scope, "name": d.name, "state": state })).collect();
        self.request("PUT", "/replicas", &[], Some(json!({ "rse": rse, "files": files })))
    }

    /// `GET /rses/{rse}/lfns2pfns`: the PFNs Rucio assigns `dids` at `rse`
    /// for `operation` (`write` for an upload) with `scheme`.
    pub fn lfns2pfns(&self, rse: &str, dids: &[Did], scheme: Option<&str>, operation: &str) -> HttpRequest {
        let lfns: Vec<String> = dids.iter().map(Did::to_string).collect();
        let mut query: Vec<(&str, &str)> = lfns.iter().map(|l| ("lfn", l.as_str())).collect();
        if let Some(s) = scheme {
            query.push(("scheme", s));
        }
        query.push(("operation", operation));
        self.request("GET", &format!("/rses/{}/lfns2pfns", seg(rse)), &query, None)
    }

    /// `GET /rses/{rse}/protocols`.
    pub fn rse_protocols(&self, rse: &str) -> HttpRequest {
        self.request("GET", &format!("/rses/{}/protocols", seg(rse)), &[], None)
    }

    /// `GET /rses/{rse}`: its attributes, availability included.
    pub fn get_rse(&self, rse: &str) -> HttpRequest {
        self.request("GET", &format!("/rses/{}", seg(rse)), &[], None)
    }

    // ---- rules ----

    /// `POST /rules/`: answers 201 with the new rules' IDs.
    pub fn add_rule(&self, rule: &RuleRequest) -> Result<HttpRequest, RucioError> {
        if rule.dids.is_empty() {
            return Err(RucioError::invalid_input("a rule needs at least one DID"));
        }
        if rule.rse_expression.trim().is_empty() {
            return Err(RucioError::invalid_input("a rule needs an RSE expression"));
        }
        let body = json!({
            "dids": rule.dids,
            "copies": rule.copies.max(1),
            "rse_expression": rule.rse_expression,
            "lifetime": rule.lifetime,
            "grouping": rule.grouping.unwrap_or_default(),
            "weight": rule.weight,
            "account": self.account,
            "activity": rule.activity,
            "comment": rule.comment,
            "asynchronous": rule.asynchronous,
            "notify": rule.notify.unwrap_or_default(),
            "locked": false,
            "purge_replicas": false,
            "ignore_availability": false,
            "ask_approval": false,
            "source_replica_expression": null,
        });
        Ok(self.request("POST", "/rules/", &[], Some(body)))
    }

    /// `GET /rules/{id}`.
    pub fn get_rule(&self, id: &str) -> HttpRequest {
        self.request("GET", &format!("/rules/{}", seg(id)), &[], None)
    }

    /// `GET /dids/{scope}/{name}/rules`.
    pub fn did_rules(&self, did: &Did) -> HttpRequest {
        self.request("GET", &format!("/dids/{}/{}/rules", seg(&did.scope), seg(&did.name)), &[], None)
    }

    /// `GET /accounts/{account}/rules`.
    pub fn account_rules(&self, account: &str) -> HttpRequest {
        self.request("GET", &format!("/accounts/{}/rules", seg(account)), &[], None)
    }

    /// `PUT /rules/{id}` with a new lifetime (seconds from now; none to
    /// never expire).
    pub fn update_rule_lifetime(&self, id: &str, lifetime: Option<u64>) -> HttpRequest {
        self.request("PUT", &format!("/rules/{}", seg(id)), &[], Some(json!({ "options": { "lifetime": lifetime } })))
    }

    /// `DELETE /rules/{id}`; the replicas stay unless `purge_replicas`.
    pub fn delete_rule(&self, id: &str, purge_replicas: bool) -> HttpRequest {
        self.request("DELETE", &format!("/rules/{}", seg(id)), &[], Some(json!({ "purge_replicas": purge_replicas })))
    }
}
