"""The dispatcher: hands pending requests to healthy workers, failing over on errors."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from bridge.agent_timeouts import AgentTimeouts
from bridge.backoff import retry_delay
from bridge.store import RequestStore, StoredRequest
from bridge.worker_client import WorkerError
from bridge.workers import WorkerPool
from protocol.hexes import to_hex
from protocol.wire import CommitmentModel, ExecuteRequest

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        store: RequestStore,
        workers: WorkerPool,
        timeouts: AgentTimeouts,
        concurrency: int = 4,
        max_backoff_s: float = 15.0,
    ) -> None:
        self.store = store
        self.workers = workers
        self.timeouts = timeouts
        # A request is never given up here: it waits longer between tries, and its deadline
        # decides when it fails (bridge/expiry.py).
        self.max_backoff_s = max_backoff_s
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="dispatch")
        self._slots = threading.Semaphore(concurrency)
        # Dispatch can be held, for example while the cluster rotates its keys.
        self.is_held: Callable[[], bool] = lambda: False
        self.on_executed: Callable[[], None] = lambda: None
        self.on_slot_free: Callable[[], None] = lambda: None
        # Dispatches that failed even to put their request back (the store failing), for status.
        self.failures = 0

    def recover(self) -> None:
        """After a restart, requests that were with a worker go back to pending: results are
        only ever delivered once on-chain, so running an agent twice is safe."""
        for request in self.store.list_in("dispatched"):
            self.store.move(request.request_id, "pending", "bridge restarted while dispatched")

    def poll(self) -> int:
        if self.is_held():
            return 0
        # As many as there are free dispatch slots and room on healthy workers: a request never
        # waits in a slot for a worker.
        free, room = 0, self.workers.room()
        while free < room and self._slots.acquire(blocking=False):
            free += 1
        batch = self.store.take("pending", "dispatched", free) if free else []
        for request in batch:
            self._pool.submit(self._dispatch, request).add_done_callback(self._check)
        for _ in range(free - len(batch)):
            self._slots.release()
        return len(batch)

    def _dispatch(self, request: StoredRequest) -> None:
        try:
            self._dispatch_once(request)
        except Exception as err:
            log.exception("request %s: the dispatcher failed on it", _short(request.request_id))
            self._later(request, f"the bridge failed on it ({err.__class__.__name__}: {err})")
        finally:
            self._slots.release()
            self.on_slot_free()

    def _dispatch_once(self, request: StoredRequest) -> None:
        body = ExecuteRequest(commitment=CommitmentModel.of(request.commitment), input=to_hex(request.input))
        timeout_s = self.timeouts.for_code(request.commitment.code_hash)
        errors: list[str] = []
        retryable, tried = True, set[str]()
        while (client := self.workers.acquire(exclude=tried)) is not None:
            tried.add(client.url)
            try:
                response = client.execute(body, timeout_s)
            except WorkerError as err:
                self.workers.release(client, ok=False)
                errors.append(str(err))
                retryable = retryable and err.retryable
                log.warning("request %s: %s; failing over", _short(request.request_id), err)
                continue
            except Exception as err:  # noqa: BLE001 - a worker answering nonsense has failed, as any other way
                self.workers.release(client, ok=False)
                errors.append(f"{client.url}: {err.__class__.__name__}: {err}")
                retryable = False
                continue
            self.workers.release(client, ok=True)
            self.store.mark_executed(request.request_id, response.model_dump())
            self.on_executed()
            return
        if not errors:
            errors.append("every worker is busy or cooling down")
        kind = "no worker available" if retryable else "no worker could run it"
        self._later(request, f"{kind}: {'; '.join(errors)}")

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
        )

    def _check(self, future: Future[None]) -> None:
        """What `_dispatch` could not even put back (the store itself failing) is not lost silently."""
        err = future.exception()
        if err is not None:
            self.failures += 1
            log.error("a dispatch failed outside any request: %s: %s", err.__class__.__name__, err)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _short(request_id: int) -> str:
    return f"0x{request_id:064x}"[:10]
