"""The client of a worker: what the bridge uses, never the internals.

Batches to run and to co-sign go by the worker's execute stream when it has one
(bridge/worker_stream.py: one kept-open connection per call in flight, no HTTP on the path an
idle chain's request takes), else by its HTTP API; everything else by HTTP.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Generator
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from bridge.errors import BridgeError
from bridge.worker_stream import StreamConnections
from protocol.results import CompactSignature
from protocol.stream import EXECUTE_BATCH, EXECUTE_EACH, PART, SIGN_BATCH, STILL_RUNNING
from protocol.wire import (
    BatchItem,
    ExecuteBatchRequest,
    ExecuteBatchResponse,
    ExecuteEachPart,
    ExecuteRequest,
    ExecuteResponse,
    SignatureModel,
    SignBatchRequest,
    Wire,
)

W = TypeVar("W", bound=Wire)
# A batch's answers in parts, each with its place in the batch.
Parts = Generator[list[tuple[int, BatchItem]], None, None]

log = logging.getLogger(__name__)


class WorkerError(BridgeError):
    """The worker answered with an error or did not answer.

    `retryable` is True when the worker could not answer now but the request is fine: it was
    unreachable, or it answered 503 (no key yet, or its host, such as its RPC node, failed).
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def retryable(self) -> bool:
        # 421: the worker serves other chains (a setting to fix); another worker may serve it.
        return self.status_code is None or self.status_code in (421, 503)


def _answers(result: ExecuteResponse, request: ExecuteRequest) -> bool:
    """Whether `result` is of `request` (its fields, and the id they hash to)."""
    return (
        result.commitment == request.commitment
        and int(result.request_id) == request.commitment.to_commitment().request_id
    )


# Runs a worker does side by side (its sandbox processes): a batch by HTTP, answered whole, is
# given its requests' time this many at a time.
WORKER_PARALLELISM = 2
# How long a worker whose stream failed has to answer its health check before a batch goes to it
# by HTTP.
HEALTH_CHECK_S = 2.0
# How long a worker found without an execute stream (or whose stream went away) is called by
# HTTP before the bridge asks it again.
STREAM_RECHECK_S = 10.0


class WorkerClient:
    def __init__(self, url: str, timeout: float = 30.0, token: str = "", chain_id: int | None = None) -> None:
        self.url = url.rstrip("/")
        # The chain this client's requests are of: a worker may serve several.
        self.chain_id = chain_id
        self.timeout = timeout
        self._token = token
        # The token goes with the calls that need it only: whatever answers a health check or
        # an info request (the port of a worker restarting, taken by another process) hears none.
        self._authorization = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._stream: StreamConnections | None = None
        self._stream_checked_at = -STREAM_RECHECK_S
        self._stream_lock = threading.Lock()

    def healthy(self, timeout_s: float) -> bool:
        """Whether the worker answers its health check (it holds the current epoch's key of this
        client's chain) in time."""
        params = {"chainId": self.chain_id} if self.chain_id is not None else None
        try:
            return self._http.get("/healthz", params=params, timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def _post(self, path: str, body: Wire, answer: type[W], timeout_s: float | None = None) -> W:
        """Posts `body` and reads the answer as `answer`, both by pydantic's own JSON."""
        try:
            reply = self._http.post(
                path,
                content=body.model_dump_json(),
                headers={"Content-Type": "application/json", **self._authorization},
                timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as err:
            raise WorkerError(f"{self.url}{path}: {err.__class__.__name__}: {err}") from err
        if reply.status_code != 200:
            raise WorkerError(f"{self.url}{path}: {reply.status_code} {reply.text[:200]}", reply.status_code)
        try:
            return answer.model_validate_json(reply.content)
        except ValidationError as err:
            raise WorkerError(f"{self.url}{path}: an answer of another shape: {err}") from err

    def execute_batch(self, requests: list[ExecuteRequest], timeout_s: float | None = None) -> list[BatchItem]:
        """Each request's result, or why the worker could not give one."""
        body = ExecuteBatchRequest(requests=requests, chain_id=self.chain_id)
        items = self._call(EXECUTE_BATCH, "/v1/execute-batch", body, ExecuteBatchResponse, timeout_s).results
        return self._checked(requests, items)

    def _checked(self, requests: list[ExecuteRequest], items: list[BatchItem]) -> list[BatchItem]:
        """A whole batch's answers, one to each request, in its place."""
        if len(items) != len(requests):
            raise WorkerError(f"{self.url}: {len(items)} answers to {len(requests)} requests")
        for request, item in zip(requests, items, strict=True):
            self._check_answer(request, item)
        return items

    def execute_each(self, requests: list[ExecuteRequest], timeout_s: float) -> Parts:
        """Each request's result, or why the worker could not give one, with its place in
        `requests`, in parts as the worker has them: by the execute stream, where the worker
        must answer or say it is still running at least every `timeout_s` (the slowest agent's
        time to answer) and answer all within that time per request; by HTTP all at once,
        within that time per request its processes run side by side. Raises WorkerError for
        what it did not answer."""
        answered: set[int] = set()
        stream = self._stream_to_use()
        if stream is not None:
            try:
                yield from self._each_streamed(stream, requests, timeout_s, answered)
                return
            except WorkerError as err:
                if err.status_code != 400:
                    raise
                # A worker of an older release, whose stream has no such call: by HTTP.
            except OSError as err:
                # No proven connection, or the one in use broke: as in `_streamed`.
                where = self._where(stream)
                log.warning("%s: %s: %s; by HTTP for %.0f s", where, err.__class__.__name__, err, STREAM_RECHECK_S)
                self._forget_stream(stream)
                # A stream port gone silent may be a hung worker: asked by HTTP, which has no
                # heartbeat, it would hold the batch for all its requests' time. Only a worker
                # that answers its health check gets it.
                if not self.healthy(min(timeout_s, HEALTH_CHECK_S)):
                    raise WorkerError(f"{where}: no stream, and no answer to a health check") from err
        rest = [i for i in range(len(requests)) if i not in answered]
        body = ExecuteBatchRequest(requests=[requests[i] for i in rest], chain_id=self.chain_id)
        http_timeout_s = timeout_s * math.ceil(len(rest) / WORKER_PARALLELISM)
        items = self._post("/v1/execute-batch", body, ExecuteBatchResponse, http_timeout_s).results
        yield list(zip(rest, self._checked(body.requests, items), strict=True))

    def _each_streamed(
        self, stream: StreamConnections, requests: list[ExecuteRequest], timeout_s: float, answered: set[int]
    ) -> Parts:
        """`execute_each` by the stream; `answered` grows with each part handed on."""
        where = self._where(stream)
        payload = ExecuteBatchRequest(requests=requests, chain_id=self.chain_id).model_dump_json().encode()
        try:
            parted = stream.call_in_parts(EXECUTE_EACH, payload, timeout_s, timeout_s * len(requests))
        except TimeoutError as err:  # a proven connection, and no answer: the worker is slow or hung
            raise WorkerError(f"{where}: no answer within {timeout_s:.1f} s") from err
        try:
            status, body = parted.first
            while True:
                if status == PART:
                    part = self._part(where, requests, answered, body)
                    answered.update(place for place, _ in part)
                    yield part
                    if len(answered) == len(requests):
                        parted.finish()
                        return
                elif status != STILL_RUNNING:
                    raise WorkerError(f"{where}: {status} {body[:200].decode(errors='replace')}", status)
                try:
                    status, body = parted.next(timeout_s)
                except TimeoutError as err:
                    left = len(requests) - len(answered)
                    raise WorkerError(f"{where}: {left} of {len(requests)} unanswered in time") from err
        finally:
            parted.abandon()  # unless finished: what comes late must not be read as another call's

    def _part(
        self, where: str, requests: list[ExecuteRequest], answered: set[int], payload: bytes
    ) -> list[tuple[int, BatchItem]]:
        """A part's answers, checked whole before any is used: each of a request of the batch
        not answered before, and of that request."""
        try:
            answers = ExecuteEachPart.model_validate_json(payload).answers
        except ValidationError as err:
            raise WorkerError(f"{where}: a part of another shape: {err}") from err
        places = [answer.index for answer in answers]
        if len(set(places)) != len(places) or any(p >= len(requests) or p in answered for p in places):
            raise WorkerError(f"{where}: answers to places {places}, of {len(requests)} ({len(answered)} answered)")
        for answer in answers:
            self._check_answer(requests[answer.index], answer.item)
        return [(answer.index, answer.item) for answer in answers]

    def _where(self, stream: StreamConnections) -> str:
        return f"{self.url} (execute stream, port {stream.port})"

    def _check_answer(self, request: ExecuteRequest, item: BatchItem) -> None:
        if item.result is not None and not _answers(item.result, request):
            # Filed under this request, it would wait for a delivery the chain refuses.
            raise WorkerError(f"{self.url}: an answer to request {item.result.request_id} in another's place")

    def _call(self, call: int, path: str, body: Wire, answer: type[W], timeout_s: float | None) -> W:
        """`body` by the stream's `call` if the worker has a stream to use, else by HTTP."""
        stream = self._stream_to_use()
        timeout = timeout_s if timeout_s is not None else self.timeout
        try:
            streamed = self._streamed(stream, call, body, answer, timeout) if stream else None
        except WorkerError as err:
            if err.status_code != 400:
                raise
            streamed = None  # a worker of an older release, whose stream has no such call
        return streamed if streamed is not None else self._post(path, body, answer, timeout_s)

    def _streamed(
        self, stream: StreamConnections, call: int, body: Wire, answer: type[W], timeout_s: float
    ) -> W | None:
        """The worker's answer by its stream; None when the stream cannot be used now (gone
        with a restart, or no connection to be had), for the HTTP API to be asked instead. A
        worker that does not answer in time has failed, whichever way it was asked."""
        where = self._where(stream)
        try:
            status, payload = stream.call(call, body.model_dump_json().encode(), timeout_s)
        except TimeoutError as err:  # a proven connection, and no answer: the worker is slow or hung
            raise WorkerError(f"{where}: no answer within {timeout_s:.1f} s") from err
        except OSError as err:
            # No proven connection (whatever now holds the port is not the worker, or refuses),
            # or the one in use broke: the HTTP API answers this call, and the stream is looked
            # up afresh in a while. (A worker that refuses the token refuses it there too.)
            log.warning("%s: %s: %s; by HTTP for %.0f s", where, err.__class__.__name__, err, STREAM_RECHECK_S)
            self._forget_stream(stream)
            return None
        if status != 200:
            raise WorkerError(f"{where}: {status} {payload[:200].decode(errors='replace')}", status)
        try:
            return answer.model_validate_json(payload)
        except ValidationError as err:
            raise WorkerError(f"{where}: an answer of another shape: {err}") from err

    def _stream_to_use(self) -> StreamConnections | None:
        """The worker's execute stream, asked of its `/v1/info` at first and again a while
        after it was found to have none (or it failed)."""
        with self._stream_lock:
            if self._stream is not None or time.monotonic() - self._stream_checked_at < STREAM_RECHECK_S:
                return self._stream
            self._stream_checked_at = time.monotonic()
        try:
            reply = self._http.get("/v1/info", timeout=min(self.timeout, 5.0))
            port = int((reply.json().get("stream") or {}).get("port") or 0) if reply.status_code == 200 else 0
        except (httpx.HTTPError, ValueError, AttributeError, TypeError):
            port = 0  # an old worker, or none answering: HTTP it is, for now
        host = urlsplit(self.url).hostname
        with self._stream_lock:
            if port and host and self._stream is None:
                self._stream = StreamConnections(host, port, self._token, connect_timeout_s=min(self.timeout, 5.0))
            return self._stream

    def _forget_stream(self, stream: StreamConnections) -> None:
        with self._stream_lock:
            if self._stream is stream:
                self._stream, self._stream_checked_at = None, time.monotonic()
        stream.close()

    def sign_batch(self, results: list[ExecuteResponse], timeout_s: float | None = None) -> CompactSignature:
        body = SignBatchRequest(results=results, chain_id=self.chain_id)
        return self._call(SIGN_BATCH, "/v1/sign-batch", body, SignatureModel, timeout_s).to_signature()

    def close(self) -> None:
        self._http.close()
        with self._stream_lock:
            if self._stream is not None:
                self._stream.close()
