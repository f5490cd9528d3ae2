"""The four example agents, end to end on anvil with their consumer contracts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi.abi import encode
from eth_account import Account
from web3.contract import Contract
from web3.logs import DISCARD

from enclave.agents import deploy, prepare_code
from enclave.deploy import deploy_contract
from enclave.keys import encrypt_input, set_agent_secrets
from enclave.stack import DEPLOYER_KEY, Stack
from enclave.usage import send_request
from protocol.deployment import PROJECT_ROOT
from tests.http_fixtures import FakeApi, PriceSources, fake_api, openai_compatible
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

AGENTS = PROJECT_ROOT / "examples" / "agents"
OWNER = Account.from_key(DEPLOYER_KEY)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(state_dir=fresh_state_dir("e2e-examples"), workers=2, allow_private_networks=True) as running:
        yield running


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        yield server


def deploy_agent(stack: Stack, name: str, hosts: list[str]) -> int:
    assert stack.deployment is not None
    agent_id, _ = deploy(stack.web3(), stack.deployment, DEPLOYER_KEY, prepare_code(AGENTS / name, None, hosts), 0)
    return agent_id


def consumer(stack: Stack, contract: str, agent_id: int) -> Contract:
    assert stack.deployment is not None
    router = stack.deployment.addresses["AgentRouter"]
    return deploy_contract(stack.web3(), OWNER, contract, router, agent_id)


def transact_and_wait(stack: Stack, consumer: Any, call: Any, event: Any, timeout: float = 60) -> dict[str, Any]:
    """Sends a consumer's request, paying what its agent and callback gas cost, and waits for
    the callback's event; returns its arguments."""
    assert stack.deployment is not None
    w3 = stack.web3()
    router = stack.deployment.contract(w3, "AgentRouter")
    agent_id, callback_gas = consumer.functions.AGENT_ID().call(), consumer.functions.CALLBACK_GAS().call()
    receipt = send_request(w3, OWNER, call, router, agent_id, callback_gas)
    request_id = router.events.AgentRequested().process_receipt(receipt, errors=DISCARD)[0]["args"]["requestId"]
    deadline = time.monotonic() + timeout
    while True:
        logs = event.get_logs(from_block=receipt["blockNumber"], argument_filters={"requestId": request_id})
        if logs:
            return dict(logs[-1]["args"])
        assert time.monotonic() < deadline, f"no {event.event_name} within {timeout} s"
        time.sleep(0.1)


def test_price_oracle_median_survives_a_liar_and_an_outage(stack: Stack, api: FakeApi) -> None:
    sources = PriceSources(api, 3000.25)
    oracle = deploy_agent(stack, "price-oracle.js", [api.host])
    feed = consumer(stack, "PriceFeedConsumer", oracle)
    query = json.dumps({"pair": "ETH-USD", "sources": sources.urls}).encode()

    def price() -> int:
        args = transact_and_wait(stack, feed, feed.functions.requestPrice(query), feed.events.PriceUpdated())
        return int(args["price"])

    assert price() == 300_025_000_000
    sources.prices["c"] = 99_999.0  # one source lies
    assert price() == 300_025_000_000
    sources.prices["c"] = 3000.25
    sources.down.add("b")  # one source is down
    assert price() == 300_025_000_000
    assert feed.functions.price().call() == 300_025_000_000
    sources.down.clear()


def test_llm_agent_answers_with_a_sealed_api_key(stack: Stack) -> None:
    assert stack.deployment is not None
    api_key = "sk-test-" + "7" * 24
    with fake_api() as model:
        openai_compatible(model, api_key)
        llm = deploy_agent(stack, "llm.js", [model.host])
        w3 = stack.web3()
        gatekeeper = stack.url("gatekeeper")
        # The endpoint is configuration: the owner's sealed setting points the agent at it.
        set_agent_secrets(gatekeeper, w3, stack.deployment, DEPLOYER_KEY, llm, {"OPENAI_BASE_URL": f"{model.url}/v1"})
        answers = consumer(stack, "AnswerConsumer", llm)
        question = json.dumps({"prompt": "What is 2 + 2?", "model": "tiny-test"}).encode()
        envelope = encrypt_input(gatekeeper, w3, stack.deployment, llm, {"OPENAI_API_KEY": api_key}, question)
        args = transact_and_wait(stack, answers, answers.functions.ask(envelope), answers.events.Answered())
    assert args["answer"] == "You asked tiny-test: What is 2 + 2? The answer is 4."
    assert answers.functions.answers(args["requestId"]).call() == args["answer"]
    [(method, path, headers, _)] = model.seen
    assert (method, path, headers["authorization"]) == ("POST", "/v1/chat/completions", f"Bearer {api_key}")
    txs = w3.eth.get_block("latest", full_transactions=True)["transactions"]
    tx_inputs = [bytes(tx["input"]) for tx in txs if not isinstance(tx, bytes)]  # full transactions, not hashes
    assert not any(api_key.encode() in data for data in tx_inputs)


def test_composite_agent_calls_the_oracle_and_remembers(stack: Stack, api: FakeApi) -> None:
    sources = PriceSources(api, 2000.0)
    oracle = deploy_agent(stack, "price-oracle.js", [api.host])
    alert_agent = deploy_agent(stack, "price-alert.js", [])
    alerts = consumer(stack, "PriceAlertConsumer", alert_agent)
    query = json.dumps({"oracle": oracle, "pair": "ETH-USD", "sources": sources.urls, "thresholdBps": 100}).encode()

    def check() -> dict[str, Any]:
        return transact_and_wait(stack, alerts, alerts.functions.check(query), alerts.events.PriceChecked())

    first = check()
    assert (first["moved"], first["price"], first["previous"]) == (False, 200_000_000_000, 0)
    sources.set_all(2010.0)  # +0.5%: under the 1% threshold
    assert check()["moved"] is False
    sources.set_all(2100.0)  # +4.5%
    moved = check()
    assert (moved["moved"], moved["price"], moved["previous"]) == (True, 210_000_000_000, 201_000_000_000)
    assert alerts.functions.alerts().call() == 1

    detail = httpx.get(f"{stack.url('bridge')}/v1/requests/{moved['requestId']}", timeout=5).json()
    assert [call["agentId"] for call in detail["calls"]] == [oracle]
    assert detail["calls"][0]["codeHash"].startswith("0x")
    assert detail["calls"][0]["status"] == "OK"
    stats = json.loads(detail["stats"])
    assert stats["limits"]["call_depth"] == 4
    assert stats["limits"]["wall_time_ms"] == 10_000
    assert stats["elapsedMs"] > 0
    assert stats["httpCalls"] == 0, "the oracle's calls are its own"


def test_twap_agent_keeps_a_time_weighted_average_in_sealed_storage(stack: Stack, api: FakeApi) -> None:
    current = {"price": 100.0}
    api.routes["/spot"] = lambda m, p, h, b: (200, {"price": current["price"]})
    twap = deploy_agent(stack, "twap.js", [api.host])
    feed = consumer(stack, "PriceFeedConsumer", twap)
    start = 1_800_000_000

    def observe(price: float, at: int) -> int:
        current["price"] = price
        query = json.dumps({"source": f"{api.url}/spot", "windowS": 3600, "now": at}).encode()
        return int(
            transact_and_wait(stack, feed, feed.functions.requestPrice(query), feed.events.PriceUpdated())["price"]
        )

    assert observe(100.0, start) == 100 * 10**8
    assert observe(200.0, start + 60) == 100 * 10**8  # 100 held for the 60 s so far
    # 100 for 60 s, 200 for 120 s: (6000 + 24000) / 180
    assert observe(300.0, start + 180) == round((100 * 60 + 200 * 120) / 180 * 10**8)
    # An hour later the first samples left the window.
    assert observe(300.0, start + 180 + 3600) == 300 * 10**8


def test_examples_simulate_locally(api: FakeApi) -> None:
    from enclave.agents import simulate

    sources = PriceSources(api, 1234.5)
    query = json.dumps({"sources": sources.urls}).encode()
    simulation = simulate(
        AGENTS / "price-oracle.js",
        query,
        allow_hosts=(api.host,),
        state_dir=_tmp("oracle"),
        allow_private_networks=True,
    )
    assert simulation.execution.output == encode(["uint256"], [123_450_000_000])
    assert simulation.limits.http_calls == 5, "the manifest's limit"


def _tmp(name: str) -> Path:
    return PROJECT_ROOT / ".state" / "tests" / "simulate" / name


def test_every_example_and_a_broken_agent_simulate(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    from enclave import cli

    sources = PriceSources(api, 1500.0)
    api.routes["/spot"] = lambda m, p, h, b: (200, {"price": 1500.0})
    openai_compatible(api, "sk-sim")
    secrets_file = _tmp("secrets.json")
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.write_text(json.dumps({"OPENAI_API_KEY": "sk-sim", "OPENAI_BASE_URL": f"{api.url}/v1"}))
    host = ["--allow-host", api.host, "--allow-private-networks"]
    oracle_query = json.dumps({"sources": sources.urls})
    runs = {
        "price-oracle.js": [*host, "--input", oracle_query],
        "llm.js": [*host, "--input", '{"prompt": "Hi?"}', "--secrets", str(secrets_file)],
        "price-alert.js": [
            *host,
            "--agent",
            f"7={AGENTS / 'price-oracle.js'}",
            "--input",
            json.dumps({"oracle": 7, "sources": sources.urls}),
        ],
        "twap.js": [*host, "--input", json.dumps({"source": f"{api.url}/spot"})],
    }
    for name, flags in runs.items():
        code = cli.main(["agent", "simulate", str(AGENTS / name), *flags])
        captured = capsys.readouterr()
        assert code == 0, f"{name}: {captured.out}{captured.err}"
        assert "status  OK" in captured.out
        assert "stats   " in captured.out
    broken = _tmp("broken.js")
    broken.write_text("export default async function main(input) {\n  return input.json().a.b;\n}\n")
    assert cli.main(["agent", "simulate", str(broken), "--input", "{}"]) == 1
    captured = capsys.readouterr()
    assert "status  AGENT_ERROR" in captured.out
    assert "TypeError: cannot read property 'b' of undefined" in captured.err
    assert "broken.js:2" in captured.err, "the stack names the file and line"
