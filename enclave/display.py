"""How bytes are shown to people, in the CLI and the dashboard alike: text when they are text,
JSON pretty, else hex (with the uint256 a 32-byte value would be); a sealed envelope as what it
is, ciphertext never decrypted here."""

from __future__ import annotations

import json

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError

from protocol.envelope import MAGIC
from protocol.hexes import to_hex


def show_bytes(data: bytes) -> str:
    if not data:
        return "(empty)"
    if data.startswith(MAGIC):
        try:
            epoch, sealed, inner = decode(["uint64", "bytes", "bytes"], data[len(MAGIC) :])
        except DecodingError:
            return "sealed envelope (malformed)"
        return f"sealed secrets: {len(sealed)} bytes of ciphertext for key epoch {epoch}\ninput: {show_bytes(inner)}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\n\t" for c in text):
        try:
            return json.dumps(json.loads(text), indent=2)
        except json.JSONDecodeError:
            return text
    shown = to_hex(data)
    if len(data) == 32:
        shown += f"\n(as uint256: {int.from_bytes(data, 'big')})"
    return shown
