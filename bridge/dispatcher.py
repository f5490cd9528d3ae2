"""The dispatcher: hands pending requests to healthy workers in batches, failing over on errors.

One call to a worker carries up to `batch_size` requests (`/v1/execute-batch`): per request,
the HTTP round trip and the worker's chain check cost more CPU than a small agent's run. What
is due is spread over the room the healthy workers have, so a light load still goes out one
request per call at once, and a heavy one in batches, each worker taking its share.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing

from bridge.agent_timeouts import AgentTimeouts
from bridge.backoff import retry_delay
from bridge.store import NewRequest, RequestStore, StoredRequest, deliverable_now
from bridge.worker_client import WorkerClient, WorkerError
from bridge.workers import WorkerPool
from protocol.hexes import to_hex
from protocol.wire import BatchItem, CommitmentModel, ExecuteRequest, ExecuteResponse

log = logging.getLogger(__name__)

# Seconds before another operator's assignment window ends from which this bridge runs its
# request too: its result is ready when the bridge may deliver it (should the assignee not), and
# while the assignee is alive, no worker time goes to results the chain will refuse.
ASSIST_LEAD_S = 1.0


class Dispatcher:
    def __init__(
        self,
        store: RequestStore,
        workers: WorkerPool,
        timeouts: AgentTimeouts,
        concurrency: int = 4,
        max_backoff_s: float = 15.0,
        batch_size: int = 16,
        transmitter: str | None = None,
    ) -> None:
        self.store = store
        # Another operator's request (`transmitter` is this bridge's) waits until its window is
        # about to end; unassigned ones (no staking) go out at once.
        self._deliverable_by = (transmitter, -ASSIST_LEAD_S) if transmitter else None
        self.workers = workers
        self.timeouts = timeouts
        # A request is never given up here: it waits longer between tries, and its deadline
        # decides when it fails (bridge/expiry.py).
        self.max_backoff_s = max_backoff_s
        self.batch_size = batch_size
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="dispatch")
        self._slots = threading.Semaphore(concurrency)
        # Dispatch can be held, for example while the cluster rotates its keys.
        self.is_held: Callable[[], bool] = lambda: False
        self.on_executed: Callable[[], None] = lambda: None
        # Sends results at once, stored as submitted, when nothing else waits (the submitter's
        # `deliver_now`); what it does not take is stored as executed for the submitter.
        self.deliver_now: Callable[[list[tuple[StoredRequest, ExecuteResponse]]], bool] = lambda executed: False
        self.on_slot_free: Callable[[], None] = lambda: None
        # Dispatches that failed even to put their request back (the store failing), for status.
        self.failures = 0
        # The requests a worker runs for this bridge now: the holds it renews (`running`).
        self._running: set[int] = set()
        self._running_lock = threading.Lock()

    def recover(self) -> None:
        """After a restart, requests this bridge had with a worker go back to pending: results
        are only ever delivered once on-chain, so running an agent twice is safe. (Another
        replica's are its own until their lease runs out: `RequestStore.reclaim_expired`.)"""
        for request in self.store.list_in("dispatched", own_only=True):
            self.store.move(request.request_id, "pending", "bridge restarted while dispatched")

    def poll(self) -> int:
        if self.is_held():
            return 0
        room = self.workers.room()
        due, _ = self.store.due("pending", self._deliverable_by) if room > 0 else (0, None)
        if not due:
            return 0
        # As many calls as there are free dispatch slots and room on healthy workers (a request
        # never waits in a slot for a worker), what is due shared out among them.
        per_call = min(self.batch_size, math.ceil(due / room))
        taken = 0
        for _ in range(room):
            if not self._slots.acquire(blocking=False):
                break
            batch = self.store.take("pending", "dispatched", per_call, self._deliverable_by)
            if not batch:
                self._slots.release()
                break
            self._submit(batch)
            taken += len(batch)
        return taken

    def claim_new(self, requests: list[NewRequest]) -> list[NewRequest]:
        """Which of the requests a block brought to take at once: the watcher stores them as
        dispatched, held by this replica, in the transaction that stores the block, and hands
        them to `dispatch_claimed`; no turn of the dispatcher's thread, no second write. As
        many as a batch holds of those deliverable now, when dispatch is not held and a slot
        and a worker's room are free; the slot is kept for them until `dispatch_claimed`."""
        try:
            if not requests or self.is_held() or self.workers.room() <= 0:
                return []
        except Exception as err:  # noqa: BLE001 - the watcher stores them anyway, for the dispatcher's turn
            log.info("new requests left to the dispatcher's turn: %s: %s", err.__class__.__name__, err)
            return []
        now = time.time()
        chosen = [r for r in requests if deliverable_now(r.commitment, self._deliverable_by, now)]
        if not chosen or not self._slots.acquire(blocking=False):
            return []
        return chosen[: self.batch_size]

    def dispatch_claimed(self, batch: list[StoredRequest]) -> None:
        """Sends to a worker what `claim_new` chose and the store claimed (the slot it kept is
        let go when that is nothing: the requests were stored before, or the store failed)."""
        if not batch:
            self._slots.release()
            return
        self._submit(batch)

    def _submit(self, batch: list[StoredRequest]) -> None:
        """Hands a claimed batch, with its slot, to a dispatch thread."""
        with self._running_lock:
            self._running.update(r.request_id for r in batch)
        self._pool.submit(self._dispatch, batch).add_done_callback(self._check)

    def _dispatch(self, batch: list[StoredRequest]) -> None:
        left = dict(enumerate(batch))  # what has no answer yet, by its place in the batch
        try:
            self._dispatch_once(batch, left)
        except Exception as err:
            log.exception("the dispatcher failed on a batch of %d", len(batch))
            for request in left.values():
                self._later(request, f"the bridge failed on it ({err.__class__.__name__}: {err})")
        finally:
            with self._running_lock:
                self._running.difference_update(r.request_id for r in batch)
            self._slots.release()
            self.on_slot_free()

    def running(self) -> list[int]:
        """The requests a worker runs for this bridge now."""
        with self._running_lock:
            return list(self._running)

    def _dispatch_once(self, batch: list[StoredRequest], left: dict[int, StoredRequest]) -> None:
        """Runs the batch on a worker, each answer stored as it comes; what a worker leaves
        unanswered (it failed, or went silent for the slowest agent's time) goes to the next."""
        bodies = [ExecuteRequest(commitment=CommitmentModel.of(r.commitment), input=to_hex(r.input)) for r in batch]
        timeout_s = max(self.timeouts.for_code(r.commitment.code_hash) for r in batch)
        errors: list[str] = []
        retryable, tried = True, set[str]()
        while left and (client := self.workers.acquire(exclude=tried)) is not None:
            tried.add(client.url)
            failure: WorkerError | None = None
            try:
                failure = self._run_on(client, bodies, left, timeout_s)
            finally:
                self.workers.release(client, ok=failure is None)
            if failure is not None:
                errors.append(str(failure))
                retryable = retryable and failure.retryable
                log.warning("a batch of %d, %d unanswered: %s; failing over", len(batch), len(left), failure)
        if not left:
            return
        if not errors:
            errors.append("every worker is busy or cooling down")
        kind = "no worker available" if retryable else "no worker could run it"
        for request in left.values():
            self._later(request, f"{kind}: {'; '.join(errors)}")

    def _run_on(
        self, client: WorkerClient, bodies: list[ExecuteRequest], left: dict[int, StoredRequest], timeout_s: float
    ) -> WorkerError | None:
        """Runs what is `left` of a batch on `client`, storing its answers as they come (and
        taking them out of `left`); what went wrong with the worker, if anything did. The
        store's own failures are raised: they are not the worker's."""
        places = list(left)
        parts = client.execute_each([bodies[place] for place in places], timeout_s)
        with closing(parts):
            while True:
                try:
                    part = next(parts, None)
                except WorkerError as err:
                    return err
                except Exception as err:  # noqa: BLE001 - a worker answering nonsense has failed, as any other way
                    return WorkerError(f"{client.url}: {err.__class__.__name__}: {err}", status_code=502)
                if part is None:
                    return None
                answered = [(places[i], item) for i, item in part]
                self._record([(left[place], item) for place, item in answered], client, alone=len(bodies) == 1)
                with self._running_lock:
                    self._running.difference_update(left[place].request_id for place, _ in answered)
                for place, _ in answered:
                    del left[place]

    def _record(self, answered: list[tuple[StoredRequest, BatchItem]], client: WorkerClient, alone: bool) -> None:
        """Stores results in one transaction; what a worker could not answer is tried again
        later (on whichever worker has room then). The result of a batch of one (`alone`) may
        be sent at once; one answered early in a bigger batch joins the others' fulfilment."""
        executed = [(r, item.result) for r, item in answered if item.result is not None]
        if executed and not (alone and self.deliver_now(executed)):
            self.store.mark_executed([(request.request_id, result.model_dump()) for request, result in executed])
            self.on_executed()
        for request, item in answered:
            if item.result is None:
                self._later(request, f"{client.url}: {item.status_code} {item.error}")

    def _later(self, request: StoredRequest, reason: str) -> None:
        """Back to pending, to be taken again after a delay that grows with each try; the slot is
        free at once for other requests."""
        delay = retry_delay(request.attempts, cap_s=self.max_backoff_s)
        self.store.move(
            request.request_id,
            "pending",
            f"{reason}; next try in {delay:.1f} s",
            count_attempt=True,
            retry_at=time.time() + delay,
            only_if_held=True,  # taken back meanwhile (this bridge paused past its lease): another's now
        )

    def _check(self, future: Future[None]) -> None:
        """What `_dispatch` could not even put back (the store itself failing) is not lost silently."""
        err = future.exception()
        if err is not None:
            self.failures += 1
            log.error("a dispatch failed outside any request: %s: %s", err.__class__.__name__, err)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
