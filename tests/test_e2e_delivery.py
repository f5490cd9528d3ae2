"""Delivery never gives up early: requests outlive workers that are away far longer than the old
retry budget, and a request whose deadline passes is failed and cancelled so its fee goes back."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account

from enclave.stack import DEPLOYER_KEY, Stack
from enclave.usage import ask_many, register, request_ids, results, send_asks, send_request, wait_for
from protocol.deployment import send
from protocol.status import Status
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

ECHO = "export default async function main(input) { return input.bytes; }"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Retries and worker cool-downs back off to at most 1 and 2 s here, to keep the test short.
    with Stack(
        state_dir=fresh_state_dir("e2e-delivery"),
        workers=2,
        web_port=None,
        bridge_env={"ENCLAVE_BRIDGE_MAX_BACKOFF_S": "1", "ENCLAVE_BRIDGE_WORKER_MAX_COOLDOWN_S": "2"},
    ) as running:
        yield running


def _workers_down(stack: Stack) -> None:
    for name in ("worker-1", "worker-2"):
        stack.services[name].stop(signal.SIGKILL)


def _workers_up(stack: Stack) -> None:
    for name in ("worker-1", "worker-2"):
        stack.start_worker(name)


def _rows(stack: Stack, ids: list[int]) -> dict[int, sqlite3.Row]:
    with sqlite3.connect(stack.state_dir / "bridge.sqlite") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM requests").fetchall()
    return {int(row["request_id"]): row for row in rows if int(row["request_id"]) in ids}


def test_every_worker_away_longer_than_the_old_retry_budget_then_back(stack: Stack) -> None:
    agent = register(stack, ECHO)
    _workers_down(stack)
    payloads = [b"one", b"two", b"three"]
    ids = ask_many(stack, agent, payloads)
    # The old dispatcher failed a request after 10 tries half a second apart (about 5 s); stay
    # away three times that long, watching that nothing is given up.
    away_until = time.monotonic() + 15
    while time.monotonic() < away_until:
        rows = _rows(stack, ids)
        assert all(row["state"] in ("pending", "dispatched") for row in rows.values()), "nothing given up"
        time.sleep(0.5)
    rows = _rows(stack, ids)
    assert len(rows) == len(ids), "the bridge saw every request"
    assert any(row["attempts"] >= 1 for row in rows.values()), "they were tried, and kept"
    # With every worker resting, the rest wait for one to answer its probe instead of being
    # handed to a worker known to be away.
    health = httpx.get(f"{stack.url('bridge')}/v1/status", timeout=5).json()["workers"]
    assert all(not worker["up"] and worker["failuresInARow"] >= 1 for worker in health.values()), health

    _workers_up(stack)
    outputs = wait_for(stack, ids)
    assert [outputs[i] for i in ids] == [(Status.OK, p) for p in payloads]
    assert stack.deployment is not None
    router = stack.deployment.contract(stack.web3(), "AgentRouter")
    assert not any(router.functions.isOpen(i).call() for i in ids), "closed: no later delivery possible"
    seen = results(stack)
    assert all(len(seen[i]) == 1 for i in ids), "each delivered exactly once"


def test_a_request_past_its_deadline_is_failed_then_cancelled_and_its_fee_returned(stack: Stack) -> None:
    assert stack.deployment is not None
    w3 = stack.web3()
    router = stack.deployment.contract(w3, "AgentRouter")
    echo = stack.deployment.contract(w3, "EchoConsumer")
    owner = Account.from_key(DEPLOYER_KEY)
    config = router.functions.getConfig().call()
    agent = register(stack, ECHO)
    send(w3, owner, router.functions.setConfig((*config[:3], 6, *config[4:])))  # a 6-second deadline
    _workers_down(stack)
    try:
        refunds_before = router.functions.balanceOf(echo.address).call()
        fee = 10**15 + 12_345  # more than it can cost: all of it comes back
        [request_id] = request_ids(stack, send_asks(stack, agent, [b"too late"], fee=fee))
        deadline = time.monotonic() + 60
        while (row := _rows(stack, [request_id]).get(request_id)) is None or row["state"] != "cancelled":
            assert time.monotonic() < deadline, f"still {row['state'] if row else 'unseen'}"
            time.sleep(0.2)
        assert router.functions.balanceOf(echo.address).call() == refunds_before + fee, "the fee went back"
        assert not router.functions.isOpen(request_id).call()
        with sqlite3.connect(stack.state_dir / "bridge.sqlite") as db:
            states = [
                s
                for (s,) in db.execute(
                    "SELECT state FROM transitions WHERE request_id = ? ORDER BY id", (str(request_id),)
                )
            ]
        assert "failed" in states, "failed only once its deadline passed"
        assert states[-1] == "cancelled"
    finally:
        send(w3, owner, router.functions.setConfig(tuple(config)))
        _workers_up(stack)


def _time_to_callbacks(stack: Stack, ids: list[int], count: int, timeout: float = 90) -> float:
    """Seconds until `count` of the requests have their callback on-chain."""
    started = time.monotonic()
    while sum(1 for i in ids if i in results(stack)) < count:
        assert time.monotonic() - started < timeout, "callbacks stopped coming"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_hung_worker_costs_only_its_own_share(stack: Stack) -> None:
    agent = register(stack, ECHO)
    normal = _time_to_callbacks(stack, ask_many(stack, agent, [b"%d" % i for i in range(10)]), 10)
    hung = stack.services["worker-2"].process.pid
    os.kill(hung, signal.SIGSTOP)
    try:
        ids = ask_many(stack, agent, [b"hung %d" % i for i in range(10)])
        # The hung worker holds at most its two in-flight requests (until their execute
        # timeout); the other eight go on at the healthy worker's pace.
        most = _time_to_callbacks(stack, ids, 8)
        assert most < max(4 * normal, 12.0), f"{most:.1f} s for 8 callbacks, {normal:.1f} s for 10 normally"
        _time_to_callbacks(stack, ids, 10)  # the held two fail over after their timeout
        health = httpx.get(f"{stack.url('bridge')}/v1/status", timeout=5).json()["workers"]
        hung_url = stack.services["worker-2"].url
        assert health[hung_url]["failuresInARow"] > 0, "the hang was noticed"
    finally:
        os.kill(hung, signal.SIGCONT)


SLOW_WHEN_ASKED = """// @enclave {"name": "slow-when-asked", "limits": {"wallTimeMs": 8000}}
export default async function main(input) {
  if (input.text === "slow") { const until = Date.now() + 4000; while (Date.now() < until) {} }
  return input.bytes;
}"""


def test_a_slow_agent_holds_none_of_the_results_made_with_it(stack: Stack) -> None:
    """One request that runs 4 s made in the same transaction as five quick ones (one block, so
    one batch to one worker): the quick ones are called back without waiting for it."""
    agent = register(stack, SLOW_WHEN_ASKED)
    w3 = stack.web3()
    assert stack.deployment is not None
    router = stack.deployment.contract(w3, "AgentRouter")
    echo = stack.deployment.contract(w3, "EchoConsumer")
    inputs = [b"slow", *(b"quick %d" % i for i in range(5))]
    made = send_request(
        w3, Account.from_key(DEPLOYER_KEY), echo.functions.askMany(agent, inputs, 300_000), router, agent, 300_000, 6
    )
    started = time.monotonic()
    slow, *quick = [int(e["args"]["requestId"]) for e in router.events.AgentRequested().process_receipt(made)]
    quick_after = _time_to_callbacks(stack, quick, len(quick))
    assert slow not in results(stack), "the quick ones came before the slow one"
    assert quick_after < 2.5, f"{quick_after:.1f} s for the quick ones"
    _time_to_callbacks(stack, [slow], 1)
    assert time.monotonic() - started >= 3.0
    assert [results(stack)[i] for i in quick] == [[(Status.OK, b"quick %d" % i)] for i in range(5)]


def test_an_unreachable_chain_shows_in_status_within_seconds(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    from enclave import cli

    assert stack.anvil is not None
    chain = stack.anvil.pid
    bridge = stack.url("bridge")
    dashboard = stack.start_web().url
    assert "Chain unreachable" not in httpx.get(dashboard, timeout=10).text
    os.kill(chain, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 10
        while "Chain unreachable" not in httpx.get(dashboard, timeout=10).text:
            assert time.monotonic() < deadline, "the dashboard never said that the chain is away"
            time.sleep(0.5)
        deadline = time.monotonic() + 30  # the bridge's RPC timeout is 10 s
        while "watcher" not in httpx.get(f"{bridge}/v1/status", timeout=5).json()["errors"]:
            assert time.monotonic() < deadline, "the bridge never said the chain is away"
            time.sleep(0.5)
        assert cli.main(["status", "--state-dir", str(stack.state_dir)]) == 0
        printed = capsys.readouterr().out
        assert " | ! " in printed, "problems are flagged"
        assert "watcher: " in printed, "the watcher's failure is named"
        metrics = httpx.get(f"{bridge}/metrics", timeout=2).text  # nothing in it waits on the chain
        assert 'enclave_bridge_loop_failing{loop="watcher"} 1.0' in metrics
    finally:
        os.kill(chain, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while httpx.get(f"{bridge}/v1/status", timeout=5).json()["errors"]:
        assert time.monotonic() < deadline, "the error outlived the outage"
        time.sleep(0.5)
    while "Chain unreachable" in httpx.get(dashboard, timeout=10).text:
        assert time.monotonic() < deadline, "the dashboard still says the chain is away"
        time.sleep(0.5)


def test_big_outputs_mixed_with_small_ones_are_priced_and_all_delivered(stack: Stack) -> None:
    """Twenty 4 KiB outputs with 50,000-gas callbacks: the EIP-7623 calldata floor alone is about
    164,000 gas for each, more than a gas limit from the callbacks gave them."""
    assert stack.deployment is not None
    code = 'export default async (input) => input.text.startsWith("big") ? "0x" + "ab".repeat(4096) : input.bytes;'
    agent = register(stack, code)
    payloads = [b"big %d" % i for i in range(20)] + [b"small %d" % i for i in range(5)]
    ids = request_ids(stack, send_asks(stack, agent, payloads, gas=50_000))
    router = stack.deployment.contract(stack.web3(), "AgentRouter")
    deadline = time.monotonic() + 120
    while any(router.functions.isOpen(i).call() for i in ids):
        assert time.monotonic() < deadline, "some results were never delivered"
        time.sleep(0.5)
    delivered = router.events.RequestFulfilled().get_logs(from_block=stack.deployment.start_block)
    by_id = {int(e["args"]["requestId"]): e for e in delivered if int(e["args"]["requestId"]) in ids}
    assert set(by_id) == set(ids), "every request closed by a delivery, none by a cancel"
    assert all(Status(by_id[i]["args"]["status"]) == Status.OK for i in ids)
    # (EchoConsumer's own callback cannot store much with 50,000 gas: the router delivered and
    # reports that; how a consumer spends its callback gas is its own business.)


def test_new_blocks_arrive_by_subscription(stack: Stack) -> None:
    agent = register(stack, ECHO)
    ids = ask_many(stack, agent, [b"subscribed"])
    wait_for(stack, ids)
    heads = httpx.get(f"{stack.url('bridge')}/v1/status", timeout=5).json()["newHeads"]
    assert heads["subscribed"] is True
    assert heads["received"] > 0
    assert heads["error"] is None
