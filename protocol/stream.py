"""The execute stream's framing: how the bridge and a worker talk over one kept-open connection.

An HTTP call to a worker cost more than the agent's run it carried when the chain is idle
(parsing, routing, a hop to a thread pool on each side). The stream is a TCP connection the
bridge keeps open, carrying length-prefixed frames, each answered in order on the connection
it came on:

    call:   u32 length | u8 call   | payload      (length counts what follows it)
    answer: u32 length | u16 status | payload     (the HTTP status the API would give)

The first call on a connection is HELLO, the execute token as its payload; the worker closes a
connection that does not begin so. EXECUTE_BATCH carries an `ExecuteBatchRequest` as JSON and
its answer an `ExecuteBatchResponse` (status 200) or `{"detail": ...}` (any other status),
exactly what `/v1/execute-batch` gives.
"""

from __future__ import annotations

import socket
import struct

HELLO = 1
EXECUTE_BATCH = 2

# A batch of the largest inputs with room to spare: a bigger frame is refused before it is read.
MAX_FRAME_BYTES = 32 * 1024 * 1024

_CALL = struct.Struct(">IB")
_ANSWER = struct.Struct(">IH")


class FrameError(OSError):
    """The peer closed the connection, or sent what is not a frame: the connection is done."""


def send_call(sock: socket.socket, call: int, payload: bytes) -> None:
    sock.sendall(_CALL.pack(len(payload) + 1, call) + payload)


def send_answer(sock: socket.socket, status: int, payload: bytes) -> None:
    sock.sendall(_ANSWER.pack(len(payload) + 2, status) + payload)


def read_call(sock: socket.socket) -> tuple[int, bytes]:
    length, call = _CALL.unpack(_read_exactly(sock, _CALL.size))
    return call, _read_exactly(sock, _payload_length(length, 1))


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    length, status = _ANSWER.unpack(_read_exactly(sock, _ANSWER.size))
    return status, _read_exactly(sock, _payload_length(length, 2))


def _payload_length(length: int, head: int) -> int:
    if length < head or length > MAX_FRAME_BYTES:
        raise FrameError(f"a frame of {length} bytes (at most {MAX_FRAME_BYTES})")
    return length - head


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    chunks, missing = [], count
    while missing:
        chunk = sock.recv(min(missing, 1 << 20))
        if not chunk:
            raise FrameError("the peer closed the connection")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
