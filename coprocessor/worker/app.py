"""The worker's HTTP API."""

from __future__ import annotations

import hmac
from collections import Counter
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query
from starlette.responses import Response

from coprocessor import metrics
from coprocessor.errors import CoprocessorError, NotReady, WrongChain
from coprocessor.metrics import metrics_response
from coprocessor.worker.chains import ServedChains, status_of
from coprocessor.worker.service import Worker
from protocol.wire import (
    ExecuteBatchRequest,
    ExecuteBatchResponse,
    ExecuteRequest,
    ExecuteResponse,
    SignatureModel,
    SignBatchRequest,
)


def create_app(
    served: Worker | list[Worker] | ServedChains, execute_token: str, stream_port: int | None = None
) -> FastAPI:
    """The worker's API; running and signing need `Authorization: Bearer <execute_token>`.

    One process may serve several chains (`served`: one `Worker` per chain, sharing the sandbox
    and the TEE): a call names its chain (`chainId`), optional while there is only one.
    `stream_port`, when the worker has an execute stream, is named in `/v1/info` for the bridge.

    The token is defence in depth, not what makes results trustworthy (the chain and the
    worker's own checks do that): it keeps other local processes from using the worker's time.
    """
    chains = served if isinstance(served, ServedChains) else ServedChains(served)
    workers, primary = chains.workers, chains.primary
    app = FastAPI(title=f"Enclave Agents worker {primary.name}")

    def worker_for(chain_id: int | None) -> Worker:
        try:
            return chains.worker_for(chain_id)
        except WrongChain as err:
            raise HTTPException(status_code=status_of(err), detail=str(err)) from err

    # Async, though it does no I/O: FastAPI runs a sync dependency on its thread pool, a hop that
    # cost more than the check.
    async def caller_is_the_bridge(authorization: Annotated[str, Header()] = "") -> None:
        if not token_matches(authorization.removeprefix("Bearer ").encode(), execute_token):
            raise HTTPException(status_code=401, detail="a valid execute token is required")

    authenticated = [Depends(caller_is_the_bridge)]

    @app.get("/healthz")
    def healthz(chain_id: Annotated[int | None, Query(alias="chainId")] = None) -> dict[str, Any]:
        """Ready for `chainId` (or, naming none, for every chain it serves)."""
        checked = [worker_for(chain_id)] if chain_id is not None else workers
        for worker in checked:
            if not worker.ready:
                raise HTTPException(
                    status_code=503, detail=f"no key for chain {worker.chain_id}'s current epoch {worker.chain_epoch}"
                )
        return {"status": "ok", "epoch": checked[0].chain_epoch, "chains": {w.chain_id: w.chain_epoch for w in checked}}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return metrics_response(metrics.WORKER)

    @app.get("/v1/info")
    def info() -> dict[str, Any]:
        """The first chain's keys at the top level (as a one-chain worker gives them), and every
        chain's under `chains`; `ready` and `executions` are of all chains."""
        executions: Counter[str] = sum((worker.executions for worker in workers), Counter())
        return primary.info() | {
            "ready": all(worker.ready for worker in workers),
            "executions": dict(executions),
            "chains": [worker.chain_info() for worker in workers],
            "stream": {"port": stream_port} if stream_port else None,
        }

    @app.post("/v1/execute", dependencies=authenticated)
    def execute(
        body: ExecuteRequest, chain_id: Annotated[int | None, Query(alias="chainId")] = None
    ) -> ExecuteResponse:
        try:
            return worker_for(chain_id).execute(body)
        except CoprocessorError as err:
            raise HTTPException(status_code=status_of(err), detail=str(err)) from err

    @app.post("/v1/execute-batch", dependencies=authenticated, response_model=ExecuteBatchResponse)
    def execute_batch(body: ExecuteBatchRequest) -> Response:
        """Each request of the batch answered as `/v1/execute` would have answered it alone.
        The answer is written by pydantic directly: FastAPI's validating it again and encoding
        it field by field cost more than a small agent's run."""
        try:
            answer = chains.execute_batch(body)
        except WrongChain as err:
            raise HTTPException(status_code=status_of(err), detail=str(err)) from err
        return Response(answer.model_dump_json(), media_type="application/json")

    @app.post("/v1/sign-batch", dependencies=authenticated)
    def sign_batch(body: SignBatchRequest) -> SignatureModel:
        try:
            return SignatureModel.of(worker_for(body.chain_id).sign_batch(body.results))
        except NotReady as err:
            raise HTTPException(status_code=503, detail=str(err)) from err
        except ValueError as err:
            raise HTTPException(status_code=422, detail=str(err)) from err

    return app


def token_matches(supplied: bytes, execute_token: str) -> bool:
    """Whether a caller presented the execute token (an empty token refuses everyone)."""
    return bool(execute_token) and hmac.compare_digest(supplied, execute_token.encode())
