"""Holding dispatch while the cluster rotates its keys.

Between `RotationRequested` and the new epoch, workers still sign with the outgoing key, and
results for requests made after the new epoch is published would be refused on-chain. So the
bridge dispatches nothing while a rotation is pending, and resumes `confirmations` blocks after
the new epoch's publication, by when every worker has followed the chain to the new key.
"""

from __future__ import annotations

import time

from web3 import Web3
from web3.contract import Contract


class RotationGate:
    def __init__(self, w3: Web3, registry: Contract, confirmations: int = 2, check_every_s: float = 0.2) -> None:
        self.w3 = w3
        self.registry = registry
        self.confirmations = confirmations
        self.check_every_s = check_every_s
        self._checked_at = 0.0
        self._held = False
        self.reason = ""

    def epoch(self) -> int:
        return int(self.registry.functions.currentEpoch().call())

    def held(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= self.check_every_s:
            self._held, self.reason = self._check()
            self._checked_at = now
        return self._held

    def _check(self) -> tuple[bool, str]:
        if self.registry.functions.rotationPending().call():
            return True, "key rotation requested; waiting for the next epoch"
        epoch = int(self.registry.functions.currentEpoch().call())
        if epoch <= 1:
            return False, ""
        published = int(self.registry.functions.getEpoch(epoch).call()[1])
        head = self.w3.eth.block_number
        if head < published + self.confirmations:
            return True, f"epoch {epoch} published at block {published}; resuming at {published + self.confirmations}"
        return False, ""
