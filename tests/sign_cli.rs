//! `lakeport sign` / `presign` / `components` as scripts use them: the
//! output contract, one-line errors with non-zero exits, no secrets in
//! diagnostics, and the compiled-component cache.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::process::Output;

use support::Lakeport;

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN/+=";

fn with_keys<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--access-key", AK, "--secret-key", SK]);
    all
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "lakeport failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// A failure is one line on stderr, starting with `lakeport: error:`, with a
/// non-zero exit, nothing on stdout, and no panic.
fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("lakeport: error: "), "{stderr}");
    assert!(stderr.contains(needle), "{stderr:?} should mention {needle:?}");
}

#[test]
fn json_output_has_the_documented_fields() {
    let lp = Lakeport::new();
    let out = lp.output(
        &with_keys(&[
            "sign", "--output", "json", "--time", "20130524T000000Z", "-H", "Range: bytes=0-9",
            "GET", "https://examplebucket.s3.amazonaws.com/test.txt",
        ]),
    );
    let doc = json(&out);
    assert_eq!(doc["signature"], "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert_eq!(doc["signed_headers"], "host;range;x-amz-content-sha256;x-amz-date");
    assert!(doc["canonical_request"].as_str().unwrap().starts_with("GET\n/test.txt\n"));
    assert!(doc["string_to_sign"].as_str().unwrap().starts_with("AWS4-HMAC-SHA256\n20130524T000000Z\n"));
    assert_eq!(doc["url"], "https://examplebucket.s3.amazonaws.com/test.txt");
    let auth = doc["authorization"].as_str().unwrap();
    assert!(auth.ends_with("Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
    let headers = doc["headers"].as_array().unwrap();
    let names: Vec<&str> = headers.iter().map(|h| h[0].as_str().unwrap()).collect();
    assert_eq!(names, ["Host", "Range", "X-Amz-Date", "X-Amz-Content-SHA256", "Authorization"]);
    assert_eq!(headers.last().unwrap()[1], auth);
}

#[test]
fn headers_keep_order_join_repeats_and_collapse_whitespace() {
    let lp = Lakeport::new();
    let out = lp.output(
        &with_keys(&[
            "sign", "--output", "json", "--time", "20150830T123600Z",
            "-H", "X-B: two", "-H", "x-a:   spaced    out\n   folded", "-H", "X-B: one",
            "PUT", "http://127.0.0.1:9000/bucket/key",
        ]),
    );
    let doc = json(&out);
    let headers: Vec<(String, String)> = doc["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
        .collect();
    assert_eq!(headers[0], ("Host".into(), "127.0.0.1:9000".into()), "host carries a non-default port");
    assert_eq!(headers[1], ("X-B".into(), "two,one".into()));
    assert_eq!(headers[2], ("x-a".into(), "spaced out folded".into()));
    let canonical = doc["canonical_request"].as_str().unwrap();
    assert!(canonical.contains("\nhost:127.0.0.1:9000\nx-a:spaced out folded\n"), "{canonical}");
    assert!(canonical.contains("x-b:two,one\n"), "{canonical}");
    // The default port is dropped.
    let doc = json(&lp.output(&with_keys(&["sign", "--output", "json", "GET", "https://h.example:443/b"])));
    assert_eq!(doc["headers"][0][1], "h.example");
}

#[test]
fn payload_choices() {
    let lp = Lakeport::new();
    let body = lp.cache_dir().join("body");
    std::fs::write(&body, "Welcome to Amazon S3.").unwrap();
    let url = "https://examplebucket.s3.amazonaws.com/test$file.text";
    let signed = json(&lp.output(
        &with_keys(&[
            "sign", "--output", "json", "--time", "20130524T000000Z", "--body-file", body.to_str().unwrap(),
            "-H", "Date: Fri, 24 May 2013 00:00:00 GMT", "-H", "x-amz-storage-class: REDUCED_REDUNDANCY", "PUT", url,
        ]),
    ));
    assert_eq!(signed["signature"], "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    assert_eq!(signed["payload_hash"], "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    let unsigned = json(&lp.output(&with_keys(&["sign", "--output", "json", "--unsigned-payload", "PUT", url])));
    assert_eq!(unsigned["payload_hash"], "UNSIGNED-PAYLOAD");
    assert!(unsigned["headers"].to_string().contains("[\"X-Amz-Content-SHA256\",\"UNSIGNED-PAYLOAD\"]"));
    // Other services send x-amz-content-sha256 only when asked.
    let generic = json(&lp.output(&with_keys(&["sign", "--output", "json", "--service", "execute-api", "GET", "https://h/a"])));
    assert!(!generic["signed_headers"].as_str().unwrap().contains("x-amz-content-sha256"));
    let generic = json(&lp.output(
        &with_keys(&["sign", "--output", "json", "--service", "execute-api", "--sign-body", "GET", "https://h/a"]),
    ));
    assert!(generic["signed_headers"].as_str().unwrap().contains("x-amz-content-sha256"));
}

#[test]
fn path_rules_differ_between_s3_and_other_services() {
    let lp = Lakeport::new();
    let line2 = |doc: &serde_json::Value| doc["canonical_request"].as_str().unwrap().lines().nth(1).unwrap().to_string();
    let s3 = json(&lp.output(&with_keys(&["sign", "--output", "json", "GET", "https://h/b/./a//my key"])));
    assert_eq!(line2(&s3), "/b/./a//my%20key", "S3: as given, encoded once");
    let normalized = json(&lp.output(&with_keys(&["sign", "--output", "json", "--service", "es", "GET", "https://h/b/./a//my key"])));
    assert_eq!(line2(&normalized), "/b/a/my%2520key", "generic: normalized, encoded twice");
    let kept = json(&lp.output(
        &with_keys(&["sign", "--output", "json", "--service", "es", "--no-normalize-path", "GET", "https://h/b/./a//my key"]),
    ));
    assert_eq!(line2(&kept), "/b/./a//my%2520key");
}

#[test]
fn presign_and_session_token() {
    let lp = Lakeport::new();
    let out = lp.command()
        .args(["presign", "--time", "20130524T000000Z", "--expires", "86400", "GET", "https://examplebucket.s3.amazonaws.com/test.txt"])
        .env("AWS_ACCESS_KEY_ID", AK)
        .env("AWS_SECRET_ACCESS_KEY", SK)
        .output()
        .unwrap();
    assert!(out.status.success());
    let url = String::from_utf8(out.stdout).unwrap();
    assert!(url.trim_end().ends_with("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"), "{url}");
    // `sign --presign` is the same as `presign`.
    let same = lp.output(&with_keys(&["sign", "--presign", "--time", "20130524T000000Z", "--expires", "86400", "GET", "https://examplebucket.s3.amazonaws.com/test.txt"]));
    assert_eq!(String::from_utf8(same.stdout).unwrap(), url);

    let mut args = with_keys(&["presign", "--output", "json", "GET", "https://h/b/k"]);
    args.extend(["--session-token", TOKEN]);
    let doc = json(&lp.output(&args));
    let url = doc["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLESESSIONTOKEN%2F%2B%3D"), "{url}");
    assert!(doc["canonical_request"].as_str().unwrap().ends_with("\nUNSIGNED-PAYLOAD"));

    let mut args = with_keys(&["sign", "--output", "json", "GET", "https://h/b/k"]);
    args.extend(["--session-token", TOKEN]);
    let doc = json(&lp.output(&args));
    assert!(doc["signed_headers"].as_str().unwrap().contains("x-amz-security-token"));

    let week = lp.output(&with_keys(&["presign", "--expires", "604800", "GET", "https://h/b/k"]));
    assert!(week.status.success());
    let too_long = lp.output(&with_keys(&["presign", "--expires", "604801", "GET", "https://h/b/k"]));
    assert_one_line_error(&too_long, "7 days");
}

#[test]
fn bad_input_gets_one_line_errors() {
    let lp = Lakeport::new();
    assert_one_line_error(&lp.output(&with_keys(&["sign", "GET", "not a url"])), "bad URL");
    assert_one_line_error(&lp.output(&with_keys(&["sign", "GET", "ftp://h/x"])), "http or https");
    assert_one_line_error(&lp.output(&with_keys(&["sign", "GET", "http://h:99999/x"])), "port");
    assert_one_line_error(&lp.output(&with_keys(&["sign", "--time", "2013-05-24", "GET", "https://h/x"])), "YYYYMMDDTHHMMSSZ");
    assert_one_line_error(&lp.output(&with_keys(&["sign", "--time", "20130231T000000Z", "GET", "https://h/x"])), "bad time");
    assert_one_line_error(&lp.output(&with_keys(&["sign", "-H", "NoColonHere", "GET", "https://h/x"])), "expected 'Name: value'");
    assert_one_line_error(&lp.output(&with_keys(&["sign", "-H", "Bad Name: v", "GET", "https://h/x"])), "bad header name");
    assert_one_line_error(&lp.output(&["sign", "GET", "https://h/x"]), "AWS_ACCESS_KEY_ID");
    assert_one_line_error(&lp.output(&["sign", "--access-key", AK, "GET", "https://h/x"]), "--secret-key");
    assert_one_line_error(&lp.output(&with_keys(&["sign", "--body-file", "/nonexistent/body", "PUT", "https://h/x"])), "/nonexistent/body");
    let dir_as_body = lp.output(&with_keys(&["sign", "--body-file", lp.cache_dir().to_str().unwrap(), "PUT", "https://h/x"]));
    assert_one_line_error(&dir_as_body, "body file");
    assert_one_line_error(&lp.output(&with_keys(&["sign", "--region", "us east", "GET", "https://h/x"])), "bad region");
    assert_one_line_error(&lp.output(&with_keys(&["sign", "--expires", "60", "GET", "https://h/x"])), "--presign");
    assert_one_line_error(&lp.output(&with_keys(&["presign", "--body-file", "/etc/hostname", "PUT", "https://h/x"])), "UNSIGNED-PAYLOAD");
    // Usage errors come from the argument parser, also non-zero.
    let usage = lp.output(&["sign"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn verbose_output_never_shows_secrets() {
    let lp = Lakeport::new();
    let mut args = with_keys(&["-v", "sign", "GET", "https://h/b/k"]);
    args.extend(["--session-token", TOKEN]);
    let out = lp.output(&args);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sigv4"), "verbose output present: {stderr}");
    assert!(!stderr.contains(SK) && !stderr.contains(TOKEN), "{stderr}");
    let failed = lp.output(&["-v", "sign", "--secret-key", SK, "--session-token", TOKEN, "GET", "https://h/x"]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(!stderr.contains(SK) && !stderr.contains(TOKEN), "{stderr}");
}

/// The second run loads the compiled component from the cache instead of
/// compiling: the diagnostics say so and the cache file is not rewritten.
#[test]
fn second_run_does_not_compile_the_component() {
    let lp = Lakeport::new();
    let args = with_keys(&["-v", "sign", "GET", "https://h/b/k"]);
    let first = lp.output(&args);
    assert!(first.status.success());
    let first_log = String::from_utf8_lossy(&first.stderr);
    assert!(first_log.contains("sigv4: compiled component in"), "{first_log}");
    let compiled_dir = lp.cache_dir().join("lakeport").join("compiled");
    let entries: Vec<_> = std::fs::read_dir(&compiled_dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let cached = &entries[0];
    assert!(cached.file_name().unwrap().to_string_lossy().starts_with("sigv4-"));
    let before = std::fs::metadata(cached).unwrap().modified().unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&compiled_dir).unwrap().permissions().mode() & 0o777, 0o700);

    let second = lp.output(&args);
    assert!(second.status.success());
    let second_log = String::from_utf8_lossy(&second.stderr);
    assert!(second_log.contains("sigv4: loaded compiled component from cache"), "{second_log}");
    assert!(!second_log.contains("compiled component in"), "{second_log}");
    assert_eq!(std::fs::metadata(cached).unwrap().modified().unwrap(), before, "cache file untouched");
    assert_eq!(first.stdout.len(), second.stdout.len());

    // A corrupt cache entry is replaced, not fatal.
    std::fs::write(cached, b"garbage").unwrap();
    let third = lp.output(&args);
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
    assert!(String::from_utf8_lossy(&third.stderr).contains("compiling again"));
}

#[test]
fn components_lists_sigv4_with_no_imports_to_grant() {
    let lp = Lakeport::new();
    let out = lp.output(&["components", "--output", "json"]);
    let doc = json(&out);
    let sigv4 = doc.as_array().unwrap().iter().find(|c| c["name"] == "sigv4").expect("sigv4 listed");
    assert_eq!(sigv4["world"], "lakeport:plugins/sigv4-component");
    assert!(sigv4["size"].as_u64().unwrap() > 10_000);
    assert!(sigv4["exports"].to_string().contains("lakeport:plugins/sigv4@0.1.0"));
    assert_eq!(sigv4["function_imports"].as_array().unwrap().len(), 0, "{sigv4}");
    let export_dir = lp.cache_dir().join("export");
    let out = lp.output(&["components", "--export", export_dir.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(std::fs::read(export_dir.join("sigv4.wasm")).unwrap().starts_with(b"\0asm"));
}
