"""The submitter: batches executed results into `fulfill` transactions and reads their receipts.

A transaction's hash is stored before it is sent, so a bridge killed mid-send finds it on
restart: mined, still pending, or dropped (then the results are submitted again; the chain
refuses a duplicate, which is recorded as such and not retried).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TimeExhausted, TransactionNotFound, Web3Exception
from web3.logs import DISCARD

from bridge.backoff import retry_delay
from bridge.store import RequestStore, StoredRequest
from bridge.transactions import sign_call
from bridge.worker_client import WorkerError
from bridge.workers import WorkerPool
from protocol.hexes import to_hex
from protocol.results import NotProcessedReason
from protocol.wire import ExecuteResponse

log = logging.getLogger(__name__)

# Gas around the callbacks: the transaction, the signature check(s), the commitment, the event.
BASE_GAS = 120_000
PER_RESULT_GAS = 60_000
# A result in calldata besides its output: the request's nine fields, status, offsets, lengths.
RESULT_CALLDATA_BYTES = 32 * 14
# EIP-7623: a transaction pays at least 10 gas per calldata token, a non-zero byte being 4.
FLOOR_GAS_PER_TOKEN = 10
FLOOR_GAS_PER_NONZERO_BYTE = 4 * FLOOR_GAS_PER_TOKEN
BLOCK_GAS_BUDGET = 25_000_000

RECEIPT_POLL_S = 0.02
RETRY_BY_REEXECUTING = {NotProcessedReason.STALE_EPOCH, NotProcessedReason.INVALID_SIGNATURE}


def gas_limit(calldata: bytes, execution: int) -> int:
    """A transaction's gas limit from what it carries: the standard price of its calldata plus
    its execution, or the EIP-7623 floor if that is higher, with a tenth more for margin."""
    zeros = calldata.count(0)
    nonzeros = len(calldata) - zeros
    standard = 21_000 + 4 * zeros + 16 * nonzeros + execution
    floor = 21_000 + FLOOR_GAS_PER_TOKEN * (zeros + 4 * nonzeros)
    return max(standard, floor) * 11 // 10


class Submitter:
    def __init__(
        self,
        w3: Web3,
        router: Contract,
        account: LocalAccount,
        store: RequestStore,
        workers: WorkerPool,
        start_block: int = 0,
        batch_size: int = 50,
        receipt_timeout_s: float = 120.0,
        max_backoff_s: float = 15.0,
    ) -> None:
        self.w3 = w3
        # Told of every result this bridge delivered (request id, its share of the tx's gas).
        self.on_delivered: Callable[[int, int | None], None] = lambda request_id, gas: None
        self.router = router
        self.account = account
        self.store = store
        self.workers = workers
        self.start_block = start_block
        self.batch_size = batch_size
        self.receipt_timeout_s = receipt_timeout_s
        self.max_backoff_s = max_backoff_s

    # -- after a restart ------------------------------------------------------------------------

    def recover(self) -> None:
        by_tx: dict[str, list[int]] = defaultdict(list)
        for request in self.store.list_in("submitted"):
            by_tx[request.fulfil_tx or ""].append(request.request_id)
        for tx_hash, request_ids in by_tx.items():
            receipt = self._find_receipt(tx_hash) if tx_hash else None
            if receipt is not None:
                self._apply(receipt, request_ids)
                continue
            for request_id in request_ids:
                self.store.move(request_id, "executed", f"fulfil tx {tx_hash or '?'} was never mined")

    def _find_receipt(self, tx_hash: str) -> Any | None:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            pass
        try:
            self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        try:  # still in the mempool: wait for it
            return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout_s)  # type: ignore[arg-type]
        except TimeExhausted:
            return None

    # -- submitting -----------------------------------------------------------------------------

    def poll(self) -> int:
        ready = self.store.list_in("executed", limit=self.batch_size, due_only=True)
        if not ready:
            return 0
        by_epoch: dict[int, list[tuple[StoredRequest, ExecuteResponse]]] = defaultdict(list)
        for request in ready:
            if request.result is None:  # "executed" is only ever set together with a result
                continue
            response = ExecuteResponse.model_validate(request.result)
            by_epoch[response.signature.epoch].append((request, response))
        for group in by_epoch.values():
            # A request whose batch already failed goes alone, so that one bad result never
            # holds or fails the others again.
            alone = [item for item in group if item[0].attempts > 0]
            together = [item for item in group if item[0].attempts == 0]
            for chunk in self._chunks(together) + [[item] for item in alone]:
                if chunk:
                    self._submit(chunk)
        return len(ready)

    def _chunks(
        self, group: list[tuple[StoredRequest, ExecuteResponse]]
    ) -> list[list[tuple[StoredRequest, ExecuteResponse]]]:
        """Splits a group so that each transaction's gas fits in a block."""
        chunks: list[list[tuple[StoredRequest, ExecuteResponse]]] = [[]]
        budget = BLOCK_GAS_BUDGET - BASE_GAS
        for item in group:
            need = self._result_gas(item[0])
            if chunks[-1] and need > budget:
                chunks.append([])
                budget = BLOCK_GAS_BUDGET - BASE_GAS
            chunks[-1].append(item)
            budget -= need
        return chunks

    @staticmethod
    def _result_gas(request: StoredRequest) -> int:
        """An upper bound of one result's gas: its callback, the router's work, and its calldata
        at the EIP-7623 floor price (40 gas a non-zero byte), which a 4 KiB output makes
        larger than all the rest."""
        limit = request.commitment.callback_gas_limit
        output = len(request.row["output"] or b"")
        calldata = RESULT_CALLDATA_BYTES + output + 32
        return limit + limit // 63 + PER_RESULT_GAS + FLOOR_GAS_PER_NONZERO_BYTE * calldata

    def _submit(self, group: list[tuple[StoredRequest, ExecuteResponse]]) -> None:
        request_ids = [request.request_id for request, _ in group]
        responses = [response for _, response in group]
        call = self._batch_call(responses) if len(responses) > 1 else None
        if call is None:
            call = self.router.functions.fulfill([r.signed_result().as_tuple() for r in responses])
        execution = BASE_GAS + sum(self._result_gas(request) for request, _ in group)
        try:
            signed, tx_hash = sign_call(self.w3, self.account, call, lambda data: gas_limit(data, execution))
            self.store.mark_submitted(request_ids, tx_hash)
            self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(
                signed.hash, timeout=self.receipt_timeout_s, poll_latency=RECEIPT_POLL_S
            )
        except (Web3Exception, ValueError, OSError) as err:
            log.warning("fulfil transaction failed: %s", err)
            for request_id in request_ids:
                # The node or the network, not the request: no attempt of its is spent.
                self._retry(request_id, "executed", f"fulfil transaction failed: {err}", count=False)
            return
        self._apply(receipt, request_ids)

    def _batch_call(self, responses: list[ExecuteResponse]) -> Any | None:
        """`fulfillBatch` with one signature from any worker, or None to fall back to `fulfill`."""
        for client in self.workers.candidates():
            try:
                signature = client.sign_batch(responses)
            except WorkerError as err:
                log.info("batch signature from %s failed: %s", client.url, err)
                continue
            results = [r.signed_result().result.as_tuple() for r in responses]
            return self.router.functions.fulfillBatch(results, signature.as_tuple())
        return None

    # -- reading what the chain did ---------------------------------------------------------------

    def _apply(self, receipt: Any, request_ids: list[int]) -> None:
        tx_hash = to_hex(bytes(receipt["transactionHash"]))
        if receipt["status"] != 1:
            for request_id in request_ids:
                self._retry(request_id, "executed", f"fulfil tx {tx_hash} reverted")
            return
        gas_share = int(receipt["gasUsed"]) // max(len(request_ids), 1)
        seen: set[int] = set()
        without_code = {
            int(event["args"]["requestId"])
            for event in self.router.events.ConsumerHasNoCode().process_receipt(receipt, errors=DISCARD)
        }
        for event in self.router.events.RequestFulfilled().process_receipt(receipt, errors=DISCARD):
            request_id = int(event["args"]["requestId"])
            seen.add(request_id)
            detail = f"fulfilled in tx {tx_hash} (block {receipt['blockNumber']}, {receipt['gasUsed']} gas for the tx)"
            if request_id in without_code:
                detail += "; the consumer has no code, so no callback ran"
            self.store.mark_fulfilled(request_id, tx_hash, gas_share, bool(event["args"]["callbackSucceeded"]), detail)
            self.on_delivered(request_id, gas_share)
        for event in self.router.events.RequestNotProcessed().process_receipt(receipt, errors=DISCARD):
            request_id = int(event["args"]["requestId"])
            seen.add(request_id)
            self._not_processed(request_id, NotProcessedReason(event["args"]["reason"]), tx_hash)
        for request_id in set(request_ids) - seen:
            self._retry(request_id, "executed", f"tx {tx_hash} said nothing of this request")

    def _not_processed(self, request_id: int, reason: NotProcessedReason, tx_hash: str) -> None:
        detail = f"{reason.name} in tx {tx_hash}"
        if reason == NotProcessedReason.UNKNOWN_REQUEST:
            earlier = self._closing_tx(request_id)
            if earlier is not None:
                state, closing_tx = earlier
                if state == "fulfilled":
                    self.store.mark_fulfilled(
                        request_id, closing_tx, None, None, f"duplicate refused ({detail}); fulfilled in {closing_tx}"
                    )
                else:
                    self.store.move(request_id, "cancelled", f"cancelled in tx {closing_tx}")
            else:
                self.store.move(request_id, "failed", f"the router has no such open request ({detail})")
        elif reason in RETRY_BY_REEXECUTING:
            self._retry(request_id, "pending", f"{detail}: executing again under the current key")
        elif reason == NotProcessedReason.INSUFFICIENT_GAS:
            self._retry(request_id, "executed", detail)
        else:
            self.store.move(request_id, "failed", detail)

    def _closing_tx(self, request_id: int) -> tuple[str, str] | None:
        """How and where a request was closed on-chain, if it was."""
        closures = (
            (self.router.events.RequestFulfilled, "fulfilled"),
            (self.router.events.RequestCancelled, "cancelled"),
        )
        for event, state in closures:
            topic = bytes(HexBytes(event().topic))
            logs = self.w3.eth.get_logs(
                {
                    "address": self.router.address,
                    "topics": [topic, request_id.to_bytes(32, "big")],  # type: ignore[list-item]
                    "fromBlock": self.start_block,
                    "toBlock": "latest",
                }
            )
            if logs:
                return state, to_hex(bytes(logs[0]["transactionHash"]))
        return None

    def _retry(self, request_id: int, state: str, reason: str, count: bool = True) -> None:
        """Tries again later, never giving up before the request's deadline (bridge/expiry.py)."""
        request = self.store.get(request_id)
        attempts = request.attempts if request is not None else 0
        delay = retry_delay(attempts, cap_s=self.max_backoff_s)
        self.store.move(
            request_id, state, f"{reason}; next try in {delay:.1f} s", count_attempt=count, retry_at=time.time() + delay
        )
