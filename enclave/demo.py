"""`enclave demo`: the whole path once, from a contract's request to its callback, timed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from coprocessor.chain import PROJECT_ROOT, Deployment, send
from enclave.errors import StackError
from enclave.stack import DEPLOYER_KEY, Stack

HELLO_AGENT = PROJECT_ROOT / "examples" / "agents" / "hello.js"
STAGES = ("pending", "dispatched", "executed", "submitted", "fulfilled")


@dataclass
class DemoResult:
    request_id: int
    request_tx: str
    status: int
    output: bytes
    transitions: list[dict[str, Any]]
    fulfil_tx: str | None
    latency_s: float


def register_agent(w3: Web3, deployment: Deployment, code_path: Path, price: int = 0) -> int:
    router = deployment.contract(w3, "AgentRouter")
    receipt = send(
        w3, Account.from_key(DEPLOYER_KEY), router.functions.registerAgent(code_path.read_bytes(), price, False)
    )
    return int(router.events.AgentRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]["agentId"])


def request_and_wait(stack: Stack, agent_id: int, payload: bytes, timeout: float = 60.0) -> DemoResult:
    """Has EchoConsumer request the agent, then waits for the callback on-chain."""
    w3 = stack.web3()
    assert stack.deployment is not None
    router = stack.deployment.contract(w3, "AgentRouter")
    echo = stack.deployment.contract(w3, "EchoConsumer")
    before = echo.functions.resultCount().call()
    started = time.monotonic()
    receipt = send(w3, Account.from_key(DEPLOYER_KEY), echo.functions.ask(agent_id, payload, 300_000))
    request_id = int(router.events.AgentRequested().process_receipt(receipt, errors=DISCARD)[0]["args"]["requestId"])
    while echo.functions.resultCount().call() == before:
        if time.monotonic() - started > timeout:
            raise StackError(f"no callback within {timeout:.0f} s; see the logs in {stack.state_dir}")
        time.sleep(0.05)
    latency = time.monotonic() - started
    detail = httpx.get(f"{stack.url('bridge')}/v1/requests/{request_id}", timeout=5).json()
    return DemoResult(
        request_id=request_id,
        request_tx="0x" + bytes(receipt["transactionHash"]).hex(),
        status=int(echo.functions.lastStatus().call()),
        output=bytes(echo.functions.lastOutput().call()),
        transitions=detail["transitions"],
        fulfil_tx=detail.get("fulfil_tx"),
        latency_s=latency,
    )


def stage_times(transitions: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Milliseconds between consecutive states of a request's first pass through the pipeline."""
    first: dict[str, float] = {}
    for t in transitions:
        first.setdefault(t["state"], float(t["at"]))
    names = {"dispatched": "dispatch", "executed": "execute + sign", "submitted": "batch", "fulfilled": "submit + mine"}
    out = []
    for previous, state in zip(STAGES, STAGES[1:], strict=False):
        if previous in first and state in first:
            out.append((names[state], (first[state] - first[previous]) * 1000))
    return out
