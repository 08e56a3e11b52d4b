//! The STS answer parser on real and realistic answers: each dialect's
//! success, both error layouts, and what proxies and broken servers send.
//! Fixtures (tests/fixtures/):
//! - aws.xml, aws-error.xml, aws-expired.xml: AWS's documented shapes;
//! - ceph-rgw.xml, ceph-rgw-error.xml: in the element order Ceph RGW writes
//!   (SubjectFromWebIdentityToken, Audience, AssumedRoleUser{Arn,
//!   AssumeRoleId}, Credentials{AccessKeyId, Expiration, SecretAccessKey,
//!   SessionToken}, Provider, PackedPolicySize; errors as a bare <Error>);
//! - minio.xml, minio-error.xml: MinIO's shapes (empty Arn/AssumeRoleId);
//! - moto*: captured with curl from `moto_server` 5.2.5: moto.xml (200,
//!   text/xml); moto-validation-error.xml (400, text/xml; a signed
//!   AssumeRole with a 65-character session name, as moto raises no error
//!   for AssumeRoleWithWebIdentity); moto-missing-role-arn.html (500,
//!   text/html; moto crashes without RoleArn); moto-unrouted.xml (200,
//!   application/xml; without the form content type moto answers as S3);
//! - errors-list.xml: `<ErrorResponse><Errors><Error>` with `RequestID`;
//! - proxy-502.html: nginx's 502 page.

use lakeport_sts::{parse_assume_role_response, Credentials, StsError};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(status: u16, ct: Option<&str>, body: &[u8]) -> Result<Credentials, StsError> {
    parse_assume_role_response(status, ct, body)
}

fn ok(name: &str, ct: &str) -> Credentials {
    parse(200, Some(ct), &fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn invalid_response(status: u16, ct: Option<&str>, body: &[u8]) -> String {
    match parse(status, ct, body) {
        Err(StsError::InvalidResponse(m)) => m,
        other => panic!("expected an invalid response for {:?}, got {other:?}", String::from_utf8_lossy(body)),
    }
}

/// No error text and no Debug output may hold a secret.
fn assert_hidden(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{text:?} reveals {s:?}");
    }
}

#[test]
fn aws_documented_response() {
    let c = ok("aws.xml", "text/xml");
    assert_eq!(c.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
    assert_eq!(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    assert_eq!(c.session_token, "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE");
    assert_eq!(c.expiration, 1_414_191_623);
    assert_eq!(c.assumed_role_id.as_deref(), Some("AROACLKWSDQRAOEXAMPLE:app1"));
    assert_eq!(c.assumed_role_arn.as_deref(), Some("arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1"));
    assert_eq!(c.subject.as_deref(), Some("amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A"));
    assert_eq!(c.audience.as_deref(), Some("client.5498841531868486423.1548@apps.example.com"));
    assert_eq!(c.provider.as_deref(), Some("www.amazon.com"));
    assert_eq!(c.packed_policy_size, None);
    assert_eq!(c.request_id.as_deref(), Some("ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE"));
}

#[test]
fn ceph_rgw_response() {
    let c = ok("ceph-rgw.xml", "application/xml");
    assert_eq!(c.access_key_id, "Q3VNZ2F0ZWtleXMxMjM0");
    assert_eq!(c.secret_access_key, "K7ZP2M4QW9XR3TY6UV8NB1CD5EF0GH2JL4KM6NP8");
    assert!(c.session_token.starts_with("djIuQUVBRC1r") && c.session_token.ends_with("ZXN0cw=="));
    // 2024-05-01T13:00:00.123456789Z: nanoseconds dropped.
    assert_eq!(c.expiration, 1_714_568_400);
    assert_eq!(c.assumed_role_id.as_deref(), Some("e6c1e2d4-8f0a-4b7e-9d3c-2a1f5b6c7d8e:alice"));
    assert_eq!(c.assumed_role_arn.as_deref(), Some("arn:aws:sts::testtenant:assumed-role/S3Access/alice"));
    assert_eq!(c.subject.as_deref(), Some("5f3c1e0a-9b7d-4c62-8e21-0d4b6a9f7c35"));
    assert_eq!(c.audience.as_deref(), Some("lakeport-cli"));
    assert_eq!(c.provider.as_deref(), Some("keycloak.example.org/realms/science"));
    assert_eq!(c.packed_policy_size, Some(0));
    assert_eq!(c.request_id, None);
}

#[test]
fn minio_response() {
    let c = ok("minio.xml", "application/xml");
    assert_eq!(c.access_key_id, "VX3N8TQ2LM5RZ7KJ1WPD");
    assert_eq!(c.secret_access_key, "u5Yq+TzR2mWcP8kL0vXb3nHs7JdF1gQe6aCiO9tB");
    assert!(c.session_token.starts_with("eyJhbGciOiJIUzUxMiIs"));
    assert_eq!(c.expiration, 1_714_564_800);
    // MinIO sends empty Arn and AssumeRoleId.
    assert_eq!((c.assumed_role_id, c.assumed_role_arn), (None, None));
    assert_eq!(c.subject.as_deref(), Some("alice"));
    assert_eq!(c.request_id.as_deref(), Some("17C9A3B5D2E4F601"));
}

#[test]
fn moto_captured_response() {
    let c = ok("moto.xml", "text/xml");
    assert_eq!(c.access_key_id, "ASIARZPUZDIKM64R4CL4");
    assert_eq!(c.secret_access_key, "p8s3mz/05OEEQKDLR2qBjDk5Lh1K0zz7MYvkJOYd");
    assert!(c.session_token.starts_with("FQoGZXIvYXdzEBYa") && c.session_token.ends_with("Bj0="));
    // 2026-11-23T12:26:41.274168Z: microseconds.
    assert_eq!(c.expiration, 1_795_436_801);
    assert_eq!(c.assumed_role_id.as_deref(), Some("ARO123EXAMPLE123:alice"));
    assert_eq!(c.assumed_role_arn.as_deref(), Some("arn:aws:sts::123456789012:assumed-role/scientist/alice"));
    assert_eq!(c.packed_policy_size, Some(6));
    assert_eq!(c.subject, None);
}

#[test]
fn namespaces_prefixes_order_and_unknown_elements() {
    let body = br#"<?xml version="1.0"?>
        <!-- a comment -->
        <sts:AssumeRoleWithWebIdentityResponse xmlns:sts="https://sts.amazonaws.com/doc/2011-06-15/">
          <sts:AssumeRoleWithWebIdentityResult>
            <sts:Unknown><sts:AccessKeyId>NOT-THIS-ONE</sts:AccessKeyId></sts:Unknown>
            <sts:Credentials>
              <sts:Expiration>2024-05-01T14:00:00+02:00</sts:Expiration>
              <sts:SessionToken><![CDATA[tok/en+]]>&#61;&#x3D;</sts:SessionToken>
              <sts:Extra attr="1"/>
              <sts:SecretAccessKey>
                sec&amp;ret
              </sts:SecretAccessKey>
              <sts:AccessKeyId>AKID</sts:AccessKeyId>
            </sts:Credentials>
          </sts:AssumeRoleWithWebIdentityResult>
        </sts:AssumeRoleWithWebIdentityResponse>
    "#;
    let c = parse(200, None, body).unwrap();
    assert_eq!((c.access_key_id.as_str(), c.secret_access_key.as_str(), c.session_token.as_str()), ("AKID", "sec&ret", "tok/en+=="));
    assert_eq!(c.expiration, 1_714_564_800);
    // A byte order mark and a token wrapped over lines.
    let wrapped = b"\xEF\xBB\xBF<R><X><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>\
        <SessionToken>abc\n  def\r\n</SessionToken><Expiration>2024-05-01T12:00:00Z</Expiration></Credentials></X></R>";
    assert_eq!(parse(200, None, wrapped).unwrap().session_token, "abcdef");
}

#[test]
fn timestamps_with_0_3_6_9_digits_and_offsets() {
    for (expiration, unix) in [
        ("2024-05-01T12:00:00Z", 1_714_564_800),
        ("2024-05-01T12:00:00.123Z", 1_714_564_800),
        ("2024-05-01T12:00:00.123456Z", 1_714_564_800),
        ("2024-05-01T12:00:00.123456789Z", 1_714_564_800),
        ("2024-05-01T14:00:00.5+02:00", 1_714_564_800),
        ("2024-05-01T07:00:00-05:00", 1_714_564_800),
    ] {
        let body = format!(
            "<R><Result><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>\
             <SessionToken>T</SessionToken><Expiration>{expiration}</Expiration></Credentials></Result></R>"
        );
        assert_eq!(parse(200, None, body.as_bytes()).unwrap().expiration, unix, "{expiration}");
    }
    let bad = "<R><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>\
               <SessionToken>T</SessionToken><Expiration>2024-05-01 12:00:00</Expiration></Credentials></R>";
    assert_eq!(
        invalid_response(200, None, bad.as_bytes()),
        "the STS answer's Expiration '2024-05-01 12:00:00' is not an RFC 3339 timestamp"
    );
    let weird = bad.replace("2024-05-01 12:00:00", "tomorrow");
    assert_eq!(invalid_response(200, None, weird.as_bytes()), "the STS answer's Expiration is not an RFC 3339 timestamp");
}

#[test]
fn error_response_layouts() {
    let e = parse(400, Some("text/xml"), &fixture("aws-error.xml")).unwrap_err();
    let StsError::Sts { code, message, status, request_id } = &e else { panic!("{e:?}") };
    assert_eq!((code.as_str(), *status), ("InvalidIdentityToken", 400));
    assert_eq!(
        message,
        "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements"
    );
    assert_eq!(request_id.as_deref(), Some("c6104cbe-af31-11e0-8154-cbc7ccf896c7"));
    assert!(e.to_string().contains("check role_arn, and that the role's trust policy accepts this token's issuer and audience"), "{e}");

    let e = parse(400, Some("text/xml"), &fixture("aws-expired.xml")).unwrap_err();
    assert_eq!(e.code(), Some("ExpiredTokenException"));
    assert!(e.to_string().contains("get a fresh token"), "{e}");

    let e = parse(503, Some("text/xml"), &fixture("errors-list.xml")).unwrap_err();
    assert_eq!(
        e,
        StsError::Sts {
            code: "Throttling".into(),
            message: "Rate exceeded".into(),
            status: 503,
            request_id: Some("5e2f0c7a-1d3b-4e9f-8a6c-7b0d2e4f1a3c".into())
        }
    );
    assert!(e.to_string().contains("wait a little and try again"), "{e}");

    let e = parse(403, Some("application/xml"), &fixture("ceph-rgw-error.xml")).unwrap_err();
    assert_eq!(
        e,
        StsError::Sts {
            code: "AccessDenied".into(),
            message: String::new(),
            status: 403,
            request_id: Some("tx00000a1b2c3d4e5f60718-0065f1e2d3-4a5b-default".into())
        }
    );
    assert!(e.to_string().starts_with("STS refused (HTTP 403, AccessDenied): the token was not accepted for this role; likely causes: role_arn"), "{e}");

    let e = parse(400, Some("application/xml"), &fixture("minio-error.xml")).unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterValue"));
    assert!(e.to_string().contains("Role arn:minio:iam:::role/missing does not exist; check role_arn, duration_seconds"), "{e}");

    let e = parse(400, Some("text/xml"), &fixture("moto-validation-error.xml")).unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    assert!(e.to_string().contains("Member must have length less than or equal to 64"), "{e}");

    // An error document wins even with a 200, and a message without a code still counts.
    let e = parse(200, None, b"<Error><Message>nope</Message></Error>").unwrap_err();
    assert_eq!(e.code(), Some("UnknownError"));
}

#[test]
fn what_proxies_and_broken_servers_send() {
    let m = invalid_response(502, Some("text/html"), &fixture("proxy-502.html"));
    assert_eq!(
        m,
        "the STS endpoint answered HTTP 502 (text/html) with an HTML page instead of STS XML (often a proxy's error page); \
         a proxy or load balancer could not reach the STS service: try again later, or check sts_endpoint"
    );
    // Sniffed without a content type too.
    assert!(invalid_response(502, None, &fixture("proxy-502.html")).contains("an HTML page"));
    let m = invalid_response(500, Some("text/html; charset=utf-8"), &fixture("moto-missing-role-arn.html"));
    assert!(m.starts_with("the STS endpoint answered HTTP 500 (text/html) with an HTML page"), "{m}");
    let m = invalid_response(200, Some("application/xml"), &fixture("moto-unrouted.xml"));
    assert_eq!(
        m,
        "the STS endpoint answered HTTP 200 (application/xml) with XML without credentials (an S3 bucket listing: sts_endpoint \
         points at S3, or the server did not take the request for STS); check that sts_endpoint is the STS service"
    );
    assert_eq!(
        invalid_response(200, None, b""),
        "the STS endpoint answered HTTP 200 with an empty body; check that sts_endpoint is the STS service"
    );
    assert!(invalid_response(504, None, b" \r\n").contains("with an empty body; a proxy or load balancer"));
    assert!(invalid_response(301, None, b"").contains("a redirect: set sts_endpoint to the final URL"));
    let aws = fixture("aws.xml");
    let m = invalid_response(200, Some("text/xml"), &aws[..aws.len() / 2]);
    assert!(m.contains("truncated XML"), "{m}");
    for cut in [1, 10, 100, 500, 1000, aws.len() - 2] {
        assert!(invalid_response(200, None, &aws[..cut]).contains("truncated XML"), "cut at {cut}");
    }
    assert!(invalid_response(200, Some("text/plain"), b"Service Unavailable").contains("a body that is not XML"));
    assert!(invalid_response(400, Some("application/json"), br#"{"error":"x"}"#).contains("JSON instead of STS XML"));
    assert!(invalid_response(200, None, b"<a><b></a></b>").contains("malformed XML"));
    assert!(invalid_response(200, None, b"<a/><b/>").contains("malformed XML"));
    assert!(invalid_response(200, None, b"<a>&bogus;</a>").contains("malformed XML"));
    assert!(invalid_response(200, None, b"<a>\xff\xfe</a>").contains("not UTF-8"));
    assert!(invalid_response(200, None, b"<AssumeRoleWithWebIdentityResponse/>").contains("XML without credentials"));
    assert!(invalid_response(500, None, b"<Oops/>").contains("XML that holds no STS error; the server failed"));
    let deep = "<a>".repeat(100) + &"</a>".repeat(100);
    assert!(invalid_response(200, None, deep.as_bytes()).contains("malformed XML"));
}

#[test]
fn incomplete_or_doubled_credentials() {
    let creds = |inner: &str| format!("<R><Result><Credentials>{inner}</Credentials></Result></R>");
    let full = "<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken><Expiration>2024-05-01T12:00:00Z</Expiration>";
    assert!(parse(200, None, creds(full).as_bytes()).is_ok());
    for (element, remove) in [
        ("AccessKeyId", "<AccessKeyId>A</AccessKeyId>"),
        ("SecretAccessKey", "<SecretAccessKey>S</SecretAccessKey>"),
        ("SessionToken", "<SessionToken>T</SessionToken>"),
        ("Expiration", "<Expiration>2024-05-01T12:00:00Z</Expiration>"),
    ] {
        let m = invalid_response(200, None, creds(&full.replace(remove, "")).as_bytes());
        assert!(m.ends_with(&format!("has credentials without {element}; the STS service or a proxy is misbehaving")), "{m}");
        let emptied = full.replace(remove, &format!("<{element}> </{element}>"));
        assert!(invalid_response(200, None, creds(&emptied).as_bytes()).contains(element));
    }
    let m = invalid_response(200, None, creds("<SessionToken>T</SessionToken>").as_bytes());
    assert!(m.contains("without AccessKeyId, SecretAccessKey, Expiration"), "{m}");
    let doubled = full.to_string() + "<SecretAccessKey>S2</SecretAccessKey>";
    assert!(invalid_response(200, None, creds(&doubled).as_bytes()).contains("more than one SecretAccessKey"));
    let binary = full.replace("<AccessKeyId>A</AccessKeyId>", "<AccessKeyId>A&#1;B</AccessKeyId>");
    assert!(invalid_response(200, None, creds(&binary).as_bytes()).contains("AccessKeyId holds characters"));
    // Credentials outside a Credentials element are not credentials.
    let loose = full.to_string();
    assert!(invalid_response(200, None, format!("<R>{loose}</R>").as_bytes()).contains("XML without credentials"));
}

#[test]
fn secrets_never_leak() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    let token = "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE";
    let aws = String::from_utf8(fixture("aws.xml")).unwrap();
    let c = parse(200, None, aws.as_bytes()).unwrap();
    let debug = format!("{c:?} {c:#?}");
    assert_hidden(&debug, &[secret, token]);
    assert!(debug.contains("ASgeIAIOSFODNN7EXAMPLE") && debug.contains("<redacted>"));

    // Every way of failing on a body that holds the secrets.
    let broken = [
        aws.replace("<AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>", ""),
        aws.replace("2014-10-24T23:00:23Z", "not-a-time"),
        aws.replace("</AssumeRoleWithWebIdentityResponse>", ""),
        aws.replace("<Provider>", "<Provider><Provider>"),
        aws.replace("</Credentials>", &format!("<SessionToken>{token}</SessionToken></Credentials>")),
        aws[..aws.find("</SessionToken>").unwrap()].to_string(),
        format!("<html><body>{aws}</body></html>"),
        format!("garbage {aws}"),
        aws.replace("<SourceIdentity>", "<SourceIdentity>&bogus;"),
        aws.replace("<Credentials>", "<Credentials>&bogus;"),
    ];
    for (i, body) in broken.iter().enumerate() {
        for status in [200, 400, 502] {
            let e = parse(status, Some("text/xml"), body.as_bytes()).expect_err(&format!("case {i}"));
            assert!(!matches!(e, StsError::Sts { .. }), "case {i}: {e:?}");
            assert_hidden(&format!("{e} {e:?}"), &[secret, token]);
        }
    }

    // A request that fails keeps its token out of errors and Debug.
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    let mut req = lakeport_sts::AssumeRoleRequest::new("https://sts.example.org/", "arn:aws:iam::1:role/r", jwt);
    assert_hidden(&format!("{req:?}"), &[jwt]);
    req.duration_seconds = Some(10);
    assert_hidden(&req.http_request().unwrap_err().to_string(), &[jwt]);
    req.duration_seconds = None;
    let echo = lakeport_sts::HttpResponse {
        status: 400,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body: format!("<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad token {jwt}</Message></Error></ErrorResponse>")
            .into_bytes(),
    };
    let e = req.parse_response(&echo).unwrap_err();
    assert_eq!(e.code(), Some("InvalidIdentityToken"));
    assert_hidden(&format!("{e} {e:?}"), &[jwt]);
    assert!(e.to_string().contains("bad token [redacted]"), "{e}");
}
