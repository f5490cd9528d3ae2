"""Using a stack as a user does: register agents, have EchoConsumer ask, read the callbacks.

The demo, the end-to-end tests and the benchmarks all drive the stack through these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import Nonce, TxParams, Wei

from enclave.errors import StackError
from enclave.stack import DEPLOYER_KEY
from protocol.deployment import PROJECT_ROOT, Deployment, send
from protocol.fees import GasPrice, current_gas_price, request_value
from protocol.status import Status


class Stack(Protocol):
    """What these helpers need of a stack: its chain and its deployment (a running `Stack`, or
    a `Connected` chain for the command line)."""

    deployment: Deployment | None

    def web3(self) -> Web3: ...


@dataclass
class Connected:
    w3: Web3
    deployment: Deployment | None

    def web3(self) -> Web3:
        return self.w3


AGENTS = PROJECT_ROOT / "examples" / "agents"


def register(stack: Stack, code: str | bytes | Path, price: int = 0) -> int:
    if stack.deployment is None:
        raise StackError("the stack has no deployment yet: start it first")
    w3 = stack.web3()
    source = code.read_bytes() if isinstance(code, Path) else code.encode() if isinstance(code, str) else code
    router = stack.deployment.contract(w3, "AgentRouter")
    receipt = send(w3, Account.from_key(DEPLOYER_KEY), router.functions.registerAgent(source, price, False))
    return int(router.events.AgentRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]["agentId"])


def send_request(
    w3: Web3, account: LocalAccount, call: Any, router: Contract, agent_id: int, callback_gas_limit: int, count: int = 1
) -> Any:
    """Sends a consumer's call that makes `count` requests of `agent_id`, paying for each the
    least the router takes at the transaction's fee cap; returns the receipt."""
    gas_price = current_gas_price(w3)
    value = count * request_value(router, agent_id, callback_gas_limit, gas_price)
    return send(w3, account, call, value=value, gas_price=gas_price)


def send_asks(
    stack: Stack,
    agent_id: int,
    payloads: list[bytes],
    gas: int = 300_000,
    fee: int | None = None,
    gas_price: GasPrice | None = None,
) -> list[bytes]:
    """Sends one EchoConsumer.ask per payload, without waiting; returns the transaction hashes.
    Each pays `fee`, by default the least the router takes at the transactions' fee cap
    (`gas_price`, by default the current one: a given `fee` should be reckoned at it)."""
    if stack.deployment is None:
        raise StackError("the stack has no deployment yet: start it first")
    w3 = stack.web3()
    account = Account.from_key(DEPLOYER_KEY)
    echo = stack.deployment.contract(w3, "EchoConsumer")
    gas_price = gas_price or current_gas_price(w3)
    if fee is None:
        fee = request_value(stack.deployment.contract(w3, "AgentRouter"), agent_id, gas, gas_price)
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    hashes = []
    for offset, payload in enumerate(payloads):
        params: TxParams = {
            "from": account.address,
            "nonce": Nonce(nonce + offset),
            "gas": 400_000,
            "value": Wei(fee),
            "maxFeePerGas": Wei(gas_price.max_fee),
            "maxPriorityFeePerGas": Wei(gas_price.priority_fee),
        }
        tx = echo.functions.ask(agent_id, payload, gas).build_transaction(params)
        signed = account.sign_transaction(tx)
        hashes.append(bytes(w3.eth.send_raw_transaction(signed.raw_transaction)))
    return hashes


def request_ids(stack: Stack, hashes: list[bytes]) -> list[int]:
    """The request ids that the ask transactions opened, in order."""
    if stack.deployment is None:
        raise StackError("the stack has no deployment yet: start it first")
    w3 = stack.web3()
    router = stack.deployment.contract(w3, "AgentRouter")
    ids = []
    for tx_hash in hashes:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)  # type: ignore[arg-type]
        if receipt["status"] != 1:
            raise StackError(f"request transaction {tx_hash.hex()} reverted")
        ids.append(int(router.events.AgentRequested().process_receipt(receipt, errors=DISCARD)[0]["args"]["requestId"]))
    return ids


def ask_many(stack: Stack, agent_id: int, payloads: list[bytes], gas: int = 300_000) -> list[int]:
    return request_ids(stack, send_asks(stack, agent_id, payloads, gas))


def results(stack: Stack) -> dict[int, list[tuple[Status, bytes]]]:
    """Every callback EchoConsumer received, by request id (a list, to see duplicates)."""
    if stack.deployment is None:
        raise StackError("the stack has no deployment yet: start it first")
    w3: Web3 = stack.web3()
    echo = stack.deployment.contract(w3, "EchoConsumer")
    seen: dict[int, list[tuple[Status, bytes]]] = {}
    for log in echo.events.ResultReceived().get_logs(from_block=stack.deployment.start_block):
        args = log["args"]
        seen.setdefault(int(args["requestId"]), []).append((Status(args["status"]), bytes(args["output"])))
    return seen


def wait_for(stack: Stack, request_ids: list[int], timeout: float = 90.0) -> dict[int, tuple[Status, bytes]]:
    """Waits until every request has its callback; returns each one's (status, output)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = results(stack)
        if all(i in seen for i in request_ids):
            return {i: seen[i][0] for i in request_ids}
        if time.monotonic() > deadline:
            missing = [hex(i)[:10] for i in request_ids if i not in seen]
            raise StackError(f"no callback for {len(missing)} request(s) within {timeout} s: {missing}")
        time.sleep(0.2)
