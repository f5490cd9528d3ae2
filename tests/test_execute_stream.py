"""The execute stream between the bridge and a worker: its framing, its door and its failures.

The worker's chains are a stand-in here (the seam `ExecuteStream` answers through); the e2e
tests run every request of a real stack over the stream.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from bridge.worker_client import StreamConnections, StreamRefused
from coprocessor.errors import WrongChain
from coprocessor.worker import stream as worker_stream
from coprocessor.worker.stream import ExecuteStream
from protocol.stream import EXECUTE_BATCH, HELLO, MAX_FRAME_BYTES, read_answer, send_call
from protocol.wire import BatchItem, CommitmentModel, ExecuteBatchRequest, ExecuteBatchResponse, ExecuteRequest
from tests.samples import commitment

TOKEN = "the-execute-token"


class Chains:
    """Answers each request with a refusal naming its input; an input of `slow` takes a second;
    chain 999 is not served."""

    def __init__(self) -> None:
        self.batches = 0

    def execute_batch(self, body: ExecuteBatchRequest) -> ExecuteBatchResponse:
        if body.chain_id == 999:
            raise WrongChain("this worker serves chains [31337]: not 999")
        self.batches += 1
        if any(r.input == "0x" + b"slow".hex() for r in body.requests):
            time.sleep(1.0)
        return ExecuteBatchResponse(
            results=[BatchItem(status_code=409, error=f"not open: {r.input}") for r in body.requests]
        )


@pytest.fixture
def chains() -> Chains:
    return Chains()


@pytest.fixture
def stream(chains: Chains) -> Iterator[ExecuteStream]:
    with ExecuteStream(chains, TOKEN, "127.0.0.1", max_connections=3) as running:  # type: ignore[arg-type]
        yield running


def _batch(*inputs: bytes, chain_id: int | None = None) -> bytes:
    requests = [ExecuteRequest(commitment=CommitmentModel.of(commitment(i)), input="0x" + i.hex()) for i in inputs]
    return ExecuteBatchRequest(requests=requests, chain_id=chain_id).model_dump_json().encode()


def _errors(payload: bytes) -> list[str | None]:
    return [item.error for item in ExecuteBatchResponse.model_validate_json(payload).results]


def _connected(stream: ExecuteStream, token: str = TOKEN) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", stream.port), timeout=5)
    send_call(sock, HELLO, token.encode())
    assert read_answer(sock)[0] == 200
    return sock


def test_a_batch_is_answered_on_the_connection_it_came_on_which_stays_open(
    stream: ExecuteStream, chains: Chains
) -> None:
    client = StreamConnections("127.0.0.1", stream.port, TOKEN, connect_timeout_s=5)
    for n in range(3):
        status, payload = client.call(EXECUTE_BATCH, _batch(b"a%d" % n, b"b%d" % n), timeout_s=5)
        assert status == 200
        assert _errors(payload) == [f"not open: 0x{(b'a%d' % n).hex()}", f"not open: 0x{(b'b%d' % n).hex()}"]
    assert chains.batches == 3
    assert len(client._idle) == 1, "one kept-open connection carried every call"
    client.close()


def test_without_the_execute_token_the_stream_answers_nothing(stream: ExecuteStream, chains: Chains) -> None:
    with pytest.raises(StreamRefused) as refused:
        StreamConnections("127.0.0.1", stream.port, "a-guess", connect_timeout_s=5).call(
            EXECUTE_BATCH, _batch(b"x"), timeout_s=5
        )
    assert refused.value.status == 401
    # A connection that calls before saying HELLO is refused and closed.
    with socket.create_connection(("127.0.0.1", stream.port), timeout=5) as sock:
        send_call(sock, EXECUTE_BATCH, _batch(b"x"))
        status, payload = read_answer(sock)
        assert status == 401
        assert b"execute token" in payload
        assert sock.recv(1) == b"", "closed after the refusal"
    assert chains.batches == 0


def test_bad_calls_get_the_status_the_api_would_give_and_the_connection_goes_on(
    stream: ExecuteStream, chains: Chains
) -> None:
    with _connected(stream) as sock:
        send_call(sock, 7, b"{}")
        assert read_answer(sock)[0] == 400
        send_call(sock, EXECUTE_BATCH, b'{"requests": "not a list"}')
        status, payload = read_answer(sock)
        assert status == 422
        assert "not an execute-batch request" in json.loads(payload)["detail"]
        send_call(sock, EXECUTE_BATCH, _batch(b"x", chain_id=999))
        status, payload = read_answer(sock)
        assert status == 421
        assert "not 999" in json.loads(payload)["detail"]
        send_call(sock, EXECUTE_BATCH, _batch(b"still here"))
        status, payload = read_answer(sock)
        assert status == 200
        assert _errors(payload) == ["not open: 0x" + b"still here".hex()]
    assert chains.batches == 1


def test_an_oversized_frame_closes_the_connection_before_it_is_read(stream: ExecuteStream) -> None:
    with _connected(stream) as sock:
        sock.sendall(struct.pack(">IB", MAX_FRAME_BYTES + 1, EXECUTE_BATCH))
        assert sock.recv(1) == b"", "closed without reading (or holding) 32 MiB"


def test_a_silent_connection_is_closed_and_connections_are_limited(
    stream: ExecuteStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = [_connected(stream) for _ in range(3)]
    with socket.create_connection(("127.0.0.1", stream.port), timeout=5) as fourth:
        assert fourth.recv(1) == b"", "a fourth connection (of 3 allowed) is closed at once"
    for sock in held:
        sock.close()
    time.sleep(0.2)  # the slots come free as their threads end
    monkeypatch.setattr(worker_stream, "HELLO_TIMEOUT_S", 0.3)
    with socket.create_connection(("127.0.0.1", stream.port), timeout=5) as silent:
        started = time.monotonic()
        assert silent.recv(1) == b""
        assert time.monotonic() - started < 3, "a connection that never says HELLO is closed"


def test_a_kept_connection_the_worker_closed_is_replaced_and_the_batch_runs_once(
    stream: ExecuteStream, chains: Chains, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_stream, "IDLE_TIMEOUT_S", 0.2)
    client = StreamConnections("127.0.0.1", stream.port, TOKEN, connect_timeout_s=5)
    assert client.call(EXECUTE_BATCH, _batch(b"first"), timeout_s=5)[0] == 200
    time.sleep(0.5)  # the worker closes the idle connection
    status, payload = client.call(EXECUTE_BATCH, _batch(b"second"), timeout_s=5)
    assert status == 200
    assert _errors(payload) == ["not open: 0x" + b"second".hex()]
    assert chains.batches == 2
    client.close()


def test_a_late_answer_is_never_read_as_the_next_calls(stream: ExecuteStream, chains: Chains) -> None:
    client = StreamConnections("127.0.0.1", stream.port, TOKEN, connect_timeout_s=5)
    with pytest.raises(TimeoutError):
        client.call(EXECUTE_BATCH, _batch(b"slow"), timeout_s=0.2)
    _status, payload = client.call(EXECUTE_BATCH, _batch(b"quick"), timeout_s=5)
    assert _errors(payload) == ["not open: 0x" + b"quick".hex()]
    client.close()


def test_stopping_the_stream_ends_its_connections(chains: Chains) -> None:
    stream = ExecuteStream(chains, TOKEN, "127.0.0.1").start()  # type: ignore[arg-type]
    sock = _connected(stream)
    threads = threading.active_count()
    stream.stop()
    assert sock.recv(1) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", stream.port), timeout=1)
    assert threading.active_count() <= threads
    sock.close()
