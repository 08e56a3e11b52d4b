//! The `sigv4-component` world: thin conversions between WIT types and the
//! core. Built only for wasm32 with the `component` feature.

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

wit_bindgen::generate!({
    path: "../../wit",
    world: "sigv4-component",
});

use exports::lakeport::plugins::sigv4 as wit;
use lakeport::plugins::types as wit_types;

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic is a bug: trap, and let the host report it.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocator. std provides it on wasm32-wasip2; this
/// no_std component must export its own.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(old_ptr: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    use alloc::alloc::{alloc, realloc, Layout};
    if new_len == 0 {
        return align as *mut u8;
    }
    let ptr = unsafe {
        if old_len == 0 {
            alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            realloc(old_ptr, Layout::from_size_align_unchecked(old_len, align), new_len)
        }
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable()
    }
    ptr
}

struct Component;

/// A static of the instance, which runs on one thread.
struct OneThread<T>(T);

unsafe impl<T> Sync for OneThread<T> {}

/// The one-shot exports' signer of the last credentials (see `LastSigner`).
static LAST_SIGNER: OneThread<RefCell<crate::LastSigner>> = OneThread(RefCell::new(crate::LastSigner::new()));

fn credentials(c: wit_types::Credentials) -> crate::Credentials {
    crate::Credentials { access_key_id: c.access_key_id, secret_access_key: c.secret_access_key, session_token: c.session_token }
}

fn request(r: wit_types::SignableRequest) -> crate::SignableRequest {
    let payload = match r.payload {
        wit_types::Payload::Empty => crate::Payload::Empty,
        wit_types::Payload::Bytes(b) => crate::Payload::Bytes(b),
        wit_types::Payload::Precomputed(p) => crate::Payload::Precomputed(p),
        wit_types::Payload::UnsignedPayload => crate::Payload::UnsignedPayload,
    };
    crate::SignableRequest { method: r.method, url: r.url, headers: r.headers, payload }
}

fn options(o: wit::SignOptions) -> crate::SignOptions {
    crate::SignOptions {
        region: o.region,
        service: o.service,
        time: match o.time {
            wit::SigningTime::UnixSeconds(s) => crate::SigningTime::UnixSeconds(s),
            wit::SigningTime::AmzDate(s) => crate::SigningTime::AmzDate(s),
        },
        presign_expires: o.presign_expires,
        normalize_path: o.normalize_path,
        sign_body: o.sign_body,
        sign_session_token: o.sign_session_token,
    }
}

fn signed(s: crate::SignedRequest) -> wit::SignedRequest {
    wit::SignedRequest {
        method: s.method,
        url: s.url,
        headers: s.headers,
        signature: s.signature,
        canonical_request: s.canonical_request,
        string_to_sign: s.string_to_sign,
        signed_headers: s.signed_headers,
        authorization: s.authorization,
        payload_hash: s.payload_hash,
    }
}

fn error(e: crate::SignError) -> wit::SignError {
    match e {
        crate::SignError::InvalidUrl(m) => wit::SignError::InvalidUrl(m),
        crate::SignError::InvalidHeader(m) => wit::SignError::InvalidHeader(m),
        crate::SignError::InvalidTime(m) => wit::SignError::InvalidTime(m),
        crate::SignError::InvalidCredentials(m) => wit::SignError::InvalidCredentials(m),
        crate::SignError::InvalidOption(m) => wit::SignError::InvalidOption(m),
        crate::SignError::ChunkMismatch(m) => wit::SignError::ChunkMismatch(m),
    }
}

impl wit::Guest for Component {
    type Signer = Signer;
    type ChunkSigner = ChunkSigner;
    type PayloadHasher = PayloadHasher;

    fn sign(r: wit_types::SignableRequest, c: wit_types::Credentials, o: wit::SignOptions) -> Result<wit::SignedRequest, wit::SignError> {
        LAST_SIGNER.0.borrow_mut().sign(&request(r), credentials(c), &options(o)).map(signed).map_err(error)
    }

    fn sign_flat(
        method: String,
        url: String,
        headers: String,
        header_count: u32,
        payload: String,
        access_key_id: String,
        secret_access_key: String,
        session_token: String,
        region: String,
        service: String,
        time: String,
        presign_expires: u32,
        normalize_path: bool,
        sign_body: bool,
        sign_session_token: bool,
    ) -> Result<String, wit::SignError> {
        use crate::flat;
        let request = crate::SignableRequest {
            method,
            url,
            headers: flat::headers(&headers, header_count).map_err(error)?,
            payload: flat::payload(payload),
        };
        let credentials = crate::Credentials {
            access_key_id,
            secret_access_key,
            session_token: if session_token.is_empty() { None } else { Some(session_token) },
        };
        let options = crate::SignOptions {
            region,
            service,
            time: flat::time(time),
            presign_expires: if presign_expires == 0 { None } else { Some(presign_expires) },
            normalize_path,
            sign_body,
            sign_session_token,
        };
        LAST_SIGNER.0.borrow_mut().sign(&request, credentials, &options).map(|s| flat::encode(&s)).map_err(error)
    }

    fn payload_sha256(body: Vec<u8>) -> String {
        crate::payload_sha256(&body)
    }
}

/// Credentials that failed validation surface on first use, since WIT
/// constructors cannot fail.
struct Signer(RefCell<Result<crate::Signer, crate::SignError>>);

impl wit::GuestSigner for Signer {
    fn new(c: wit_types::Credentials) -> Self {
        Signer(RefCell::new(crate::Signer::new(credentials(c))))
    }

    fn sign(&self, r: wit_types::SignableRequest, o: wit::SignOptions) -> Result<wit::SignedRequest, wit::SignError> {
        let mut inner = self.0.borrow_mut();
        let signer = inner.as_mut().map_err(|e| error(e.clone()))?;
        signer.sign(&request(r), &options(o)).map(signed).map_err(error)
    }

    fn sign_for_sending(&self, r: wit_types::SignableRequest, o: wit::SignOptions) -> Result<wit::RequestToSend, wit::SignError> {
        let mut inner = self.0.borrow_mut();
        let signer = inner.as_mut().map_err(|e| error(e.clone()))?;
        let s = signer.sign(&request(r), &options(o)).map_err(error)?;
        Ok(wit::RequestToSend { url: s.url, headers: s.headers })
    }

    fn start_streaming(
        &self,
        r: wit_types::SignableRequest,
        o: wit::SignOptions,
        decoded_length: u64,
        chunk_size: u32,
    ) -> Result<(wit::SignedRequest, wit::ChunkSigner), wit::SignError> {
        let mut inner = self.0.borrow_mut();
        let signer = inner.as_mut().map_err(|e| error(e.clone()))?;
        let (s, chunks) = signer.start_streaming(&request(r), &options(o), decoded_length, chunk_size).map_err(error)?;
        Ok((signed(s), wit::ChunkSigner::new(ChunkSigner(RefCell::new(chunks)))))
    }
}

struct PayloadHasher(RefCell<crate::PayloadHasher>);

impl wit::GuestPayloadHasher for PayloadHasher {
    fn new() -> Self {
        PayloadHasher(RefCell::new(crate::PayloadHasher::default()))
    }

    fn update(&self, data: Vec<u8>) {
        self.0.borrow_mut().update(&data);
    }

    fn finish(&self) -> String {
        self.0.borrow_mut().finish()
    }
}

struct ChunkSigner(RefCell<crate::ChunkSigner>);

impl wit::GuestChunkSigner for ChunkSigner {
    fn sign_chunk(&self, data: Vec<u8>) -> Result<Vec<u8>, wit::SignError> {
        self.0.borrow_mut().sign_chunk(&data).map_err(error)
    }

    fn sign_chunk_digest(&self, length: u32, sha256: Vec<u8>) -> Result<String, wit::SignError> {
        self.0.borrow_mut().sign_chunk_digest(length, &sha256).map_err(error)
    }

    fn finish(&self) -> Result<Vec<u8>, wit::SignError> {
        self.0.borrow_mut().finish().map_err(error)
    }

    fn last_signature(&self) -> String {
        String::from(self.0.borrow().last_signature())
    }
}

export!(Component);
