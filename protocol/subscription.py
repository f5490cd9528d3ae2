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
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState, WebSocketException
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

log = logging.getLogger(__name__)

RECONNECT_MAX_S = 5.0
# A quiet chain pushes nothing: after this long without a word from the node it is pinged, and a
# node that then says nothing (not even its pong) by SILENT_AFTER_S is left for a reconnect. A
# half-open connection (a stalled proxy, a frozen node) would otherwise look connected forever,
# while every push it should bring is silently missed.
KEEPALIVE_S = 2.0
SILENT_AFTER_S = 5.0
# A pushed block header or log is a few KiB; a message past this closes the connection.
MAX_MESSAGE_BYTES = 1024 * 1024
READ_BYTES = 256 * 1024


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
            except (OSError, TimeoutError, WebSocketException, ValueError, KeyError, TypeError, RecursionError) as err:
                self.error = f"{err.__class__.__name__}: {err}"
                if self.connected or delay == 0.5:
                    log.warning("%s subscription at %s down: %s", self.params[0], self.url, err)
            if self.connected:
                self.connected = False
                self.on_down()
            self._stop.wait(delay)
            delay = min(RECONNECT_MAX_S, delay * 2)

    def _follow(self) -> None:
        with WebSocket.open(self.url, self.timeout_s) as ws:
            ws.send_text(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": self.params}))
            reply = json.loads(ws.next_message(self.timeout_s))
            if "result" not in reply:
                raise ValueError(f"eth_subscribe refused: {reply.get('error')}")
            self.connected, self.error = True, None
            log.info("following %s at %s", self.params[0], self.url)
            acknowledge_at_once(ws.socket)
            while not self._stop.is_set():
                # None from a quiet chain: look at the stop flag, and at whether the node is there.
                messages = ws.messages(timeout_s=min(1.0, KEEPALIVE_S))
                if messages:
                    acknowledge_at_once(ws.socket)
                for message in messages:
                    result = json.loads(message)["params"]["result"]
                    self.received += 1
                    self.on_result(result)
                self._keep_alive(ws)

    @staticmethod
    def _keep_alive(ws: WebSocket) -> None:
        quiet_s = time.monotonic() - ws.heard_at
        if quiet_s >= SILENT_AFTER_S:
            raise TimeoutError(f"the node said nothing for {quiet_s:.1f} s, not even to a ping")
        if quiet_s >= KEEPALIVE_S and not ws.pinged_since_heard:
            ws.ping()


class WebSocket:
    """A WebSocket client on the thread that reads it: websockets' protocol (its sans-I/O core)
    over a blocking socket. Its threaded client parsed each push on a thread of its own and
    handed it over to the reader's: under load, two thread switches per log were a fifth of a
    worker's interpreter time. Here one read takes every message that arrived with it. Pings
    are answered and close frames returned by the protocol as they are read."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.socket = sock
        self._protocol = protocol
        self._messages: list[str] = []
        self._fragments: list[bytes] = []
        self._ended: ConnectionError | None = None
        # When the node last sent anything (a message, a pong, a ping), and whether it has been
        # pinged since.
        self.heard_at = time.monotonic()
        self.pinged_since_heard = False

    @classmethod
    def open(cls, url: str, timeout_s: float) -> WebSocket:
        """Connected and through the opening handshake within `timeout_s`, or raises."""
        uri = parse_uri(url)
        deadline = time.monotonic() + timeout_s
        sock = socket.create_connection((uri.host, uri.port), timeout=timeout_s)
        try:
            if uri.secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=uri.host)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            protocol = ClientProtocol(uri, max_size=MAX_MESSAGE_BYTES)
            ws = cls(sock, protocol)
            protocol.send_request(protocol.connect())
            ws._flush()
            while protocol.state is State.CONNECTING and protocol.handshake_exc is None:
                ws._read(deadline)
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
        except BaseException:
            sock.close()
            raise
        return ws

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send_text(self, text: str) -> None:
        self._protocol.send_text(text.encode())
        self._flush()

    def ping(self) -> None:
        """A ping; its pong, as anything else the node sends, moves `heard_at`."""
        self._protocol.send_ping(b"")
        self._flush()
        self.pinged_since_heard = True

    def next_message(self, timeout_s: float) -> str:
        """The next message; TimeoutError if none comes within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not self._messages:
            self._read(deadline)
        return self._messages.pop(0)

    def messages(self, timeout_s: float) -> list[str]:
        """Every message at hand, waiting up to `timeout_s` for one; [] if none came."""
        if not self._messages:
            with contextlib.suppress(TimeoutError):
                self._read(time.monotonic() + timeout_s)
        messages, self._messages = self._messages, []
        return messages

    def close(self) -> None:
        with contextlib.suppress(OSError, InvalidState):
            if self._protocol.state is State.OPEN:
                self._protocol.send_close()
                self._flush()
        self.socket.close()

    def _read(self, deadline: float) -> None:
        """One read from the socket, what it brought parsed; raises on the connection's end."""
        if self._ended is not None:
            raise self._ended
        left = deadline - time.monotonic()
        if left <= 0:  # a timeout of 0 would make the socket non-blocking, not time out
            raise TimeoutError("no message in time")
        self.socket.settimeout(left)
        data = self.socket.recv(READ_BYTES)
        if data:
            self.heard_at, self.pinged_since_heard = time.monotonic(), False
            self._protocol.receive_data(data)
        else:
            self._protocol.receive_eof()
        for event in self._protocol.events_received():
            if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                self._fragments.append(bytes(event.data))
                if event.fin:
                    self._messages.append(b"".join(self._fragments).decode())
                    self._fragments = []
        self._flush()  # pongs, and the answer to a close
        if self._protocol.state is State.CLOSED:
            self._ended = ConnectionError(f"the WebSocket closed: {self._protocol.close_exc}")
        elif self._protocol.state is State.CLOSING:
            # The node closed it (our answer is sent), or sent what broke the protocol (our
            # close is sent): nothing more will come, whether or not it ends the connection.
            received, sent = self._protocol.close_rcvd, self._protocol.close_sent
            self._ended = ConnectionError(f"the WebSocket is closing: received {received}, sent {sent}")
        elif not data:
            self._ended = ConnectionError("the node closed the connection")
        if self._ended is not None and not self._messages:
            raise self._ended  # else at the next read, once the messages before the end are taken

    def _flush(self) -> None:
        for chunk in self._protocol.data_to_send():
            if chunk:
                self.socket.sendall(chunk)


def acknowledge_at_once(sock: socket.socket) -> None:
    """Acknowledges what the node pushes at once rather than within 40 ms. A node whose socket
    waits for the acknowledgement of one push before it sends the next (Nagle's algorithm, as
    anvil's does) otherwise held a block pushed a few milliseconds after another for 40 ms.
    Linux forgets the setting as it goes, so it is set again after every push."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
