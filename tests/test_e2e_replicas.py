"""Three bridge replicas of one operator over one PostgreSQL store (the stack's own server), each
with its own transmitter key and stake, sharing the workers. Under a steady stream of requests
each replica in turn is SIGKILLed and started again. Ground truth is the chain's events: every
request is fulfilled exactly once."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from eth_account import Account

from enclave.deploy import StakingRules
from enclave.stack import REPLICA_KEYS, Stack
from enclave.usage import register, request_ids, send_asks, wait_for
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

# Busy for most of a second: a killed replica always holds requests that a worker runs.
SLOW_ECHO = (
    "export default async (input) => { const end = Date.now() + 700; while (Date.now() < end); return input.bytes; };"
)
# A short window and a small slash: a killed replica's assignments pass to the others soon,
# and cost its stake little.
RULES = StakingRules(assignment_window_s=2, slash_amount=10**15)
REPLICAS = ("bridge", "bridge-r2", "bridge-r3")
LEASE_S = 4.0


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(
        state_dir=fresh_state_dir("e2e-replicas"),
        workers=2,
        store="postgresql",
        replicas=3,
        staking=RULES,
        web_port=None,
        bridge_env={"ENCLAVE_BRIDGE_LEASE_S": str(LEASE_S)},
    ) as s:
        yield s


def _fulfilments(stack: Stack, ids: list[int]) -> Counter[int]:
    assert stack.deployment is not None
    router = stack.deployment.contract(stack.web3(), "AgentRouter")
    wanted = set(ids)
    return Counter(
        int(e["args"]["requestId"])
        for e in router.events.RequestFulfilled().get_logs(from_block=0)
        if e["args"]["requestId"] in wanted
    )


def _wait_until_it_holds_work(stack: Stack, owner: str | None, timeout: float = 30.0) -> None:
    """Until a worker runs a request for the replica `owner` (or any): killed then, it leaves
    work behind."""
    assert stack.store_url is not None
    deadline = time.monotonic() + timeout
    with psycopg.connect(stack.store_url, connect_timeout=10, autocommit=True) as db:
        while time.monotonic() < deadline:
            row = db.execute(
                "SELECT COUNT(*) FROM requests WHERE state = 'dispatched' AND owner = COALESCE(%s, owner)", (owner,)
            )
            if (found := row.fetchone()) is not None and found[0] > 0:
                return
            time.sleep(0.05)
    raise AssertionError(f"the replica {owner} never held a request")


def _status(stack: Stack, name: str) -> dict[str, object]:
    answer: dict[str, object] = httpx.get(f"{stack.url(name)}/v1/status", timeout=10).json()
    return answer


def test_the_replicas_share_one_store_and_one_of_them_watches(stack: Stack) -> None:
    statuses = [_status(stack, name) for name in REPLICAS]
    replicas = [status["replica"] for status in statuses]
    assert all(r["sharedStore"] for r in replicas)  # type: ignore[index]
    assert len({r["owner"] for r in replicas}) == 3, "each with its own transmitter"  # type: ignore[index]
    assert sum(bool(r["leads"]) for r in replicas) == 1, "one watches the chain"  # type: ignore[index]
    scraped = [httpx.get(f"{stack.url(name)}/metrics", timeout=10).text for name in REPLICAS]
    assert sum("enclave_bridge_leading 1.0" in metrics for metrics in scraped) == 1
    assert stack.postgres is not None
    assert all(stack.postgres.password not in json.dumps(status) for status in statuses), "the URL shows no password"


def test_replicas_killed_in_turn_lose_nothing_and_deliver_nothing_twice(stack: Stack) -> None:
    agent = register(stack, SLOW_ECHO)
    ids: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def load() -> None:
        round_ = 0
        try:
            while not stop.is_set():
                ids.extend(request_ids(stack, send_asks(stack, agent, [b"load %d.%d" % (round_, i) for i in range(2)])))
                round_ += 1
                time.sleep(0.5)
        except BaseException as err:  # noqa: BLE001 - reported by the test below
            errors.append(err)

    sender = threading.Thread(target=load, daemon=True)
    sender.start()
    try:
        for replica, name in enumerate(REPLICAS, start=1):
            _wait_until_it_holds_work(stack, Account.from_key(REPLICA_KEYS[replica - 1]).address.lower())
            stack.services[name].stop(signal.SIGKILL)
            time.sleep(2)  # the others carry on alone, and (the watcher killed) one takes over
            stack.start_bridge(1, replica)
        time.sleep(2)
    finally:
        stop.set()
        sender.join(timeout=60)
    assert not errors, errors
    assert len(ids) >= 20, "the load kept coming throughout"

    wait_for(stack, ids, timeout=180)
    counts = _fulfilments(stack, ids)
    assert set(counts) == set(ids), "every request fulfilled"
    assert set(counts.values()) == {1}, "each exactly once"
    # The replicas are one fleet: covering for a killed one slashed nobody, and all stay active.
    assert stack.deployment is not None
    staking = stack.deployment.contract(stack.web3(), "OperatorStaking")
    assert staking.events.OperatorSlashed().get_logs(from_block=0) == []
    assert all(staking.functions.getOperator(Account.from_key(key).address).call()[3] for key in REPLICA_KEYS)
    # The killed replicas held requests, which were put back: by the leader once their holds ran
    # out, or by the replica itself when it started again first (whichever came sooner).
    assert stack.store_url is not None
    with psycopg.connect(stack.store_url, connect_timeout=10) as db:
        row = db.execute(
            "SELECT COUNT(*) FROM transitions WHERE detail LIKE '%stopped holding it'"
            " OR detail = 'bridge restarted while dispatched'"
        ).fetchone()
    assert row is not None
    assert row[0] > 0
    assert sum(bool(_status(stack, name)["replica"]["leads"]) for name in REPLICAS) == 1  # type: ignore[index]


def test_a_store_that_restarts_under_load_leaves_nothing_behind(stack: Stack) -> None:
    """PostgreSQL stops while workers run requests for the replicas and starts again: results
    that could not be saved are run again once their holds run out, and every request is
    fulfilled exactly once; the status says what happened meanwhile."""
    assert stack.postgres is not None
    agent = register(stack, SLOW_ECHO)
    ids = request_ids(stack, send_asks(stack, agent, [b"restart %d" % i for i in range(8)]))
    _wait_until_it_holds_work(stack, None)
    stack.postgres.stop()
    try:
        away = _status(stack, "bridge")
        assert away["counts"] is None
        assert "store" in away["errors"]  # type: ignore[operator]
        time.sleep(2)
    finally:
        stack.postgres.start()
    ids += request_ids(stack, send_asks(stack, agent, [b"after %d" % i for i in range(4)]))
    wait_for(stack, ids, timeout=180)
    counts = _fulfilments(stack, ids)
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}
    assert stack.store_url is not None
    deadline = time.monotonic() + 60
    while True:
        with psycopg.connect(stack.store_url, connect_timeout=10) as db:
            row = db.execute(
                "SELECT COUNT(*) FROM requests WHERE state IN ('pending', 'dispatched', 'executed', 'submitted')"
            ).fetchone()
        if row is not None and row[0] == 0:
            break
        assert time.monotonic() < deadline, f"{row} requests left open in the store"
        time.sleep(0.5)
