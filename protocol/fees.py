"""What a request pays: the value to send with it and the gas price that value was reckoned at.

A request paid with its value must send at least the router's `estimateCost` at the request
transaction's own gas price (the agent's price, the operator's fee, and its callback gas plus
the delivery overhead at that price); what it does not cost comes back to the consumer. Under
EIP-1559 the price a transaction pays is only known once it is mined, but never exceeds its
`maxFeePerGas`: reckoned at that cap, and sent with it, the value always covers the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import Web3


@dataclass(frozen=True)
class GasPrice:
    """The fee cap and tip of one transaction (EIP-1559), in wei per gas."""

    max_fee: int
    priority_fee: int

    def params(self) -> dict[str, int]:
        return {"maxFeePerGas": self.max_fee, "maxPriorityFeePerGas": self.priority_fee}


def current_gas_price(w3: Web3) -> GasPrice:
    """Twice the latest base fee plus the node's suggested tip: what web3 would set, made explicit
    so that a request's value can be reckoned at the same cap."""
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    priority_fee = int(w3.eth.max_priority_fee)
    return GasPrice(max_fee=2 * base_fee + priority_fee, priority_fee=priority_fee)


def request_value(router: Any, agent_id: int, callback_gas_limit: int, gas_price: GasPrice) -> int:
    """The least a request of `agent_id` sent at `gas_price` must pay (router.estimateCost)."""
    return int(router.functions.estimateCost(agent_id, callback_gas_limit, gas_price.max_fee).call())
