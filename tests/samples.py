"""Request fields for unit tests that need a request's shape, not a chain."""

from __future__ import annotations

from eth_utils.crypto import keccak

from protocol.results import RequestCommitment


def commitment(input_: bytes, *, created_at: int = 1, deadline: int = 2**40, nonce: int = 0) -> RequestCommitment:
    """Agent 1's fields for `input_`, made by one consumer at no fee."""
    return RequestCommitment(
        agent_id=1,
        code_hash=b"\x01" * 32,
        input_hash=keccak(input_),
        consumer="0x" + "c0" * 20,
        fee=0,
        callback_gas_limit=100_000,
        created_at=created_at,
        deadline=deadline,
        nonce=nonce,
    )
