"""The bridge's side of a worker's execute stream (protocol/stream.py): kept-open connections,
each proven by the handshake before it carries a batch."""

from __future__ import annotations

import hmac
import json
import socket
import threading
import time

from protocol.stream import HELLO, NONCE_BYTES, PROOF, FrameError, new_nonce, proof, read_answer, send_call

# A handshake answer: a nonce and a MAC, or a refusal's few words.
HANDSHAKE_ANSWER_BYTES = 1024


class StreamUnavailable(OSError):
    """No proven connection to the worker's stream could be had: nothing listens there, it did
    not answer the handshake in time, it refused it, or it was not the worker."""


class NotTheWorker(StreamUnavailable):
    """What listens on the worker's stream port did not prove it holds the execute token for
    that port (a restarted worker's old port, taken by another process)."""


class StreamRefused(StreamUnavailable):
    """The worker's execute stream refused the bridge's handshake (its token, or no room)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the execute stream refused the bridge: {status} {detail}")
        self.status = status


class StreamConnections:
    """Kept-open connections to one worker's execute stream, each carrying one call at a time."""

    def __init__(self, host: str, port: int, token: str, connect_timeout_s: float) -> None:
        self.host, self.port = host, port
        self._token = token
        self.connect_timeout_s = connect_timeout_s
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()

    def call(self, call: int, payload: bytes, timeout_s: float) -> tuple[int, bytes]:
        """The answer's status and payload. A kept connection the worker has closed meanwhile
        (it idled out) is replaced once: a batch run twice gets the same answers."""
        with self._lock:
            kept = self._idle.pop() if self._idle else None
        if kept is not None:
            try:
                return self._call_on(kept, call, payload, timeout_s)
            except (FrameError, ConnectionError):
                pass  # closed by the worker while kept; a fresh connection says whether it is alive
        return self._call_on(self._connect(), call, payload, timeout_s)

    def _call_on(self, connection: socket.socket, call: int, payload: bytes, timeout_s: float) -> tuple[int, bytes]:
        try:
            connection.settimeout(timeout_s)
            send_call(connection, call, payload)
            answer = read_answer(connection)
        except BaseException:
            connection.close()  # a late answer must never be read as the next call's
            raise
        self._keep(connection)
        return answer

    def call_in_parts(self, call: int, payload: bytes, first_within_s: float, within_s: float) -> PartedCall:
        """Sends a call answered in parts (EXECUTE_EACH) and reads its first part, due within
        `first_within_s`; the rest are read from the `PartedCall`, all due within `within_s`. A
        kept connection found closed before the first part is replaced once, as in `call`."""
        deadline = time.monotonic() + within_s
        with self._lock:
            kept = self._idle.pop() if self._idle else None
        if kept is not None:
            parted = PartedCall(self, kept, deadline)
            try:
                parted.send(call, payload)
                parted.first = parted.next(first_within_s)
                return parted
            except (FrameError, ConnectionError):
                pass  # closed by the worker while kept
        parted = PartedCall(self, self._connect(), deadline)
        parted.send(call, payload)
        parted.first = parted.next(first_within_s)
        return parted

    def _keep(self, connection: socket.socket) -> None:
        with self._lock:
            self._idle.append(connection)

    def _connect(self) -> socket.socket:
        try:
            connection = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        except OSError as err:
            raise StreamUnavailable(f"{err.__class__.__name__}: {err}") from err
        try:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._handshake(connection)
        except BaseException as err:
            connection.close()
            if isinstance(err, OSError) and not isinstance(err, StreamUnavailable):
                # Reset, closed, or silent past the timeout in the middle of the handshake.
                raise StreamUnavailable(f"the handshake failed: {err.__class__.__name__}: {err}") from err
            raise
        return connection

    def _handshake(self, connection: socket.socket) -> None:
        """Each side proves it holds the execute token (protocol/stream.py); whatever listens
        here without it hears a nonce, and no batch."""
        bridge_nonce = new_nonce()
        send_call(connection, HELLO, bridge_nonce)
        worker_nonce, shown = self._answer(connection)
        if len(worker_nonce) != NONCE_BYTES or not hmac.compare_digest(
            shown, proof(self._token, b"worker", self.port, bridge_nonce, worker_nonce)
        ):
            raise NotTheWorker(f"{self.host}:{self.port} does not prove it holds the execute token")
        send_call(connection, PROOF, proof(self._token, b"bridge", self.port, bridge_nonce, worker_nonce))
        self._answer(connection)

    def _answer(self, connection: socket.socket) -> tuple[bytes, bytes]:
        """A handshake answer split after its nonce; a refusal raised."""
        status, payload = read_answer(connection, HANDSHAKE_ANSWER_BYTES, self.connect_timeout_s)
        if status != 200:
            try:
                detail = str(json.loads(payload).get("detail", ""))
            except (ValueError, AttributeError):
                detail = payload[:100].decode(errors="replace")
            raise StreamRefused(status, detail)
        return payload[:NONCE_BYTES], payload[NONCE_BYTES:]

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class PartedCall:
    """A call answered in parts, on a connection of its own until `finish` gives it back for the
    next call (after the last part) or `abandon` closes it (anything else: a late part must
    never be read as the next call's)."""

    def __init__(self, owner: StreamConnections, connection: socket.socket, deadline: float) -> None:
        self._owner = owner
        self._connection: socket.socket | None = connection
        self._deadline = deadline
        self.first: tuple[int, bytes] = (0, b"")

    def send(self, call: int, payload: bytes) -> None:
        try:
            if self._connection is None:
                raise FrameError("the call is over")
            send_call(self._connection, call, payload)
        except BaseException:
            self.abandon()
            raise

    def next(self, within_s: float) -> tuple[int, bytes]:
        """The next part's status and payload, due within `within_s` (and the call's time)."""
        left = min(within_s, self._deadline - time.monotonic())
        try:
            if self._connection is None:
                raise FrameError("the call is over")
            if left <= 0:
                raise TimeoutError("the call's time ran out")
            return read_answer(self._connection, within_s=left)
        except BaseException:
            self.abandon()
            raise

    def finish(self) -> None:
        if self._connection is not None:
            self._owner._keep(self._connection)
            self._connection = None

    def abandon(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
