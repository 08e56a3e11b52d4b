"""The sigv4 component through wasmtime's dynamic component API.

One engine, store and instance per process, made on first use, and the
export's function handle looked up once: a call then costs the marshalling
of its records only.
"""

from dataclasses import dataclass
from importlib import resources
from typing import List, Optional, Sequence, Tuple, Union

import wasmtime
import wasmtime.component as wc

_INTERFACE = "lakeport:plugins/sigv4@0.1.0"


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
    pass


# One class per case of the WIT `sign-error` variant.
_ERRORS = {
    "invalid-url": InvalidUrl,
    "invalid-header": InvalidHeader,
    "invalid-time": InvalidTime,
    "invalid-credentials": InvalidCredentials,
    "invalid-option": InvalidOption,
    "chunk-mismatch": ChunkMismatch,
}


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


class _Component:
    def __init__(self) -> None:
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        wasm = resources.files(__package__).joinpath("components", "sigv4.wasm").read_bytes()
        component = wc.Component(engine, wasm)
        # The component imports nothing: an empty linker is all it gets.
        instance = wc.Linker(engine).instantiate(self.store, component)
        interface = instance.get_export_index(self.store, _INTERFACE)
        if interface is None:
            raise RuntimeError(f"sigv4.wasm does not export {_INTERFACE}")
        self.sign = instance.get_func(self.store, instance.get_export_index(self.store, "sign", interface))


_component: Optional[_Component] = None


def _instance() -> _Component:
    global _component
    if _component is None:
        _component = _Component()
    return _component


def _record(**fields) -> wc.Record:
    # Records cross as attribute objects named as in WIT (kebab-case).
    r = wc.Record()
    for name, value in fields.items():
        setattr(r, name.replace("_", "-"), value)
    return r


def _payload(body: Union[None, bytes, str]) -> wc.Variant:
    if body is None:
        return wc.Variant("empty")
    if isinstance(body, (bytes, bytearray)):
        return wc.Variant("bytes", bytes(body))
    if body == "UNSIGNED-PAYLOAD":
        return wc.Variant("unsigned-payload")
    return wc.Variant("precomputed", body)


def _sign(method, url, headers, body, access_key_id, secret_access_key, session_token, region, service, time, expires, normalize_path, sign_body, sign_session_token) -> SignedRequest:
    if not isinstance(time, (int, str)) or isinstance(time, bool):
        raise InvalidTime("time must be Unix seconds (int) or an X-Amz-Date string (YYYYMMDDTHHMMSSZ)")
    c = _instance()
    request = _record(method=method, url=url, headers=[(str(k), str(v)) for k, v in headers], payload=_payload(body))
    credentials = _record(access_key_id=access_key_id, secret_access_key=secret_access_key, session_token=session_token)
    # `signing-time`'s cases differ in type (s64, string), so wasmtime passes
    # it untagged: the int or the str itself.
    options = _record(
        region=region,
        service=service,
        time=time,
        presign_expires=expires,
        normalize_path=normalize_path,
        sign_body=sign_body,
        sign_session_token=sign_session_token,
    )
    answer = c.sign(c.store, request, credentials, options)
    # `result<signed-request, sign-error>` comes back untagged too: the
    # error is the (tagged) `sign-error` variant, the success a record.
    if isinstance(answer, wc.Variant):
        raise _ERRORS.get(answer.tag, SignError)(answer.payload)
    get = lambda name: getattr(answer, name)  # noqa: E731
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


def sign(
    method: str,
    url: str,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    time: Union[int, str],
    headers: Sequence[Tuple[str, str]] = (),
    body: Union[None, bytes, str] = None,
    session_token: Optional[str] = None,
    service: str = "s3",
    normalize_path: bool = True,
    sign_body: bool = False,
    sign_session_token: bool = True,
) -> SignedRequest:
    """Signs a request's headers. `body`: the bytes, a precomputed SHA-256
    (hex), "UNSIGNED-PAYLOAD", or None for no body."""
    return _sign(method, url, headers, body, access_key_id, secret_access_key, session_token, region, service, time, None, normalize_path, sign_body, sign_session_token)


def presign(
    method: str,
    url: str,
    *,
    expires: int,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    time: Union[int, str],
    headers: Sequence[Tuple[str, str]] = (),
    session_token: Optional[str] = None,
    service: str = "s3",
) -> str:
    """A presigned URL valid for `expires` seconds (1..604800)."""
    return _sign(method, url, headers, "UNSIGNED-PAYLOAD", access_key_id, secret_access_key, session_token, region, service, time, expires, True, False, True).url
