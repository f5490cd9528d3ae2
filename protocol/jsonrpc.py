"""JSON-RPC over kept-alive HTTP connections, without web3's middleware or an HTTP library's.

For reads on a request's path, where web3's formatting and validation cost more than the node's
answer: a worker's "is it open?" batch, the bridge's logs of the next block. (A web3 call took
~1 ms, httpx ~0.4; `http.client` on a kept connection takes ~0.2.)
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from web3 import Web3


class JsonRpcError(Exception):
    """The node answered a call with an error, or not in JSON-RPC."""


class JsonRpc:
    """Calls one node; safe to share between threads (each call has a connection to itself).
    A connection's failure raises `OSError` (`TimeoutError` past `timeout_s`)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an HTTP URL of a node: {url!r}")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout_s = timeout_s
        self._idle: list[http.client.HTTPConnection] = []
        self._ids = iter(range(1, 2**62))
        self._lock = threading.Lock()

    @classmethod
    def of(cls, w3: Web3, timeout_s: float) -> JsonRpc:
        """A lean client of the node a web3 client talks to, for the calls on a request's path."""
        return cls(str(getattr(w3.provider, "endpoint_uri", "")), timeout_s=timeout_s)

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def call(self, method: str, params: Sequence[Any]) -> Any:
        """The call's result; raises `JsonRpcError` with the node's error (and httpx's errors
        when the node is not reached in time)."""
        body = self._post({"jsonrpc": "2.0", "id": self._next_id(), "method": method, "params": list(params)})
        if not isinstance(body, dict):
            raise JsonRpcError(f"{method}: the node answered {str(body)[:200]}")
        if "error" in body:
            raise JsonRpcError(f"{method}: {body['error']}")
        return body.get("result")

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
        """Each call's reply (a dict with its `result` or `error`), in the order of `calls`,
        from one HTTP request."""
        ids = [self._next_id() for _ in calls]
        body = self._post(
            [
                {"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}
                for id_, (method, params) in zip(ids, calls, strict=True)
            ]
        )
        if not isinstance(body, list):
            raise JsonRpcError(f"the node did not answer the batch: {str(body)[:200]}")
        by_id = {reply.get("id"): reply for reply in body if isinstance(reply, dict)}
        missing = [id_ for id_ in ids if id_ not in by_id]
        if missing:
            raise JsonRpcError(f"the node's answer to the batch lacks {len(missing)} of its {len(ids)} replies")
        return [by_id[id_] for id_ in ids]

    def batch_results(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Each call's result, in the order of `calls`, from one HTTP request; raises
        `JsonRpcError` if any call failed."""
        replies = self.batch(calls)
        failed = [
            (method, reply["error"]) for (method, _), reply in zip(calls, replies, strict=True) if "error" in reply
        ]
        if failed:
            raise JsonRpcError("; ".join(f"{method}: {error}" for method, error in failed))
        return [reply.get("result") for reply in replies]

    def _post(self, payload: Any) -> Any:
        body = json.dumps(payload).encode()
        with self._lock:
            kept = self._idle.pop() if self._idle else None
        if kept is not None:
            try:
                status, answer = self._exchange(kept, body)
            except (http.client.RemoteDisconnected, ConnectionError):
                # The node closed a kept connection meanwhile; a read is safe to ask again.
                status, answer = self._exchange(self._connect(), body)
        else:
            status, answer = self._exchange(self._connect(), body)
        if status != 200:
            raise JsonRpcError(f"the node answered HTTP {status}: {answer[:200].decode(errors='replace')}")
        try:
            return json.loads(answer)
        except ValueError as err:  # not JSON
            raise JsonRpcError(f"the node answered with no JSON: {err}") from err

    def _connect(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return kind(self._host, self._port, timeout=self.timeout_s)

    def _exchange(self, connection: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
        try:
            connection.request("POST", self._path, body, {"Content-Type": "application/json"})
            reply = connection.getresponse()
            answer = reply.read()
        except BaseException:
            connection.close()  # half a conversation: never reused
            raise
        if reply.will_close:
            connection.close()
        else:
            with self._lock:
                self._idle.append(connection)
        return reply.status, answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
