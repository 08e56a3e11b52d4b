//! The sans-I/O core of lakeport's Rucio client: requests to build, answers
//! to parse (JSON, `application/x-json-stream` lists, Rucio's error
//! bodies), typed models, and the workflows of several calls, generic over
//! the exchange that carries them. The rucio component does the I/O through
//! wasi:http; tests drive the same code against a real Rucio server, and
//! the workflows natively against a simulated one.

pub mod availability;
#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod bindings;
pub mod error;
pub mod models;
pub mod requests;
pub mod responses;
pub mod stream;
pub mod upload;
pub mod workflows;

pub use availability::{matching_rule, needs_extension};
pub use error::{error_from_response, RucioError, ServerError};
pub use models::{parse_lifetime, Did, DidEntry, DidType, FileReplicas, Rule, RuleState};
pub use responses::{parse_done, parse_json, parse_list, parse_lfns2pfns, parse_rule_ids, parse_userpass, parse_whoami, success, Account, AuthToken, Whoami};
pub use requests::{Grouping, NewReplica, Notify, ReplicaState, RucioRequests, RuleRequest};
pub use stream::{parse_all, JsonLines};
pub use upload::{pfn_target, same_adler32, PfnTarget};
