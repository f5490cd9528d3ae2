"""JSON-RPC over one kept-alive HTTP connection, without web3's middleware.

For calls on a request's path, where web3's formatting and validation cost more than the node's
answer: a worker's "is it open?" batch. (A web3 call took ~1 ms where this takes ~0.4.)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import httpx


class JsonRpcError(Exception):
    """The node answered a call with an error, or not in JSON-RPC."""


class JsonRpc:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self._http = httpx.Client(timeout=timeout_s)
        self._ids = iter(range(1, 2**62))
        self._lock = threading.Lock()

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

    def _post(self, payload: Any) -> Any:
        try:
            reply = self._http.post(self.url, json=payload)
            reply.raise_for_status()
            return reply.json()
        except ValueError as err:  # not JSON
            raise JsonRpcError(f"the node answered with no JSON: {err}") from err

    def close(self) -> None:
        self._http.close()
