"""The execute stream: the bridge's kept-open connections to run batches (protocol/stream.py).

Each connection has a thread of its own that reads a call, answers it and reads the next: no
hop between threads, no HTTP parsing, on the path an idle chain's request takes. What it answers
is what `/v1/execute-batch` answers (`ServedChains`), to a peer that proved it holds the same
execute token.

A peer that has not proved it yet holds little: a few handshake slots of their own (so that
strangers cannot take the bridge's), frames of at most 64 bytes, each due whole within
`HELLO_TIMEOUT_S`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import threading
import time

from pydantic import ValidationError

from coprocessor.errors import NotReady, WrongChain
from coprocessor.worker.chains import ServedChains, status_of
from protocol.stream import (
    EXECUTE_BATCH,
    EXECUTE_EACH,
    HANDSHAKE_FRAME_BYTES,
    HEARTBEAT_S,
    HELLO,
    NONCE_BYTES,
    PART,
    PROOF,
    SIGN_BATCH,
    STILL_RUNNING,
    FrameError,
    new_nonce,
    proof,
    read_call,
    send_answer,
)
from protocol.wire import ExecuteBatchRequest, ExecuteEachPart, SignatureModel, SignBatchRequest

log = logging.getLogger(__name__)

# Each handshake frame must arrive whole this soon; a connection is closed after this long
# without a call (the bridge opens another when it needs one).
HELLO_TIMEOUT_S = 5.0
IDLE_TIMEOUT_S = 300.0
# Connections still in their handshake at once, apart from the proven ones' `max_connections`.
HANDSHAKES = 16
# At most one line this often about connections refused for want of a slot (and how many).
REFUSALS_LOGGED_EVERY_S = 10.0


class ExecuteStream:
    def __init__(
        self, chains: ServedChains, execute_token: str, host: str, port: int = 0, max_connections: int = 64
    ) -> None:
        self.chains = chains
        self._token = execute_token
        self._listener = socket.create_server((host, port), backlog=max_connections)
        self.port: int = self._listener.getsockname()[1]
        # Each connection costs a thread: a local process opening many gets no more than these.
        self._handshakes = threading.BoundedSemaphore(HANDSHAKES)
        self._room = threading.BoundedSemaphore(max_connections)
        self._refused, self._refusals_logged_at = 0, 0.0
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
                self._stopping.wait(0.05)  # out of file descriptors, say: no busy loop meanwhile
                continue
            if not self._handshakes.acquire(blocking=False):
                self._refuse(connection, peer, "every handshake slot is taken")
                continue
            threading.Thread(target=self._serve, args=(connection, peer), name="stream", daemon=True).start()

    def _refuse(self, connection: socket.socket, peer: tuple[str, int], why: str) -> None:
        connection.close()
        with self._lock:
            self._refused += 1
            if time.monotonic() - self._refusals_logged_at < REFUSALS_LOGGED_EVERY_S:
                return
            refused, self._refused, self._refusals_logged_at = self._refused, 0, time.monotonic()
        log.warning("execute stream: refused %d connection(s), the last from %s:%d: %s", refused, *peer[:2], why)

    def _serve(self, connection: socket.socket, peer: tuple[str, int]) -> None:
        with self._lock:
            self._connections.add(connection)
        try:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                proven = self._handshake(connection)
            finally:
                self._handshakes.release()
            if proven:
                self._serve_proven(connection, peer)
        except (FrameError, OSError):
            pass  # the peer went away, idled out, or sent what is no frame: the connection is done
        finally:
            with self._lock:
                self._connections.discard(connection)
            connection.close()

    def _handshake(self, connection: socket.socket) -> bool:
        """Whether the peer proved it holds the execute token, after this side proved it too
        (the token itself crosses no wire)."""
        call, bridge_nonce = read_call(connection, HANDSHAKE_FRAME_BYTES, HELLO_TIMEOUT_S)
        if call != HELLO or len(bridge_nonce) != NONCE_BYTES or not self._token:
            send_answer(connection, 401, _detail("begin with HELLO and a nonce; a valid execute token is required"))
            return False
        worker_nonce = new_nonce()

        def proof_of(role: bytes) -> bytes:
            return proof(self._token, role, self.port, bridge_nonce, worker_nonce)

        send_answer(connection, 200, worker_nonce + proof_of(b"worker"))
        call, shown = read_call(connection, HANDSHAKE_FRAME_BYTES, HELLO_TIMEOUT_S)
        if call != PROOF or not hmac.compare_digest(shown, proof_of(b"bridge")):
            send_answer(connection, 401, _detail("a valid execute token is required"))
            return False
        return True  # the last answer, 200 or 503, says whether there is room for it

    def _serve_proven(self, connection: socket.socket, peer: tuple[str, int]) -> None:
        if not self._room.acquire(blocking=False):
            send_answer(connection, 503, _detail("every connection slot is taken"))
            self._refuse(connection, peer, "every connection slot is taken")
            return
        try:
            send_answer(connection, 200, b"{}")
            connection.settimeout(IDLE_TIMEOUT_S)
            while not self._stopping.is_set():
                call, payload = read_call(connection)
                if call == EXECUTE_EACH:
                    self._execute_each(connection, payload)
                else:
                    send_answer(connection, *self._answer(call, payload))
        finally:
            self._room.release()

    def _answer(self, call: int, payload: bytes) -> tuple[int, bytes]:
        if call == SIGN_BATCH:
            return self._co_sign(payload)
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

    def _execute_each(self, connection: socket.socket, payload: bytes) -> None:
        """Answers a batch in parts, each request's answer as it is ready (protocol/stream.py);
        a peer gone meanwhile ends it (the runs not begun are not run)."""
        try:
            body = ExecuteBatchRequest.model_validate_json(payload)
        except ValidationError as err:
            send_answer(connection, 422, _detail(f"not an execute-batch request: {err.error_count()} errors"))
            return
        parts = self.chains.execute_each(body, HEARTBEAT_S)
        try:
            while True:
                try:
                    part = next(parts, None)
                except WrongChain as err:
                    send_answer(connection, status_of(err), _detail(str(err)))
                    return
                except Exception:
                    log.exception("execute stream: a batch of %d failed", len(body.requests))
                    send_answer(connection, 500, _detail("the worker failed on the batch"))
                    return
                if part is None:
                    return
                if part:
                    send_answer(connection, PART, ExecuteEachPart(answers=part).model_dump_json().encode())
                else:
                    send_answer(connection, STILL_RUNNING, b"")
        finally:
            parts.close()  # a peer gone mid-batch: the runs not begun are not run

    def _co_sign(self, payload: bytes) -> tuple[int, bytes]:
        """As `/v1/sign-batch`: under load a fulfil transaction's co-signature by HTTP cost
        the worker more than co-signing it (FastAPI's validation of every result)."""
        try:
            body = SignBatchRequest.model_validate_json(payload)
        except ValidationError as err:
            return 422, _detail(f"not a sign-batch request: {err.error_count()} errors")
        try:
            signature = self.chains.worker_for(body.chain_id).sign_batch(body.results)
        except WrongChain as err:
            return status_of(err), _detail(str(err))
        except NotReady as err:
            return 503, _detail(str(err))
        except ValueError as err:  # a result the cluster's key did not sign as it is
            return 422, _detail(str(err))
        except Exception:
            log.exception("execute stream: co-signing a batch of %d failed", len(body.results))
            return 500, _detail("the worker failed to co-sign the batch")
        return 200, SignatureModel.of(signature).model_dump_json().encode()


def _detail(text: str) -> bytes:
    return json.dumps({"detail": text}).encode()
