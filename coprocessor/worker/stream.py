"""The execute stream: the bridge's kept-open connections to run batches (protocol/stream.py).

Each connection has a thread of its own that reads a call, answers it and reads the next: no
hop between threads, no HTTP parsing, on the path an idle chain's request takes. What it answers
is what `/v1/execute-batch` answers (`ServedChains`), under the same execute token.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading

from pydantic import ValidationError

from coprocessor.errors import WrongChain
from coprocessor.worker.app import token_matches
from coprocessor.worker.chains import ServedChains, status_of
from protocol.stream import EXECUTE_BATCH, HELLO, FrameError, read_call, send_answer
from protocol.wire import ExecuteBatchRequest

log = logging.getLogger(__name__)

# A connection must say HELLO this soon, and is closed after this long without a call (the bridge
# opens another when it needs one).
HELLO_TIMEOUT_S = 5.0
IDLE_TIMEOUT_S = 300.0


class ExecuteStream:
    def __init__(
        self, chains: ServedChains, execute_token: str, host: str, port: int = 0, max_connections: int = 64
    ) -> None:
        self.chains = chains
        self._token = execute_token
        self._listener = socket.create_server((host, port), backlog=max_connections)
        self.port: int = self._listener.getsockname()[1]
        # Each connection costs a thread: a local process opening many gets no more than this.
        self._room = threading.BoundedSemaphore(max_connections)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, name="stream-accept", daemon=True)

    def start(self) -> ExecuteStream:
        self._acceptor.start()
        log.info("execute stream on port %d", self.port)
        return self

    def stop(self) -> None:
        self._stopping.set()
        # shutdown, not only close: a thread blocked in accept() or recv() wakes at once.
        for sock in [self._listener, *self._open_connections()]:
            with contextlib.suppress(OSError):  # not connected, or closed already
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._acceptor.join(timeout=5)

    def __enter__(self) -> ExecuteStream:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _open_connections(self) -> list[socket.socket]:
        with self._lock:
            return list(self._connections)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, peer = self._listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            if not self._room.acquire(blocking=False):
                log.warning("execute stream: refused %s:%d, %s", *peer[:2], "every connection slot is taken")
                connection.close()
                continue
            threading.Thread(target=self._serve, args=(connection,), name="stream", daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
        try:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.settimeout(HELLO_TIMEOUT_S)
            call, payload = read_call(connection)
            if call != HELLO or not token_matches(payload, self._token):
                send_answer(connection, 401, b'{"detail":"a valid execute token is required"}')
                return
            send_answer(connection, 200, b"{}")
            connection.settimeout(IDLE_TIMEOUT_S)
            while not self._stopping.is_set():
                call, payload = read_call(connection)
                send_answer(connection, *self._answer(call, payload))
        except (FrameError, OSError):
            pass  # the bridge went away, idled out, or sent what is no frame: the connection is done
        finally:
            with self._lock:
                self._connections.discard(connection)
            connection.close()
            self._room.release()

    def _answer(self, call: int, payload: bytes) -> tuple[int, bytes]:
        if call != EXECUTE_BATCH:
            return 400, _detail(f"no call {call} on the execute stream")
        try:
            body = ExecuteBatchRequest.model_validate_json(payload)
        except ValidationError as err:
            return 422, _detail(f"not an execute-batch request: {err.error_count()} errors")
        try:
            return 200, self.chains.execute_batch(body).model_dump_json().encode()
        except WrongChain as err:
            return status_of(err), _detail(str(err))
        except Exception:
            log.exception("execute stream: a batch of %d failed", len(body.requests))
            return 500, _detail("the worker failed on the batch")


def _detail(text: str) -> bytes:
    return json.dumps({"detail": text}).encode()
