//! JWT claims, decoded for display and expiry only. Signatures are the
//! business of the servers that accept the token (STS, S3, Rucio); lakeport
//! never trusts a claim for a security decision.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use crate::OidcError;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub audience: Vec<String>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub issued_at: Option<i64>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

pub fn decode_claims(token: &str) -> Result<Claims, OidcError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(OidcError::InvalidInput("the token is not a JWT (expected three dot-separated parts)".into()));
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| OidcError::InvalidInput("the JWT payload is not base64url".into()))?;
    let json: Value = serde_json::from_slice(&payload).map_err(|_| OidcError::InvalidInput("the JWT payload is not JSON".into()))?;
    let obj = json.as_object().ok_or_else(|| OidcError::InvalidInput("the JWT payload is not a JSON object".into()))?;
    let string = |k: &str| obj.get(k).and_then(Value::as_str).map(String::from);
    let number = |k: &str| obj.get(k).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)));
    let list = |k: &str| match obj.get(k).cloned().map(serde_json::from_value::<OneOrMany>) {
        Some(Ok(OneOrMany::One(s))) => vec![s],
        Some(Ok(OneOrMany::Many(v))) => v,
        _ => vec![],
    };
    let scope = string("scope").or_else(|| Some(list("scp").join(" ")).filter(|s| !s.is_empty()));
    Ok(Claims {
        issuer: string("iss"),
        subject: string("sub"),
        audience: list("aud"),
        expires_at: number("exp"),
        issued_at: number("iat"),
        scope,
        client_id: string("client_id").or_else(|| string("azp")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", enc(r#"{"alg":"RS256"}"#), enc(payload))
    }

    #[test]
    fn decodes_claims() {
        let c = decode_claims(&jwt(r#"{"iss":"https://iam.example/","sub":"u1","aud":["object","rucio"],"exp":1700000000,"iat":1699996400,"scope":"openid s3"}"#)).unwrap();
        assert_eq!(c.audience, ["object", "rucio"]);
        assert_eq!(c.expires_at, Some(1_700_000_000));
        assert_eq!(c.scope.as_deref(), Some("openid s3"));
        let c = decode_claims(&jwt(r#"{"aud":"object","scp":["a","b"],"azp":"cli"}"#)).unwrap();
        assert_eq!((c.audience, c.scope.as_deref(), c.client_id.as_deref()), (vec!["object".to_string()], Some("a b"), Some("cli")));
    }

    #[test]
    fn rejects_non_jwts() {
        for bad in ["opaque-token", "a.b", "a.!!!.c", &format!("a.{}.c", "bm90IGpzb24"), &jwt("[1]")] {
            assert!(decode_claims(bad).is_err(), "{bad}");
        }
    }
}
