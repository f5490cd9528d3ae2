"""End to end with three gatekeepers: one master key among them, and losing one loses nothing."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from enclave.keys import rotate
from enclave.stack import DEPLOYER_KEY, Stack
from enclave.usage import ask_many, register, wait_for
from protocol.status import Status
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

COUNTER_AGENT = """export default async function main(input, ctx) {
  const n = Number(ctx.storage.get("n") ?? "0") + 1;
  ctx.storage.set("n", String(n));
  return String(n);
}"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    state = fresh_state_dir("e2e-gatekeepers")
    with Stack(state_dir=state, gatekeepers=3, workers=2) as running:
        yield running


def count(stack: Stack, agent: int) -> int:
    [request_id] = ask_many(stack, agent, [b""])
    status, output = wait_for(stack, [request_id])[request_id]
    assert status == Status.OK, output
    return int(json.loads(output))


def test_every_gatekeeper_holds_the_same_cluster_key(stack: Stack) -> None:
    infos = [httpx.get(f"{url}/v1/info", timeout=5).json() for url in stack.gatekeeper_urls()]
    assert len(infos) == 3
    assert len({info["signer"] for info in infos}) == 1
    assert len({info["address"] for info in infos}) == 3, "three distinct gatekeeper accounts"


def test_losing_a_gatekeeper_loses_nothing(stack: Stack) -> None:
    assert stack.deployment is not None
    agent = register(stack, COUNTER_AGENT)
    assert count(stack, agent) == 1

    stack.services["gatekeeper"].stop(signal.SIGKILL)  # the one that made the master key
    # A restarted worker attests again and is provisioned by a surviving gatekeeper.
    stack.services["worker-1"].stop()
    stack.services["worker-2"].stop(signal.SIGKILL)
    stack.start_worker("worker-1")
    assert count(stack, agent) == 2

    # A rotation still happens: the next gatekeeper in line carries it out.
    epoch = rotate(stack.web3(), stack.deployment, DEPLOYER_KEY)
    assert epoch == 2
    # It says so once it has re-encrypted the cluster store, a moment after publishing the epoch.
    log = stack.services["gatekeeper-2"].log_path
    deadline = time.monotonic() + 15
    while "rotated to epoch 2" not in log.read_text():
        assert time.monotonic() < deadline, "gatekeeper-2 did not carry out the rotation"
        time.sleep(0.2)
    assert count(stack, agent) == 3, "the state, re-encrypted by the surviving gatekeeper, is intact"
    deadline = time.monotonic() + 15
    while not (info := httpx.get(f"{stack.url('gatekeeper-3')}/v1/info", timeout=5).json())["holdsCurrentKey"]:
        assert time.monotonic() < deadline, "gatekeeper-3 never fetched epoch 2's master key from a peer"
        time.sleep(0.2)
    assert info["epoch"] == 2
    assert info["epochsHeld"] == [1, 2]
