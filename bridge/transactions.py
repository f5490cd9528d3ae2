"""Transactions of the bridge's account: built at the account's next nonce, signed, and named by
their hash before they are sent, so that a restart can look for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from web3 import Web3

from protocol.hexes import from_hex, to_hex


def sign_call(
    w3: Web3, account: LocalAccount, call: Any, gas_for: Callable[[bytes], int]
) -> tuple[SignedTransaction, str]:
    """`call` signed by `account`, its gas limit `gas_for(calldata)`; and its hash, as 0x hex."""
    params: Any = {
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "gas": gas_for(b""),  # given, so that web3 does not estimate it; set from the calldata below
    }
    tx = call.build_transaction(params)
    tx["gas"] = gas_for(from_hex(str(tx["data"])))
    signed = account.sign_transaction(tx)
    return signed, to_hex(bytes(signed.hash))
