"""The execute stream between the bridge and a worker: its framing, its door and its failures.

The worker's chains are a stand-in here (the seam `ExecuteStream` answers through); the e2e
tests run every request of a real stack over the stream.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bridge.worker_client import WorkerClient, WorkerError
from bridge.worker_stream import NotTheWorker, StreamConnections, StreamRefused
from coprocessor.errors import WrongChain
from coprocessor.worker import stream as worker_stream
from coprocessor.worker.parts import in_parts
from coprocessor.worker.stream import ExecuteStream
from protocol.results import CompactSignature
from protocol.stream import (
    EXECUTE_BATCH,
    HELLO,
    MAX_PAYLOAD_BYTES,
    NONCE_BYTES,
    PROOF,
    SIGN_BATCH,
    new_nonce,
    read_answer,
    read_call,
    send_answer,
    send_call,
)
from protocol.wire import (
    BatchItem,
    CommitmentModel,
    ExecuteBatchRequest,
    ExecuteBatchResponse,
    ExecuteRequest,
    ExecuteResponse,
    IndexedItem,
    SignatureModel,
)
from tests.http_fixtures import fake_api
from tests.samples import commitment
from tests.tcp_proxy import TcpProxy

TOKEN = "the-execute-token"


class Chains:
    """Answers each request with a refusal naming its input; an input of `slow` takes a second;
    chain 999 is not served."""

    def __init__(self) -> None:
        self.batches = 0
        self.co_signed: list[int] = []

    def worker_for(self, chain_id: int | None) -> Chains:
        if chain_id == 999:
            raise WrongChain("this worker serves chains [31337]: not 999")
        return self

    def sign_batch(self, results: list[ExecuteResponse]) -> CompactSignature:
        """Refuses a result whose output is 0xbad, as a worker refuses one its key did not sign."""
        if any(r.output == "0xbad" for r in results):
            raise ValueError("result 1 is not signed by chain 31337's epoch 1 key")
        self.co_signed.append(len(results))
        return CompactSignature(epoch=len(results), r=b"\x01" * 32, vs=b"\x02" * 32)

    def execute_batch(self, body: ExecuteBatchRequest) -> ExecuteBatchResponse:
        if body.chain_id == 999:
            raise WrongChain("this worker serves chains [31337]: not 999")
        self.batches += 1
        if any(r.input == "0x" + b"slow".hex() for r in body.requests):
            time.sleep(1.0)
        return ExecuteBatchResponse(
            results=[BatchItem(status_code=409, error=f"not open: {r.input}") for r in body.requests]
        )

    def execute_each(self, body: ExecuteBatchRequest, heartbeat_s: float) -> Iterator[list[IndexedItem]]:
        """As `execute_batch`, in parts as the worker's own (`in_parts`): an input `sleep:S` runs
        S seconds, `mute:S` keeps the worker silent S seconds before anything."""
        if body.chain_id == 999:
            raise WrongChain("this worker serves chains [31337]: not 999")
        self.batches += 1
        inputs = [bytes.fromhex(r.input[2:]).decode() for r in body.requests]
        for text in inputs:
            if text.startswith("mute:"):
                time.sleep(float(text[5:]))

        def run(text: str) -> BatchItem:
            if text.startswith("sleep:"):
                time.sleep(float(text[6:]))
            return BatchItem(status_code=409, error=f"not open: {text}")

        with ThreadPoolExecutor(max_workers=len(inputs)) as runs:
            for part in in_parts(runs, run, inputs, heartbeat_s):
                yield [IndexedItem(index=place, item=item) for place, item in part]


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


def _connected(stream: ExecuteStream) -> socket.socket:
    """A connection through the handshake, as the bridge makes it."""
    return StreamConnections("127.0.0.1", stream.port, TOKEN, connect_timeout_s=5)._connect()


def _stranger(stream: ExecuteStream) -> socket.socket:
    return socket.create_connection(("127.0.0.1", stream.port), timeout=5)


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
    # A client with another token cannot tell the worker from an impostor, and sends nothing.
    with pytest.raises(NotTheWorker):
        StreamConnections("127.0.0.1", stream.port, "a-guess", connect_timeout_s=5).call(
            EXECUTE_BATCH, _batch(b"x"), timeout_s=5
        )
    # A call before the handshake, or the token itself as HELLO's payload: refused and closed.
    for call, payload in ((EXECUTE_BATCH, b"{}"), (HELLO, TOKEN.encode())):
        with _stranger(stream) as sock:
            send_call(sock, call, payload)
            status, answer = read_answer(sock)
            assert status == 401
            assert b"execute token" in answer
            assert sock.recv(1) == b"", "closed after the refusal"
    # A batch before the handshake is not even read.
    with _stranger(stream) as sock:
        send_call(sock, EXECUTE_BATCH, _batch(b"x"))
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""
    # The worker's proof is bound to the stranger's nonce and its own: nothing to replay as the
    # bridge's, which is a MAC under another label.
    with _stranger(stream) as sock:
        send_call(sock, HELLO, new_nonce())
        status, answer = read_answer(sock)
        assert status == 200
        send_call(sock, PROOF, answer[NONCE_BYTES:])
        assert read_answer(sock)[0] == 401
    assert chains.batches == 0


def test_a_process_on_the_port_without_the_token_gets_no_token_and_no_batch() -> None:
    """What listens where the bridge dials (a restarted worker's old port, taken): it hears a
    nonce, cannot prove the token, and the bridge sends it nothing more."""
    heard: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        port = squatter.getsockname()[1]

        def answer_as_if_the_worker() -> None:
            connection, _ = squatter.accept()
            with connection:
                _, payload = read_call(connection)
                heard.append(payload)
                send_answer(connection, 200, new_nonce() + b"\x00" * 32)  # no MAC it could make
                connection.settimeout(2)
                with contextlib.suppress(OSError):
                    while chunk := connection.recv(4096):
                        heard.append(chunk)

        listener = threading.Thread(target=answer_as_if_the_worker)
        listener.start()
        client = StreamConnections("127.0.0.1", port, TOKEN, connect_timeout_s=2)
        with pytest.raises(NotTheWorker):
            client.call(EXECUTE_BATCH, _batch(b"secret input"), timeout_s=2)
        listener.join()
    assert len(heard) == 1, "only the HELLO: no proof, no batch"
    assert len(heard[0]) == NONCE_BYTES
    assert TOKEN.encode() not in heard[0]


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
        sock.sendall(struct.pack(">IB", 1 + MAX_PAYLOAD_BYTES + 1, EXECUTE_BATCH))
        assert sock.recv(1) == b"", "closed without reading (or holding) 32 MiB"


def test_connections_are_limited_and_strangers_cannot_take_the_bridges(
    stream: ExecuteStream, chains: Chains, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = [_connected(stream) for _ in range(3)]
    with pytest.raises(StreamRefused) as refused:
        _connected(stream)
    assert refused.value.status == 503, "a fourth proven connection (of 3 allowed) is refused"
    for sock in held[1:]:
        sock.close()
    # Strangers holding every handshake slot take none of the proven connections' room: the
    # bridge's kept connection goes on, and a new one is refused at once, not kept waiting.
    strangers = [_stranger(stream) for _ in range(worker_stream.HANDSHAKES)]
    time.sleep(0.2)
    with _stranger(stream) as one_more:
        assert one_more.recv(1) == b""
    send_call(held[0], EXECUTE_BATCH, _batch(b"still served"))
    status, payload = read_answer(held[0])
    assert status == 200
    assert _errors(payload) == ["not open: 0x" + b"still served".hex()]
    for sock in strangers:
        sock.close()
    held[0].close()


def test_a_handshake_trickled_a_byte_at_a_time_is_cut_off(
    stream: ExecuteStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_stream, "HELLO_TIMEOUT_S", 0.5)
    frame = struct.pack(">IB", NONCE_BYTES + 1, HELLO) + new_nonce()
    with _stranger(stream) as slow:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            for byte in frame[:-1]:
                slow.sendall(bytes([byte]))
                time.sleep(0.1)
        assert slow.recv(1) == b""
        assert time.monotonic() - started < 3, "the whole frame is due within the timeout, not each byte"
    with _stranger(stream) as big:
        big.sendall(struct.pack(">IB", 32 * 1024 * 1024, HELLO))
        assert big.recv(1) == b"", "a handshake frame larger than a nonce is not read"


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


class Shuffled(Chains):
    """Answers every request with a result, each filed in the place of the request after it."""

    def execute_batch(self, body: ExecuteBatchRequest) -> ExecuteBatchResponse:
        results = [
            ExecuteResponse(
                request_id=str(r.commitment.to_commitment().request_id),
                commitment=r.commitment,
                status="OK",
                output=r.input,
                signature=SignatureModel(epoch=1, r="0x" + "11" * 32, vs="0x" + "22" * 32),
                logs=[],
                error=None,
                stats={},
                worker="worker-1",
            )
            for r in body.requests
        ]
        return ExecuteBatchResponse(results=[BatchItem(result=r) for r in results[1:] + results[:1]])


@pytest.mark.parametrize("shuffled", [False, True])
def test_an_answer_in_another_requests_place_is_the_workers_failure(shuffled: bool) -> None:
    chains = Shuffled() if shuffled else Chains()
    with ExecuteStream(chains, TOKEN, "127.0.0.1") as stream:  # type: ignore[arg-type]
        client = WorkerClient("http://127.0.0.1:1", token=TOKEN)
        client._stream = StreamConnections("127.0.0.1", stream.port, TOKEN, connect_timeout_s=5)
        requests = [
            ExecuteRequest(commitment=CommitmentModel.of(commitment(i)), input="0x" + i.hex()) for i in (b"a", b"b")
        ]
        if shuffled:
            with pytest.raises(WorkerError, match="in another's place"):
                client.execute_batch(requests, timeout_s=5)
        else:
            assert [item.status_code for item in client.execute_batch(requests, timeout_s=5)] == [409, 409]
        client.close()


def test_the_client_shows_the_token_only_to_calls_that_need_it() -> None:
    """A health check or an info request may reach whatever took a restarting worker's port."""
    seen: dict[str, str | None] = {}

    def worker(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        seen[path.split("?")[0]] = {k.lower(): v for k, v in headers.items()}.get("authorization")
        if path.startswith("/v1/execute-batch"):
            batch = ExecuteBatchRequest.model_validate_json(body)
            return 200, {"results": [{"status_code": 409, "error": "not open"} for _ in batch.requests]}
        return 200, {"stream": None, "status": "ok"}

    with fake_api() as api:
        for path in ("/healthz", "/v1/info", "/v1/execute-batch"):
            api.routes[path] = worker
        client = WorkerClient(api.url, token=TOKEN)
        assert client.healthy(5)
        [item] = client.execute_batch([ExecuteRequest(commitment=CommitmentModel.of(commitment(b"x")), input="0x78")])
        assert item.status_code == 409
        client.close()
    assert seen == {"/healthz": None, "/v1/info": None, "/v1/execute-batch": f"Bearer {TOKEN}"}


def test_a_relay_on_another_port_passes_no_handshake_and_gets_no_batch(stream: ExecuteStream, chains: Chains) -> None:
    """A process on a restarted worker's old port that relays the handshake to its new one: the
    worker's proof names the port it listens on, not the one the bridge dialed."""
    with TcpProxy(stream.port) as relay:
        client = StreamConnections("127.0.0.1", relay.port, TOKEN, connect_timeout_s=5)
        with pytest.raises(NotTheWorker):
            client.call(EXECUTE_BATCH, _batch(b"through the relay"), timeout_s=5)
    assert chains.batches == 0


@contextlib.contextmanager
def _squatter(kind: str, stream: ExecuteStream) -> Iterator[int]:
    """A port held by something other than the worker: one that refuses the handshake, one that
    never answers, or a relay to the worker's real port. Yields the port."""
    if kind == "relays":
        with TcpProxy(stream.port) as relay:
            yield relay.port
        return
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def hold() -> None:
            connection, _ = listener.accept()
            with connection:
                if kind == "refuses":
                    read_call(connection)
                    send_answer(connection, 401, b'{"detail": "go away"}')
                else:
                    time.sleep(2)

        threading.Thread(target=hold, daemon=True).start()
        yield listener.getsockname()[1]


@pytest.mark.parametrize("kind", ["refuses", "is silent", "relays"])
def test_whatever_holds_the_stream_port_the_call_goes_by_http(kind: str, stream: ExecuteStream) -> None:
    with _squatter(kind, stream) as port, fake_api() as api:
        api.routes["/v1/execute-batch"] = lambda *_: (200, {"results": [{"status_code": 409, "error": "by http"}]})
        client = WorkerClient(api.url, token=TOKEN)
        client._stream = StreamConnections("127.0.0.1", port, TOKEN, connect_timeout_s=0.5)
        [item] = client.execute_batch([ExecuteRequest(commitment=CommitmentModel.of(commitment(b"x")), input="0x78")])
        assert item.error == "by http"
        assert client._stream is None, "the stream is looked up afresh later, not dialed again"
        client.close()


def test_refused_connections_are_counted_in_one_line_not_one_each(
    stream: ExecuteStream, caplog: pytest.LogCaptureFixture
) -> None:
    strangers = [_stranger(stream) for _ in range(worker_stream.HANDSHAKES)]
    time.sleep(0.2)
    with caplog.at_level(logging.WARNING, logger=worker_stream.__name__):
        for _ in range(30):
            with _stranger(stream) as refused:
                assert refused.recv(1) == b""
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1
    assert "every handshake slot is taken" in lines[0]
    for sock in strangers:
        sock.close()


def _answer(output: str) -> ExecuteResponse:
    signature = SignatureModel(epoch=1, r="0x" + "01" * 32, vs="0x" + "02" * 32)
    return ExecuteResponse(
        request_id="1", commitment=CommitmentModel.of(commitment(b"x")), status="OK", output=output,
        signature=signature, logs=[], error=None, stats={}, worker="w",
    )  # fmt: skip


def test_a_batch_is_co_signed_on_the_stream_and_a_refusal_keeps_the_apis_status(
    stream: ExecuteStream, chains: Chains
) -> None:
    client = WorkerClient("http://127.0.0.1:1", token=TOKEN)  # no HTTP API: the stream or nothing
    client._stream = StreamConnections("127.0.0.1", stream.port, TOKEN, connect_timeout_s=5)
    signature = client.sign_batch([_answer("0x01"), _answer("0x02")], timeout_s=5)
    assert signature == CompactSignature(epoch=2, r=b"\x01" * 32, vs=b"\x02" * 32)
    with pytest.raises(WorkerError, match="not signed by") as refused:
        client.sign_batch([_answer("0x01"), _answer("0xbad")], timeout_s=5)
    assert refused.value.status_code == 422
    assert not refused.value.retryable
    client.chain_id = 999
    with pytest.raises(WorkerError, match="not 999") as misdirected:
        client.sign_batch([_answer("0x01")], timeout_s=5)
    assert misdirected.value.status_code == 421
    assert chains.co_signed == [2]
    with _connected(stream) as sock:
        send_call(sock, SIGN_BATCH, b'{"results": 3}')
        status, payload = read_answer(sock)
        assert status == 422
        assert "not a sign-batch request" in json.loads(payload)["detail"]
    client.close()


def test_a_worker_whose_stream_has_no_co_signing_co_signs_by_http(
    stream: ExecuteStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_stream, "SIGN_BATCH", -1)  # the stream of an older release
    with fake_api() as api:
        api.routes["/v1/sign-batch"] = lambda *_: (200, {"epoch": 7, "r": "0x" + "03" * 32, "vs": "0x" + "04" * 32})
        client = WorkerClient(api.url, token=TOKEN)
        client._stream = StreamConnections("127.0.0.1", stream.port, TOKEN, connect_timeout_s=5)
        assert client.sign_batch([_answer("0x01")], timeout_s=5).epoch == 7
        assert client._stream is not None, "the stream still carries execute batches"
        client.close()


def _requests(*inputs: str) -> list[ExecuteRequest]:
    return [
        ExecuteRequest(commitment=CommitmentModel.of(commitment(i.encode())), input="0x" + i.encode().hex())
        for i in inputs
    ]


def _stream_client(stream: ExecuteStream) -> WorkerClient:
    client = WorkerClient("http://127.0.0.1:1", token=TOKEN)
    client._stream = StreamConnections("127.0.0.1", stream.port, TOKEN, connect_timeout_s=5)
    return client


def test_a_batch_is_answered_in_parts_so_a_slow_request_holds_none_of_the_others(stream: ExecuteStream) -> None:
    client = _stream_client(stream)
    started, parts = time.monotonic(), []
    for part in client.execute_each(_requests("a", "sleep:2.0", "b"), timeout_s=5):
        parts.append((time.monotonic() - started, sorted(place for place, _ in part)))
    assert [places for _, places in parts] == [[0, 2], [1]]
    assert parts[0][0] < 1.0, "the fast ones came within the first part's time, not the slow one's"
    assert parts[1][0] >= 2.0
    assert client._stream is not None
    assert len(client._stream._idle) == 1, "the connection is kept for the next call"
    [[(place, item)]] = list(client.execute_each(_requests("c"), timeout_s=5))
    assert (place, item.error) == (0, "not open: c")
    client.close()


def test_a_worker_that_runs_long_says_so_and_one_gone_silent_fails_within_the_agents_time(
    stream: ExecuteStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run longer than the timeout is fine while the worker says it is still running; a
    worker that says nothing (hung, stopped) fails within one timeout, not a batch's, and what
    it answered before stands."""
    monkeypatch.setattr(worker_stream, "HEARTBEAT_S", 0.1)
    client = _stream_client(stream)
    parts = list(client.execute_each(_requests("a", "sleep:1.2", "b", "c"), timeout_s=0.5))
    assert sorted(place for part in parts for place, _ in part) == [0, 1, 2, 3]

    def answered_before_failing(*inputs: str) -> list[int]:
        answered: list[int] = []
        with contextlib.suppress(WorkerError):
            for part in client.execute_each(_requests(*inputs), timeout_s=0.5):
                answered.extend(place for place, _ in part)
            raise AssertionError("no failure")
        return answered

    started = time.monotonic()
    assert answered_before_failing("mute:2", "a") == []
    assert time.monotonic() - started < 1.0, "one timeout, not two requests' worth"
    client.close()


class Malformed(Chains):
    """Answers the first request, then its part breaks the protocol in the way named."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def execute_each(self, body: ExecuteBatchRequest, heartbeat_s: float) -> Iterator[list[IndexedItem]]:
        refused = BatchItem(status_code=409, error="not open")
        yield [IndexedItem(index=0, item=refused)]
        if self.how == "twice":
            yield [IndexedItem(index=0, item=refused)]
        elif self.how == "beyond the batch":
            yield [IndexedItem(index=5, item=refused)]
        else:
            yield [IndexedItem(index=1, item=Shuffled().execute_batch(body).results[1])]  # request 0's


@pytest.mark.parametrize("how", ["twice", "beyond the batch", "in another's place"])
def test_a_part_that_breaks_the_protocol_is_the_workers_failure(how: str) -> None:
    with ExecuteStream(Malformed(how), TOKEN, "127.0.0.1") as stream:  # type: ignore[arg-type]
        client = _stream_client(stream)
        answered: list[int] = []
        parts = client.execute_each(_requests("a", "b"), timeout_s=5)
        answered.extend(place for place, _ in next(parts))
        with pytest.raises(WorkerError, match=r"answers to places|in another's place"):
            next(parts)
        assert answered == [0]
        assert client._stream is not None
        assert client._stream._idle == [], "a broken call's connection is not kept"
        client.close()


def test_a_worker_whose_stream_answers_only_whole_batches_gets_them_by_http(
    stream: ExecuteStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_stream, "EXECUTE_EACH", 99)  # as a worker of an older release
    with fake_api() as api:
        api.routes["/v1/execute-batch"] = lambda *_: (200, {"results": [{"status_code": 409, "error": "by http"}] * 2})
        client = WorkerClient(api.url, token=TOKEN)
        client._stream = StreamConnections("127.0.0.1", stream.port, TOKEN, connect_timeout_s=5)
        [part] = list(client.execute_each(_requests("a", "b"), timeout_s=5))
        assert [(place, item.error) for place, item in part] == [(0, "by http"), (1, "by http")]
        client.close()


@pytest.mark.parametrize("kind", ["refuses", "is silent", "relays"])
def test_whatever_holds_the_stream_port_a_batch_goes_by_http_to_a_worker_that_answers(
    kind: str, stream: ExecuteStream
) -> None:
    with _squatter(kind, stream) as port, fake_api() as api:
        api.routes["/healthz"] = lambda *_: (200, {"status": "ok"})
        api.routes["/v1/execute-batch"] = lambda *_: (200, {"results": [{"status_code": 409, "error": "by http"}]})
        client = WorkerClient(api.url, token=TOKEN)
        client._stream = StreamConnections("127.0.0.1", port, TOKEN, connect_timeout_s=0.5)
        [[(place, item)]] = list(client.execute_each(_requests("a"), timeout_s=5))
        assert (place, item.error) == (0, "by http")
        client.close()


def test_a_worker_with_a_silent_stream_and_no_health_is_failed_not_given_a_batch_by_http() -> None:
    """A hung worker's stream port and its HTTP API are both silent: asked by HTTP, without a
    heartbeat, it would hold the batch for all its requests' time."""
    with socket.create_server(("127.0.0.1", 0)) as silent_stream, socket.create_server(("127.0.0.1", 0)) as silent_api:
        client = WorkerClient(f"http://127.0.0.1:{silent_api.getsockname()[1]}", token=TOKEN)
        client._stream = StreamConnections("127.0.0.1", silent_stream.getsockname()[1], TOKEN, connect_timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(WorkerError, match="no answer to a health check"):
            list(client.execute_each(_requests("a", "b"), timeout_s=60))
        assert time.monotonic() - started < 0.5 + 2.0 + 1.0
        client.close()
