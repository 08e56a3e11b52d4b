//! A blocking HTTP client over `wasi:http/outgoing-handler`.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};
use wasip2::io::streams::StreamError;

use crate::{split_url, HttpError, HttpRequest, HttpResponse};

/// API answers (discovery, tokens, STS XML, Rucio JSON) are small; refuse
/// to buffer anything absurd.
const MAX_RESPONSE_BYTES: usize = 64 << 20;
const SECOND_NS: u64 = 1_000_000_000;

fn method(m: &str) -> Method {
    match m {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

fn describe(code: &ErrorCode, host: &str) -> HttpError {
    let m = match code {
        ErrorCode::HttpRequestDenied => return HttpError::Denied { host: host.to_string() },
        ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => format!("cannot resolve {host}: check the URL"),
        ErrorCode::ConnectionRefused => format!("{host} refused the connection: is the server running and the port right?"),
        ErrorCode::ConnectionTimeout => format!("connecting to {host} timed out"),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => format!("{host} stopped answering (timeout)"),
        ErrorCode::ConnectionTerminated | ErrorCode::HttpResponseIncomplete => format!("{host} closed the connection before answering completely"),
        ErrorCode::TlsCertificateError => {
            format!("the TLS certificate of {host} is not trusted: if it uses its own CA, pass its certificate with --ca-file")
        }
        ErrorCode::TlsProtocolError | ErrorCode::TlsAlertReceived(_) => format!("the TLS handshake with {host} failed"),
        other => format!("the request to {host} failed: {other:?}"),
    };
    HttpError::Transport(m)
}

fn write_body(body: &OutgoingBody, bytes: &[u8], host: &str) -> Result<(), HttpError> {
    let stream = body.write().map_err(|_| HttpError::Transport(format!("cannot send a body to {host}")))?;
    // The host takes at most 4 KiB per blocking write.
    for chunk in bytes.chunks(4096) {
        stream.blocking_write_and_flush(chunk).map_err(|e| HttpError::Transport(format!("sending to {host} failed: {e:?}")))?;
    }
    Ok(())
}

/// Sends a request and reads the whole response.
pub fn send(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    let (scheme, authority, path) =
        split_url(&request.url).ok_or_else(|| HttpError::Transport(format!("'{}' is not an http(s) URL", request.url)))?;
    let host = authority.to_string();
    let mut fields: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
    // A body of known size goes out with Content-Length, not chunked:
    // servers such as moto read a form body only when its length is given.
    let has_body = !request.body.is_empty() || matches!(request.method, "POST" | "PUT" | "PATCH");
    if has_body && !fields.iter().any(|(n, _)| n == "content-length") {
        fields.push(("content-length".into(), request.body.len().to_string().into_bytes()));
    }
    let headers = Fields::from_list(&fields).map_err(|e| HttpError::Transport(format!("invalid request header: {e:?}")))?;
    let outgoing = OutgoingRequest::new(headers);
    let invalid = |what: &str| HttpError::Transport(format!("invalid request {what} for {}", request.url));
    outgoing.set_method(&method(request.method)).map_err(|_| invalid("method"))?;
    outgoing.set_scheme(Some(&if scheme == "https" { Scheme::Https } else { Scheme::Http })).map_err(|_| invalid("scheme"))?;
    outgoing.set_authority(Some(authority)).map_err(|_| invalid("host"))?;
    outgoing.set_path_with_query(Some(if path.is_empty() { "/" } else { path })).map_err(|_| invalid("path"))?;
    let body = outgoing.body().map_err(|_| invalid("body"))?;

    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(15 * SECOND_NS));
    let _ = options.set_first_byte_timeout(Some(120 * SECOND_NS));
    let _ = options.set_between_bytes_timeout(Some(120 * SECOND_NS));
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(|e| describe(&e, &host))?;

    // A body write fails when the request itself failed (denied, refused):
    // then the response future holds the reason, which is what to report.
    let written = write_body(&body, &request.body, &host);
    let finished = OutgoingBody::finish(body, None).map_err(|e| describe(&e, &host));
    let response = loop {
        match future.get() {
            Some(result) => break result,
            None => future.subscribe().block(),
        }
    };
    let response = response
        .map_err(|_| HttpError::Transport(format!("the response from {host} was already taken")))?
        .map_err(|e| describe(&e, &host))?;
    written?;
    finished?;

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|_| HttpError::Transport(format!("cannot read the body from {host}")))?;
    let mut bytes = Vec::new();
    {
        let stream = incoming.stream().map_err(|_| HttpError::Transport(format!("cannot read the body from {host}")))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_RESPONSE_BYTES {
                        return Err(HttpError::Transport(format!("the response from {host} is larger than {MAX_RESPONSE_BYTES} bytes")));
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Transport(format!("reading the response from {host} failed: {}", e.to_debug_string())))
                }
            }
        }
    }
    let _ = IncomingBody::finish(incoming);
    Ok(HttpResponse { status, headers, body: bytes })
}
