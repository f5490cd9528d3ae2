"""Formatting for the dashboard's templates; bytes are shown by `enclave.display`."""

from __future__ import annotations

from datetime import UTC, datetime

from enclave.display import show_bytes as show_bytes


def short(value: str | int | None, keep: int = 10) -> str:
    if value is None:
        return ""
    text = f"0x{value:064x}" if isinstance(value, int) else str(value)
    return text if len(text) <= keep + 4 else f"{text[:keep]}…"


def eth(wei: int | str | None) -> str:
    """A wei amount in ETH, as short as it stays exact (`0.001 ETH`, `0 ETH`)."""
    if wei is None:
        return ""
    amount = int(wei)
    whole, fraction = divmod(amount, 10**18)
    digits = f"{fraction:018d}".rstrip("0")
    return f"{whole}.{digits} ETH" if digits else f"{whole} ETH"


def timestamp(value: float | None) -> str:
    if not value:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_ms(value: float | None) -> str:
    if value is None:
        return "\u2013"  # an en dash: nothing to show
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
