"""Chainlink's FunctionsClientExample, unchanged, against a running stack: its requests go through
FunctionsRouterAdapter, a worker runs their sources in the Functions runtime agent, and the
answers (or errors) reach the example as they would have on Chainlink."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from web3.contract import Contract
from web3.logs import DISCARD

from enclave.agents import prepare_code
from enclave.deploy import deploy_contract
from enclave.stack import DEPLOYER_KEY, Stack
from enclave.usage import register
from protocol.deployment import PROJECT_ROOT, send
from tests.http_fixtures import FakeApi, fake_api
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

RUNTIME = PROJECT_ROOT / "compat" / "chainlink-functions.js"
DON_ID = b"fun-enclave-local-1".ljust(32, b"\0")
PRICE = 10**14


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApi]:
    with fake_api() as running:
        running.routes["/weather"] = lambda method, path, headers, body: (200, {"celsius": 21, "city": path[-5:]})
        yield running


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(
        state_dir=fresh_state_dir("e2e-functions"), workers=1, web_port=None, allow_private_networks=True
    ) as running:
        yield running


@pytest.fixture(scope="module")
def example(stack: Stack, api: FakeApi) -> Contract:
    """The runtime agent (its allow-list naming the fake API), the adapter, and Chainlink's
    example with a funded subscription."""
    assert stack.deployment is not None
    w3, owner = stack.web3(), Account.from_key(DEPLOYER_KEY)
    runtime = register(stack, prepare_code(RUNTIME, None, [api.host]), price=PRICE)
    router = stack.deployment.contract(w3, "AgentRouter")
    adapter = deploy_contract(w3, owner, "FunctionsRouterAdapter", router.address, runtime)
    example = deploy_contract(w3, owner, "FunctionsClientExample", adapter.address)
    receipt = send(w3, owner, adapter.functions.createSubscriptionWithConsumer(example.address))
    created = adapter.events.SubscriptionCreated().process_receipt(receipt, errors=DISCARD)
    subscription = created[0]["args"]["subscriptionId"]
    send(w3, owner, adapter.functions.fundSubscription(subscription), value=10**18)
    example.subscription = subscription  # type: ignore[attr-defined]
    example.runtime = runtime  # type: ignore[attr-defined]
    example.adapter = adapter.address  # type: ignore[attr-defined]
    return example


def _ask(
    stack: Stack, example: Contract, source: str, args: list[str], timeout: float = 60, secrets: bytes = b""
) -> tuple[bytes, bytes]:
    """The example's sendRequest, as its owner calls it; then its stored answer, once it came."""
    w3 = stack.web3()
    subscription = example.subscription  # type: ignore[attr-defined]
    call = example.functions.sendRequest(source, secrets, args, subscription, DON_ID)
    send(w3, Account.from_key(DEPLOYER_KEY), call)
    request_id = example.functions.s_lastRequestId().call()
    fulfilled = example.events.RequestFulfilled()
    deadline = time.monotonic() + timeout
    while not [e for e in fulfilled.get_logs(from_block=0) if e["args"]["id"] == request_id]:
        assert time.monotonic() < deadline, "the example never got its answer"
        time.sleep(0.2)
    response = example.functions.s_lastResponse().call()[: example.functions.s_lastResponseLength().call()]
    error = example.functions.s_lastError().call()[: example.functions.s_lastErrorLength().call()]
    return bytes(response), bytes(error)


def test_an_api_request_through_functions_make_http_request(stack: Stack, example: Contract, api: FakeApi) -> None:
    source = f"""
      const reply = await Functions.makeHttpRequest({{ url: "{api.url}/weather/" + args[0] }});
      if (reply.error) throw Error("weather: " + reply.message);
      return Functions.encodeInt256(reply.data.celsius);
    """
    response, error = _ask(stack, example, source, ["Paris"])
    assert (int.from_bytes(response, "big"), error) == (21, b"")
    assert api.seen[-1][1] == "/weather/Paris"


def test_a_pure_calculation(stack: Stack, example: Contract) -> None:
    response, error = _ask(stack, example, "return Functions.encodeUint256(args.length * 1000);", ["a", "b", "c"])
    assert (int.from_bytes(response, "big"), error) == (3000, b"")


def test_an_error_thrown(stack: Stack, example: Contract) -> None:
    assert _ask(stack, example, 'throw Error("sold out");', []) == (b"", b"sold out")


def test_a_timeout(stack: Stack, example: Contract) -> None:
    response, error = _ask(stack, example, "while (true) {}", [], timeout=90)
    assert response == b""
    assert error == b"wall time of 10000 ms exceeded"[:32]


def test_secrets_sealed_with_the_cli_reach_the_source(stack: Stack, example: Contract, api: FakeApi) -> None:
    api.routes["/private"] = lambda method, path, headers, body: (
        (200, {"balance": 7}) if headers.get("x-api-key") == "k-789" else (401, {"error": "no key"})
    )
    sealed = subprocess.run(
        [str(PROJECT_ROOT / ".venv/bin/enclave"), "secrets", "functions", "--state-dir", str(stack.state_dir),
         "--agent", str(example.runtime), "--adapter", example.adapter,  # type: ignore[attr-defined]
         "--owner", Account.from_key(DEPLOYER_KEY).address, "apiKey=k-789"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    assert "k-789" not in sealed
    source = f"""
      const headers = {{ "x-api-key": secrets.apiKey }};
      const reply = await Functions.makeHttpRequest({{ url: "{api.url}/private", headers }});
      if (reply.error) throw Error("private: " + reply.message);
      return Functions.encodeUint256(reply.data.balance);
    """
    response, error = _ask(stack, example, source, [], secrets=bytes.fromhex(sealed[2:]))
    assert (int.from_bytes(response, "big"), error) == (7, b"")


TOOLKIT = PROJECT_ROOT / "tests" / "toolkit"


def test_chainlinks_functions_toolkit_against_the_adapter(stack: Stack, example: Contract) -> None:
    """@chainlink/functions-toolkit as a Functions user's scripts call it (tests/toolkit/check.js):
    SubscriptionManager (but LINK funding), buildRequestCBOR, ResponseListener, decodeResult."""
    assert (TOOLKIT / "node_modules" / "@chainlink" / "functions-toolkit").is_dir(), "run scripts/setup.sh --dev"
    assert stack.deployment is not None
    env = {
        "PATH": os.environ["PATH"],
        "NODE_BACKEND": "js",  # bcrypto's JavaScript backend: its native build is not installed
        "RPC_URL": str(stack.rpc_url),
        "PRIVATE_KEY": DEPLOYER_KEY,
        "ADAPTER": example.adapter,  # type: ignore[attr-defined]
        "CLIENT": example.address,
        "SUBSCRIPTION": str(example.subscription),  # type: ignore[attr-defined]
        "DON_ID": "0x" + DON_ID.hex(),
    }
    node = shutil.which("node")
    assert node is not None, "node is on PATH wherever npm is"
    ran = subprocess.run(
        [node, "check.js"], cwd=TOOLKIT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout.strip().splitlines()[-1])
    owner = Account.from_key(DEPLOYER_KEY).address
    assert out["subscription"]["owner"] == owner
    assert len(out["subscription"]["consumers"]) == 1
    assert out["consumersAfterRemoval"] == []
    assert out["linkFunding"] == "refused", "funding is in ETH: the toolkit's LINK transferAndCall has no token"
    # The example's CBOR (FunctionsRequest's pairs) and buildRequestCBOR's map both answer 42.
    answered = {"sameRequest": True, "fulfillmentCode": 0, "errorString": "", "value": "42"}
    assert out["fromClient"] == answered
    assert out["fromToolkitCbor"] == answered
