"""No request is left "dispatched" behind an unexpected error (unit tests with a real store)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from web3 import Web3

from bridge.agent_timeouts import AgentTimeouts
from bridge.dispatcher import ASSIST_LEAD_S, Dispatcher
from bridge.store import NewRequest, RequestStore
from bridge.worker_client import WorkerError
from bridge.workers import WorkerPool
from protocol.wire import BatchItem, CommitmentModel, ExecuteResponse, SignatureModel
from tests import samples

INPUT = b"ping"


def _store_with_one_request(tmp_path: Path) -> tuple[RequestStore, int]:
    store = RequestStore(tmp_path / "bridge.sqlite")
    commitment = samples.commitment(INPUT)
    request = NewRequest(commitment.request_id, commitment, INPUT, "0xab", time.time())
    store.record_blocks([request], [], 1, 1, "0x" + "00" * 32)
    return store, commitment.request_id


def _wait_for_state(store: RequestStore, request_id: int, state: str) -> str:
    deadline = time.monotonic() + 10
    while (stored := store.get(request_id)) is None or stored.state != state:
        assert time.monotonic() < deadline, f"still {stored.state if stored else None}"
        time.sleep(0.02)
    return str(stored.row["reason"])


def _timeouts(fail: bool = False) -> AgentTimeouts:
    def for_code(code_hash: bytes) -> float:
        if fail:
            raise RuntimeError("a bug in the bridge")
        return 1.0

    return cast(AgentTimeouts, SimpleNamespace(for_code=for_code))


def test_a_worker_answering_nonsense_counts_as_its_failure_and_the_request_goes_back(tmp_path: Path) -> None:
    store, request_id = _store_with_one_request(tmp_path)
    pool = WorkerPool(["http://127.0.0.1:1"])

    def nonsense(*_: Any) -> Iterator[Any]:
        raise KeyError("no 'signature' in the answer")
        yield

    pool.clients[0].execute_each = nonsense  # type: ignore[method-assign,assignment]
    dispatcher = Dispatcher(store, pool, _timeouts())
    assert dispatcher.poll() == 1
    reason = _wait_for_state(store, request_id, "pending")
    assert "KeyError" in reason
    assert pool.health()["http://127.0.0.1:1"]["failuresInARow"] == 1
    dispatcher.close()


def test_a_bug_in_the_dispatcher_puts_the_request_back_instead_of_leaving_it_dispatched(tmp_path: Path) -> None:
    store, request_id = _store_with_one_request(tmp_path)
    dispatcher = Dispatcher(store, WorkerPool(["http://127.0.0.1:1"]), _timeouts(fail=True))
    assert dispatcher.poll() == 1
    reason = _wait_for_state(store, request_id, "pending")
    assert "the bridge failed on it (RuntimeError: a bug in the bridge)" in reason
    stored = store.get(request_id)
    assert stored is not None
    assert stored.row["next_attempt_at"] > time.time() - 1, "it waits for its next try"
    dispatcher.close()


def test_another_operators_request_runs_only_as_its_window_is_about_to_end(tmp_path: Path) -> None:
    """Its assignee delivers it while the window is open; a result run meanwhile would be
    refused by the chain, so no worker time goes to it until the window's last second."""
    me, other = "0x" + "aa" * 20, "0x" + "bb" * 20
    store = RequestStore(tmp_path / "bridge.sqlite")
    now = int(time.time())
    commitments = [
        replace(samples.commitment(b"%d" % n), assignee=Web3.to_checksum_address(who), assigned_until=until)
        for n, (who, until) in enumerate([(other, now + 60), (me, now + 60), (other, now)])
    ]
    store.record_blocks([NewRequest(c.request_id, c, b"", "0xab", time.time()) for c in commitments], [], 1, 1)
    pool = WorkerPool(["http://127.0.0.1:1"])
    answer = threading.Event()

    def held_worker(*_: Any) -> Iterator[Any]:
        answer.wait(10)
        raise KeyError("released")
        yield

    pool.clients[0].execute_each = held_worker  # type: ignore[method-assign,assignment]
    dispatcher = Dispatcher(store, pool, _timeouts(), transmitter=me)
    assert store.due("pending", (me, -ASSIST_LEAD_S))[0] == 2
    assert dispatcher.poll() == 2
    dispatched = {r.request_id for r in store.list_in("dispatched")}
    assert dispatched == {commitments[1].request_id, commitments[2].request_id}, "its own, and one whose window ends"
    answer.set()
    dispatcher.close()


def test_a_block_s_new_requests_are_taken_as_they_are_stored_when_there_is_room(tmp_path: Path) -> None:
    """The dispatcher takes what a block brings without its own turn, as much as a batch holds
    and only with a slot, a worker's room and dispatch not held; what it cannot take waits."""
    store = RequestStore(tmp_path / "bridge.sqlite", owner="0xme")
    pool = WorkerPool(["http://127.0.0.1:1"], max_in_flight=1)
    calls: list[list[int]] = []
    answered = threading.Event()

    def worker(requests: list[Any], *_: Any) -> Iterator[Any]:
        calls.append([r.commitment.to_commitment().request_id for r in requests])
        answered.wait(10)
        yield [(n, BatchItem(status_code=503, error="not now")) for n in range(len(requests))]

    pool.clients[0].execute_each = worker  # type: ignore[method-assign,assignment]
    dispatcher = Dispatcher(store, pool, _timeouts(), concurrency=1, batch_size=2)
    found = [NewRequest(c.request_id, c, INPUT, "0xab", time.time()) for c in map(_numbered, range(3))]

    dispatcher.is_held = lambda: True
    assert dispatcher.claim_new(found) == [], "dispatch held (a rotation)"
    dispatcher.is_held = lambda: False
    chosen = dispatcher.claim_new(found)
    assert chosen == found[:2], "a batch's worth"
    assert dispatcher.claim_new(found[2:]) == [], "the one slot is kept for the chosen"
    recorded = store.record_blocks(found, [], 1, 1, claim={r.request_id for r in chosen})
    dispatcher.dispatch_claimed(recorded.claimed)
    deadline = time.monotonic() + 10
    while not calls:
        assert time.monotonic() < deadline, "the claimed batch never reached the worker"
        time.sleep(0.01)
    assert calls == [[r.request_id for r in chosen]]
    assert [r.request_id for r in store.list_in("pending")] == [found[2].request_id]
    answered.set()
    _wait_for_state(store, found[0].request_id, "pending")
    deadline = time.monotonic() + 10
    while not dispatcher.claim_new(found[2:]):  # the slot is let go once the batch is put back
        assert time.monotonic() < deadline, "the slot was never free again"
        time.sleep(0.01)
    dispatcher.dispatch_claimed([])  # nothing stored of it: the slot is let go
    assert dispatcher.claim_new(found[2:]) == found[2:]
    dispatcher.close()


def _numbered(n: int) -> Any:
    return samples.commitment(INPUT, nonce=n)


def test_answers_are_stored_as_they_come_and_only_the_unanswered_go_to_the_next_worker(tmp_path: Path) -> None:
    """A worker that answers part of a batch and then fails (or goes silent past the agents'
    time) costs the answered nothing: the next worker gets only the rest."""
    store = RequestStore(tmp_path / "bridge.sqlite", owner="0xme")
    found = [NewRequest(c.request_id, c, INPUT, "0xab", time.time()) for c in map(_numbered, range(3))]
    pool = WorkerPool(["http://127.0.0.1:1", "http://127.0.0.1:2"])
    asked: dict[str, list[int]] = {}
    stored_before_failing: list[str] = []

    def worker(url: str) -> Any:
        def execute_each(requests: list[Any], timeout_s: float) -> Iterator[Any]:
            asked[url] = [r.commitment.to_commitment().request_id for r in requests]
            if url.endswith(":1") and len(requests) == 3:
                yield [(1, BatchItem(status_code=409, error="not open"))]
                stored_before_failing.append(store.get(found[1].request_id).state)  # type: ignore[union-attr]
                raise WorkerError(f"{url}: 2 of 3 unanswered in time")
            yield [(n, BatchItem(status_code=503, error=f"{url}: later")) for n in range(len(requests))]

        return execute_each

    for client in pool.clients:
        client.execute_each = worker(client.url)  # type: ignore[method-assign]
    pool._order = itertools.cycle([0])  # the first worker is asked first
    dispatcher = Dispatcher(store, pool, _timeouts(), batch_size=3)
    assert dispatcher.claim_new(found) == found
    dispatcher.dispatch_claimed(store.record_blocks(found, [], 1, 1, claim={r.request_id for r in found}).claimed)
    for request in found:
        _wait_for_state(store, request.request_id, "pending")
    dispatcher.close()
    assert asked["http://127.0.0.1:1"] == [r.request_id for r in found]
    assert asked["http://127.0.0.1:2"] == [found[0].request_id, found[2].request_id], "only the unanswered"
    assert stored_before_failing == ["pending"], "the answer was stored before the worker failed"
    assert "409 not open" in _wait_for_state(store, found[1].request_id, "pending")
    assert pool.health()["http://127.0.0.1:1"]["failuresInARow"] == 1
    assert pool.health()["http://127.0.0.1:2"]["failuresInARow"] == 0


def _result(request: NewRequest) -> ExecuteResponse:
    return ExecuteResponse(
        request_id=str(request.request_id), commitment=CommitmentModel.of(request.commitment), status="OK",
        output="0x", signature=SignatureModel(epoch=1, r="0x" + "01" * 32, vs="0x" + "02" * 32), logs=[],
        error=None, stats={}, worker="w",
    )  # fmt: skip


def test_only_a_batch_of_one_is_sent_alone_at_once_and_early_answers_join_their_batch(tmp_path: Path) -> None:
    """A lone request's result goes out as the worker answers it; the first answers of a bigger
    batch are stored for the submitter's batches, not sent one transaction each."""
    store = RequestStore(tmp_path / "bridge.sqlite", owner="0xme")
    pool = WorkerPool(["http://127.0.0.1:1"])
    found = [NewRequest(c.request_id, c, INPUT, "0xab", time.time()) for c in map(_numbered, range(3))]

    def execute_each(requests: list[Any], timeout_s: float) -> Iterator[Any]:
        for place in range(len(requests)):  # one answer a part
            yield [(place, BatchItem(result=_result(found[0 if len(requests) == 1 else place + 1])))]

    pool.clients[0].execute_each = execute_each  # type: ignore[method-assign,assignment]
    sent_alone: list[list[int]] = []

    def deliver_now(executed: list[Any]) -> bool:
        sent_alone.append([request.request_id for request, _ in executed])
        return False  # left to the submitter: stored as executed

    dispatcher = Dispatcher(store, pool, _timeouts(), concurrency=1, batch_size=2)
    dispatcher.deliver_now = deliver_now
    for batch in ([found[0]], found[1:]):
        assert dispatcher.claim_new(batch) == batch
        dispatcher.dispatch_claimed(store.record_blocks(batch, [], 1, 1, claim={r.request_id for r in batch}).claimed)
        for request in batch:
            _wait_for_state(store, request.request_id, "executed")
    dispatcher.close()
    assert sent_alone == [[found[0].request_id]]
