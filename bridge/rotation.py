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

from protocol.calls import FunctionEncoder
from protocol.hexes import to_hex
from protocol.jsonrpc import JsonRpc


class RotationGate:
    def __init__(
        self,
        w3: Web3,
        registry: Contract,
        confirmations: int = 2,
        check_every_s: float = 0.2,
        rpc_timeout_s: float = 10.0,
    ) -> None:
        self.w3 = w3
        self.registry = registry
        self.confirmations = confirmations
        self.check_every_s = check_every_s
        self._checked_at = 0.0
        self._held = False
        self.reason = ""
        # Asked on a dispatch's way a few times a second: one lean JSON-RPC batch, not four
        # web3 calls (which cost a request caught by a check ~3 ms).
        self._rpc = JsonRpc.of(w3, rpc_timeout_s)
        self._pending_call = to_hex(FunctionEncoder.of(registry.abi, "rotationPending").encode([]))
        self._epoch_call = to_hex(FunctionEncoder.of(registry.abi, "currentEpoch").encode([]))
        self._epoch: int | None = None
        # The block each epoch was published at, which never changes once it is.
        self._published: dict[int, int] = {}

    def epoch(self) -> int | None:
        """The key epoch on-chain as last read (a few times a second while dispatching), without
        asking the chain: a scrape of the metrics never waits on an unreachable node."""
        return self._epoch

    def held(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= self.check_every_s:
            self._held, self.reason = self._check()
            self._checked_at = now
        return self._held

    def _check(self) -> tuple[bool, str]:
        pending, epoch, head = (
            int(str(value), 16)
            for value in self._rpc.batch_results(
                [
                    ("eth_call", [{"to": self.registry.address, "data": self._pending_call}, "latest"]),
                    ("eth_call", [{"to": self.registry.address, "data": self._epoch_call}, "latest"]),
                    ("eth_blockNumber", []),
                ]
            )
        )
        self._epoch = epoch
        if pending:
            return True, "key rotation requested; waiting for the next epoch"
        if epoch <= 1:
            return False, ""
        if epoch not in self._published:
            self._published[epoch] = int(self.registry.functions.getEpoch(epoch).call()[1])
        published = self._published[epoch]
        if head < published + self.confirmations:
            return True, f"epoch {epoch} published at block {published}; resuming at {published + self.confirmations}"
        return False, ""
