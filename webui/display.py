"""How bytes are shown to people: text when they are text, JSON pretty, else hex; sealed
envelopes as what they are (ciphertext is never decrypted here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError

from coprocessor.envelope import MAGIC


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
    shown = "0x" + data.hex()
    if len(data) == 32:
        shown += f"\n(as uint256: {int.from_bytes(data, 'big')})"
    return shown


def short(value: str | int | None, keep: int = 10) -> str:
    if value is None:
        return ""
    text = f"0x{value:064x}" if isinstance(value, int) else str(value)
    return text if len(text) <= keep + 4 else f"{text[:keep]}…"


def timestamp(value: float | None) -> str:
    if not value:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
