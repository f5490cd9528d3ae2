"""The HTTP client of a worker: what the bridge (and the dashboard) use, never the internals."""

from __future__ import annotations

from typing import TypeVar

import httpx
from pydantic import ValidationError

from bridge.errors import BridgeError
from protocol.results import CompactSignature
from protocol.wire import (
    BatchItem,
    ExecuteBatchRequest,
    ExecuteBatchResponse,
    ExecuteRequest,
    ExecuteResponse,
    SignatureModel,
    SignBatchRequest,
    Wire,
)

W = TypeVar("W", bound=Wire)


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


class WorkerClient:
    def __init__(self, url: str, timeout: float = 30.0, token: str = "", chain_id: int | None = None) -> None:
        self.url = url.rstrip("/")
        # The chain this client's requests are of: a worker may serve several.
        self.chain_id = chain_id
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

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
                headers={"Content-Type": "application/json"},
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
        items = self._post("/v1/execute-batch", body, ExecuteBatchResponse, timeout_s).results
        if len(items) != len(requests):
            raise WorkerError(f"{self.url}: {len(items)} answers to {len(requests)} requests")
        return items

    def sign_batch(self, results: list[ExecuteResponse], timeout_s: float | None = None) -> CompactSignature:
        body = SignBatchRequest(results=results, chain_id=self.chain_id)
        return self._post("/v1/sign-batch", body, SignatureModel, timeout_s).to_signature()

    def close(self) -> None:
        self._http.close()
