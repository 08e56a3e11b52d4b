//! The sigv4 component as the host sees it. All signing happens inside the
//! component; this module only moves values across the boundary.

use std::io::Read;

use anyhow::Result;
use wasmtime::component::ResourceAny;
use wasmtime::Store;

use crate::runtime::{arm_deadline, call_error, Grant, HostState, Runtime};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "sigv4-component",
});

pub use exports::lakeport::plugins::sigv4::{RequestToSend, SignError, SignOptions, SignedRequest, SigningTime};
pub use self::lakeport::plugins::types::{Credentials, Payload, SignableRequest};

impl SignError {
    pub fn message(&self) -> &str {
        match self {
            SignError::InvalidUrl(m)
            | SignError::InvalidHeader(m)
            | SignError::InvalidTime(m)
            | SignError::InvalidCredentials(m)
            | SignError::InvalidOption(m)
            | SignError::ChunkMismatch(m) => m,
        }
    }
}

const NAME: &str = "sigv4";

/// One instance of the sigv4 component.
pub struct Sigv4 {
    store: Store<HostState>,
    bindings: Sigv4Component,
}

/// A `signer` resource inside the component (holds the credentials).
#[derive(Debug)]
pub struct SignerHandle(ResourceAny);
/// A `chunk-signer` resource inside the component.
#[derive(Debug)]
pub struct ChunkSignerHandle(ResourceAny);

impl Sigv4 {
    /// The sigv4 world imports nothing, so it is granted nothing.
    pub fn new(runtime: &Runtime) -> Result<Self> {
        Self::with_grant(runtime, Grant::compute_only())
    }

    /// With other limits (memory cap, time limit) than the default.
    pub fn with_grant(runtime: &Runtime, grant: Grant) -> Result<Self> {
        let loaded = runtime.load(NAME, grant)?;
        let (mut store, linker) = runtime.store_for(&loaded)?;
        let bindings = Sigv4Component::instantiate(&mut store, &loaded.component, &linker).map_err(|e| call_error(NAME, e))?;
        Ok(Sigv4 { store, bindings })
    }

    /// Signs one request with one-shot credentials.
    pub fn sign(&mut self, request: &SignableRequest, credentials: &Credentials, options: &SignOptions) -> Result<Result<SignedRequest, SignError>> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_sigv4();
        api.call_sign(&mut self.store, request, credentials, options).map_err(|e| call_error(NAME, e))
    }

    /// SHA-256 of a stream, computed in the component 1 MiB at a time so
    /// memory stays bounded whatever the size.
    pub fn payload_sha256(&mut self, mut body: impl Read) -> Result<String> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_sigv4();
        let hasher = api.payload_hasher().call_constructor(&mut self.store).map_err(|e| call_error(NAME, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    hasher.resource_drop(&mut self.store).map_err(|e| call_error(NAME, e))?;
                    return Err(e.into());
                }
            };
            api.payload_hasher().call_update(&mut self.store, hasher, &buf[..n]).map_err(|e| call_error(NAME, e))?;
        }
        let digest = api.payload_hasher().call_finish(&mut self.store, hasher).map_err(|e| call_error(NAME, e))?;
        hasher.resource_drop(&mut self.store).map_err(|e| call_error(NAME, e))?;
        Ok(digest)
    }

    /// Creates a signer that keeps its signing key between requests.
    pub fn signer(&mut self, credentials: &Credentials) -> Result<SignerHandle> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_sigv4();
        let handle = api.signer().call_constructor(&mut self.store, credentials).map_err(|e| call_error(NAME, e))?;
        Ok(SignerHandle(handle))
    }

    pub fn signer_sign(&mut self, signer: &SignerHandle, request: &SignableRequest, options: &SignOptions) -> Result<Result<SignedRequest, SignError>> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_sigv4();
        api.signer().call_sign(&mut self.store, signer.0, request, options).map_err(|e| call_error(NAME, e))
    }

    /// `signer_sign` without the diagnostic strings: the URL and headers to send.
    pub fn signer_sign_for_sending(&mut self, signer: &SignerHandle, request: &SignableRequest, options: &SignOptions) -> Result<Result<RequestToSend, SignError>> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_sigv4();
        api.signer().call_sign_for_sending(&mut self.store, signer.0, request, options).map_err(|e| call_error(NAME, e))
    }

    /// Signs the headers of an aws-chunked upload; the chunk signer that it
    /// returns signs the body.
    pub fn start_streaming(
        &mut self,
        signer: &SignerHandle,
        request: &SignableRequest,
        options: &SignOptions,
        decoded_length: u64,
        chunk_size: u32,
    ) -> Result<Result<(SignedRequest, ChunkSignerHandle), SignError>> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_sigv4();
        let out = api
            .signer()
            .call_start_streaming(&mut self.store, signer.0, request, options, decoded_length, chunk_size)
            .map_err(|e| call_error(NAME, e))?;
        Ok(out.map(|(signed, chunks)| (signed, ChunkSignerHandle(chunks))))
    }

    pub fn sign_chunk(&mut self, chunks: &ChunkSignerHandle, data: &[u8]) -> Result<Result<Vec<u8>, SignError>> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_sigv4();
        api.chunk_signer().call_sign_chunk(&mut self.store, chunks.0, data).map_err(|e| call_error(NAME, e))
    }

    pub fn sign_chunk_digest(&mut self, chunks: &ChunkSignerHandle, length: u32, sha256: &[u8]) -> Result<Result<String, SignError>> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_sigv4();
        api.chunk_signer().call_sign_chunk_digest(&mut self.store, chunks.0, length, sha256).map_err(|e| call_error(NAME, e))
    }

    pub fn finish_chunks(&mut self, chunks: &ChunkSignerHandle) -> Result<Result<Vec<u8>, SignError>> {
        arm_deadline(&mut self.store);
        let api = self.bindings.lakeport_plugins_sigv4();
        api.chunk_signer().call_finish(&mut self.store, chunks.0).map_err(|e| call_error(NAME, e))
    }

    /// Forgets a signer and the secret it holds.
    pub fn drop_signer(&mut self, signer: SignerHandle) -> Result<()> {
        arm_deadline(&mut self.store);
        signer.0.resource_drop(&mut self.store).map_err(|e| call_error(NAME, e))
    }

    pub fn drop_chunk_signer(&mut self, chunks: ChunkSignerHandle) -> Result<()> {
        arm_deadline(&mut self.store);
        chunks.0.resource_drop(&mut self.store).map_err(|e| call_error(NAME, e))
    }
}
