//! The Rucio workflows (upload and register, make available) against a
//! simulated Rucio: an in-memory catalogue answering Rucio's JSON, with
//! scripted faults and tokens it stops accepting. The end-to-end tests run
//! them against a real Rucio; these reach the faults it cannot be made to show.

use std::cell::RefCell;
use std::collections::BTreeMap;

use lakeport_http::{split_url, HttpError, HttpRequest, HttpResponse, TransportKind};
use lakeport_rucio::workflows::{RucioClient, RucioExchange, UploadFile};
use lakeport_rucio::{Did, RucioRequests};
use serde_json::{json, Value};

const ACCOUNT: &str = "jdoe";
const RSE: &str = "CERN-S3";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The connection drops before Rucio takes the request.
    ResetBefore,
    /// Rucio does what was asked, then the answer is lost.
    LoseAnswer,
    /// 503 from a proxy in front of Rucio.
    Unavailable,
}

/// A request as the simulated Rucio saw it.
#[derive(Clone, Debug)]
struct Logged {
    step: String,
    status: u16,
    took_effect: bool,
}

#[derive(Default)]
struct Catalogue {
    /// `scope:name` → type, bytes, adler32.
    dids: BTreeMap<String, (String, Option<u64>, Option<String>)>,
    /// (`scope:name`, RSE) → replica state (`C`, `A`).
    replicas: BTreeMap<(String, String), String>,
    /// dataset → its files.
    contents: BTreeMap<String, Vec<String>>,
    rules: Vec<Value>,
    /// step → (fault, times).
    faults: Vec<(String, Fault, u32)>,
    /// Tokens accepted, and how many requests each has left (`None`: any).
    tokens: BTreeMap<String, Option<u32>>,
    log: Vec<Logged>,
}

struct SimRucio {
    catalogue: RefCell<Catalogue>,
    slept_ms: RefCell<Vec<u64>>,
}

fn answer(status: u16, body: Value) -> HttpResponse {
    HttpResponse { status, headers: vec![("Content-Type".into(), "application/json".into())], body: body.to_string().into_bytes() }
}

fn stream(items: &[Value]) -> HttpResponse {
    let body: String = items.iter().map(|v| format!("{v}\n")).collect();
    HttpResponse { status: 200, headers: vec![("Content-Type".into(), "application/x-json-stream".into())], body: body.into_bytes() }
}

fn refusal(status: u16, class: &str, message: &str) -> HttpResponse {
    let mut r = answer(status, json!({ "ExceptionClass": class, "ExceptionMessage": message }));
    r.headers.push(("ExceptionClass".into(), class.into()));
    r
}

fn did_key(v: &Value) -> String {
    format!("{}:{}", v["scope"].as_str().unwrap(), v["name"].as_str().unwrap())
}

impl Catalogue {
    /// The step a request is: method and path with the DIDs left out.
    fn step(method: &str, segments: &[&str]) -> String {
        match (method, segments) {
            ("GET", ["dids", _, _]) => "get_did",
            ("POST", ["dids", _, _]) => "add_collection",
            ("POST", ["dids", _, _, "dids"]) => "attach",
            ("GET", ["dids", _, _, "rules"]) => "did_rules",
            ("POST", ["replicas", "list"]) => "list_replicas",
            ("POST", ["replicas"]) => "add_replicas",
            ("PUT", ["replicas"]) => "update_replica_states",
            ("GET", ["rses", _, "lfns2pfns"]) => "lfns2pfns",
            ("POST", ["rules", ""]) => "add_rule",
            ("GET", ["rules", _]) => "get_rule",
            ("PUT", ["rules", _]) => "update_rule",
            other => panic!("the simulated Rucio does not know {other:?}"),
        }
        .to_string()
    }

    fn handle(&mut self, request: &HttpRequest, step: &str, segments: &[&str], query: &[(String, String)], took_effect: &mut bool) -> HttpResponse {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let did_of_path = || format!("{}:{}", segments[1], segments[2]);
        match step {
            "get_did" => match self.dids.get(&did_of_path()) {
                Some((kind, bytes, adler32)) => {
                    answer(200, json!({ "scope": segments[1], "name": segments[2], "type": kind, "bytes": bytes, "adler32": adler32 }))
                }
                None => refusal(404, "DataIdentifierNotFound", &format!("Data identifier '{}' not found", did_of_path())),
            },
            "add_collection" => {
                if self.dids.contains_key(&did_of_path()) {
                    return refusal(409, "DataIdentifierAlreadyExists", "Data Identifier Already Exists");
                }
                self.dids.insert(did_of_path(), (body["type"].as_str().unwrap().into(), None, None));
                *took_effect = true;
                answer(201, json!("Created"))
            }
            "attach" => {
                let files: Vec<String> = body["dids"].as_array().unwrap().iter().map(did_key).collect();
                let content = self.contents.entry(did_of_path()).or_default();
                if files.iter().any(|f| content.contains(f)) {
                    return refusal(409, "FileAlreadyExists", "The file already exists in the dataset");
                }
                content.extend(files);
                *took_effect = true;
                answer(201, json!("Created"))
            }
            "did_rules" => {
                let did = did_of_path();
                let rules: Vec<Value> = self.rules.iter().filter(|r| did_key(r) == did).cloned().collect();
                stream(&rules)
            }
            "list_replicas" => {
                let files: Vec<Value> = body["dids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|d| {
                        let key = did_key(d);
                        let (_, bytes, adler32) = self.dids.get(&key)?;
                        let states: BTreeMap<&String, &String> =
                            self.replicas.iter().filter(|((k, _), _)| *k == key).map(|((_, rse), state)| (rse, state)).collect();
                        Some(json!({ "scope": d["scope"], "name": d["name"], "bytes": bytes, "adler32": adler32, "rses": {}, "states": states }))
                    })
                    .collect();
                stream(&files)
            }
            "add_replicas" => {
                let rse = body["rse"].as_str().unwrap().to_string();
                for f in body["files"].as_array().unwrap() {
                    let key = did_key(f);
                    if self.replicas.contains_key(&(key.clone(), rse.clone())) {
                        return refusal(409, "Duplicate", "The replica already exists");
                    }
                    self.dids.insert(key.clone(), ("FILE".into(), f["bytes"].as_u64(), f["adler32"].as_str().map(String::from)));
                    self.replicas.insert((key, rse.clone()), f["state"].as_str().unwrap_or("A").into());
                }
                *took_effect = true;
                answer(201, json!("Created"))
            }
            "update_replica_states" => {
                let rse = body["rse"].as_str().unwrap().to_string();
                for f in body["files"].as_array().unwrap() {
                    let Some(state) = self.replicas.get_mut(&(did_key(f), rse.clone())) else {
                        return refusal(404, "ReplicaNotFound", "Replica not found");
                    };
                    *state = f["state"].as_str().unwrap().into();
                }
                *took_effect = true;
                answer(200, json!("OK"))
            }
            "lfns2pfns" => {
                let pfns: BTreeMap<&String, String> = query
                    .iter()
                    .filter(|(k, _)| k == "lfn")
                    .map(|(_, lfn)| (lfn, format!("s3://s3.example:9000/rucio/{}", lfn.replace(':', "/"))))
                    .collect();
                answer(200, json!(pfns))
            }
            "add_rule" => {
                let rse_expression = body["rse_expression"].as_str().unwrap();
                let mut ids = Vec::new();
                for d in body["dids"].as_array().unwrap() {
                    let duplicate = self.rules.iter().any(|r| did_key(r) == did_key(d) && r["rse_expression"] == rse_expression && r["account"] == body["account"]);
                    if duplicate {
                        return refusal(409, "DuplicateRule", "A duplicate rule for this account, did, rse_expression, copies already exists");
                    }
                    let id = format!("rule-{}", self.rules.len() + 1);
                    let expires_at = body["lifetime"].as_u64().map(|_| "Sat, 05 Dec 2099 00:00:00 UTC");
                    self.rules.push(json!({ "id": id, "account": body["account"], "scope": d["scope"], "name": d["name"], "state": "OK", "rse_expression": rse_expression, "copies": 1, "expires_at": expires_at }));
                    ids.push(id);
                }
                *took_effect = true;
                answer(201, json!(ids))
            }
            "get_rule" => match self.rules.iter().find(|r| r["id"] == segments[1]) {
                Some(rule) => answer(200, rule.clone()),
                None => refusal(404, "RuleNotFound", "No replication rule found."),
            },
            "update_rule" => {
                let Some(rule) = self.rules.iter_mut().find(|r| r["id"] == segments[1]) else {
                    return refusal(404, "RuleNotFound", "No replication rule found.");
                };
                rule["expires_at"] = json!("Sat, 05 Dec 2099 00:00:00 UTC");
                *took_effect = true;
                answer(200, json!("OK"))
            }
            other => unreachable!("{other}"),
        }
    }
}

impl RucioExchange for SimRucio {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        let (_, _, path_and_query) = split_url(&request.url).unwrap();
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let query: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let mut catalogue = self.catalogue.borrow_mut();
        let step = Catalogue::step(request.method, &segments);
        let fault = catalogue.faults.iter_mut().find(|(s, _, times)| *s == step && *times > 0).map(|f| {
            f.2 -= 1;
            f.1
        });
        let reset = || HttpError::Transport { kind: TransportKind::Reset, message: "the connection to rucio.example was reset".into() };
        let mut logged = Logged { step: step.clone(), status: 0, took_effect: false };
        let response = match fault {
            Some(Fault::ResetBefore) => None,
            Some(Fault::Unavailable) => Some(HttpResponse { status: 503, headers: Vec::new(), body: b"<html>503 Service Unavailable</html>".to_vec() }),
            _ => {
                let token = request.headers.iter().find(|(n, _)| n == "X-Rucio-Auth-Token").map(|(_, v)| v.clone()).unwrap_or_default();
                match catalogue.tokens.get_mut(&token) {
                    Some(Some(0)) | None => Some(refusal(401, "CannotAuthenticate", "Cannot authenticate with given credentials")),
                    Some(left) => {
                        if let Some(n) = left {
                            *n -= 1;
                        }
                        Some(catalogue.handle(request, &step, &segments, &query, &mut logged.took_effect))
                    }
                }
            }
        };
        logged.status = response.as_ref().map_or(0, |r| r.status);
        catalogue.log.push(logged);
        match (fault, response) {
            (Some(Fault::LoseAnswer), _) | (_, None) => Err(reset()),
            (_, Some(response)) => Ok(response),
        }
    }

    fn sleep_ms(&self, ms: u64) {
        self.slept_ms.borrow_mut().push(ms);
    }
    fn jitter_seed(&self) -> u64 {
        7
    }
}

fn rucio(token: &str) -> RucioClient<SimRucio> {
    let mut requests = RucioRequests::new("https://rucio.example", None, ACCOUNT, None).unwrap();
    requests.set_token(token);
    let mut catalogue = Catalogue::default();
    catalogue.tokens.insert(token.into(), None);
    RucioClient::new(requests, 3, SimRucio { catalogue: RefCell::new(catalogue), slept_ms: RefCell::default() })
}

fn catalogue(client: &RucioClient<SimRucio>) -> std::cell::RefMut<'_, Catalogue> {
    client.http().catalogue.borrow_mut()
}

fn did(name: &str) -> Did {
    Did { scope: "user.jdoe".into(), name: name.into() }
}

fn file(name: &str, adler32: &str) -> UploadFile {
    UploadFile { did: did(name), bytes: 42, adler32: adler32.into(), md5: "0".repeat(32) }
}

/// Requests of `step` that changed the catalogue.
fn effects(client: &RucioClient<SimRucio>, step: &str) -> usize {
    catalogue(client).log.iter().filter(|l| l.step == step && l.took_effect).count()
}

fn sent(client: &RucioClient<SimRucio>, step: &str) -> usize {
    catalogue(client).log.iter().filter(|l| l.step == step).count()
}

#[test]
fn an_upload_into_a_new_dataset_survives_dropped_connections_and_lost_answers() {
    let client = rucio("t1");
    catalogue(&client).faults.push(("add_replicas".into(), Fault::ResetBefore, 1));
    catalogue(&client).faults.push(("lfns2pfns".into(), Fault::Unavailable, 1));
    catalogue(&client).faults.push(("attach".into(), Fault::LoseAnswer, 1));
    let files = vec![file("a.h5", "0a1b2c3d"), file("b.h5", "11223344")];
    let targets = client.begin_upload(RSE, files, Some(did("run-7")), Some(86_400)).unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!((targets[0].target.bucket.as_str(), targets[0].target.key.as_str()), ("rucio", "user.jdoe/a.h5"));
    assert_eq!(catalogue(&client).replicas.values().collect::<Vec<_>>(), ["C", "C"], "COPYING until the bytes are there");
    assert_eq!(effects(&client, "add_replicas"), 2, "each replica registered once");
    assert_eq!(effects(&client, "add_rule"), 0, "a dataset's rule comes when its files are in it");

    let rules = client.finish_upload(RSE, vec![did("a.h5"), did("b.h5")], Some(did("run-7")), Some(86_400)).unwrap();
    assert_eq!(catalogue(&client).replicas.values().collect::<Vec<_>>(), ["A", "A"]);
    assert_eq!(catalogue(&client).contents["user.jdoe:run-7"].len(), 2);
    assert_eq!(sent(&client, "attach"), 2, "the lost answer's request was sent again, and found done");
    assert_eq!(rules.len(), 1);
    assert_eq!((rules[0].name.as_str(), rules[0].rse_expression.as_str()), ("run-7", RSE));
    assert_eq!(client.http().slept_ms.borrow().len(), 3, "a wait before each of the three retries");
}

#[test]
fn a_rerun_skips_what_is_registered_and_refuses_a_different_file_under_the_same_name() {
    let client = rucio("t1");
    client.begin_upload(RSE, vec![file("a.h5", "0a1b2c3d")], None, None).unwrap();
    assert_eq!((effects(&client, "add_replicas"), effects(&client, "add_rule")), (1, 1));
    // The same file again (Rucio strips leading zeros of adler32 in places).
    client.begin_upload(RSE, vec![file("a.h5", "a1b2c3d")], None, None).unwrap();
    assert_eq!((effects(&client, "add_replicas"), effects(&client, "add_rule")), (1, 1), "nothing registered twice");
    let e = client.begin_upload(RSE, vec![file("a.h5", "99999999")], None, None).unwrap_err();
    assert!(e.to_string().contains("registered already with another adler32 (0a1b2c3d) than the local file (99999999)"), "{e}");
}

#[test]
fn a_refused_token_fails_only_the_refused_call_and_repeating_it_goes_on() {
    let client = rucio("t1");
    // get_did and add_replicas of the first file pass; the token is refused from its rule on.
    catalogue(&client).tokens.insert("t1".into(), Some(2));
    let files = || vec![file("a.h5", "0a1b2c3d")];
    let e = client.begin_upload(RSE, files(), None, None).unwrap_err();
    assert_eq!(e.class(), Some("CannotAuthenticate"), "{e}");
    assert_eq!(sent(&client, "add_rule"), 1, "a refused token is not retried here: the caller logs in again");
    assert_eq!(sent(&client, "lfns2pfns"), 0, "nothing after the refused call");
    // The caller's new session repeats the call; what was done is not done again.
    let mut requests = RucioRequests::new("https://rucio.example", None, ACCOUNT, None).unwrap();
    requests.set_token("t2");
    let http = SimRucio { catalogue: RefCell::new(std::mem::take(&mut *catalogue(&client))), slept_ms: RefCell::default() };
    let client = RucioClient::new(requests, 3, http);
    catalogue(&client).tokens.insert("t2".into(), None);
    let targets = client.begin_upload(RSE, files(), None, None).unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!((effects(&client, "add_replicas"), effects(&client, "add_rule")), (1, 1));
}

#[test]
fn transient_failures_stop_after_max_attempts() {
    let client = rucio("t1");
    catalogue(&client).faults.push(("get_did".into(), Fault::Unavailable, 3));
    let e = client.begin_upload(RSE, vec![file("a.h5", "0a1b2c3d")], None, None).unwrap_err();
    assert!(e.to_string().contains("503"), "{e}");
    assert_eq!(sent(&client, "get_did"), 3);
    // The shared policy's full jitter: up to 250 ms, then up to 500 ms.
    let slept = client.http().slept_ms.borrow().clone();
    assert_eq!(slept.len(), 2, "{slept:?}");
    assert!(slept[0] <= 250 && slept[1] <= 500, "backoff ceilings double between attempts: {slept:?}");
}

#[test]
fn make_available_reuses_and_extends_the_accounts_rule() {
    let client = rucio("t1");
    let created = client.make_available(did("run-7"), RSE.into(), Some(3600), 0).unwrap();
    assert!(created.created);
    catalogue(&client).rules[0]["expires_at"] = json!("Thu, 01 Jan 1970 00:30:00 UTC");
    let again = client.make_available(did("run-7"), RSE.into(), Some(3600), 0).unwrap();
    assert!(!again.created);
    assert_eq!(again.rule.id, created.rule.id);
    assert_eq!(effects(&client, "update_rule"), 1, "a rule that expires too soon is extended");
    assert_eq!(effects(&client, "add_rule"), 1, "no second rule");
    client.make_available(did("run-7"), RSE.into(), Some(3600), 0).unwrap();
    assert_eq!(effects(&client, "update_rule"), 1, "a rule that lives long enough is left alone");
}
