"""EIP-1559 transactions signed without eth_account's validation and formatting.

On the way of every fulfilment, `LocalAccount.sign_transaction` cost ~0.4 ms, most of it in
checking and normalising the fields this module's caller builds itself; libsecp256k1 signs
here directly, a third of eth_keys' time. The bytes are the same (RFC 6979 signatures are
deterministic): `tests/test_sender.py` compares them.
"""

from __future__ import annotations

from typing import Any

import coincurve
import rlp

from protocol.hexes import from_hex
from protocol.keccak import keccak256

DYNAMIC_FEE_TX_TYPE = b"\x02"
_FIELDS = ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gas", "to", "value", "data")


def is_plain_dynamic_fee(tx: dict[str, Any]) -> bool:
    """Whether `tx` is an EIP-1559 call with exactly these fields (no access list)."""
    return set(tx) - {"type"} == set(_FIELDS) and tx.get("type", 2) in (2, "0x2")


def sign_dynamic_fee(key: coincurve.PrivateKey, tx: dict[str, Any]) -> tuple[bytes, bytes]:
    """The signed transaction's raw bytes and its hash."""
    data = tx["data"]
    fields: list[Any] = [
        int(tx["chainId"]),
        int(tx["nonce"]),
        int(tx["maxPriorityFeePerGas"]),
        int(tx["maxFeePerGas"]),
        int(tx["gas"]),
        from_hex(tx["to"]),
        int(tx["value"]),
        from_hex(data) if isinstance(data, str) else bytes(data),
        [],  # access list
    ]
    signature = key.sign_recoverable(keccak256(DYNAMIC_FEE_TX_TYPE + rlp.encode(fields)), hasher=None)
    r, s, y_parity = (int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64])
    raw = DYNAMIC_FEE_TX_TYPE + rlp.encode([*fields, y_parity, r, s])
    return raw, keccak256(raw)
