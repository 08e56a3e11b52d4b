//! A blocking HTTP client over `wasi:http/outgoing-handler`: one request,
//! sent through [`crate::aio`] and read whole.

use crate::{aio, HttpError, HttpRequest, HttpResponse};

/// API answers (discovery, tokens, STS XML, Rucio JSON) are small; refuse
/// to buffer anything absurd.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Sends a request and reads the whole response.
pub fn send(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    aio::block_on(async { aio::send(request).await?.read_all(MAX_RESPONSE_BYTES).await })
}
