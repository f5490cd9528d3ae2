"""The worker's HTTP API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from starlette.responses import Response

from coprocessor import metrics
from coprocessor.errors import CodeNotFound
from coprocessor.metrics import metrics_response
from coprocessor.wire import ExecuteRequest, ExecuteResponse, SignatureModel, SignBatchRequest
from coprocessor.worker.service import NotReady, Worker


def create_app(worker: Worker) -> FastAPI:
    app = FastAPI(title=f"Enclave Agents worker {worker.name}")

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

    @app.post("/v1/execute")
    def execute(body: ExecuteRequest) -> ExecuteResponse:
        try:
            return worker.execute(body)
        except NotReady as err:
            raise HTTPException(status_code=503, detail=str(err)) from err
        except CodeNotFound as err:
            # Infrastructure, not the agent's fault: the bridge retries on another worker.
            raise HTTPException(status_code=502, detail=str(err)) from err

    @app.post("/v1/sign-batch")
    def sign_batch(body: SignBatchRequest) -> SignatureModel:
        try:
            return SignatureModel.of(worker.sign_batch(body.results))
        except NotReady as err:
            raise HTTPException(status_code=503, detail=str(err)) from err
        except ValueError as err:
            raise HTTPException(status_code=422, detail=str(err)) from err

    return app
