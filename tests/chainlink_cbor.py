"""Chainlink Functions requests as `FunctionsRequest.encodeCBOR` writes them, for tests: key/value
pairs without a map header, numbers as bignum tags over 32 bytes, indefinite-length arrays."""

from __future__ import annotations


def _head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if length < 1 << (8 * size):
            return bytes([major << 5 | info]) + length.to_bytes(size, "big")
    raise ValueError("too long")


def _text(value: str) -> bytes:
    data = value.encode()
    return _head(3, len(data)) + data


def _bytes(value: bytes) -> bytes:
    return _head(2, len(value)) + value


def _uint(value: int) -> bytes:
    return bytes([0xC2]) + _bytes(value.to_bytes(32, "big"))


def functions_request(
    source: str,
    args: list[str] | None = None,
    bytes_args: list[bytes] | None = None,
    secrets: bytes | None = None,
    secrets_location: int = 1,
) -> bytes:
    """The CBOR; `secrets` with `secrets_location` 1 is FunctionsRequest.addSecretsReference's."""
    out = _text("codeLocation") + _uint(0) + _text("language") + _uint(0) + _text("source") + _text(source)
    if args:
        out += _text("args") + b"\x9f" + b"".join(_text(a) for a in args) + b"\xff"
    if secrets is not None:
        out += _text("secretsLocation") + _uint(secrets_location) + _text("secrets") + _bytes(secrets)
    if bytes_args:
        out += _text("bytesArgs") + b"\x9f" + b"".join(_bytes(b) for b in bytes_args) + b"\xff"
    return out
