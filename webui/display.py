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
    return _decimal(wei, "ETH")


def tokens(units: int | str | None) -> str:
    """An amount of a token of 18 decimals (the fee token, the stake), as short as it stays exact."""
    return _decimal(units, "tokens")


def money(amount: int | str | None, currency: int | str | None) -> str:
    """An amount in a request's or a subscription's currency: 0 wei, 1 the fee token."""
    return tokens(amount) if int(currency or 0) == 1 else eth(amount)


def unit(currency: int | str | None) -> str:
    """What raw amounts in a currency count, for a tooltip."""
    return "token units" if int(currency or 0) == 1 else "wei"


def _decimal(amount: int | str | None, name: str) -> str:
    if amount is None:
        return ""
    whole, fraction = divmod(int(amount), 10**18)
    digits = f"{fraction:018d}".rstrip("0")
    return f"{whole}.{digits} {name}" if digits else f"{whole} {name}"


def timestamp(value: float | None) -> str:
    if not value:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_ms(value: float | None) -> str:
    if value is None:
        return "\u2013"  # an en dash: nothing to show
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
