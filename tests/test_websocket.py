"""The subscription's WebSocket client against a real WebSocket server (websockets' own)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.server import ServerConnection, serve

from protocol import subscription
from protocol.subscription import Subscription, WebSocket
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
        with pytest.raises(ConnectionError, match="clos"):
            ws.next_message(timeout_s=5)


def test_what_is_no_websocket_server_is_refused_at_once() -> None:
    with fake_api() as api:  # plain HTTP: answers 404 to the upgrade
        started = time.monotonic()
        with pytest.raises(WebSocketException):
            WebSocket.open(api.url.replace("http://", "ws://"), timeout_s=5)
        assert time.monotonic() - started < 2
    with pytest.raises(OSError):  # noqa: PT011 - nothing listens: connection refused
        WebSocket.open("ws://127.0.0.1:1", timeout_s=2)


def _frame(opcode: int, payload: bytes, length: int | None = None) -> bytes:
    """A server's frame (unmasked, final); `length` may claim more than the payload."""
    size = len(payload) if length is None else length
    head = bytes([0x80 | opcode, 127]) + struct.pack(">Q", size) if size >= 126 else bytes([0x80 | opcode, size])
    return head + payload


@contextmanager
def _node_that_never_hangs_up(then_send: bytes) -> Iterator[str]:
    """A WebSocket server that answers the handshake, sends `then_send` and holds the
    connection open, whatever the client says."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        connection, _ = listener.accept()
        held.append(connection)
        request = b""
        while b"\r\n\r\n" not in request:
            request += connection.recv(4096)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())  # noqa: S324 - the protocol's
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + then_send
        )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        thread.join(timeout=5)
        for sock in [*held, listener]:
            sock.close()


@pytest.mark.parametrize(
    ("what", "then_send"),
    [
        ("a close frame", _frame(0x1, b"before the end") + _frame(0x8, struct.pack(">H", 1001) + b"going away")),
        ("an oversized message", _frame(0x1, b"before the end") + _frame(0x1, b"x" * 10, length=2 * 1024 * 1024)),
    ],
)
def test_a_node_that_ends_the_protocol_but_not_the_connection_is_left_at_once(what: str, then_send: bytes) -> None:
    """Nothing more can come after a close, sent or received: the client says so rather than
    waiting for the node to hang up, and hands over what came before it first."""
    with _node_that_never_hangs_up(then_send) as url, WebSocket.open(url, timeout_s=5) as ws:
        started = time.monotonic()
        assert ws.next_message(timeout_s=5) == "before the end", what
        with pytest.raises(ConnectionError, match="closing"):
            ws.messages(timeout_s=5)
        assert time.monotonic() - started < 2


SUBSCRIBED = _frame(0x1, b'{"jsonrpc": "2.0", "id": 1, "result": "0x1"}')


def _follow(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Subscription, list[float]]:
    """A subscription at `url` with a keep-alive of a fraction of a second; the times it went down."""
    monkeypatch.setattr(subscription, "KEEPALIVE_S", 0.3)
    monkeypatch.setattr(subscription, "SILENT_AFTER_S", 0.8)
    downs: list[float] = []
    followed = Subscription(
        url, ["newHeads"], lambda _: None, timeout_s=5, on_down=lambda: downs.append(time.monotonic())
    )
    return followed.start(), downs


def test_a_node_that_goes_silent_without_closing_is_left_for_a_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    """A half-open connection (a stalled proxy, a frozen node) answers no ping: the subscription
    says it is down, so that what relied on its pushes asks the node instead."""
    with _node_that_never_hangs_up(SUBSCRIBED) as url:
        followed, downs = _follow(url, monkeypatch)
        try:
            deadline = time.monotonic() + 5
            while not followed.connected:
                assert time.monotonic() < deadline, f"never subscribed: {followed.error}"
                time.sleep(0.02)
            connected_at = time.monotonic()
            while not downs:
                assert time.monotonic() < deadline, "a silent node kept the subscription 'connected'"
                time.sleep(0.02)
            assert downs[0] - connected_at < 0.8 + 1.0 + 0.5
            assert not followed.connected
            assert "said nothing" in (followed.error or "")
        finally:
            followed.stop()


def test_a_node_that_answers_pings_keeps_a_quiet_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    def node(connection: ServerConnection) -> None:  # websockets answers pings by itself
        connection.recv(timeout=5)
        connection.send('{"jsonrpc": "2.0", "id": 1, "result": "0x1"}')
        with contextlib.suppress(ConnectionClosed):
            connection.recv(timeout=10)  # quiet, until the client leaves

    with _server(node) as url:
        followed, downs = _follow(url, monkeypatch)
        try:
            time.sleep(2.5)  # three times the silence allowed
            assert followed.connected
            assert downs == []
            assert followed.error is None
        finally:
            followed.stop()
