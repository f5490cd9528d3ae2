"""The new-heads subscription: a wake-up only, so a node without WebSocket leaves polling alone."""

from __future__ import annotations

import time

import httpx
import pytest

from bridge.heads import Header, HeadSubscription
from enclave.anvil import Anvil, free_port
from protocol.subscription import websocket_url

pytestmark = pytest.mark.chain


def test_the_websocket_endpoint_is_the_rpc_endpoint_with_its_scheme() -> None:
    assert websocket_url("http://127.0.0.1:8545") == "ws://127.0.0.1:8545"
    assert websocket_url("https://node.example/v1/key") == "wss://node.example/v1/key"


def test_new_heads_wake_the_caller() -> None:
    seen: list[Header] = []
    with Anvil() as anvil:
        heads = HeadSubscription(websocket_url(anvil.rpc_url), seen.append, timeout_s=5)
        heads.start()
        try:
            deadline = time.monotonic() + 10
            while not heads.connected:
                assert time.monotonic() < deadline, f"never subscribed: {heads.error}"
                time.sleep(0.05)
            httpx.post(anvil.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []}, timeout=5)
            while not seen:
                assert time.monotonic() < deadline, "no head arrived"
                time.sleep(0.05)
        finally:
            heads.stop()
    assert seen[0].number >= 1
    assert seen[0].hash.startswith("0x")
    assert len(seen[0].hash) == 66


def test_a_node_without_websocket_is_reported_not_fatal() -> None:
    heads = HeadSubscription(f"ws://127.0.0.1:{free_port()}", lambda _: None, timeout_s=1)
    heads.start()
    try:
        deadline = time.monotonic() + 5
        while heads.error is None:
            assert time.monotonic() < deadline, "the failure was never reported"
            time.sleep(0.05)
        assert not heads.connected
    finally:
        heads.stop()
