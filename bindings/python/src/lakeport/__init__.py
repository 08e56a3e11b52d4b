"""AWS Signature V4 and STS AssumeRoleWithWebIdentity from lakeport's
WebAssembly components (sigv4, sts), run in-process by wasmtime."""

from ._sigv4 import (
    ChunkMismatch,
    ChunkSigner,
    InvalidCredentials,
    InvalidHeader,
    InvalidOption,
    InvalidTime,
    InvalidUrl,
    SignError,
    SignedRequest,
    Signer,
    presign,
    sign,
)
from ._sts import (
    Credentials,
    HostDenied,
    InvalidInput,
    InvalidResponse,
    StsError,
    StsRefused,
    TransportError,
    assume_role_with_web_identity,
    parse_sts_response,
    session_name,
)

__all__ = [
    "sign",
    "presign",
    "Signer",
    "ChunkSigner",
    "SignedRequest",
    "SignError",
    "InvalidUrl",
    "InvalidHeader",
    "InvalidTime",
    "InvalidCredentials",
    "InvalidOption",
    "ChunkMismatch",
    "assume_role_with_web_identity",
    "parse_sts_response",
    "session_name",
    "Credentials",
    "StsError",
    "TransportError",
    "HostDenied",
    "InvalidResponse",
    "StsRefused",
    "InvalidInput",
]
