"""A lone result goes out as soon as its worker answers; anything else waits for the submitter's
batches (a real store, a real anvil, the submitter's own transactions)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from bridge.sender import Sender
from bridge.store import NewRequest, RequestStore, StoredRequest
from bridge.submitter import Submitter
from bridge.worker_client import WorkerError
from bridge.workers import WorkerPool
from enclave.anvil import DEV_KEYS
from protocol.deployment import Deployment
from protocol.results import AgentResult, CompactSignature, RequestCommitment, Status, sign_result
from protocol.wire import CommitmentModel, ExecuteResponse, SignatureModel, to_hex
from tests import samples

pytestmark = pytest.mark.chain

TRANSMITTER = Account.from_key(DEV_KEYS[6])
CLUSTER_KEY = b"\x07" * 32


@pytest.fixture
def parts(w3: Web3, deployment: Deployment, tmp_path: Path) -> Iterator[tuple[Submitter, RequestStore, Sender]]:
    store = RequestStore(tmp_path / "bridge.sqlite", owner=TRANSMITTER.address.lower())
    sender = Sender(w3, TRANSMITTER)
    submitter = Submitter(w3, deployment.contract(w3, "AgentRouter"), sender, store, WorkerPool([]))
    yield submitter, store, sender
    submitter.close()
    sender.close()
    store.close()


def _dispatched(store: RequestStore, *commitments: RequestCommitment) -> list[StoredRequest]:
    """The requests as a worker runs them for this bridge (claimed, dispatched)."""
    store.record_blocks([NewRequest(c.request_id, c, b"in", "0xab", time.time()) for c in commitments], [], 1, 1)
    return store.take("pending", "dispatched", len(commitments))


def _answer(commitment: RequestCommitment, chain_id: int, router: str) -> ExecuteResponse:
    result = AgentResult(commitment=commitment, status=Status.OK, output=b"out")
    signed = sign_result(CLUSTER_KEY, chain_id=chain_id, router=router, result=result, epoch=1)
    return ExecuteResponse(
        request_id=str(commitment.request_id),
        commitment=CommitmentModel.of(commitment),
        status="OK",
        output=to_hex(b"out"),
        signature=SignatureModel.of(signed.signature),
        logs=[],
        error=None,
        stats={},
        worker="w1",
    )


def test_a_lone_result_is_sent_at_once_and_the_next_waits_while_it_is_in_flight(
    w3: Web3, parts: tuple[Submitter, RequestStore, Sender]
) -> None:
    submitter, store, sender = parts
    first, second = _dispatched(
        store, samples.commitment(b"first", nonce=101), samples.commitment(b"second", nonce=102)
    )
    answer = _answer(first.commitment, w3.eth.chain_id, submitter.router.address)

    assert submitter.deliver_now([(first, answer)])
    stored = store.get(first.request_id)
    assert stored is not None
    assert stored.state == "submitted"
    assert stored.fulfil_tx is not None
    assert w3.eth.get_transaction(stored.fulfil_tx)["to"] == submitter.router.address  # type: ignore[arg-type]
    assert sender.in_flight() == 1

    later = _answer(second.commitment, w3.eth.chain_id, submitter.router.address)
    assert not submitter.deliver_now([(second, later)]), "a fulfilment in flight: the next batch fills up"
    stored = store.get(second.request_id)
    assert stored is not None
    assert (stored.state, stored.result) == ("dispatched", None), "left for the dispatcher to store as executed"


def test_a_result_the_submitter_must_not_send_yet_is_left_to_it(
    w3: Web3, parts: tuple[Submitter, RequestStore, Sender]
) -> None:
    submitter, store, sender = parts
    other_operator = "0x" + "bb" * 20
    theirs = replace(
        samples.commitment(b"theirs", nonce=103),
        assignee=Web3.to_checksum_address(other_operator),
        assigned_until=int(time.time()) + 600,
    )
    lone, pair_a, pair_b = _dispatched(
        store, theirs, samples.commitment(b"a", nonce=104), samples.commitment(b"b", nonce=105)
    )
    chain_id, router = w3.eth.chain_id, submitter.router.address
    assert not submitter.deliver_now([(lone, _answer(lone.commitment, chain_id, router))]), "another's window"
    pair = [(r, _answer(r.commitment, chain_id, router)) for r in (pair_a, pair_b)]
    assert not submitter.deliver_now(pair), "a batch of several goes by the submitter (one signature for all)"
    submitter.is_held = lambda: "not staked"
    assert not submitter.deliver_now(pair[:1]), "delivery held"
    assert sender.in_flight() == 0
    assert len(store.list_in("dispatched")) == 3, "nothing of them recorded"


def test_a_worker_that_does_not_co_sign_rests_and_never_delays_the_others(
    w3: Web3, deployment: Deployment, tmp_path: Path
) -> None:
    """A stopped worker still counted healthy is asked first once: the next worker is asked a
    quarter of a second later, the stopped one is asked no more while its call hangs, and once
    the call times out it rests (and gets no requests) until a probe finds it back."""
    store = RequestStore(tmp_path / "bridge.sqlite", owner=TRANSMITTER.address.lower())
    sender = Sender(w3, TRANSMITTER)
    pool = WorkerPool(["http://127.0.0.1:1", "http://127.0.0.1:2"])
    pool._order = itertools.cycle([0])
    stopped, healthy = pool.clients
    asked: list[str] = []

    def hangs(results: list[ExecuteResponse], timeout_s: float) -> CompactSignature:
        asked.append("stopped")
        time.sleep(timeout_s)
        raise WorkerError(f"{stopped.url} (execute stream): no answer within {timeout_s:.1f} s")

    def signs(results: list[ExecuteResponse], timeout_s: float) -> CompactSignature:
        asked.append("healthy")
        return CompactSignature(epoch=1, r=b"\x01" * 32, vs=b"\x02" * 32)

    stopped.sign_batch = hangs  # type: ignore[method-assign,assignment]
    healthy.sign_batch = signs  # type: ignore[method-assign,assignment]
    submitter = Submitter(w3, deployment.contract(w3, "AgentRouter"), sender, store, pool, cosign_timeout_s=1.5)
    try:
        started = time.monotonic()
        signatures = [submitter._cosign([]) for _ in range(8)]
        elapsed = time.monotonic() - started
        assert all(s is not None for s in signatures)
        assert asked[:2] == ["stopped", "healthy"]
        assert asked[2:] == ["healthy"] * 7, "the stopped worker is not asked while its call hangs"
        assert elapsed < 0.25 * 2 + 0.5, f"{elapsed:.2f} s for 8 co-signatures"
        assert pool.candidates()[0] is stopped, "not known failed before its call times out"
        deadline = time.monotonic() + 5
        while pool.health()[stopped.url]["up"]:
            assert time.monotonic() < deadline, "the silent worker was never marked failed"
            time.sleep(0.05)
        assert pool.candidates()[0] is healthy
        assert pool.acquire() is healthy, "it gets no requests while it rests"
    finally:
        submitter.close()
        sender.close()
        store.close()
