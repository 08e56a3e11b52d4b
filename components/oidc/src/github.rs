//! GitHub Actions' OIDC token service. A job granted `id-token: write` gets
//! `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; a
//! GET of that URL (plus `audience=`) with the request token as bearer
//! answers `{"value": "<JWT>"}`, a token for the job signed by GitHub.

use serde::Deserialize;

use crate::discovery::check_endpoint;
use crate::error::{excerpt_without_tokens, json_problem};
use crate::http::{HttpRequest, HttpResponse};
use crate::OidcError;

/// The token request for `audience` (the service's default audience, the
/// repository owner's URL, without one).
pub fn github_actions_request(request_url: &str, request_token: &str, audience: Option<&str>) -> Result<HttpRequest, OidcError> {
    check_endpoint("token request URL (ACTIONS_ID_TOKEN_REQUEST_URL)", request_url)?;
    if request_token.is_empty() {
        return Err(OidcError::InvalidInput("the token request token (ACTIONS_ID_TOKEN_REQUEST_TOKEN) is empty".into()));
    }
    let mut url = request_url.to_string();
    if let Some(audience) = audience.filter(|a| !a.is_empty()) {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("audience=");
        url.extend(form_urlencoded::byte_serialize(audience.as_bytes()));
    }
    let mut request = HttpRequest::get(url);
    request.headers.push(("Authorization".into(), format!("Bearer {request_token}")));
    Ok(request)
}

/// The token from the service's answer.
pub fn parse_github_actions_response(response: &HttpResponse) -> Result<String, OidcError> {
    if response.status != 200 {
        let hint = match response.status {
            401 | 403 => "; the request token is refused: does the job have `permissions: id-token: write`, and is the token its own?",
            _ => "",
        };
        return Err(OidcError::InvalidResponse(format!(
            "GitHub Actions' token service answered HTTP {}: {}{hint}",
            response.status,
            excerpt_without_tokens(response)
        )));
    }
    #[derive(Deserialize)]
    struct Answer {
        value: String,
    }
    let answer: Answer = serde_json::from_slice(&response.body)
        .map_err(|e| OidcError::InvalidResponse(format!("GitHub Actions' token service answered {}, not {{\"value\": TOKEN}}", json_problem(&e))))?;
    if answer.value.trim().is_empty() {
        return Err(OidcError::InvalidResponse("GitHub Actions' token service answered an empty token".into()));
    }
    Ok(answer.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse { status, headers: vec![], body: body.as_bytes().to_vec() }
    }

    #[test]
    fn the_request_adds_the_audience_to_the_url_and_the_bearer_header() {
        let r = github_actions_request("https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0", "rt", Some("sts.example.org/x y")).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.url, "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0&audience=sts.example.org%2Fx+y");
        assert!(r.headers.contains(&("Authorization".into(), "Bearer rt".into())));
        let r = github_actions_request("http://127.0.0.1:8080/token", "rt", None).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:8080/token");
    }

    #[test]
    fn plain_http_off_loopback_and_an_empty_request_token_are_refused() {
        assert!(matches!(github_actions_request("http://example.org/token", "rt", None), Err(OidcError::InvalidInput(_))));
        assert!(matches!(github_actions_request("https://example.org/token", "", None), Err(OidcError::InvalidInput(_))));
    }

    #[test]
    fn the_answer_gives_the_token_and_refusals_say_what_to_check() {
        assert_eq!(parse_github_actions_response(&response(200, r#"{"count":1,"value":"eyJ.a.b"}"#)).unwrap(), "eyJ.a.b");
        let e = parse_github_actions_response(&response(403, "forbidden")).unwrap_err().to_string();
        assert!(e.contains("HTTP 403") && e.contains("id-token: write"), "{e}");
        let e = parse_github_actions_response(&response(200, r#"{"value":""}"#)).unwrap_err().to_string();
        assert!(e.contains("empty token"), "{e}");
        let e = parse_github_actions_response(&response(200, r#"{"value":42}"#)).unwrap_err().to_string();
        assert!(!e.contains("42") && e.contains("not {\"value\": TOKEN}"), "{e}");
    }
}
