"""A node's pushes by `eth_subscribe` over its WebSocket, followed on a thread of their own.

What a subscription brings is a head start, never the only way to learn it: its callers read
the chain by JSON-RPC as before when it is down (a node without WebSocket, a dropped
connection), while it reconnects with growing delays. `on_down` tells them it went down, for
whatever they kept from its pushes: a push missed while it was down is never sent again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

log = logging.getLogger(__name__)

RECONNECT_MAX_S = 30.0


def websocket_url(rpc_url: str) -> str:
    """The WebSocket endpoint of a node that serves both on one port (anvil, geth, reth)."""
    parts = urlsplit(rpc_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


class Subscription:
    """`eth_subscribe(*params)` at `url`, each pushed result handed to `on_result`."""

    def __init__(
        self,
        url: str,
        params: list[Any],
        on_result: Callable[[Any], None],
        timeout_s: float = 10.0,
        on_down: Callable[[], None] = lambda: None,
    ) -> None:
        self.url = url
        self.params = params
        self.on_result = on_result
        self.on_down = on_down
        self.timeout_s = timeout_s
        self.connected = False
        self.received = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"subscription-{params[0]}", daemon=True)

    def start(self) -> Subscription:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 1)

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._follow()
                delay = 0.5
            except (OSError, TimeoutError, WebSocketException, ValueError, KeyError, TypeError) as err:
                self.error = f"{err.__class__.__name__}: {err}"
                if self.connected or delay == 0.5:
                    log.warning("%s subscription at %s down: %s", self.params[0], self.url, err)
            if self.connected:
                self.connected = False
                self.on_down()
            self._stop.wait(delay)
            delay = min(RECONNECT_MAX_S, delay * 2)

    def _follow(self) -> None:
        with connect(self.url, open_timeout=self.timeout_s, close_timeout=1) as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": self.params}))
            reply = json.loads(ws.recv(timeout=self.timeout_s))
            if "result" not in reply:
                raise ValueError(f"eth_subscribe refused: {reply.get('error')}")
            self.connected, self.error = True, None
            log.info("following %s at %s", self.params[0], self.url)
            acknowledge_at_once(ws.socket)
            while not self._stop.is_set():
                try:
                    message = ws.recv(timeout=1.0)
                except TimeoutError:
                    continue  # a quiet chain; look at the stop flag
                acknowledge_at_once(ws.socket)
                result = json.loads(message)["params"]["result"]
                self.received += 1
                self.on_result(result)


def acknowledge_at_once(sock: socket.socket) -> None:
    """Acknowledges what the node pushes at once rather than within 40 ms. A node whose socket
    waits for the acknowledgement of one push before it sends the next (Nagle's algorithm, as
    anvil's does) otherwise held a block pushed a few milliseconds after another for 40 ms.
    Linux forgets the setting as it goes, so it is set again after every push."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
