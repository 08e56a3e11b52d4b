//! The Rucio core's parsers and models against answers in Rucio's formats.

use lakeport_http::HttpResponse;
use lakeport_rucio::*;

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    HttpResponse { status, headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(), body: body.as_bytes().to_vec() }
}

#[test]
fn json_stream_lines_arrive_in_any_pieces() {
    let body = b"{\"scope\":\"user.jdoe\",\"name\":\"a\",\"type\":\"FILE\",\"bytes\":3}\n\n{\"scope\":\"user.jdoe\",\"name\":\"b c\",\"type\":\"DATASET\",\"bytes\":null}\n";
    for cut in [1, 7, 30, body.len()] {
        let mut lines = JsonLines::default();
        let mut got: Vec<DidEntry> = Vec::new();
        for piece in body.chunks(cut) {
            got.extend(lines.push(piece).unwrap());
        }
        got.extend(lines.finish::<DidEntry>().unwrap());
        assert_eq!(got.len(), 2, "cut {cut}");
        assert_eq!(got[1].name, "b c");
        assert_eq!(got[1].did_type, Some(DidType::Dataset));
        assert_eq!(got[0].bytes, Some(3));
    }
    // A last line without its newline, and a plain JSON array, parse too.
    let names: Vec<String> = parse_all(b"\"a\"\n\"b\"").unwrap();
    assert_eq!(names, ["a", "b"]);
    let names: Vec<String> = parse_all(b" [\"a\", \"b\"]").unwrap();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn a_broken_line_names_its_number() {
    let err = parse_all::<DidEntry>(b"{\"scope\":\"s\",\"name\":\"a\",\"type\":\"FILE\"}\n{\"scope\": tru\n").unwrap_err();
    assert!(matches!(&err, RucioError::InvalidAnswer(m) if m.contains("line 2")), "{err}");
    let mut lines = JsonLines::default();
    let long = vec![b'x'; stream::MAX_LINE_BYTES + 1];
    assert!(lines.push::<String>(&long).is_err(), "an endless line is refused, not buffered");
}

#[test]
fn rule_states_and_rules_parse() {
    let rule: Rule = serde_json::from_str(
        r#"{"id":"7b1a","account":"jdoe","scope":"user.jdoe","name":"ds","state":"REPLICATING","rse_expression":"SITE-B",
            "copies":1,"expires_at":"Mon, 30 Nov 2026 12:00:00 UTC","locks_ok_cnt":1,"locks_replicating_cnt":2,"locks_stuck_cnt":0,
            "grouping":"DATASET","something_new":[1,2]}"#,
    )
    .unwrap();
    assert_eq!(rule.state, RuleState::Replicating);
    assert_eq!(rule.did().to_string(), "user.jdoe:ds");
    for (text, state) in [("OK", RuleState::Ok), ("STUCK", RuleState::Stuck), ("SUSPENDED", RuleState::Suspended), ("WAITING_APPROVAL", RuleState::WaitingApproval), ("INJECT", RuleState::Inject)] {
        assert_eq!(serde_json::from_str::<RuleState>(&format!("\"{text}\"")).unwrap(), state);
        assert_eq!(serde_json::to_value(state).unwrap(), text);
    }
    assert!(serde_json::from_str::<RuleState>("\"BROKEN\"").is_err());
}

#[test]
fn dids_parse_with_and_without_a_default_scope() {
    assert_eq!(Did::parse("user.jdoe:run 42.h5", None).unwrap(), Did { scope: "user.jdoe".into(), name: "run 42.h5".into() });
    assert_eq!(Did::parse("ds", Some("user.jdoe")).unwrap().to_string(), "user.jdoe:ds");
    assert!(Did::parse("ds", None).is_err());
    assert!(Did::parse(":ds", None).is_err());
    assert!(Did::parse("scope:", None).is_err());
}

#[test]
fn lifetimes() {
    assert_eq!(parse_lifetime("7d").unwrap(), Some(604_800));
    assert_eq!(parse_lifetime("3600").unwrap(), Some(3600));
    assert_eq!(parse_lifetime("90m").unwrap(), Some(5400));
    assert_eq!(parse_lifetime("2w").unwrap(), Some(1_209_600));
    assert_eq!(parse_lifetime(" Never ").unwrap(), None, "no expiry");
    for bad in ["", "0", "7y", "d", "-1d", "99999999999999999999d", "nevermore"] {
        assert!(parse_lifetime(bad).is_err(), "{bad}");
    }
}

#[test]
fn rucio_errors_say_what_happened_and_what_to_do() {
    let e = error_from_response(&response(
        409,
        &[("ExceptionClass", "DuplicateRule")],
        r#"{"ExceptionClass": "DuplicateRule", "ExceptionMessage": "A duplicate rule for this account, did, rse_expression, copies already exists."}"#,
    ));
    assert_eq!(e.class(), Some("DuplicateRule"));
    let text = e.to_string();
    assert!(text.contains("HTTP 409") && text.contains("already exists") && text.contains("rule list"), "{text}");

    // A HEAD-like answer: the class in the headers only.
    let e = error_from_response(&response(401, &[("ExceptionClass", "CannotAuthenticate"), ("ExceptionMessage", "Cannot authenticate.")], ""));
    assert!(e.to_string().contains("rucio_username"), "{e}");

    // A proxy's page is not a Rucio error, and says so.
    let e = error_from_response(&response(404, &[], "<html><body>Not Found</body></html>"));
    assert!(matches!(&e, RucioError::InvalidAnswer(m) if m.contains("404") && m.contains("Not Found") && m.contains("Rucio server?")), "{e}");
}

#[test]
fn userpass_tokens_and_their_expiry_come_from_the_headers() {
    let ok = response(200, &[("X-Rucio-Auth-Token", "root-abc-123"), ("X-Rucio-Auth-Token-Expires", "Tue, 24 Nov 2026 18:00:00 UTC")], "");
    let t = parse_userpass(&ok).unwrap();
    assert_eq!(t.token, "root-abc-123");
    assert_eq!(t.expires_at, Some(1_795_543_200));
    assert!(parse_userpass(&response(200, &[], "")).is_err(), "no token is an error, not an empty token");
    let denied = response(401, &[], r#"{"ExceptionClass": "CannotAuthenticate", "ExceptionMessage": "Cannot authenticate to account root with given credentials"}"#);
    assert_eq!(parse_userpass(&denied).unwrap_err().class(), Some("CannotAuthenticate"));
}

#[test]
fn requests_carry_the_token_and_encode_names() {
    let mut r = RucioRequests::new("https://rucio.example/", Some("https://rucio-auth.example"), "jdoe", None).unwrap();
    let login = r.userpass("jdoe", "pw");
    assert_eq!(login.url, "https://rucio-auth.example/auth/userpass");
    assert!(login.headers.iter().any(|(n, v)| n == "X-Rucio-Password" && v == "pw"));
    r.set_token("tok");
    let q = r.get_rule("a/b c");
    assert_eq!(q.url, "https://rucio.example/rules/a%2Fb%20c");
    assert!(q.headers.iter().any(|(n, v)| n == "X-Rucio-Auth-Token" && v == "tok"));
    let search = r.search_dids("user.jdoe", &[("name".into(), "run *".into())], false);
    assert_eq!(search.url, "https://rucio.example/dids/user.jdoe/dids/search?name=run+*&type=all&long=True");
    let rule = RuleRequest {
        dids: vec![Did::parse("user.jdoe:ds", None).unwrap()],
        copies: 1,
        rse_expression: "SITE-B".into(),
        lifetime: Some(604_800),
        ..RuleRequest::default()
    };
    let add = r.add_rule(&rule).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&add.body).unwrap();
    assert_eq!(body["dids"], serde_json::json!([{ "scope": "user.jdoe", "name": "ds" }]));
    assert_eq!((body["lifetime"].as_u64(), body["account"].as_str(), body["grouping"].as_str()), (Some(604_800), Some("jdoe"), Some("DATASET")));
    assert!(r.add_rule(&RuleRequest { rse_expression: "X".into(), ..RuleRequest::default() }).is_err());
    assert!(RucioRequests::new("rucio.example", None, "jdoe", None).is_err());
    assert!(RucioRequests::new("https://rucio.example", None, "", None).is_err());
}

#[test]
fn whoami_follows_the_redirect_on_the_same_host_only() {
    let r = RucioRequests::new("http://127.0.0.1:8080", None, "jdoe", None).unwrap();
    let Whoami::Redirect(location) = parse_whoami(&response(303, &[("Location", "jdoe")], "")).unwrap() else { panic!("a redirect") };
    assert_eq!(r.follow_whoami(&location).unwrap().url, "http://127.0.0.1:8080/accounts/jdoe", "Rucio's relative Location");
    assert_eq!(r.follow_whoami("/accounts/jdoe").unwrap().url, "http://127.0.0.1:8080/accounts/jdoe");
    assert_eq!(r.follow_whoami("http://127.0.0.1:8080/accounts/jdoe").unwrap().url, "http://127.0.0.1:8080/accounts/jdoe");
    assert!(r.follow_whoami("http://elsewhere.example/accounts/jdoe").is_err());
    match parse_whoami(&response(200, &[], r#"{"account":"jdoe","account_type":"USER","status":"ACTIVE","email":null}"#)).unwrap() {
        Whoami::Account(a) => assert_eq!(a.account, "jdoe"),
        Whoami::Redirect(_) => panic!("an account"),
    }
}

fn rule(id: &str, account: &str, expr: &str, state: RuleState, expires: Option<&str>) -> Rule {
    serde_json::from_value(serde_json::json!({
        "id": id, "account": account, "scope": "s", "name": "ds", "state": state, "rse_expression": expr,
        "copies": 1, "expires_at": expires,
    }))
    .unwrap()
}

#[test]
fn make_available_reuses_the_accounts_matching_rule() {
    let rules = vec![
        rule("other-account", "alice", "SITE-B", RuleState::Ok, None),
        rule("stuck", "jdoe", "SITE-B", RuleState::Stuck, None),
        rule("replicating", "jdoe", "SITE-B", RuleState::Replicating, None),
        rule("other-rse", "jdoe", "SITE-A", RuleState::Ok, None),
    ];
    assert_eq!(matching_rule(&rules, "jdoe", "SITE-B").unwrap().id, "replicating");
    assert_eq!(matching_rule(&rules, "jdoe", "SITE-A").unwrap().id, "other-rse");
    assert!(matching_rule(&rules, "jdoe", "SITE-C").is_none());

    // 2026-11-24 18:00 UTC.
    let soon = rule("r", "jdoe", "X", RuleState::Ok, Some("Tue, 24 Nov 2026 18:00:00 UTC"));
    let now = 1_795_543_200 - 3600;
    assert!(needs_extension(&soon, Some(7 * 86_400), now), "expires within the week asked for");
    assert!(!needs_extension(&soon, Some(600), now), "lives longer than asked");
    assert!(needs_extension(&soon, None, now), "asked to never expire");
    assert!(!needs_extension(&rule("r", "jdoe", "X", RuleState::Ok, None), Some(600), now), "never expires");
}

#[test]
fn a_plain_text_500_is_rucios_failure_said_as_such() {
    let e = error_from_response(&response(500, &[("Content-Type", "text/html; charset=utf-8")], "'bytes'"));
    assert!(matches!(&e, RucioError::InvalidAnswer(m) if m.contains("Rucio server failed (HTTP 500): 'bytes'")), "{e}");
}

#[test]
fn pfns_become_s3_targets() {
    let t = pfn_target("s3://127.0.0.1:9000/rucio-site-a/user/jdoe/c4/96/run 1.h5").unwrap();
    assert_eq!(
        (t.scheme.as_str(), t.authority.as_str(), t.bucket.as_str(), t.key.as_str()),
        ("s3", "127.0.0.1:9000", "rucio-site-a", "user/jdoe/c4/96/run 1.h5")
    );
    assert_eq!(pfn_target("https://s3.example//bucket/k").unwrap().bucket, "bucket");
    for bad in ["root://xrd.example:1094//data/f", "s3://host/bucket-only", "not a url", "s3:///bucket/key"] {
        let e = pfn_target(bad).unwrap_err();
        assert!(e.to_string().contains("cannot upload to the PFN"), "{bad}: {e}");
    }
    assert!(same_adler32("0cc737eb", "CC737EB"));
    assert!(!same_adler32("0cc737eb", "0cc737ec"));
}
