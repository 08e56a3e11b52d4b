"""AWS Signature V4 from lakeport's sigv4 WebAssembly component."""

from ._sigv4 import (
    ChunkMismatch,
    InvalidCredentials,
    InvalidHeader,
    InvalidOption,
    InvalidTime,
    InvalidUrl,
    SignError,
    SignedRequest,
    presign,
    sign,
)

__all__ = [
    "sign",
    "presign",
    "SignedRequest",
    "SignError",
    "InvalidUrl",
    "InvalidHeader",
    "InvalidTime",
    "InvalidCredentials",
    "InvalidOption",
    "ChunkMismatch",
]
