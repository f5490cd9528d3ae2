"""The subscription's WebSocket client against a real WebSocket server (websockets' own)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from websockets.exceptions import WebSocketException
from websockets.sync.server import ServerConnection, serve

from protocol.subscription import WebSocket
from tests.http_fixtures import fake_api


@contextmanager
def _server(handler: Callable[[ServerConnection], None]) -> Iterator[str]:
    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        finally:
            server.shutdown()
            thread.join(timeout=5)


def test_messages_come_whole_and_in_order_however_they_were_sent() -> None:
    pongs: list[float] = []

    def handler(connection: ServerConnection) -> None:
        assert connection.recv(timeout=5) == "hello"
        pongs.append(connection.ping().wait(timeout=5))  # answered by the client while it reads
        for i in range(50):  # many in one read
            connection.send(f"quick-{i}")
        connection.send(["frag", "mented", " message"])  # one message in three frames
        connection.send(b"\xc3\xa9 as bytes")
        connection.send("x" * 300_000)  # more than one read's worth
        connection.recv(timeout=5)  # hold the connection until the client closes it

    with _server(handler) as url, WebSocket.open(url, timeout_s=5) as ws:
        ws.send_text("hello")
        received: list[str] = []
        deadline = time.monotonic() + 10
        while len(received) < 53 and time.monotonic() < deadline:
            received += ws.messages(timeout_s=1.0)
        assert received[:50] == [f"quick-{i}" for i in range(50)]
        assert received[50:] == ["fragmented message", "é as bytes", "x" * 300_000]
        assert ws.messages(timeout_s=0.1) == [], "nothing more: an empty list, not a wait"
    assert len(pongs) == 1


def test_a_closed_connection_raises_and_no_message_times_out() -> None:
    def handler(connection: ServerConnection) -> None:
        connection.send("last words")
        time.sleep(0.5)
        connection.close()

    with _server(handler) as url, WebSocket.open(url, timeout_s=5) as ws:
        assert ws.next_message(timeout_s=5) == "last words"
        with pytest.raises(TimeoutError):
            ws.next_message(timeout_s=0.1)
        with pytest.raises(ConnectionError, match="closed"):
            ws.next_message(timeout_s=5)


def test_what_is_no_websocket_server_is_refused_at_once() -> None:
    with fake_api() as api:  # plain HTTP: answers 404 to the upgrade
        started = time.monotonic()
        with pytest.raises(WebSocketException):
            WebSocket.open(api.url.replace("http://", "ws://"), timeout_s=5)
        assert time.monotonic() - started < 2
    with pytest.raises(OSError):  # noqa: PT011 - nothing listens: connection refused
        WebSocket.open("ws://127.0.0.1:1", timeout_s=2)
