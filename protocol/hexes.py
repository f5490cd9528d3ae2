"""Bytes as people and JSON see them: 0x-prefixed hex. Light: the sandbox child imports it."""

from __future__ import annotations


def to_hex(data: bytes) -> str:
    return "0x" + data.hex()


def from_hex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))
