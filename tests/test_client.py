"""The Python client for applications, against a running stack: request, wait, decode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from enclave.client import EnclaveClient
from enclave.errors import EnclaveError
from enclave.stack import Stack
from enclave.usage import register
from protocol.fees import current_gas_price
from protocol.status import Status
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

# Answers with abi.encode(uint256 length of the input, string the input), as a contract reads it.
ABI_AGENT = """// @enclave {"output": ["uint256", "string"]}
export default async (input) => {
  const size = input.bytes.length;
  const word = (n) => n.toString(16).padStart(64, "0");
  const padded = input.hex.slice(2).padEnd(Math.ceil(size / 32) * 64, "0");
  return "0x" + word(size) + word(64) + word(size) + padded;
};
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(state_dir=fresh_state_dir("client"), workers=1, web_port=None) as running:
        yield running


def test_run_an_agent_and_decode_its_answer(stack: Stack) -> None:
    client = EnclaveClient.from_stack(stack.state_dir)
    agent = register(stack, ABI_AGENT, price=1_000)
    result = client.run(agent, "Ada Lovelace")
    assert result.ok
    assert result.decode(["uint256", "string"]) == (12, "Ada Lovelace")
    assert result.fulfil_tx.startswith("0x")


def test_through_a_consumer_and_failures(stack: Stack) -> None:
    assert stack.deployment is not None
    client = EnclaveClient.from_stack(stack.state_dir)
    echo = stack.deployment.contract(client.w3, "EchoConsumer")
    agent = register(stack, "export default async (input) => input.text.toUpperCase();")
    gas_price = current_gas_price(client.w3)
    call = echo.functions.ask(agent, b"through", 100_000)
    [request_id] = client.request_through(call, client.cost(agent, 100_000, gas_price), gas_price)
    assert client.wait(request_id).json() == "THROUGH"

    failing = register(stack, 'export default async () => { throw new Error("no answer today"); };')
    result = client.run(failing, b"")
    assert result.status == Status.AGENT_ERROR
    assert "no answer today" in result.text
    with pytest.raises(EnclaveError, match="ended AGENT_ERROR"):
        result.decode(["uint256"])
    with pytest.raises(EnclaveError, match="AgentNotFound\\(agentId=999\\)"):
        client.run(999, b"")


def test_enclave_request_decodes_what_the_manifest_declares(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    from enclave import cli

    agent = register(stack, ABI_AGENT)
    argv = ["request", str(agent), "--input", "Ada", "--wait", "--state-dir", str(stack.state_dir)]
    assert cli.main(argv) == 0
    assert "decoded (uint256, string): 3, Ada" in capsys.readouterr().out
