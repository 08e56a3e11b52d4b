"""SigV4 through the sigv4 component.

One store and instance per process, made on first use, with the function
handles looked up and their types read once. `sign` and `presign` go
through the component's `sign-flat` export: strings and scalars in, one
string out. wasmtime's dynamic component API converts WIT values one by
one, re-reading their types on each call; a record with a list of header
tuples cost about 1 ms a call, a dozen strings cost about 0.1 ms. Bodies
are hashed here with hashlib (native SHA-256, and no bytes to copy into
the component), and the component signs the hash.
"""

import hashlib
import threading
import time as _time
from dataclasses import dataclass
from typing import Iterable, List, Mapping, Optional, Tuple, Union

import wasmtime
import wasmtime.component as wc

from . import _runtime
from ._call import Call

Body = Union[None, bytes, bytearray, memoryview, str]
Time = Union[None, int, str]
# (name, value) pairs in order, or a mapping.
Headers = Union[Iterable[Tuple[str, str]], Mapping[str, str]]


class SignError(Exception):
    """Signing failed; the message says why."""


class InvalidUrl(SignError):
    pass


class InvalidHeader(SignError):
    pass


class InvalidTime(SignError):
    pass


class InvalidCredentials(SignError):
    pass


class InvalidOption(SignError):
    pass


class ChunkMismatch(SignError):
    """A streaming body did not match what was announced."""


# One class per case of the WIT `sign-error` variant.
_ERRORS = {
    "invalid-url": InvalidUrl,
    "invalid-header": InvalidHeader,
    "invalid-time": InvalidTime,
    "invalid-credentials": InvalidCredentials,
    "invalid-option": InvalidOption,
    "chunk-mismatch": ChunkMismatch,
}


def _raise(error: wc.Variant) -> None:
    raise _ERRORS.get(error.tag, SignError)(error.payload)


@dataclass(frozen=True)
class SignedRequest:
    method: str
    url: str
    headers: List[Tuple[str, str]]
    signature: str
    canonical_request: str
    string_to_sign: str
    signed_headers: str
    authorization: Optional[str]
    payload_hash: str


class _Sigv4:
    def __init__(self) -> None:
        self.store = wasmtime.Store(_runtime.engine())
        # The component imports nothing: an empty linker is all it gets.
        instance = wc.Linker(_runtime.engine()).instantiate(self.store, _runtime.component("sigv4"))
        self.lock = threading.Lock()

        def call(name: str) -> Call:
            return Call(self.store, _runtime.export_func(self.store, instance, "sigv4", name), self.lock)

        self.sign_flat = call("sign-flat")
        self.new_signer = call("[constructor]signer")
        self.start_streaming = call("[method]signer.start-streaming")
        self.sign_chunk_digest = call("[method]chunk-signer.sign-chunk-digest")
        self.finish_chunks = call("[method]chunk-signer.finish")
        self.last_signature = call("[method]chunk-signer.last-signature")


_instance: Optional[_Sigv4] = None
_instance_lock = threading.Lock()


def _sigv4() -> _Sigv4:
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = _Sigv4()
        return _instance


def _time_value(time: Time) -> Union[int, str]:
    if time is None:
        return int(_time.time())
    if isinstance(time, bool) or not isinstance(time, (int, str)):
        raise InvalidTime("time must be Unix seconds (int) or an X-Amz-Date string (YYYYMMDDTHHMMSSZ)")
    return time


def _payload_arg(body: Body) -> str:
    if body is None:
        return ""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return hashlib.sha256(body).hexdigest()
    return body


def _header_block(headers: Headers) -> Tuple[str, int]:
    fields = []
    for name, value in headers.items() if isinstance(headers, Mapping) else headers:
        fields.append(str(name))
        fields.append(str(value))
    return "\0".join(fields), len(fields) // 2


def _decode_flat(flat: str) -> SignedRequest:
    fields = flat.split("\0")
    url, signature, signed_headers, payload_hash, authorization, string_to_sign, canonical_request = fields[:7]
    return SignedRequest(
        # The canonical request starts with the method as signed.
        method=canonical_request.split("\n", 1)[0],
        url=url,
        headers=list(zip(fields[7::2], fields[8::2])),
        signature=signature,
        canonical_request=canonical_request,
        string_to_sign=string_to_sign,
        signed_headers=signed_headers,
        authorization=authorization or None,
        payload_hash=payload_hash,
    )


def _sign(method, url, headers, body, access_key_id, secret_access_key, session_token, region, service, time, expires, normalize_path, sign_body, sign_session_token) -> SignedRequest:
    block, count = _header_block(headers)
    # `sign-flat` takes Unix seconds in decimal or an X-Amz-Date.
    time_arg = str(_time_value(time))
    ok, value = _sigv4().sign_flat(
        method,
        url,
        block,
        count,
        _payload_arg(body),
        access_key_id,
        secret_access_key,
        session_token or "",
        region,
        service,
        time_arg,
        expires,
        bool(normalize_path),
        bool(sign_body),
        bool(sign_session_token),
    )
    if not ok:
        _raise(value)
    return _decode_flat(value)


def _expires_arg(expires: Optional[int]) -> int:
    """`sign-flat`'s presign-expires, where 0 signs the headers: values it
    cannot carry are refused here, the rest (the 7-day limit) by the
    component."""
    if expires is None:
        return 0
    if isinstance(expires, bool) or not isinstance(expires, int) or not 0 < expires < 2**32:
        raise InvalidOption(f"presign expiry {expires!r} is not a positive number of seconds")
    return expires


def sign(
    method: str,
    url: str,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    time: Time = None,
    headers: Headers = (),
    body: Body = None,
    session_token: Optional[str] = None,
    service: str = "s3",
    normalize_path: bool = True,
    sign_body: bool = False,
    sign_session_token: bool = True,
    expires: Optional[int] = None,
) -> SignedRequest:
    """Signs a request's headers, or with `expires` (seconds, 1..604800)
    its query: the returned `url` is then the presigned URL.

    `body`: the bytes (hashed here), their SHA-256 in hex, "UNSIGNED-PAYLOAD",
    or None (or "") for no body. `time`: Unix seconds, an X-Amz-Date string,
    or None for now."""
    return _sign(method, url, headers, body, access_key_id, secret_access_key, session_token, region, service, time, _expires_arg(expires), normalize_path, sign_body, sign_session_token)


def presign(
    method: str,
    url: str,
    *,
    expires: int,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    time: Time = None,
    headers: Headers = (),
    session_token: Optional[str] = None,
    service: str = "s3",
    normalize_path: bool = True,
    sign_session_token: bool = True,
) -> str:
    """A presigned URL valid for `expires` seconds (1..604800)."""
    return _sign(method, url, headers, None, access_key_id, secret_access_key, session_token, region, service, time, _expires_arg(expires), normalize_path, False, sign_session_token).url


class ChunkSigner:
    """Frames the chunks of one aws-chunked body, each signature chained to
    the previous one. Close it (or use `with`) when done."""

    def __init__(self, resource: wc.ResourceAny) -> None:
        self._resource: Optional[wc.ResourceAny] = resource

    def _handle(self) -> wc.ResourceAny:
        if self._resource is None:
            raise ValueError("this ChunkSigner is closed")
        return self._resource

    def sign_chunk_digest(self, length: int, sha256: bytes) -> str:
        """The chunk's framing header (`hex-size;chunk-signature=SIG\\r\\n`)
        from its length and SHA-256 (32 bytes): send it, the data, then
        `\\r\\n`."""
        ok, value = _sigv4().sign_chunk_digest(self._handle(), length, bytes(sha256))
        if not ok:
            _raise(value)
        return value

    def sign_chunk(self, data: Union[bytes, bytearray, memoryview]) -> bytes:
        """One framed chunk: header, data, `\\r\\n`. The data is hashed here
        and only its digest crosses into the component."""
        header = self.sign_chunk_digest(len(data), hashlib.sha256(data).digest())
        return header.encode("ascii") + bytes(data) + b"\r\n"

    def finish(self) -> bytes:
        """The final empty chunk; ChunkMismatch if the chunks did not add up
        to the announced length."""
        ok, value = _sigv4().finish_chunks(self._handle())
        if not ok:
            _raise(value)
        return value

    @property
    def last_signature(self) -> str:
        """The signature of the last chunk signed (the seed before any)."""
        return _sigv4().last_signature(self._handle())

    def close(self) -> None:
        if self._resource is not None:
            c = _sigv4()
            with c.lock:
                self._resource.drop(c.store)
            self._resource = None

    def __enter__(self) -> "ChunkSigner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _signed_from_record(r: wc.Record) -> SignedRequest:
    get = lambda name: getattr(r, name)  # noqa: E731
    return SignedRequest(
        method=get("method"),
        url=get("url"),
        headers=[tuple(h) for h in get("headers")],
        signature=get("signature"),
        canonical_request=get("canonical-request"),
        string_to_sign=get("string-to-sign"),
        signed_headers=get("signed-headers"),
        authorization=get("authorization"),
        payload_hash=get("payload-hash"),
    )


class Signer:
    """Credentials, region and service held for a series of requests."""

    def __init__(self, access_key_id: str, secret_access_key: str, session_token: Optional[str] = None, *, region: str, service: str = "s3") -> None:
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._session_token = session_token
        self.region = region
        self.service = service

    def __repr__(self) -> str:
        return f"Signer(access_key_id={self._access_key_id!r}, region={self.region!r}, service={self.service!r})"

    def sign(self, method: str, url: str, *, time: Time = None, headers: Headers = (), body: Body = None, normalize_path: bool = True, sign_body: bool = False, sign_session_token: bool = True, expires: Optional[int] = None) -> SignedRequest:
        """As `lakeport.sign`, with this signer's keys, region and service."""
        return _sign(method, url, headers, body, self._access_key_id, self._secret_access_key, self._session_token, self.region, self.service, time, _expires_arg(expires), normalize_path, sign_body, sign_session_token)

    def presign(self, method: str, url: str, *, expires: int, time: Time = None, headers: Headers = (), normalize_path: bool = True, sign_session_token: bool = True) -> str:
        """As `lakeport.presign`, with this signer's keys, region and service."""
        return _sign(method, url, headers, None, self._access_key_id, self._secret_access_key, self._session_token, self.region, self.service, time, _expires_arg(expires), normalize_path, False, sign_session_token).url

    def start_streaming(self, method: str, url: str, *, decoded_length: int, chunk_size: int = 65536, time: Time = None, headers: Headers = ()) -> Tuple[SignedRequest, ChunkSigner]:
        """Signs the headers of an aws-chunked upload
        (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`) of `decoded_length` bytes sent
        in chunks of `chunk_size` bytes (the last may be shorter); returns the
        signed request (with the framed body's Content-Length) and the
        ChunkSigner that frames the body."""
        c = _sigv4()
        credentials = _runtime.record(access_key_id=self._access_key_id, secret_access_key=self._secret_access_key, session_token=self._session_token)
        request = _runtime.record(method=method, url=url, headers=[(str(k), str(v)) for k, v in (headers.items() if isinstance(headers, Mapping) else headers)], payload=wc.Variant("empty"))
        # `signing-time`'s cases differ in type (s64, string): wasmtime takes
        # it untagged, the int or the str itself.
        options = _runtime.record(
            region=self.region,
            service=self.service,
            time=_time_value(time),
            presign_expires=None,
            normalize_path=True,
            sign_body=False,
            sign_session_token=True,
        )
        signer = c.new_signer(credentials)
        try:
            ok, value = c.start_streaming(signer, request, options, decoded_length, chunk_size)
        finally:
            with c.lock:
                signer.drop(c.store)
        if not ok:
            _raise(value)
        signed, chunks = value
        return _signed_from_record(signed), ChunkSigner(chunks)
