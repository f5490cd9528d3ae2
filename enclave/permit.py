"""EIP-2612 permits: an ERC-20 holder's signature that approves a spender, so that a contract can
take the tokens in the same transaction as the call that needs them (no `approve` first)."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

PERMIT_TYPES = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@dataclass(frozen=True)
class Permit:
    """A signed permit's fields as `permit(owner, spender, value, deadline, v, r, s)` takes them."""

    value: int
    deadline: int
    v: int
    r: bytes
    s: bytes


def sign_permit(token: Contract, holder: LocalAccount, spender: str, value: int, deadline: int) -> Permit:
    """`holder`'s permit for `spender` to take `value` of `token` until `deadline` (unix time).

    The domain is the token's own, read through ERC-5267's `eip712Domain()`, and the nonce its
    next one for `holder`: a permit is good once.
    """
    _, name, version, chain_id, verifying_contract, _, _ = token.functions.eip712Domain().call()
    signed = holder.sign_typed_data(
        domain_data={"name": name, "version": version, "chainId": chain_id, "verifyingContract": verifying_contract},
        message_types=PERMIT_TYPES,
        message_data={
            "owner": holder.address,
            "spender": spender,
            "value": value,
            "nonce": token.functions.nonces(holder.address).call(),
            "deadline": deadline,
        },
    )
    return Permit(value, deadline, signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"))
