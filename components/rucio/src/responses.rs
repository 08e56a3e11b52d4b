//! Reading Rucio's answers: a non-2xx status is always its error body.

use std::collections::BTreeMap;

use lakeport_http::date::parse_http_date;
use lakeport_http::HttpResponse;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{error_from_response, RucioError};
use crate::stream::parse_all;

/// The answer, if its status is 2xx; else Rucio's error.
pub fn success(response: &HttpResponse) -> Result<&HttpResponse, RucioError> {
    if (200..300).contains(&response.status) {
        Ok(response)
    } else {
        Err(error_from_response(response))
    }
}

/// A 2xx answer whose body does not matter (`Created`, `OK`, empty).
pub fn parse_done(response: &HttpResponse) -> Result<(), RucioError> {
    success(response).map(|_| ())
}

/// A 2xx JSON document.
pub fn parse_json<T: DeserializeOwned>(response: &HttpResponse) -> Result<T, RucioError> {
    serde_json::from_slice(&success(response)?.body)
        .map_err(|e| RucioError::invalid_answer(format!("Rucio's answer is not the JSON expected ({e}): {}", response.excerpt())))
}

/// A 2xx `x-json-stream` list.
pub fn parse_list<T: DeserializeOwned>(response: &HttpResponse) -> Result<Vec<T>, RucioError> {
    parse_all(&success(response)?.body)
}

/// A Rucio token and when it expires (Unix seconds, when Rucio says).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthToken {
    pub token: String,
    pub expires_at: Option<i64>,
}

/// The answer to `GET /auth/userpass`: the token is in the headers.
pub fn parse_userpass(response: &HttpResponse) -> Result<AuthToken, RucioError> {
    let response = success(response)?;
    let token = response
        .header("X-Rucio-Auth-Token")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RucioError::invalid_answer("Rucio accepted the login but sent no X-Rucio-Auth-Token: is rucio_auth_host a Rucio server?"))?;
    let expires_at = response.header("X-Rucio-Auth-Token-Expires").and_then(parse_http_date);
    Ok(AuthToken { token: token.to_string(), expires_at })
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Account {
    pub account: String,
    #[serde(default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// `GET /accounts/whoami` redirects to the account; a server may also
/// answer in place.
pub enum Whoami {
    Redirect(String),
    Account(Account),
}

pub fn parse_whoami(response: &HttpResponse) -> Result<Whoami, RucioError> {
    if (300..400).contains(&response.status) {
        return response
            .header("Location")
            .map(|l| Whoami::Redirect(l.to_string()))
            .ok_or_else(|| RucioError::invalid_answer(format!("Rucio answered whoami with HTTP {} but no Location", response.status)));
    }
    parse_json(response).map(Whoami::Account)
}

/// `POST /rules/` answers 201 with the IDs of the rules it made.
pub fn parse_rule_ids(response: &HttpResponse) -> Result<Vec<String>, RucioError> {
    let ids: Vec<String> = parse_json(response)?;
    if ids.is_empty() {
        return Err(RucioError::invalid_answer("Rucio created no rule and said no why"));
    }
    Ok(ids)
}

/// `GET /rses/{rse}/lfns2pfns`: `scope:name` → PFN.
pub fn parse_lfns2pfns(response: &HttpResponse) -> Result<BTreeMap<String, String>, RucioError> {
    parse_json(response)
}
