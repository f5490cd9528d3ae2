"""The execute stream's framing: how the bridge and a worker talk over one kept-open connection.

An HTTP call to a worker cost more than the agent's run it carried when the chain is idle
(parsing, routing, a hop to a thread pool on each side). The stream is a TCP connection the
bridge keeps open, carrying length-prefixed frames, each answered in order on the connection
it came on:

    call:   u32 length | u8 call   | payload      (length counts what follows it)
    answer: u32 length | u16 status | payload     (the HTTP status the API would give)

A connection begins with a handshake in which each side proves it holds the execute token
without sending it, so that whatever listens on a port the bridge dials (a process that took a
restarted worker's old port) learns nothing and is dropped before any batch goes to it:

    bridge: HELLO  bridge_nonce                      (32 random bytes)
    worker: 200    worker_nonce | HMAC(token, "worker" | port | bridge_nonce | worker_nonce)
    bridge: PROOF  HMAC(token, "bridge" | port | bridge_nonce | worker_nonce)
    worker: 200    (or 401, and the connection closes; 503 when it has no room for another)

`port` is the worker's stream port (two bytes), the one the bridge dialed: a process that took a
restarted worker's old port and relays the handshake to its new one gets a proof for the new
port, which the bridge refuses, and cannot make one for the old.

Then EXECUTE_BATCH carries an `ExecuteBatchRequest` as JSON and its answer an
`ExecuteBatchResponse` (status 200) or `{"detail": ...}` (any other status), exactly what
`/v1/execute-batch` gives; SIGN_BATCH a `SignBatchRequest` and a `SignatureModel`, as
`/v1/sign-batch`.

EXECUTE_EACH carries an `ExecuteBatchRequest` too, but is answered in parts, each request's
answer as soon as it is ready, so that one slow agent holds none of the others and a hung worker
shows within one agent's time, not a whole batch's:

    206  ExecuteEachPart    answers ready together ({"answers": [{"index": i, "item": ...}]})
    102  (empty)            none ready for HEARTBEAT_S: the worker is alive, its runs go on
    ...                     until every request of the batch has its answer
    4xx/5xx {"detail": ...} the call ends; the answers sent before it stand
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
import struct
import time

HELLO = 1
EXECUTE_BATCH = 2
PROOF = 3
SIGN_BATCH = 4
EXECUTE_EACH = 5

# The statuses of EXECUTE_EACH's parts: answers, and a heartbeat.
PART = 206
STILL_RUNNING = 102
# How often a worker with no answer ready says it is still running a batch; a peer hears from a
# live worker at least this often, whatever its agents' time limits.
HEARTBEAT_S = 1.0

# A batch of the largest inputs with room to spare: a frame carrying more is refused before it is
# read.
MAX_PAYLOAD_BYTES = 32 * 1024 * 1024
# The handshake's frames: nonces and MACs, nothing more is read before the peer is known.
HANDSHAKE_FRAME_BYTES = 64
NONCE_BYTES = 32


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def proof(token: str, role: bytes, port: int, bridge_nonce: bytes, worker_nonce: bytes) -> bytes:
    """What `role` (b"worker" or b"bridge") shows to prove it holds the token, on a connection to
    the stream at `port`, for these nonces."""
    message = role + port.to_bytes(2, "big") + bridge_nonce + worker_nonce
    return hmac.new(token.encode(), message, hashlib.sha256).digest()


_CALL = struct.Struct(">IB")
_ANSWER = struct.Struct(">IH")


class FrameError(OSError):
    """The peer closed the connection, or sent what is not a frame: the connection is done."""


def send_call(sock: socket.socket, call: int, payload: bytes) -> None:
    sock.sendall(_CALL.pack(len(payload) + 1, call) + payload)


def send_answer(sock: socket.socket, status: int, payload: bytes) -> None:
    sock.sendall(_ANSWER.pack(len(payload) + 2, status) + payload)


def read_call(
    sock: socket.socket, max_bytes: int = MAX_PAYLOAD_BYTES, within_s: float | None = None
) -> tuple[int, bytes]:
    """The next call; `within_s` bounds the whole frame (else the socket's timeout bounds each
    read), so that a peer trickling a byte at a time cannot hold the connection."""
    deadline = None if within_s is None else time.monotonic() + within_s
    length, call = _CALL.unpack(_read_exactly(sock, _CALL.size, deadline))
    return call, _read_exactly(sock, _payload_length(length, 1, max_bytes), deadline)


def read_answer(
    sock: socket.socket, max_bytes: int = MAX_PAYLOAD_BYTES, within_s: float | None = None
) -> tuple[int, bytes]:
    deadline = None if within_s is None else time.monotonic() + within_s
    length, status = _ANSWER.unpack(_read_exactly(sock, _ANSWER.size, deadline))
    return status, _read_exactly(sock, _payload_length(length, 2, max_bytes), deadline)


def _payload_length(length: int, head: int, max_bytes: int) -> int:
    if length < head or length - head > max_bytes:
        raise FrameError(f"a frame of {length} bytes (a payload of at most {max_bytes} here)")
    return length - head


def _read_exactly(sock: socket.socket, count: int, deadline: float | None) -> bytes:
    chunks, missing = [], count
    while missing:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the frame did not arrive in time")
            sock.settimeout(left)
        chunk = sock.recv(min(missing, 1 << 20))
        if not chunk:
            raise FrameError("the peer closed the connection")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
