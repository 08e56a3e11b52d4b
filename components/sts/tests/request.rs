//! Building the AssumeRoleWithWebIdentity request, checking its inputs, and
//! deriving the role session name.

use lakeport_sts::{encode_form, session_name, AssumeRoleRequest, StsError};

const ROLE: &str = "arn:aws:iam::123456789012:role/scientist";

fn request(token: &str) -> AssumeRoleRequest {
    AssumeRoleRequest::new("https://sts.example.org/", ROLE, token)
}

fn body(req: &AssumeRoleRequest) -> String {
    String::from_utf8(req.http_request().unwrap().body).unwrap()
}

fn invalid_input(req: &AssumeRoleRequest) -> String {
    match req.http_request() {
        Err(StsError::InvalidInput(m)) => m,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[test]
fn exact_form_body_and_headers() {
    let mut req = request("header.payload.sig");
    req.subject = Some("alice".into());
    let http = req.http_request().unwrap();
    assert_eq!(http.method, "POST");
    assert_eq!(http.url, "https://sts.example.org/");
    assert_eq!(
        http.headers,
        vec![
            ("Content-Type".to_string(), "application/x-www-form-urlencoded; charset=utf-8".to_string()),
            ("Content-Length".to_string(), http.body.len().to_string()),
            ("Accept".to_string(), "application/xml".to_string()),
        ]
    );
    assert_eq!(http.body.len(), 170);
    assert_eq!(
        String::from_utf8(http.body).unwrap(),
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15\
         &RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fscientist\
         &RoleSessionName=alice&WebIdentityToken=header.payload.sig"
    );
}

#[test]
fn all_optional_fields_in_order() {
    let mut req = request("t");
    req.session_name = Some("analysis@cluster".into());
    req.subject = Some("ignored-when-explicit".into());
    req.duration_seconds = Some(3600);
    req.policy = Some(r#"{"Version": "2012-10-17"}"#.into());
    req.provider_id = Some("www.example.org".into());
    assert_eq!(
        body(&req),
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15\
         &RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fscientist\
         &RoleSessionName=analysis%40cluster&WebIdentityToken=t&DurationSeconds=3600\
         &Policy=%7B%22Version%22%3A%20%222012-10-17%22%7D&ProviderId=www.example.org"
    );
    // Empty optional strings are left out like None.
    req.policy = Some(" ".into());
    req.provider_id = Some(String::new());
    req.duration_seconds = None;
    assert!(body(&req).ends_with("&WebIdentityToken=t"), "{}", body(&req));
}

#[test]
fn token_with_plus_slash_equals_and_whitespace() {
    let req = request(" eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.ab+cd/ef==\n");
    assert_eq!(
        body(&req),
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15\
         &RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fscientist\
         &RoleSessionName=lakeport&WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.ab%2Bcd%2Fef%3D%3D"
    );
}

#[test]
fn form_encoding_is_rfc3986() {
    assert_eq!(encode_form(&[("a b", "x+y z~-_.é&=")]), "a%20b=x%2By%20z~-_.%C3%A9%26%3D");
    assert_eq!(encode_form(&[("k", ""), ("l", "1")]), "k=&l=1");
    assert_eq!(encode_form(&[]), "");
}

#[test]
fn input_validation() {
    let good = request("tok");
    assert!(good.validate().is_ok());
    let with = |f: &dyn Fn(&mut AssumeRoleRequest)| {
        let mut r = good.clone();
        f(&mut r);
        r
    };
    let m = invalid_input(&with(&|r| r.endpoint = String::new()));
    assert!(m.starts_with("no sts_endpoint is set"), "{m}");
    for bad in ["sts.example.org", "ftp://sts.example.org/", "https://", "https://sts.example.org/a b", "https://sts.example.org/#x"] {
        let m = invalid_input(&with(&|r| r.endpoint = bad.into()));
        assert!(m.contains("is not an http(s) URL"), "{bad}: {m}");
    }
    let m = invalid_input(&with(&|r| r.endpoint = "https://user:pw@sts.example.org/".into()));
    assert!(!m.contains("pw") && m.contains("user information"), "{m}");
    assert!(with(&|r| r.endpoint = "http://127.0.0.1:5000".into()).validate().is_ok());
    assert!(invalid_input(&with(&|r| r.role_arn = " ".into())).starts_with("no role_arn is set"));
    assert!(invalid_input(&with(&|r| r.web_identity_token = "\n".into())).contains("no OIDC token"));
    for d in [0, 899, 43_201, u32::MAX] {
        let m = invalid_input(&with(&|r| r.duration_seconds = Some(d)));
        assert!(m.contains(&format!("duration_seconds is {d}: AWS STS allows 900 (15 minutes) to 43200 (12 hours)")), "{m}");
    }
    for d in [900, 3600, 43_200] {
        assert!(with(&|r| r.duration_seconds = Some(d)).validate().is_ok());
    }
}

#[test]
fn session_names() {
    // Explicit beats subject; subject beats the fallback.
    assert_eq!(session_name(Some("batch-42"), Some("alice")), "batch-42");
    assert_eq!(session_name(None, Some("alice")), "alice");
    assert_eq!(session_name(None, None), "lakeport");
    // Characters Ceph RGW rejects become one '-' per run, none at the ends.
    assert_eq!(session_name(None, Some("Alice Smith")), "Alice-Smith");
    assert_eq!(session_name(None, Some("https://idp.example.org/users/42")), "https-idp.example.org-users-42");
    assert_eq!(session_name(None, Some("  jörg+müller  ")), "j-rg-m-ller");
    assert_eq!(session_name(None, Some("a_b=c,d.e@f-g")), "a_b=c,d.e@f-g");
    // Nothing usable: the next candidate, then the fallback.
    assert_eq!(session_name(Some("ü ü"), Some("bob")), "bob");
    assert_eq!(session_name(Some(""), Some("///")), "lakeport");
    // Too short: prefixed.
    assert_eq!(session_name(Some("x"), None), "lakeport-x");
    assert_eq!(session_name(None, Some("ä7")), "lakeport-7");
    // Too long: cut at 64.
    let egi = format!("{}@egi.eu", "0123456789abcdef".repeat(4));
    assert_eq!(session_name(None, Some(&egi)), "0123456789abcdef".repeat(4));
    let long = "x".repeat(63) + " tail";
    assert_eq!(session_name(None, Some(&long)), "x".repeat(63) + "-");
    // Deterministic, and always what RGW accepts.
    for input in ["alice", "Alice Smith", "日本語", "a", "", &egi, &long, "--", "@"] {
        let name = session_name(None, Some(input));
        assert_eq!(name, session_name(None, Some(input)));
        assert!((2..=64).contains(&name.len()), "{input:?} → {name:?}");
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_=,.@-".contains(&b)), "{name}");
    }
    let mut req = request("t");
    req.subject = Some("carol".into());
    assert_eq!(req.role_session_name(), "carol");
}
