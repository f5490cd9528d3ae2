"""`enclave demo`: the whole path once, from a contract's request to its callback, timed."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import httpx

from enclave.errors import StackError
from enclave.stack import Stack
from enclave.usage import request_ids, send_asks, wait_for
from protocol.deployment import PROJECT_ROOT
from protocol.hexes import to_hex

HELLO_AGENT = PROJECT_ROOT / "examples" / "agents" / "hello.js"
SEALED_AGENT = PROJECT_ROOT / "examples" / "agents" / "sealed-greeting.js"
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


def request_and_wait(stack: Stack, agent_id: int, payload: bytes, timeout: float = 60.0) -> DemoResult:
    """Has EchoConsumer request the agent, then waits for the callback on-chain."""
    started = time.monotonic()
    [tx_hash] = send_asks(stack, agent_id, [payload])
    [request_id] = request_ids(stack, [tx_hash])
    status, output = wait_for(stack, [request_id], timeout)[request_id]
    latency = time.monotonic() - started
    detail = httpx.get(f"{stack.url('bridge')}/v1/requests/{request_id}", timeout=5).json()
    return DemoResult(
        request_id=request_id,
        request_tx=to_hex(tx_hash),
        status=int(status),
        output=output,
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
    for previous, state in itertools.pairwise(STAGES):
        if previous in first and state in first:
            out.append((names[state], (first[state] - first[previous]) * 1000))
    return out


def secret_leaks(stack: Stack, secret: bytes, request_tx: str) -> list[str]:
    """Where a plaintext secret shows: the request transaction, the chain's logs, the bridge's
    database and every log file of the stack. The demo prints the (empty) answer."""
    if stack.deployment is None:
        raise StackError("the stack has no deployment yet: start it first")
    w3 = stack.web3()
    places = {"the request transaction": bytes(w3.eth.get_transaction(request_tx)["input"])}  # type: ignore[arg-type]
    for log in w3.eth.get_logs({"fromBlock": stack.deployment.start_block, "toBlock": "latest"}):
        places[f"log in tx 0x{bytes(log['transactionHash']).hex()}"] = bytes(log["data"])
    for path in stack.state_dir.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes()
    return [name for name, data in places.items() if secret in data]
