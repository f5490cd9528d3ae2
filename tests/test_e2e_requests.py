"""End to end on a real anvil with the real services: requests answered on-chain."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave.stack import Stack
from enclave.usage import AGENTS, ask_many, register, request_ids, results, send_asks, wait_for
from protocol.deployment import PROJECT_ROOT
from protocol.status import Status
from tests.shell import run_as_written
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Inside the project: forge scripts may only read files under it (foundry.toml fs_permissions).
    state = fresh_state_dir("e2e-requests")
    with Stack(state_dir=state, workers=2, worker_env={"ENCLAVE_WORKER_WALL_TIME_MS": "1000"}) as running:
        yield running


def test_contract_request_is_answered_on_chain(stack: Stack) -> None:
    agent = register(stack, AGENTS / "hello.js")
    [request_id] = ask_many(stack, agent, [b"Enclave"])
    status, output = wait_for(stack, [request_id])[request_id]
    assert status == Status.OK
    assert json.loads(output)["greeting"] == "Hello, Enclave!"
    assert stack.deployment is not None
    echo = stack.deployment.contract(stack.web3(), "EchoConsumer")
    assert echo.functions.lastOutput().call() == output


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("export default async function main() { while (true) {} }", Status.TIMEOUT, b"wall time of 1000 ms"),
        (
            "export default async () => { const a = []; while (true) a.push(new Array(1e5).fill(1)); };",
            Status.RESOURCE_LIMIT,
            b"out of memory",
        ),
        ('export default async () => { throw new Error("boom"); };', Status.AGENT_ERROR, b"Error: boom"),
        ('export default async () => "0x" + "ff".repeat(5000);', Status.RESOURCE_LIMIT, b"output of 5000 bytes"),
    ],
    ids=["infinite-loop", "memory-bomb", "throw", "huge-output"],
)
def test_hostile_agent_gets_an_error_status_and_the_worker_serves_on(
    stack: Stack, code: str, status: Status, message: bytes
) -> None:
    hostile = register(stack, code)
    echo_agent = register(stack, "export default async (input) => input.bytes;")
    [bad] = ask_many(stack, hostile, [b"x"])
    got_status, output = wait_for(stack, [bad])[bad]
    assert got_status == status
    assert message in output
    # Every worker still answers: as many requests as workers, spread by the bridge.
    after = ask_many(stack, echo_agent, [b"still alive 1", b"still alive 2"])
    assert [r[1] for r in wait_for(stack, after).values()] == [b"still alive 1", b"still alive 2"]
    for name in ("worker-1", "worker-2"):
        assert stack.services[name].running


def test_bridge_killed_mid_flight_fulfils_every_request_exactly_once(stack: Stack) -> None:
    agent = register(stack, "export default async (input) => input.bytes;")
    payloads = [f"req-{i}".encode() for i in range(12)]
    before = set(results(stack))
    database = stack.state_dir / "bridge.sqlite"
    # Half the requests get going; the other half are sent and the bridge dies at once, so the
    # kill finds requests in every stage from unseen to fulfilled.
    first = ask_many(stack, agent, payloads[:6])
    _wait_until_any_past_pending(database, first)
    second = send_asks(stack, agent, payloads[6:])
    stack.services["bridge"].stop(signal.SIGKILL)
    ids = first + request_ids(stack, second)
    at_kill = _states(database, ids)
    assert set(at_kill.values()) != {"fulfilled"}, "the bridge died with work in flight"
    stack.start_bridge()

    outputs = wait_for(stack, ids)
    assert [outputs[i] for i in ids] == [(Status.OK, p) for p in payloads]
    # Every request is closed on-chain, so the router refuses any later delivery: the callbacks
    # counted now are all there will ever be.
    assert stack.deployment is not None
    router = stack.deployment.contract(stack.web3(), "AgentRouter")
    assert not any(router.functions.isOpen(i).call() for i in ids)
    seen = results(stack)
    assert all(len(seen[i]) == 1 for i in ids), "every callback arrived exactly once"
    assert set(seen) - before == set(ids)
    deadline = time.monotonic() + 30
    while set(_states(database, ids).values()) != {"fulfilled"}:
        assert time.monotonic() < deadline, f"the bridge never recorded every delivery (at the kill: {at_kill})"
        time.sleep(0.1)


def _wait_until_any_past_pending(database: Path, ids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not set(_states(database, ids).values()) - {"unseen", "pending"}:
        assert time.monotonic() < deadline, "the bridge never picked the requests up"
        time.sleep(0.01)


def _states(database: Path, request_ids: list[int]) -> dict[int, str]:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT request_id, state FROM requests").fetchall()
    by_id = {int(r): s for r, s in rows}
    return {i: by_id.get(i, "unseen") for i in request_ids}


def test_the_readmes_forge_script_works_as_written(stack: Stack) -> None:
    """What a user does from the command line, the README's lines run by bash as they stand:
    `enclave env` finds the stack through ENCLAVE_STATE_DIR, forge requests, cast reads."""
    agent = register(stack, AGENTS / "hello.js")
    before = set(results(stack))
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = readme.split('```sh\neval "$(.venv/bin/enclave env)"', 1)[1].split("```", 1)[0]
    script = 'eval "$(.venv/bin/enclave env)"' + block.replace("AGENT_ID=1 ", f"AGENT_ID={agent} ")
    completed = run_as_written(script, PROJECT_ROOT, stack.state_dir, timeout=180)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"requested agent {agent} through EchoConsumer" in completed.stdout
    deadline = time.monotonic() + 60
    while not (new := set(results(stack)) - before):
        assert time.monotonic() < deadline, "the script's request got no callback"
        time.sleep(0.2)
    [request_id] = new
    status, output = results(stack)[request_id][0]
    assert status == Status.OK
    assert json.loads(output)["greeting"] == "Hello, Enclave!"
