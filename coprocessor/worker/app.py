"""The worker's HTTP API."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException
from starlette.responses import Response

from coprocessor import metrics
from coprocessor.errors import CodeNotFound, CoprocessorError, HostUnavailable, NotReady, RequestRefused
from coprocessor.metrics import metrics_response
from coprocessor.worker.service import Worker
from protocol.wire import (
    BatchItem,
    ExecuteBatchRequest,
    ExecuteBatchResponse,
    ExecuteRequest,
    ExecuteResponse,
    SignatureModel,
    SignBatchRequest,
)


def create_app(worker: Worker, execute_token: str) -> FastAPI:
    """The worker's API; running and signing need `Authorization: Bearer <execute_token>`.

    The token is defence in depth, not what makes results trustworthy (the chain and the
    worker's own checks do that): it keeps other local processes from using the worker's time.
    """
    app = FastAPI(title=f"Enclave Agents worker {worker.name}")

    def caller_is_the_bridge(authorization: Annotated[str, Header()] = "") -> None:
        supplied = authorization.removeprefix("Bearer ").encode()
        if not execute_token or not hmac.compare_digest(supplied, execute_token.encode()):
            raise HTTPException(status_code=401, detail="a valid execute token is required")

    authenticated = [Depends(caller_is_the_bridge)]

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        if not worker.ready:
            raise HTTPException(status_code=503, detail=f"no key for the current epoch {worker.chain_epoch}")
        return {"status": "ok", "epoch": worker.chain_epoch}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return metrics_response(metrics.WORKER)

    @app.get("/v1/info")
    def info() -> dict[str, Any]:
        return worker.info()

    @app.post("/v1/execute", dependencies=authenticated)
    def execute(body: ExecuteRequest) -> ExecuteResponse:
        try:
            return worker.execute(body)
        except CoprocessorError as err:
            raise HTTPException(status_code=_status_of(err), detail=str(err)) from err

    @app.post("/v1/execute-batch", dependencies=authenticated)
    def execute_batch(body: ExecuteBatchRequest) -> ExecuteBatchResponse:
        """Each request of the batch answered as `/v1/execute` would have answered it alone."""
        items = [
            BatchItem(status_code=_status_of(answer), error=str(answer))
            if isinstance(answer, CoprocessorError)
            else BatchItem(result=answer)
            for answer in worker.execute_batch(body.requests)
        ]
        return ExecuteBatchResponse(results=items)

    @app.post("/v1/sign-batch", dependencies=authenticated)
    def sign_batch(body: SignBatchRequest) -> SignatureModel:
        try:
            return SignatureModel.of(worker.sign_batch(body.results))
        except NotReady as err:
            raise HTTPException(status_code=503, detail=str(err)) from err
        except ValueError as err:
            raise HTTPException(status_code=422, detail=str(err)) from err

    return app


def _status_of(err: CoprocessorError) -> int:
    if isinstance(err, RequestRefused):
        return 409
    if isinstance(err, NotReady | HostUnavailable):
        return 503
    if isinstance(err, CodeNotFound):
        # Infrastructure, not the agent's fault: the bridge retries on another worker.
        return 502
    raise err
