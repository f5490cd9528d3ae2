"""A fulfil transaction's gas limit follows what it carries (EIP-7623's calldata floor included)."""

from __future__ import annotations

from bridge.submitter import gas_limit


def test_big_non_zero_calldata_is_priced_at_the_floor() -> None:
    data = b"\xab" * 4096
    assert gas_limit(data, execution=30_000) >= 21_000 + 40 * 4096, "the floor: 10 gas a token, 4 tokens a byte"


def test_small_calldata_is_priced_by_its_execution() -> None:
    data = b"\x00" * 100 + b"\x01" * 100
    limit = gas_limit(data, execution=200_000)
    assert limit >= 21_000 + 4 * 100 + 16 * 100 + 200_000
    assert limit < 21_000 + 4 * 100 + 16 * 100 + 200_000 + 30_000, "a tenth more, not more"
