"""New blocks by subscription: `eth_subscribe("newHeads")` over the node's WebSocket.

A new head wakes the loops that read the chain (the watcher finds its logs, the submitter its
receipts) at once instead of at their next poll. It only wakes them: what they read, they still
read by block range and receipt, so a missed or duplicated notification changes nothing, and
when the subscription is down (a node without WebSocket, a dropped connection) the loops poll
as before while it reconnects with growing delays.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

log = logging.getLogger(__name__)

RECONNECT_MAX_S = 30.0
# How long a pushed head stands for the chain's: a subscription may stall without closing, and
# then the loops ask the node themselves.
TRUST_PUSHED_HEAD_S = 2.0

T = TypeVar("T")


class Recent(Generic[T]):
    """The newest of what the subscription pushed (a head, or its number), while it is recent
    enough to stand for the chain's; None after that, or before anything came."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def set(self, value: T) -> None:
        with self._lock:
            self._value, self._at = value, time.monotonic()

    def get(self) -> T | None:
        with self._lock:
            value, at = self._value, self._at
        return value if time.monotonic() - at < TRUST_PUSHED_HEAD_S else None


@dataclass(frozen=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    timestamp: int

    @classmethod
    def from_rpc(cls, raw: dict[str, Any]) -> Header:
        return cls(
            number=int(raw["number"], 16),
            hash=str(raw["hash"]).lower(),
            parent_hash=str(raw["parentHash"]).lower(),
            timestamp=int(raw["timestamp"], 16),
        )


def websocket_url(rpc_url: str) -> str:
    """The WebSocket endpoint of a node that serves both on one port (anvil, geth, reth)."""
    parts = urlsplit(rpc_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


class HeadSubscription:
    def __init__(self, url: str, on_head: Callable[[Header], None], timeout_s: float = 10.0) -> None:
        self.url = url
        self.on_head = on_head
        self.timeout_s = timeout_s
        self.connected = False
        self.heads = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heads", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 1)

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._follow()
                delay = 0.5
            except (OSError, TimeoutError, WebSocketException, ValueError, KeyError) as err:
                self.error = f"{err.__class__.__name__}: {err}"
                if self.connected or delay == 0.5:
                    log.warning("new-heads subscription at %s down, polling meanwhile: %s", self.url, err)
            self.connected = False
            self._stop.wait(delay)
            delay = min(RECONNECT_MAX_S, delay * 2)

    def _follow(self) -> None:
        with connect(self.url, open_timeout=self.timeout_s, close_timeout=1) as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
            reply = json.loads(ws.recv(timeout=self.timeout_s))
            if "result" not in reply:
                raise ValueError(f"eth_subscribe refused: {reply.get('error')}")
            self.connected, self.error = True, None
            log.info("following new heads at %s", self.url)
            while not self._stop.is_set():
                try:
                    message = ws.recv(timeout=1.0)
                except TimeoutError:
                    continue  # quiet chain; look at the stop flag
                head = Header.from_rpc(json.loads(message)["params"]["result"])
                self.heads += 1
                self.on_head(head)
