"""The lean JSON-RPC client a worker asks the node with: a node's answers in any order, its
errors, and answers that are not JSON-RPC (a local server stands in for the node)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from enclave.anvil import Anvil
from protocol.jsonrpc import JsonRpc, JsonRpcError
from tests.http_fixtures import fake_api


def test_a_batch_is_answered_in_the_order_asked_whatever_order_the_node_answers_in() -> None:
    def node(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        calls = json.loads(body)
        replies = [{"jsonrpc": "2.0", "id": c["id"], "result": c["method"]} for c in calls]
        return 200, list(reversed(replies))

    with fake_api() as api:
        api.routes["/"] = node
        rpc = JsonRpc(api.url, timeout_s=5)
        replies = rpc.batch([("eth_blockNumber", []), ("eth_call", [{}, "latest"]), ("eth_chainId", [])])
        assert [r["result"] for r in replies] == ["eth_blockNumber", "eth_call", "eth_chainId"]
        rpc.close()


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "nonce too low"}}, "nonce too low"),
        ([{"jsonrpc": "2.0", "id": 1, "result": "0x1"}], "the node answered"),
        (b"<html>bad gateway</html>", "no JSON"),
    ],
)
def test_a_call_the_node_refuses_or_garbles_is_an_error_naming_it(answer: Any, says: str) -> None:
    with fake_api() as api:
        api.routes["/"] = lambda *_: (200, answer)
        rpc = JsonRpc(api.url, timeout_s=5)
        with pytest.raises(JsonRpcError, match=says):
            rpc.call("eth_sendRawTransaction", ["0x00"])
        rpc.close()


def test_a_batch_missing_replies_or_answered_with_one_object_is_an_error() -> None:
    with fake_api() as api:
        rpc = JsonRpc(api.url, timeout_s=5)
        api.routes["/"] = lambda *_: (200, [{"jsonrpc": "2.0", "id": 999, "result": "0x1"}])
        with pytest.raises(JsonRpcError, match="lacks 2 of its 2 replies"):
            rpc.batch([("eth_blockNumber", []), ("eth_chainId", [])])
        api.routes["/"] = lambda *_: (200, {"jsonrpc": "2.0", "id": None, "error": {"message": "batch too large"}})
        with pytest.raises(JsonRpcError, match="did not answer the batch"):
            rpc.batch([("eth_blockNumber", [])])
        rpc.close()


def test_a_node_answering_with_an_http_error_raises_it() -> None:
    with fake_api() as api:
        api.routes["/"] = lambda *_: (503, {"error": "down"})
        rpc = JsonRpc(api.url, timeout_s=5)
        with pytest.raises(JsonRpcError, match="HTTP 503"):
            rpc.call("eth_blockNumber", [])
        rpc.close()


@pytest.mark.chain
def test_calls_share_a_kept_connection_and_one_the_node_closed_is_asked_again() -> None:
    with Anvil() as node:
        rpc = JsonRpc(node.rpc_url, timeout_s=5)
        assert [rpc.call("eth_chainId", []) for _ in range(3)] == ["0x7a69"] * 3
        assert len(rpc._idle) == 1, "one kept connection carried the three calls"
        kept = rpc._idle[0]
        assert kept.sock is not None
        kept.sock.shutdown(socket.SHUT_RDWR)  # as when the node closes an idle connection
        assert rpc.call("eth_chainId", []) == "0x7a69"
        assert rpc._idle != [kept]
        rpc.close()


def test_a_node_that_does_not_answer_in_time_is_a_timeout_and_its_connection_is_dropped() -> None:
    def slow(*_: Any) -> tuple[int, Any]:
        time.sleep(1.0)
        return 200, {"jsonrpc": "2.0", "id": 1, "result": "0x1"}

    with fake_api() as api:
        api.routes["/"] = slow
        rpc = JsonRpc(api.url, timeout_s=0.2)
        with pytest.raises(TimeoutError):
            rpc.call("eth_blockNumber", [])
        assert rpc._idle == [], "a connection with a late answer in it is never reused"
        rpc.close()
