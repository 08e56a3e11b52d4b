"""STS AssumeRoleWithWebIdentity through the sts component.

The component sends its request through wasi:http, which wasmtime's own
implementation provides (`Linker.add_wasi_http`). Python's `wasmtime` has
no hook on outgoing requests: unlike lakeport's host and the JavaScript
package, nothing here limits the component to the STS endpoint.
"""

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional, Union

import wasmtime
import wasmtime.component as wc

from . import _runtime
from ._call import Call


class StsError(Exception):
    """The STS call failed; the message says why and what to do."""


class TransportError(StsError):
    """No HTTP answer: DNS, refused connection, TLS, timeout."""


class HostDenied(StsError):
    """The host refused a request to a host (never raised by Python's
    `wasmtime`, which refuses none)."""


class InvalidResponse(StsError):
    """An answer that is not STS XML."""


class StsRefused(StsError):
    """The STS service said no: `code`, `status`, `request_id` say how."""

    def __init__(self, code: str, message: str, status: int, request_id: Optional[str]) -> None:
        rid = f" [request id {request_id}]" if request_id else ""
        super().__init__(f"STS refused (HTTP {status}, {code}): {message}{rid}")
        self.code = code
        self.status = status
        self.request_id = request_id


class InvalidInput(StsError):
    """The request cannot work as given."""


# One class per case of the WIT `sts-error` variant.
_ERRORS = {
    "transport": TransportError,
    "host-denied": HostDenied,
    "invalid-response": InvalidResponse,
    "invalid-input": InvalidInput,
}


def _raise(error: wc.Variant) -> None:
    if error.tag == "sts":
        r = error.payload
        raise StsRefused(r.code, r.message, r.status, getattr(r, "request-id"))
    raise _ERRORS.get(error.tag, StsError)(error.payload)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    assumed_role_id: Optional[str] = None
    assumed_role_arn: Optional[str] = None
    subject: Optional[str] = None


def _credentials(r: wc.Record) -> Credentials:
    get = lambda name: getattr(r, name)  # noqa: E731
    return Credentials(
        access_key_id=get("access-key-id"),
        secret_access_key=get("secret-access-key"),
        session_token=get("session-token"),
        expiration=datetime.fromtimestamp(get("expiration"), tz=timezone.utc),
        assumed_role_id=get("assumed-role-id"),
        assumed_role_arn=get("assumed-role-arn"),
        subject=get("subject"),
    )


_linker: Optional[wc.Linker] = None
_linker_lock = threading.Lock()


def _instance():
    """A fresh store and instance per call: the component keeps no state,
    and a trap leaves nothing behind."""
    global _linker
    with _linker_lock:
        if _linker is None:
            linker = wc.Linker(_runtime.engine())
            # wasi:http with the WASI 0.2 interfaces it speaks through (io
            # streams, pollables, the clocks' duration type).
            linker.add_wasip2()
            linker.add_wasi_http()
            _linker = linker
        store = wasmtime.Store(_runtime.engine())
        store.set_wasi(wasmtime.WasiConfig())
        store.set_wasi_http()
        instance = _linker.instantiate(store, _runtime.component("sts"))
    return store, instance, threading.Lock()


def _call(name: str, *args):
    store, instance, lock = _instance()
    return Call(store, _runtime.export_func(store, instance, "sts", name), lock)(*args)


def assume_role_with_web_identity(
    endpoint: str,
    role_arn: str,
    web_identity_token: str,
    *,
    session_name: Optional[str] = None,
    subject: Optional[str] = None,
    duration_seconds: Optional[int] = None,
    policy: Optional[str] = None,
    provider_id: Optional[str] = None,
) -> Credentials:
    """Temporary credentials for `role_arn` from the STS service at
    `endpoint`, in exchange for an OIDC token. Blocks until the answer."""
    request = _runtime.record(
        endpoint=endpoint,
        role_arn=role_arn,
        web_identity_token=web_identity_token,
        session_name=session_name,
        subject=subject,
        duration_seconds=duration_seconds,
        policy=policy,
        provider_id=provider_id,
    )
    ok, value = _call("assume-role-with-web-identity", request)
    if not ok:
        _raise(value)
    return _credentials(value)


def parse_sts_response(status: int, content_type: Optional[str], body: Union[bytes, bytearray]) -> Credentials:
    """Reads an AssumeRoleWithWebIdentity answer fetched by other means."""
    ok, value = _call("parse-response", status, content_type, bytes(body))
    if not ok:
        _raise(value)
    return _credentials(value)


def session_name(explicit: Optional[str] = None, subject: Optional[str] = None) -> str:
    """The RoleSessionName the component would send for an explicit name
    and/or a token subject."""
    return _call("session-name", explicit, subject)
