"""The whole stack stopped and started again against a chain that kept running."""

from __future__ import annotations

import json

import pytest

from enclave.anvil import Anvil
from enclave.stack import Stack
from enclave.usage import ask_many, register, request_ids, send_asks, wait_for
from protocol.status import Status
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain


def test_restarted_stack_reuses_its_deployment_keys_and_state() -> None:
    state = fresh_state_dir("restart")
    counter = """export default async (input, ctx) => {
      const n = Number(ctx.storage.get("n") ?? "0") + 1;
      ctx.storage.set("n", String(n));
      return String(n);
    };"""
    with Anvil() as chain:
        first = Stack(state_dir=state, rpc_url=chain.rpc_url, web_port=None)
        with first:
            assert first.deployment is not None
            addresses = first.deployment.addresses
            agent = register(first, counter)
            [one] = ask_many(first, agent, [b""])
            assert wait_for(first, [one])[one] == (Status.OK, b'"1"')  # a JS string, sent as JSON
            signer = json.loads((state / "deployment.json").read_text())["contracts"]["TeeRegistry"]["address"]
        # A request made while the stack is down is answered after it comes back. (One made while
        # it goes down may run twice: a worker's storage writes are not undone when its answer
        # is lost with the bridge, and the run is repeated.)
        pending = send_asks(first, agent, [b""])

        second = Stack(state_dir=state, rpc_url=chain.rpc_url, web_port=None)
        with second:
            assert second.deployment is not None
            assert second.deployment.addresses == addresses, "the deployment file was reused"
            [two] = request_ids(second, pending)
            [three] = ask_many(second, agent, [b""])
            outputs = wait_for(second, [two, three])
            assert sorted(json.loads(outputs[i][1]) for i in (two, three)) == ["2", "3"], "sealed state survived"
            registry = second.deployment.contract(second.web3(), "TeeRegistry")
            assert registry.functions.currentEpoch().call() == 1, "the sealed master key was reused"
            assert registry.address == signer
