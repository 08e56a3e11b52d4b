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
        assert_eq!(state.as_str(), text);
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
    assert_eq!(parse_lifetime("7d").unwrap(), 604_800);
    assert_eq!(parse_lifetime("3600").unwrap(), 3600);
    assert_eq!(parse_lifetime("90m").unwrap(), 5400);
    assert_eq!(parse_lifetime("2w").unwrap(), 1_209_600);
    for bad in ["", "0", "7y", "d", "-1d", "99999999999999999999d"] {
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
    let e = error_from_response(&response(502, &[], "<html><body>Bad Gateway</body></html>"));
    assert!(matches!(&e, RucioError::InvalidAnswer(m) if m.contains("502") && m.contains("Bad Gateway")), "{e}");
}
