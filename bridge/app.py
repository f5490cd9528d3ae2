"""The bridge's HTTP API: health and status for `enclave status` and the dashboard."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from bridge.service import Bridge


def create_app(bridge: Bridge) -> FastAPI:
    app = FastAPI(title="Enclave Agents bridge")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    registry = bridge.metrics.registry

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/status")
    def status() -> dict[str, Any]:
        return bridge.status()

    @app.get("/v1/requests/{request_id}")
    def request(request_id: str) -> dict[str, Any]:
        stored = bridge.store.get(int(request_id, 0))
        if stored is None:
            raise HTTPException(status_code=404, detail="unknown request")
        row = {k: v for k, v in stored.row.items() if k not in ("input", "output", "result")}
        calls = stored.result.get("calls", []) if stored.result else []
        sealed_logs = stored.result.get("sealedLogs") if stored.result else None
        return {
            **row,
            "calls": calls,
            "sealedLogs": sealed_logs,
            "transitions": bridge.store.transitions(stored.request_id),
        }

    return app
