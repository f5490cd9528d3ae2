"""Requests whose deadline passed before they could be delivered.

Until its deadline a request is tried again and again (with growing delays); after it the router
refuses any result for it. The expirer then marks it failed and cancels it on-chain, so that its
fee goes back to the consumer instead of staying in escrow. It runs on the submitter's thread
and sends through the same `Sender`: one account, no two transactions with the same nonce.
"""

from __future__ import annotations

import logging
import time

from web3 import Web3
from web3.contract import Contract

from bridge.sender import SEND_ERRORS, Receipt, Sender
from bridge.store import RequestStore, StoredRequest
from protocol.calls import FunctionEncoder

log = logging.getLogger(__name__)

CANCEL_GAS = 150_000
# What `cancel_tx` holds for a failed request the chain already closed (nothing to refund).
NOTHING_TO_CANCEL = ""


class Expirer:
    def __init__(
        self,
        w3: Web3,
        router: Contract,
        sender: Sender,
        store: RequestStore,
        check_every_s: float = 2.0,
    ) -> None:
        self.w3 = w3
        self.router = router
        self.sender = sender
        self.store = store
        self.check_every_s = check_every_s
        self._cancel_call = FunctionEncoder.of(router.abi, "cancel")
        self._next_check = 0.0

    def poll(self) -> int:
        """Fails what can no longer be delivered and cancels it; returns how many it touched."""
        if time.monotonic() < self._next_check:
            return 0
        self._next_check = time.monotonic() + self.check_every_s
        chain_time = int(self.w3.eth.get_block("latest")["timestamp"])
        touched = 0
        for request in self.store.expired(("pending", "executed"), chain_time):
            self.store.move(request.request_id, "failed", "its deadline passed before it could be delivered")
            touched += 1
        for request in self.store.expired(("failed",), chain_time):
            self._cancel(request)
            touched += 1
        return touched

    def _cancel(self, request: StoredRequest) -> None:
        if not self.router.functions.isOpen(request.request_id).call():
            # Closed already (fulfilled by another transmitter, or cancelled by anyone): the
            # watcher records how; there is nothing left to refund.
            self.store.mark_cancelling(request.request_id, NOTHING_TO_CANCEL)
            return
        if self.sender.room() <= 0:
            return  # the next check tries again
        data = self._cancel_call.encode([request.commitment.as_tuple()])
        request_id = request.request_id

        def mined(receipt: Receipt) -> None:
            if receipt.status != 1:
                log.warning("cancel tx %s reverted; trying again later", receipt.tx_hash)
                self.store.clear_cancel(request_id)
                return
            log.info("request 0x%064x cancelled: its fee went back to %s", request_id, request.commitment.consumer)

        def lost(reason: str) -> None:
            log.warning("cancel of request 0x%064x was not mined (%s); trying again later", request_id, reason)
            self.store.clear_cancel(request_id)

        try:
            # Stored before it is sent, like a fulfil transaction: a restart finds it.
            self.sender.send(
                self.router.address,
                data,
                CANCEL_GAS,
                lambda tx_hash: self.store.mark_cancelling(request_id, tx_hash),
                mined,
                lost,
                lambda tx_hash: self.store.mark_cancelling(request_id, tx_hash),
            )
        except SEND_ERRORS as err:
            log.warning("cancel of request 0x%064x failed, trying again later: %s", request_id, err)
            self.store.clear_cancel(request_id)
