//! Header and query signing.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::canonical::{is_unsigned_header, merge_headers, push_canonical_query, push_canonical_uri, Header};
use crate::chunked::{framed_length, ChunkSigner, STREAMING_PAYLOAD};
use crate::encoding::{hex, s3_path};
use crate::time::AmzDate;
use crate::url::{QueryParam, WireUrl};
use crate::{Credentials, Payload, SignError, SignOptions, SignedRequest, SigningTime, UNSIGNED_PAYLOAD};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The longest validity S3 accepts for a presigned URL: 7 days.
pub const MAX_PRESIGN_EXPIRES: u32 = 604_800;

const PRESIGN_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
];

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Incremental SHA-256 of a payload, as lowercase hex.
#[derive(Default)]
pub struct PayloadHasher(Sha256);

impl PayloadHasher {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(&mut self) -> String {
        hex(&core::mem::take(&mut self.0).finalize())
    }
}

/// Services signed with the S3 rules.
fn uses_s3_rules(service: &str) -> bool {
    matches!(service, "s3" | "s3-object-lambda")
}

/// The signing key for one (date, region, service), kept with its scope and
/// as a keyed HMAC state: each signature then costs only its own message.
#[derive(Clone)]
pub(crate) struct SigningKey {
    scope_date: String,
    region: String,
    service: String,
    scope: String,
    mac: Hmac<Sha256>,
}

impl SigningKey {
    fn derive(secret: &str, scope_date: &str, region: &str, service: &str) -> Self {
        let mut k_secret = Vec::with_capacity(secret.len() + 4);
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret.as_bytes());
        let k_date = hmac_sha256(&k_secret, scope_date.as_bytes());
        k_secret.fill(0);
        let k_region = hmac_sha256(&k_date, region.as_bytes());
        let k_service = hmac_sha256(&k_region, service.as_bytes());
        let mut key = hmac_sha256(&k_service, b"aws4_request");
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes keys of any length");
        key.fill(0);
        let scope = format!("{scope_date}/{region}/{service}/aws4_request");
        SigningKey { scope_date: scope_date.into(), region: region.into(), service: service.into(), scope, mac }
    }

    pub(crate) fn scope(&self) -> &str {
        &self.scope
    }

    pub(crate) fn sign(&self, string_to_sign: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(string_to_sign.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

/// Credentials held for a series of requests; the signing key is derived
/// once per (date, region, service) and reused.
pub struct Signer {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    key: Option<SigningKey>,
}

impl Drop for Signer {
    fn drop(&mut self) {
        // Best effort: overwrite the secret before the allocator reuses it.
        unsafe { self.secret_access_key.as_bytes_mut().fill(0) };
    }
}

/// An empty session token means none.
fn is_session_token(token: &str) -> bool {
    !token.is_empty()
}

/// Compares secrets in time independent of where they differ: an instance
/// may serve callers that do not share their keys.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The signer of the last credentials given to one-shot calls: a caller
/// that signs request after request with the same keys through a stateless
/// API (the component's `sign` export, which hosts in other languages call
/// like a function) then derives the signing key once per (date, region,
/// service), as a held `Signer` does, instead of four HMACs per request.
/// The secret stays until other credentials replace it.
#[derive(Default)]
pub struct LastSigner(Option<Signer>);

impl LastSigner {
    pub const fn new() -> Self {
        LastSigner(None)
    }

    pub fn sign(&mut self, request: &crate::SignableRequest, mut credentials: Credentials, options: &SignOptions) -> Result<SignedRequest, SignError> {
        match &mut self.0 {
            Some(signer) if signer.holds(&credentials) => {
                // Best effort, as `Signer` does: the copy passed in goes.
                unsafe { credentials.secret_access_key.as_bytes_mut().fill(0) };
                signer.sign(request, options)
            }
            last => {
                *last = None;
                last.insert(Signer::new(credentials)?).sign(request, options)
            }
        }
    }
}

/// Everything computed before the signature itself.
struct Prepared {
    method: String,
    url: WireUrl,
    headers: Vec<Header>,
    signed_headers: String,
    canonical_request: String,
    string_to_sign: String,
    payload_hash: String,
    amz_date: String,
    presign: bool,
}

impl Signer {
    pub fn new(credentials: Credentials) -> Result<Self, SignError> {
        let Credentials { access_key_id, secret_access_key, session_token } = credentials;
        if access_key_id.is_empty() || access_key_id.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || matches!(b, b'/' | b',')) {
            return Err(SignError::InvalidCredentials("the access key ID is empty or contains '/', ',' or whitespace".into()));
        }
        if secret_access_key.is_empty() {
            return Err(SignError::InvalidCredentials("the secret access key is empty".into()));
        }
        let session_token = session_token.filter(|t| is_session_token(t));
        if session_token.as_deref().is_some_and(|t| t.bytes().any(|b| b.is_ascii_control())) {
            return Err(SignError::InvalidCredentials("the session token contains control characters".into()));
        }
        Ok(Signer { access_key_id, secret_access_key, session_token, key: None })
    }

    /// Whether these are the credentials this signer was made with.
    fn holds(&self, c: &Credentials) -> bool {
        c.access_key_id == self.access_key_id
            && same_secret(&c.secret_access_key, &self.secret_access_key)
            && c.session_token.as_deref().filter(|t| is_session_token(t)) == self.session_token.as_deref()
    }

    /// Derives the signing key unless the one held is for this scope.
    fn ensure_key(&mut self, scope_date: &str, region: &str, service: &str) {
        let stale = self.key.as_ref().is_none_or(|k| k.scope_date != scope_date || k.region != region || k.service != service);
        if stale {
            self.key = Some(SigningKey::derive(&self.secret_access_key, scope_date, region, service));
        }
    }

    /// Signs the headers (or, with `presign_expires`, the query) of a request.
    pub fn sign(&mut self, request: &crate::SignableRequest, options: &SignOptions) -> Result<SignedRequest, SignError> {
        self.sign_with(request, options, None)
    }

    /// Signs the headers of an aws-chunked upload and returns the signer for
    /// its chunks, seeded with the headers' signature.
    pub fn start_streaming(
        &mut self,
        request: &crate::SignableRequest,
        options: &SignOptions,
        decoded_length: u64,
        chunk_size: u32,
    ) -> Result<(SignedRequest, ChunkSigner), SignError> {
        if options.presign_expires.is_some() {
            return Err(SignError::InvalidOption("aws-chunked uploads are signed in headers, not presigned".into()));
        }
        if chunk_size < crate::chunked::MIN_CHUNK_SIZE {
            return Err(SignError::InvalidOption(format!(
                "chunk size {chunk_size} is below S3's minimum of {} bytes",
                crate::chunked::MIN_CHUNK_SIZE
            )));
        }
        if !matches!(request.payload, Payload::Empty | Payload::UnsignedPayload) {
            return Err(SignError::InvalidOption("an aws-chunked request is signed chunk by chunk; pass the body to the chunk signer".into()));
        }
        let signed = self.sign_with(request, options, Some((decoded_length, chunk_size)))?;
        let key = self.key.clone().expect("signing derived the key");
        let chunks = ChunkSigner::new(key, signed.signature.clone(), signed.amz_date.clone(), decoded_length, chunk_size);
        Ok((signed, chunks))
    }

    fn sign_with(
        &mut self,
        request: &crate::SignableRequest,
        options: &SignOptions,
        streaming: Option<(u64, u32)>,
    ) -> Result<SignedRequest, SignError> {
        let time = match &options.time {
            SigningTime::UnixSeconds(s) => AmzDate::from_unix(*s).map_err(SignError::InvalidTime)?,
            SigningTime::AmzDate(s) => AmzDate::parse(s).map_err(SignError::InvalidTime)?,
        };
        for (what, v) in [("region", &options.region), ("service", &options.service)] {
            if v.is_empty() || v.bytes().any(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))) {
                return Err(SignError::InvalidOption(format!("bad {what} '{v}': use letters, digits, '-', '_' or '.'")));
            }
        }
        self.ensure_key(&time.scope_date(), &options.region, &options.service);
        let key = self.key.as_ref().expect("ensured above");
        let prepared = self.prepare(request, options, &time, key, streaming)?;
        let signature = key.sign(&prepared.string_to_sign);
        Ok(self.finish(prepared, signature, key, options))
    }

    fn prepare(
        &self,
        request: &crate::SignableRequest,
        options: &SignOptions,
        time: &AmzDate,
        key: &SigningKey,
        streaming: Option<(u64, u32)>,
    ) -> Result<Prepared, SignError> {
        let method = request.method.trim();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(SignError::InvalidOption(format!("bad method '{method}': expected e.g. GET, PUT, HEAD")));
        }
        let method = method.to_ascii_uppercase();
        let s3 = uses_s3_rules(&options.service);
        let presign = match options.presign_expires {
            None => false,
            Some(e) if (1..=MAX_PRESIGN_EXPIRES).contains(&e) => true,
            Some(e) => {
                return Err(SignError::InvalidOption(format!("presign expiry {e} s is outside 1..={MAX_PRESIGN_EXPIRES} (7 days)")))
            }
        };
        let mut url = WireUrl::parse(&request.url).map_err(SignError::InvalidUrl)?;
        if s3 {
            url.path = s3_path(core::mem::take(&mut url.path));
        }
        let amz_date = time.amz_date();
        let token = self.session_token.as_deref();

        let payload_hash = match (&request.payload, presign && s3, streaming.is_some()) {
            (_, _, true) => String::from(STREAMING_PAYLOAD),
            (Payload::Empty | Payload::UnsignedPayload, true, _) => String::from(UNSIGNED_PAYLOAD),
            (_, true, _) => {
                return Err(SignError::InvalidOption(
                    "presigned S3 URLs always use UNSIGNED-PAYLOAD; do not pass a body to presign".into(),
                ))
            }
            (Payload::Empty, false, _) => String::from(EMPTY_SHA256),
            (Payload::Bytes(b), false, _) => sha256_hex(b),
            (Payload::Precomputed(p), false, _) => {
                if p.is_empty() || p.bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'-')) {
                    return Err(SignError::InvalidOption(format!("bad precomputed payload hash '{p}'")));
                }
                p.clone()
            }
            (Payload::UnsignedPayload, false, _) => String::from(UNSIGNED_PAYLOAD),
        };
        let send_content_sha = !presign && (s3 || options.sign_body || streaming.is_some());

        // Headers this signer owns are replaced, never signed twice.
        let mut headers = merge_headers(&request.headers).map_err(SignError::InvalidHeader)?;
        headers.retain(|h| {
            !(h.key == "authorization"
                || h.key == "x-amz-date"
                || (send_content_sha && h.key == "x-amz-content-sha256")
                || (token.is_some() && h.key == "x-amz-security-token")
                || (streaming.is_some() && matches!(&*h.key, "content-length" | "x-amz-decoded-content-length")))
        });
        if !headers.iter().any(|h| h.key == "host") {
            headers.insert(0, Header::added("Host", "host", url.host_header.clone()));
        }
        if let Some((decoded_length, chunk_size)) = streaming {
            match headers.iter_mut().find(|h| h.key == "content-encoding") {
                Some(h) if h.value.split(',').any(|e| e.trim().eq_ignore_ascii_case("aws-chunked")) => {}
                Some(h) => h.value = format!("aws-chunked,{}", h.value),
                None => headers.push(Header::added("Content-Encoding", "content-encoding", "aws-chunked".into())),
            }
            headers.push(Header::added("Content-Length", "content-length", framed_length(decoded_length, chunk_size).to_string()));
            headers.push(Header::added("X-Amz-Decoded-Content-Length", "x-amz-decoded-content-length", decoded_length.to_string()));
        }

        let mut signed: Vec<&Header> = headers.iter().filter(|h| !is_unsigned_header(&h.key)).collect();
        // Added headers are signed too; collect them before sorting.
        let mut added: Vec<Header> = Vec::new();
        if !presign {
            added.push(Header::added("X-Amz-Date", "x-amz-date", amz_date.clone()));
            if send_content_sha {
                added.push(Header::added("X-Amz-Content-SHA256", "x-amz-content-sha256", payload_hash.clone()));
            }
            if let (Some(t), true) = (token, options.sign_session_token) {
                added.push(Header::added("X-Amz-Security-Token", "x-amz-security-token", t.into()));
            }
        }
        signed.extend(added.iter());
        // Keys are unique (merged above, owned ones replaced), so an
        // unstable sort gives the same order, and the component carries
        // one sort algorithm instead of two.
        signed.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let mut signed_headers = String::with_capacity(signed.len() * 16);
        for (i, h) in signed.iter().enumerate() {
            if i > 0 {
                signed_headers.push(';');
            }
            signed_headers.push_str(&h.key);
        }

        if presign {
            url.query.retain(|p| !PRESIGN_PARAMS.iter().any(|n| p.name.eq_ignore_ascii_case(n)));
            let credential = format!("{}/{}", self.access_key_id, key.scope());
            let expires = options.presign_expires.unwrap_or_default().to_string();
            url.query.push(QueryParam::new("X-Amz-Algorithm", ALGORITHM));
            url.query.push(QueryParam::new("X-Amz-Credential", &credential));
            url.query.push(QueryParam::new("X-Amz-Date", &amz_date));
            url.query.push(QueryParam::new("X-Amz-Expires", &expires));
            url.query.push(QueryParam::new("X-Amz-SignedHeaders", &signed_headers));
            if let (Some(t), true) = (token, options.sign_session_token) {
                url.query.push(QueryParam::new("X-Amz-Security-Token", t));
            }
        }
        // METHOD \n URI \n QUERY \n HEADERS (each "name:value\n") \n SIGNED \n PAYLOAD
        let header_len: usize = signed.iter().map(|h| h.key.len() + h.value.len() + 2).sum();
        let mut canonical_request = String::with_capacity(method.len() + url.path.len() * 2 + 64 + header_len + signed_headers.len() + payload_hash.len());
        canonical_request.push_str(&method);
        canonical_request.push('\n');
        push_canonical_uri(&mut canonical_request, &url.path, s3, options.normalize_path);
        canonical_request.push('\n');
        push_canonical_query(&mut canonical_request, &url.query);
        canonical_request.push('\n');
        for h in &signed {
            canonical_request.push_str(&h.key);
            canonical_request.push(':');
            canonical_request.push_str(&h.value);
            canonical_request.push('\n');
        }
        canonical_request.push('\n');
        canonical_request.push_str(&signed_headers);
        canonical_request.push('\n');
        canonical_request.push_str(&payload_hash);

        let mut string_to_sign = String::with_capacity(ALGORITHM.len() + amz_date.len() + key.scope().len() + 67);
        string_to_sign.push_str(ALGORITHM);
        string_to_sign.push('\n');
        string_to_sign.push_str(&amz_date);
        string_to_sign.push('\n');
        string_to_sign.push_str(key.scope());
        string_to_sign.push('\n');
        string_to_sign.push_str(&sha256_hex(canonical_request.as_bytes()));
        headers.extend(added);
        Ok(Prepared { method, url, headers, signed_headers, canonical_request, string_to_sign, payload_hash, amz_date, presign })
    }

    fn finish(&self, mut p: Prepared, signature: String, key: &SigningKey, options: &SignOptions) -> SignedRequest {
        let unsigned_token = self.session_token.as_deref().filter(|_| !options.sign_session_token);
        let authorization = if p.presign {
            if let Some(t) = unsigned_token {
                p.url.query.push(QueryParam::new("X-Amz-Security-Token", t));
            }
            p.url.query.push(QueryParam::new("X-Amz-Signature", &signature));
            None
        } else {
            let mut auth = String::with_capacity(
                ALGORITHM.len() + self.access_key_id.len() + key.scope().len() + p.signed_headers.len() + signature.len() + 48,
            );
            for part in [ALGORITHM, " Credential=", &self.access_key_id, "/", key.scope(), ", SignedHeaders=", &p.signed_headers, ", Signature=", &signature] {
                auth.push_str(part);
            }
            p.headers.push(Header::added("Authorization", "authorization", auth.clone()));
            if let Some(t) = unsigned_token {
                p.headers.push(Header::added("X-Amz-Security-Token", "x-amz-security-token", t.into()));
            }
            Some(auth)
        };
        SignedRequest {
            method: p.method,
            url: p.url.to_url(),
            headers: p.headers.into_iter().map(|h| (h.name.into_owned(), h.value)).collect(),
            signature,
            canonical_request: p.canonical_request,
            string_to_sign: p.string_to_sign,
            signed_headers: p.signed_headers,
            authorization,
            payload_hash: p.payload_hash,
            amz_date: p.amz_date,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SignableRequest;

    fn creds(secret: &str, token: Option<&str>) -> Credentials {
        Credentials { access_key_id: "AKIDEXAMPLE".into(), secret_access_key: secret.into(), session_token: token.map(String::from) }
    }

    fn get() -> SignableRequest {
        SignableRequest { method: "GET".into(), url: "https://examplebucket.s3.amazonaws.com/test.txt".into(), headers: Vec::new(), payload: Payload::Empty }
    }

    #[test]
    fn the_last_signer_signs_as_a_fresh_one_whatever_came_before() {
        let options = SignOptions::s3("us-east-1", SigningTime::AmzDate("20130524T000000Z".into()));
        let one_shot = |c: Credentials| crate::sign(&get(), c, &options).unwrap();
        let mut last = LastSigner::new();
        // Keys that differ only in the secret, only in the session token
        // (empty means none), and the first keys again after others.
        let sequence = [creds("a", None), creds("a", None), creds("b", None), creds("b", Some("t")), creds("b", Some("")), creds("a", None)];
        for c in sequence {
            assert_eq!(last.sign(&get(), c.clone(), &options).unwrap(), one_shot(c));
        }
        // The same keys on another day, region and service: the held key
        // is for one scope only.
        let other = SignOptions { region: "eu-west-1".into(), time: SigningTime::AmzDate("20130525T000000Z".into()), ..options.clone() };
        assert_eq!(last.sign(&get(), creds("a", None), &other).unwrap(), crate::sign(&get(), creds("a", None), &other).unwrap());
    }

    #[test]
    fn the_last_signer_keeps_its_key_only_for_the_same_credentials() {
        let options = SignOptions::s3("us-east-1", SigningTime::AmzDate("20130524T000000Z".into()));
        let mut last = LastSigner::new();
        last.sign(&get(), creds("a", Some("t")), &options).unwrap();
        let held = last.0.as_ref().unwrap();
        assert!(held.key.is_some());
        assert!(held.holds(&creds("a", Some("t"))));
        assert!(!held.holds(&creds("a", None)));
        assert!(!held.holds(&creds("b", Some("t"))));
        assert!(!held.holds(&creds("ab", Some("t"))));
        assert!(!held.holds(&Credentials { access_key_id: "AKIDOTHER".into(), ..creds("a", Some("t")) }));
        // Refused credentials leave nothing held.
        assert!(last.sign(&get(), creds("", None), &options).is_err());
        assert!(last.0.is_none());
    }
}
