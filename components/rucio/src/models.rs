//! Rucio's objects as it sends them: only the fields lakeport uses are
//! typed; a field Rucio adds or leaves out is not an error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::RucioError;

/// A replication rule's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleState {
    Ok,
    Replicating,
    Stuck,
    Suspended,
    WaitingApproval,
    Inject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DidType {
    File,
    Dataset,
    Container,
    #[serde(other)]
    Other,
}

/// `scope:name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Did {
    pub scope: String,
    pub name: String,
}

impl Did {
    /// Parses `scope:name`; a bare name takes `default_scope`, else it is
    /// an error.
    pub fn parse(text: &str, default_scope: Option<&str>) -> Result<Did, RucioError> {
        let (scope, name) = match text.split_once(':') {
            Some((scope, name)) => (scope, name),
            None => match default_scope {
                Some(scope) => (scope, text),
                None => return Err(RucioError::invalid_input(format!("'{text}' is not a DID: write it as SCOPE:NAME"))),
            },
        };
        if scope.is_empty() || name.is_empty() || scope.len() > 25 || name.len() > 250 {
            return Err(RucioError::invalid_input(format!("'{text}' is not a DID: write it as SCOPE:NAME (scope up to 25, name up to 250 characters)")));
        }
        Ok(Did { scope: scope.to_string(), name: name.to_string() })
    }
}

impl std::fmt::Display for Did {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.scope, self.name)
    }
}

/// A DID in a listing (`long=1` search, content of a collection).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct DidEntry {
    pub scope: String,
    pub name: String,
    #[serde(rename = "type", alias = "did_type")]
    pub did_type: Option<DidType>,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub length: Option<u64>,
    #[serde(default)]
    pub adler32: Option<String>,
    #[serde(default)]
    pub md5: Option<String>,
}

/// A replication rule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Rule {
    pub id: String,
    pub account: Option<String>,
    pub scope: String,
    pub name: String,
    pub state: RuleState,
    pub rse_expression: String,
    #[serde(default)]
    pub copies: u32,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub locks_ok_cnt: u64,
    #[serde(default)]
    pub locks_replicating_cnt: u64,
    #[serde(default)]
    pub locks_stuck_cnt: u64,
    #[serde(default)]
    pub grouping: Option<String>,
    #[serde(default)]
    pub activity: Option<String>,
    #[serde(default)]
    pub comments: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl Rule {
    pub fn did(&self) -> Did {
        Did { scope: self.scope.clone(), name: self.name.clone() }
    }
}

/// A file's replicas (`POST /replicas/list`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileReplicas {
    pub scope: String,
    pub name: String,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub adler32: Option<String>,
    #[serde(default)]
    pub md5: Option<String>,
    /// RSE → its PFNs of this file.
    #[serde(default)]
    pub rses: BTreeMap<String, Vec<String>>,
    /// RSE → replica state (`AVAILABLE`, `COPYING`, …), with `all_states`.
    #[serde(default)]
    pub states: BTreeMap<String, String>,
}

/// Parses a lifetime: whole seconds, or a number with `s`, `m`, `h`, `d`
/// or `w` (`7d`); `never` (any case) is none, no expiry.
pub fn parse_lifetime(text: &str) -> Result<Option<u64>, RucioError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let bad = || RucioError::invalid_input(format!("'{text}' is not a lifetime: write e.g. 3600, 90m, 12h, 7d, 2w or never"));
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(scale) {
        Some(0) | None => Err(bad()),
        Some(s) => Ok(Some(s)),
    }
}
