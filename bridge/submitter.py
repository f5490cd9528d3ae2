"""The submitter: batches executed results into `fulfill` transactions, several in flight.

Transactions go out through the account's one `Sender` (bridge/sender.py): consecutive nonces,
no waiting on a receipt, a stuck one replaced at a higher fee. A batch goes out at once when no
fulfilment is in flight; while one is, the next fills up until it is full or its oldest result
has waited `linger_s`, so that batches grow with the load instead of a transaction per result.

A transaction's hash is stored before it is sent, so a bridge killed mid-send finds it on
restart: mined, still pending (then it is followed again), or dropped (then the results are
submitted again; the chain refuses a duplicate, which is recorded as such and not retried).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from bridge.backoff import retry_delay
from bridge.sender import SEND_ERRORS, Receipt, Sender, fetch_receipt
from bridge.store import Delivery, RequestStore, StoredRequest, deliverable_now
from bridge.worker_client import WorkerClient, WorkerError
from bridge.workers import WorkerPool
from protocol.calls import FunctionEncoder
from protocol.events import EventDecoder
from protocol.hexes import from_hex, to_hex
from protocol.results import CompactSignature, NotProcessedReason
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

# Seconds past a request's assignment window before this bridge delivers another operator's
# request: the chain's clock may run a little behind this machine's.
ASSIGNMENT_MARGIN_S = 1.0
RETRY_BY_REEXECUTING = {NotProcessedReason.STALE_EPOCH, NotProcessedReason.INVALID_SIGNATURE}
# A batch co-signature is asked of the next worker too when the first has not answered in this
# long; none is waited on longer than `cosign_timeout_s`.
COSIGN_HEDGE_S = 0.25
# Co-signing calls in flight per worker at most (fulfil transactions being prepared at once).
COSIGNERS_PER_WORKER = 4

Item = tuple[StoredRequest, ExecuteResponse]


class _NoLongerHeld(Exception):
    """A result to be sent at once whose request this replica no longer holds: nothing is sent."""


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
        sender: Sender,
        store: RequestStore,
        workers: WorkerPool,
        start_block: int = 0,
        batch_size: int = 50,
        linger_s: float = 0.1,
        max_backoff_s: float = 15.0,
        cosign_timeout_s: float = 2.0,
    ) -> None:
        self.w3 = w3
        # Told of every result this bridge delivered (request id, its share of the tx's gas).
        self.on_delivered: Callable[[int, int | None], None] = lambda request_id, gas: None
        # Why fulfilments wait (this bridge's operator does not stake), or None: set by the bridge.
        self.is_held: Callable[[], str | None] = lambda: None
        self.router = router
        self.sender = sender
        # What this transmitter may deliver now: its own assignments and the unassigned, and
        # another's once its window has passed (delivered, with a slash of that operator's
        # stake, only if it missed them). The chain's clock decides; a margin covers the gap.
        self._deliverable = (sender.account.address, ASSIGNMENT_MARGIN_S)
        self.store = store
        self.workers = workers
        self.start_block = start_block
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.max_backoff_s = max_backoff_s
        self.cosign_timeout_s = cosign_timeout_s
        self._fulfil = FunctionEncoder.of(router.abi, "fulfill")
        self._fulfil_batch = FunctionEncoder.of(router.abi, "fulfillBatch")
        events = ("RequestFulfilled", "RequestNotProcessed", "ConsumerHasNoCode")
        self._decoders = {d.topic: d for d in (EventDecoder.of(router.abi, name) for name in events)}
        # Room for a hung worker's calls to run out their timeout while the others are asked:
        # a co-signature never queues behind a call to a worker that will not answer.
        self._cosigners = ThreadPoolExecutor(
            max_workers=COSIGNERS_PER_WORKER * max(1, len(workers.clients)), thread_name_prefix="cosign"
        )
        self._cosigning: Counter[str] = Counter()  # calls in flight, by worker
        self._cosigning_lock = threading.Lock()

    # -- after a restart ------------------------------------------------------------------------

    def recover(self) -> None:
        by_tx: dict[str, list[int]] = defaultdict(list)
        for request in self.store.list_in("submitted", own_only=True):
            by_tx[request.fulfil_tx or ""].append(request.request_id)
        for tx_hash, request_ids in by_tx.items():
            receipt = fetch_receipt(self.sender.rpc, tx_hash) if tx_hash else None
            if receipt is not None:
                self._apply(receipt, request_ids)
            elif not (tx_hash and self.sender.adopt(tx_hash, *self._callbacks(request_ids))):
                for request_id in request_ids:
                    self.store.move(request_id, "executed", f"fulfil tx {tx_hash or '?'} was never mined")

    # -- submitting -----------------------------------------------------------------------------

    def poll(self) -> int:
        """Reads what was mined, then sends what is ready; returns how much it did."""
        done = self.sender.poll()
        room = self.sender.room()
        if room <= 0 or self.is_held():
            return done
        count, oldest = self.store.due("executed", self._deliverable)
        if not count or self._filling(count, oldest):
            return done
        # Claimed, not just read: a replica sharing the store never sends the same results.
        ready = self.store.take("executed", "executed", self.batch_size * room, self._deliverable)
        by_epoch: dict[int, list[Item]] = defaultdict(list)
        for request in ready:
            if request.result is None:  # "executed" is only ever set together with a result
                continue
            response = ExecuteResponse.model_validate(request.result)
            by_epoch[response.signature.epoch].append((request, response))
        chunks: list[list[Item]] = []
        for group in by_epoch.values():
            # A request whose batch already failed goes alone, so that one bad result never
            # holds or fails the others again.
            chunks += self._chunks([item for item in group if item[0].attempts == 0])
            chunks += [[item] for item in group if item[0].attempts > 0]
        for chunk in chunks[:room]:
            self._submit(chunk)
        return done + len(ready)

    def deliver_now(self, executed: list[Item]) -> bool:
        """Sends a lone result as soon as its worker answered, when no fulfilment is in flight:
        stored as executed and submitted in one transaction, with the hash of the transaction
        that carries it, instead of waiting for the submitter's turn (a hand-off between
        threads, a claim and a second write: a sixth of an idle request's way to its callback).
        Returns False when it did not, for the result to be stored and batched as usual: more
        than one, a fulfilment in flight (the next batch fills up meanwhile), delivery held, a
        request another operator may still deliver, or one this replica no longer holds."""
        if len(executed) != 1 or self.sender.in_flight() or self.sender.room() <= 0 or self.is_held():
            return False
        [(request, response)] = executed
        if not deliverable_now(request.commitment, self._deliverable, time.time()):
            return False

        def record(tx_hash: str) -> None:
            if not self.store.mark_delivering([(request.request_id, response.model_dump())], tx_hash):
                raise _NoLongerHeld(request.request_id)

        try:
            self._submit(executed, record)
        except _NoLongerHeld:
            return False
        return True

    def _filling(self, count: int, oldest: float | None) -> bool:
        """Whether to let the next batch fill up: a fulfilment is in flight, and this one is
        neither full nor old."""
        if not self.sender.in_flight() or count >= self.batch_size or oldest is None:
            return False
        return time.time() - oldest < self.linger_s

    def _chunks(self, group: list[Item]) -> list[list[Item]]:
        """Splits a group into batches of at most `batch_size` whose gas fits in a block."""
        chunks: list[list[Item]] = []
        budget = 0
        for item in group:
            need = self._result_gas(item)
            if not chunks or len(chunks[-1]) >= self.batch_size or need > budget:
                chunks.append([])
                budget = BLOCK_GAS_BUDGET - BASE_GAS
            chunks[-1].append(item)
            budget -= need
        return chunks

    @staticmethod
    def _result_gas(item: Item) -> int:
        """An upper bound of one result's gas: its callback, the router's work, and its calldata
        at the EIP-7623 floor price (40 gas a non-zero byte), which a 4 KiB output makes
        larger than all the rest."""
        request, response = item
        limit = request.commitment.callback_gas_limit
        output = len(from_hex(response.output))
        calldata = RESULT_CALLDATA_BYTES + output + 32
        return limit + limit // 63 + PER_RESULT_GAS + FLOOR_GAS_PER_NONZERO_BYTE * calldata

    def _submit(self, group: list[Item], record: Callable[[str], None] | None = None) -> None:
        """Sends one fulfil transaction for the group; `record` stores its hash before it is
        sent (by default: the claimed results are submitted in it)."""
        request_ids = [request.request_id for request, _ in group]
        responses = [response for _, response in group]
        signature = self._cosign(responses) if len(responses) > 1 else None
        if signature is not None:
            results = [r.signed_result().result.as_tuple() for r in responses]
            calldata = self._fulfil_batch.encode([results, signature.as_tuple()])
        else:
            calldata = self._fulfil.encode([[r.signed_result().as_tuple() for r in responses]])
        execution = BASE_GAS + sum(self._result_gas(item) for item in group)
        try:
            self.sender.send(
                self.router.address,
                calldata,
                gas_limit(calldata, execution),
                record or (lambda tx_hash: self.store.mark_submitted(request_ids, tx_hash)),
                *self._callbacks(request_ids),
            )
        except SEND_ERRORS as err:
            log.warning("fulfil transaction failed: %s", err)
            for request_id in request_ids:
                # The node or the network, not the request: no attempt of its is spent.
                self._retry(request_id, "executed", f"fulfil transaction failed: {err}", count=False)

    def _callbacks(
        self, request_ids: list[int]
    ) -> tuple[Callable[[Receipt], None], Callable[[str], None], Callable[[str], None]]:
        """What the sender tells of a fulfil transaction: mined, lost, sent again as another hash."""

        def lost(reason: str) -> None:
            for request_id in request_ids:
                self._retry(request_id, "executed", reason, count=False)

        def replaced(tx_hash: str) -> None:
            self.store.mark_submitted(request_ids, tx_hash)

        return (lambda receipt: self._apply(receipt, request_ids)), lost, replaced

    def _cosign(self, responses: list[ExecuteResponse]) -> CompactSignature | None:
        """One signature over the whole batch from any worker, or None (then `fulfill` carries
        each result's own). Asked of the healthiest worker first, and of the next as well when
        it is slow, so that a hung worker costs a quarter of a second, not a timeout."""
        started = time.monotonic()
        pending: dict[Future[CompactSignature], WorkerClient] = {}

        def first_answer(wait_s: float) -> CompactSignature | None:
            done, _ = wait(list(pending), timeout=max(0.0, wait_s), return_when=FIRST_COMPLETED)
            for future in done:
                client = pending.pop(future)
                try:
                    return future.result()
                except Exception as err:  # noqa: BLE001 - any worker's failure means: ask another
                    log.info("batch signature from %s failed: %s", client.url, err)
            return None

        with self._cosigning_lock:
            # A worker still silent on an earlier call is asked last, and not at all with its
            # share of the threads taken: the others never wait behind it.
            busy = dict(self._cosigning)
        candidates = [c for c in self.workers.candidates() if busy.get(c.url, 0) < COSIGNERS_PER_WORKER]
        candidates.sort(key=lambda c: busy.get(c.url, 0) > 0)
        try:
            for client in candidates:
                with self._cosigning_lock:
                    self._cosigning[client.url] += 1
                future = self._cosigners.submit(client.sign_batch, responses, self.cosign_timeout_s)
                future.add_done_callback(functools.partial(self._note_cosigner, client))
                pending[future] = client
                if (signature := first_answer(COSIGN_HEDGE_S)) is not None:
                    return signature
            while pending and (left := self.cosign_timeout_s - (time.monotonic() - started)) > 0:
                if (signature := first_answer(left)) is not None:
                    return signature
            return None
        finally:
            for future in pending:
                future.cancel()  # not begun: nobody waits for it any more

    def _note_cosigner(self, client: WorkerClient, future: Future[CompactSignature]) -> None:
        """A worker that did not answer a co-signing at all (hung, stopped, unreachable) rests
        and is probed, as after a failed dispatch: it is asked first again, and given requests,
        only once it answers. (A refusal is an answer: the worker is alive.)"""
        with self._cosigning_lock:
            self._cosigning[client.url] -= 1
        if future.cancelled():
            return
        err = future.exception()
        if isinstance(err, WorkerError) and err.status_code is None:
            self.workers.mark_failed(client)

    def close(self) -> None:
        self._cosigners.shutdown(wait=False, cancel_futures=True)

    # -- reading what the chain did ---------------------------------------------------------------

    def _apply(self, receipt: Receipt, request_ids: list[int]) -> None:
        tx_hash = receipt.tx_hash
        if receipt.status != 1:
            for request_id in request_ids:
                self._retry(request_id, "executed", f"fulfil tx {tx_hash} reverted")
            return
        gas_share = receipt.gas_used // max(len(request_ids), 1)
        where = f"tx {tx_hash} (block {receipt.block_number}, {receipt.gas_used} gas for the tx)"
        events = self._events(receipt)
        without_code = {int(args["requestId"]) for name, args in events if name == "ConsumerHasNoCode"}
        seen: set[int] = set()
        deliveries = []
        for name, args in events:
            request_id = int(args["requestId"])
            if name == "RequestFulfilled":
                detail = f"fulfilled in {where}"
                if request_id in without_code:
                    detail += "; the consumer has no code, so no callback ran"
                deliveries.append(Delivery.of_event(args, tx_hash, gas_share, detail))
            elif name == "RequestNotProcessed":
                self._not_processed(request_id, NotProcessedReason(args["reason"]), tx_hash)
            seen.add(request_id)
        self.store.mark_fulfilled(deliveries)
        for delivery in deliveries:
            self.on_delivered(delivery.request_id, gas_share)
        for request_id in set(request_ids) - seen:
            self._retry(request_id, "executed", f"tx {tx_hash} said nothing of this request")

    def _events(self, receipt: Receipt) -> list[tuple[str, dict[str, Any]]]:
        """The router's events in a receipt, in order (other contracts' logs, such as a
        consumer's, are skipped)."""
        found = []
        router = self.router.address.lower()
        for entry in receipt.logs:
            decoder = self._decoders.get(entry.topics[0]) if entry.topics else None
            if decoder is not None and entry.address.lower() == router:
                found.append((decoder.name, decoder.decode(entry.topics, entry.data)))
        return found

    def _not_processed(self, request_id: int, reason: NotProcessedReason, tx_hash: str) -> None:
        detail = f"{reason.name} in tx {tx_hash}"
        if reason == NotProcessedReason.UNKNOWN_REQUEST:
            earlier = self._closing_tx(request_id)
            if earlier is not None:
                state, closing_tx = earlier
                if state == "fulfilled":
                    refused = f"duplicate refused ({detail}); fulfilled in {closing_tx}"
                    self.store.mark_fulfilled([Delivery(request_id, closing_tx, None, None, refused)])
                else:
                    self.store.move(request_id, "cancelled", f"cancelled in tx {closing_tx}")
            else:
                self.store.move(request_id, "failed", f"the router has no such open request ({detail})")
        elif reason in RETRY_BY_REEXECUTING:
            self._retry(request_id, "pending", f"{detail}: executing again under the current key")
        elif reason == NotProcessedReason.NOT_ASSIGNEE:
            request = self.store.get(request_id)
            until = request.commitment.assigned_until if request is not None else 0
            self.store.move(
                request_id, "executed", f"{detail}: the assignee's window is open", retry_at=until + ASSIGNMENT_MARGIN_S
            )
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
