//! The sigv4 component as the host sees it. All signing happens inside the
//! component; this module only moves values across the boundary.

use std::io::Read;

use anyhow::Result;
use wasmtime::component::ResourceAny;

use crate::instance::{CallError, ComponentError, Instance};
use crate::runtime::{Grant, Runtime};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "sigv4-component",
});

pub use exports::lakeport::plugins::sigv4::{RequestToSend, SignError, SignOptions, SignedRequest, SigningTime};
pub use self::lakeport::plugins::types::{Credentials, Payload, SignableRequest};

impl ComponentError for SignError {
    fn message(&self) -> String {
        let message = match self {
            SignError::InvalidUrl(m)
            | SignError::InvalidHeader(m)
            | SignError::InvalidTime(m)
            | SignError::InvalidCredentials(m)
            | SignError::InvalidOption(m)
            | SignError::ChunkMismatch(m) => m,
        };
        message.clone()
    }
}

const NAME: &str = "sigv4";

/// One instance of the sigv4 component.
pub struct Sigv4(Instance<Sigv4Component>);

/// A `signer` resource inside the component (holds the credentials).
#[derive(Debug)]
pub struct SignerHandle(ResourceAny);
/// A `chunk-signer` resource inside the component.
#[derive(Debug)]
pub struct ChunkSignerHandle(ResourceAny);

type Answer<T> = std::result::Result<T, CallError<SignError>>;

impl Sigv4 {
    /// The sigv4 world imports nothing, so it is granted nothing.
    pub fn new(runtime: &Runtime) -> Result<Self> {
        Self::with_grant(runtime, Grant::compute_only())
    }

    /// With other limits (memory cap, time limit) than the default.
    pub fn with_grant(runtime: &Runtime, grant: Grant) -> Result<Self> {
        Instance::new(runtime, NAME, grant, None, |store, component, linker| Sigv4Component::instantiate(store, component, linker)).map(Sigv4)
    }

    /// Signs one request with one-shot credentials.
    pub fn sign(&mut self, request: &SignableRequest, credentials: &Credentials, options: &SignOptions) -> Answer<SignedRequest> {
        self.0.call(|b, store| b.lakeport_plugins_sigv4().call_sign(store, request, credentials, options))
    }

    /// SHA-256 of a stream, computed in the component 1 MiB at a time so
    /// memory stays bounded whatever the size. The whole stream is hashed
    /// within one call's time limit.
    pub fn payload_sha256(&mut self, mut body: impl Read) -> Result<String> {
        let hashed = self.0.run(|b, store| {
            let hasher = b.lakeport_plugins_sigv4().payload_hasher();
            let handle = hasher.call_constructor(&mut *store)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match body.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        handle.resource_drop(&mut *store)?;
                        return Ok(Err(e));
                    }
                };
                hasher.call_update(&mut *store, handle, &buf[..n])?;
            }
            let digest = hasher.call_finish(&mut *store, handle)?;
            handle.resource_drop(store)?;
            Ok(Ok(digest))
        })?;
        Ok(hashed?)
    }

    /// Creates a signer that keeps its signing key between requests.
    pub fn signer(&mut self, credentials: &Credentials) -> Result<SignerHandle> {
        self.0.run(|b, store| b.lakeport_plugins_sigv4().signer().call_constructor(store, credentials)).map(SignerHandle)
    }

    pub fn signer_sign(&mut self, signer: &SignerHandle, request: &SignableRequest, options: &SignOptions) -> Answer<SignedRequest> {
        self.0.call(|b, store| b.lakeport_plugins_sigv4().signer().call_sign(store, signer.0, request, options))
    }

    /// `signer_sign` without the diagnostic strings: the URL and headers to send.
    pub fn signer_sign_for_sending(&mut self, signer: &SignerHandle, request: &SignableRequest, options: &SignOptions) -> Answer<RequestToSend> {
        self.0.call(|b, store| b.lakeport_plugins_sigv4().signer().call_sign_for_sending(store, signer.0, request, options))
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
    ) -> Answer<(SignedRequest, ChunkSignerHandle)> {
        let (signed, chunks) = self
            .0
            .call(|b, store| b.lakeport_plugins_sigv4().signer().call_start_streaming(store, signer.0, request, options, decoded_length, chunk_size))?;
        Ok((signed, ChunkSignerHandle(chunks)))
    }

    pub fn sign_chunk(&mut self, chunks: &ChunkSignerHandle, data: &[u8]) -> Answer<Vec<u8>> {
        self.0.call(|b, store| b.lakeport_plugins_sigv4().chunk_signer().call_sign_chunk(store, chunks.0, data))
    }

    pub fn sign_chunk_digest(&mut self, chunks: &ChunkSignerHandle, length: u32, sha256: &[u8]) -> Answer<String> {
        self.0.call(|b, store| b.lakeport_plugins_sigv4().chunk_signer().call_sign_chunk_digest(store, chunks.0, length, sha256))
    }

    pub fn finish_chunks(&mut self, chunks: &ChunkSignerHandle) -> Answer<Vec<u8>> {
        self.0.call(|b, store| b.lakeport_plugins_sigv4().chunk_signer().call_finish(store, chunks.0))
    }

    /// Forgets a signer and the secret it holds.
    pub fn drop_signer(&mut self, signer: SignerHandle) -> Result<()> {
        self.0.run(|_, store| signer.0.resource_drop(store))
    }

    pub fn drop_chunk_signer(&mut self, chunks: ChunkSignerHandle) -> Result<()> {
        self.0.run(|_, store| chunks.0.resource_drop(store))
    }
}
