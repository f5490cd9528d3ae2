"""The load generator and the stopwatch of the delivery benchmark.

The load generator must never be what limits the figures, so it is cheap: requests go out as
`EchoConsumer.askMany` transactions (up to fifty requests each), signed ahead and sent raw; the
stopwatch follows the router's logs as the node pushes them and reads the topics itself
instead of decoding events with web3.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from eth_account import Account
from hexbytes import HexBytes
from websockets.sync.client import connect

from enclave.stack import DEPLOYER_KEY, Stack
from protocol.subscription import acknowledge_at_once, websocket_url


class Rpc:
    """JSON-RPC over one kept-alive connection, without web3's middleware."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(timeout=30)
        self.url = url

    def __call__(self, method: str, *params: Any) -> Any:
        reply = self._http.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        body = reply.json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]


class Subscription:
    """One `eth_subscribe` on the node's WebSocket: what it pushes, one item at a time."""

    def __init__(self, rpc_url: str, params: list[Any]) -> None:
        self._ws = connect(websocket_url(rpc_url), open_timeout=10, close_timeout=1)
        self._ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": params}))
        reply = json.loads(self._ws.recv(timeout=10))
        if "result" not in reply:
            raise RuntimeError(f"eth_subscribe {params[0]}: {reply.get('error')}")

    def next(self, timeout_s: float) -> dict[str, Any] | None:
        try:
            message = self._ws.recv(timeout=timeout_s)
        except TimeoutError:
            return None
        acknowledge_at_once(self._ws.socket)  # as the bridge does: no push held 40 ms by anvil
        result: dict[str, Any] = json.loads(message)["params"]["result"]
        return result

    def close(self) -> None:
        self._ws.close()


@dataclass
class Seen:
    """When the stopwatch first saw each request and each callback, and where."""

    requested: dict[int, float] = field(default_factory=dict)
    requested_block: dict[int, int] = field(default_factory=dict)
    fulfilled: dict[int, float] = field(default_factory=dict)
    fulfilled_block: dict[int, int] = field(default_factory=dict)
    fulfil_tx: dict[int, str] = field(default_factory=dict)


class Stopwatch:
    """Follows the router's AgentRequested and RequestFulfilled logs as the node pushes them
    (`eth_subscribe("logs")` over its WebSocket), stamping each with the wall-clock time it
    arrived, to set beside the bridge's own timestamps. Pushed, not polled: a poll's period would
    be noise in every figure."""

    def __init__(self, stack: Stack) -> None:
        if stack.deployment is None or stack.rpc_url is None:
            raise SystemExit("start the stack first")
        router = stack.deployment.contract(stack.web3(), "AgentRouter")
        self.requested = HexBytes(router.events.AgentRequested().topic).to_0x_hex()
        self.fulfilled = HexBytes(router.events.RequestFulfilled().topic).to_0x_hex()
        self.seen = Seen()
        self._subscription = Subscription(
            stack.rpc_url, ["logs", {"address": router.address, "topics": [[self.requested, self.fulfilled]]}]
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stopwatch", daemon=True)

    def __enter__(self) -> Stopwatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._subscription.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            entry = self._subscription.next(timeout_s=0.2)
            if entry is None:
                continue
            now = time.time()
            request_id, block = int(entry["topics"][1], 16), int(entry["blockNumber"], 16)
            if entry["topics"][0] == self.requested:
                self.seen.requested.setdefault(request_id, now)
                self.seen.requested_block.setdefault(request_id, block)
            else:
                self.seen.fulfilled.setdefault(request_id, now)
                self.seen.fulfilled_block.setdefault(request_id, block)
                self.seen.fulfil_tx.setdefault(request_id, entry["transactionHash"])

    def wait_fulfilled(self, count: int, timeout_s: float = 300) -> None:
        deadline = time.time() + timeout_s
        while len(self.seen.fulfilled) < count:
            if time.time() > deadline:
                raise SystemExit(f"only {len(self.seen.fulfilled)} of {count} callbacks within {timeout_s} s")
            time.sleep(0.01)


class Load:
    """Signs and sends `askMany` transactions from the deployer's account."""

    def __init__(self, stack: Stack, agent_id: int, callback_gas: int = 100_000) -> None:
        if stack.deployment is None or stack.rpc_url is None:
            raise SystemExit("start the stack first")
        self.rpc = Rpc(stack.rpc_url)
        w3 = stack.web3()
        self.echo = stack.deployment.contract(w3, "EchoConsumer")
        self.account = Account.from_key(DEPLOYER_KEY)
        self.agent_id, self.callback_gas = agent_id, callback_gas
        self.chain_id = w3.eth.chain_id
        self.nonce: int = w3.eth.get_transaction_count(self.account.address, "pending")
        self.fees = {"maxFeePerGas": 10 * w3.eth.gas_price, "maxPriorityFeePerGas": w3.eth.max_priority_fee}
        # What each request pays: the router's least at the transactions' fee cap.
        router = stack.deployment.contract(w3, "AgentRouter")
        self.request_value = int(
            router.functions.estimateCost(agent_id, callback_gas, self.fees["maxFeePerGas"]).call()
        )
        self.sent = 0

    def signed(self, count: int) -> str:
        """An askMany of `count` unique inputs, signed at the next nonce."""
        return self.signed_inputs([os.urandom(8) + b"%d" % (self.sent + i) for i in range(count)])

    def signed_inputs(self, inputs: list[bytes]) -> str:
        """An askMany of these inputs, signed at the next nonce."""
        count = len(inputs)
        self.sent += count
        data = self.echo.encode_abi("askMany", [self.agent_id, inputs, self.callback_gas])
        tx = {
            "to": self.echo.address,
            "data": data,
            "value": self.request_value * count,
            "gas": 80_000 + 75_000 * count,
            "nonce": self.nonce,
            "chainId": self.chain_id,
            "type": 2,
            **self.fees,
        }
        self.nonce += 1
        return "0x" + bytes(self.account.sign_transaction(tx).raw_transaction).hex()

    def send(self, raw: str) -> None:
        self.rpc("eth_sendRawTransaction", raw)


class CpuClock:
    """CPU seconds each process of the stack (and its children) used since `start`."""

    def __init__(self, stack: Stack) -> None:
        self.pids = {name: service.process.pid for name, service in stack.services.items()}
        if stack.anvil is not None:
            self.pids["anvil"] = stack.anvil.pid
        if stack.postgres is not None:
            self.pids["postgres"] = stack.postgres.pid  # its backends are its children
        self.pids["benchmark"] = os.getpid()
        self._start = self._now()

    def _now(self) -> dict[str, float]:
        tracked = set(self.pids.values())
        return {name: _cpu_seconds(pid, tracked) for name, pid in self.pids.items()}

    def used(self) -> dict[str, float]:
        now = self._now()
        return {name: now[name] - self._start[name] for name in now}


def _cpu_seconds(pid: int, tracked: set[int]) -> float:
    """User and system time of a process and of its live children that are not tracked on
    their own (a worker's sandbox processes, not the services this process started)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or (int(fields[1]) == pid and int(entry) not in tracked):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total
