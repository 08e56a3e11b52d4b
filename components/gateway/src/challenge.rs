//! RFC 6750 bearer credentials in and `WWW-Authenticate` challenges out.
//!
//! Attribute values are built only from the gateway's realm, its own
//! error descriptions and scope names: the token is never echoed. RFC 6750
//! §3 allows fewer characters than a quoted-string: `error_description`
//! only `%x20-21 / %x23-5B / %x5D-7E` (no `"` or `\` even escaped) and
//! `scope` only space-separated `%x21 / %x23-5B / %x5D-7E`, so those are
//! mapped rather than escaped. The realm is a quoted-string (RFC 9110
//! §11.2) with `"` and `\` escaped.

use std::fmt::Display;

/// The longest `error_description` sent.
const MAX_DESCRIPTION: usize = 200;

/// What an `Authorization` header holds for the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No header, or another scheme (`Basic`, …): answer [`missing_token`].
    None,
    /// A `Bearer` token68, to verify.
    Bearer(&'a str),
    /// `Bearer` with nothing after it, or with characters no token has.
    Malformed,
}

/// Reads an `Authorization` header value: scheme `Bearer` in any case,
/// one or more spaces, a token68 (RFC 9110 §11.2).
pub fn bearer_token(authorization: Option<&str>) -> Credentials<'_> {
    let Some(value) = authorization.map(|v| v.trim_matches([' ', '\t'])) else {
        return Credentials::None;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::None;
    }
    let token = rest.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let token68 = !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if token68 {
        Credentials::Bearer(token)
    } else {
        Credentials::Malformed
    }
}

fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

fn description(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_DESCRIPTION)
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect();
    if text.chars().nth(MAX_DESCRIPTION).is_some() {
        out.replace_range(out.len() - 3.., "...");
    }
    out
}

/// A scope value: bytes outside scope-token characters (and `%` itself)
/// percent-encoded, so a path with spaces or quotes stays one token.
fn scope_value(scope: &str) -> String {
    let mut out = String::with_capacity(scope.len());
    for b in scope.bytes() {
        if (0x21..=0x7e).contains(&b) && !matches!(b, b'"' | b'\\' | b'%') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// No credentials: `Bearer realm="…"`, no error code (RFC 6750 §3.1).
pub fn missing_token(realm: &str) -> String {
    format!("Bearer realm={}", quoted(realm))
}

/// A token that was refused (`401`): `error="invalid_token"` and the
/// reason, e.g. a [`crate::jwt::TokenError`].
pub fn invalid_token(realm: &str, reason: &dyn Display) -> String {
    format!(
        "Bearer realm={}, error=\"invalid_token\", error_description=\"{}\"",
        quoted(realm),
        description(&reason.to_string())
    )
}

/// A valid token without the scope a request needs (`403`).
pub fn insufficient_scope(realm: &str, scope: &str) -> String {
    format!("Bearer realm={}, error=\"insufficient_scope\", scope=\"{}\"", quoted(realm), scope_value(scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_credentials() {
        assert_eq!(bearer_token(None), Credentials::None);
        assert_eq!(bearer_token(Some("Basic dXNlcjpwYXNz")), Credentials::None);
        assert_eq!(bearer_token(Some("Bearerabc")), Credentials::None);
        assert_eq!(bearer_token(Some("Bearer a.b-c_d~e+f/g==")), Credentials::Bearer("a.b-c_d~e+f/g=="));
        assert_eq!(bearer_token(Some("bearer   tok ")), Credentials::Bearer("tok"));
        assert_eq!(bearer_token(Some("BEARER tok")), Credentials::Bearer("tok"));
        for bad in ["Bearer", "Bearer ", "Bearer a b", "Bearer a\"b", "Bearer ==", "Bearer a=b", "Bearer é"] {
            assert_eq!(bearer_token(Some(bad)), Credentials::Malformed, "{bad}");
        }
    }

    #[test]
    fn builds_rfc_6750_challenges() {
        assert_eq!(missing_token("lakeport"), r#"Bearer realm="lakeport""#);
        assert_eq!(missing_token(r#"a "b" \c é"#), r#"Bearer realm="a \"b\" \\c ?""#);
        assert_eq!(
            invalid_token("lakeport", &"the token expired 5 s ago"),
            r#"Bearer realm="lakeport", error="invalid_token", error_description="the token expired 5 s ago""#
        );
        assert_eq!(
            insufficient_scope("lakeport", "storage.read:/bkt/a b\"%"),
            r#"Bearer realm="lakeport", error="insufficient_scope", scope="storage.read:/bkt/a%20b%22%25""#
        );
    }

    #[test]
    fn descriptions_hold_only_allowed_characters() {
        let hostile = format!("kid 'a\"b\\c\r\nSet-Cookie: x' é {}", "z".repeat(500));
        let header = invalid_token("r", &hostile);
        let value = header.split("error_description=\"").nth(1).unwrap().strip_suffix('"').unwrap();
        assert!(value.chars().all(|c| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)), "{value}");
        assert_eq!(value.len(), MAX_DESCRIPTION);
        assert!(value.ends_with("..."));
    }
}
