"""Holding fulfilments while this bridge's operator does not stake enough to transmit.

On a router with staking, a fulfilment from an inactive operator reverts (`NotStaked`) and costs
its gas. So the submitter sends none while the transmitter is not active, says why in the
bridge's status and metrics, and resumes by itself once the operator stakes again (the requests
wait; the others' bridges, or this one after, deliver them).
"""

from __future__ import annotations

import time

from web3 import Web3

from protocol.deployment import Deployment


class StakeGate:
    def __init__(self, w3: Web3, deployment: Deployment, transmitter: str, check_every_s: float = 5.0) -> None:
        self.transmitter = transmitter
        self.check_every_s = check_every_s
        self._staking = deployment.optional_contract(w3, "OperatorStaking")
        self._checked_at = -check_every_s
        self.reason = ""

    def held(self) -> str | None:
        """Why fulfilments wait, or None when the transmitter may send them."""
        if self._staking is None:
            return None
        now = time.monotonic()
        if now - self._checked_at >= self.check_every_s:
            active = bool(self._staking.functions.isActive(self.transmitter).call())
            self.reason = (
                ""
                if active
                else (
                    f"the transmitter {self.transmitter} is not an active operator: it may not deliver results "
                    "until it stakes enough (`enclave stake add`)"
                )
            )
            self._checked_at = now
        return self.reason or None
