"""The gatekeeper's HTTP API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from starlette.responses import Response

from coprocessor import metrics
from coprocessor.errors import AttestationError, CoprocessorError
from coprocessor.gatekeeper.service import Gatekeeper
from coprocessor.metrics import metrics_response
from coprocessor.tee.base import Quote
from protocol.wire import (
    AgentSecretsRequest,
    JoinRequest,
    ProvisionRequest,
    ProvisionResponse,
    from_hex,
    to_hex,
)


def create_app(gatekeeper: Gatekeeper) -> FastAPI:
    app = FastAPI(title="Enclave Agents gatekeeper")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        metrics.GATEKEEPER_EPOCH.set(gatekeeper.current_epoch())
        return metrics_response(metrics.GATEKEEPER)

    @app.get("/v1/info")
    def info() -> dict[str, Any]:
        return gatekeeper.info()

    @app.post("/v1/provision")
    def provision(body: ProvisionRequest) -> ProvisionResponse:
        try:
            quote = Quote.from_dict(body.quote)
            epoch, sealed = gatekeeper.provision(quote, from_hex(body.identity_public_key))
        except (AttestationError, KeyError, ValueError) as err:
            raise HTTPException(status_code=403, detail=f"attestation refused: {err}") from err
        except CoprocessorError as err:  # for example, still fetching a new epoch's key from a peer
            raise HTTPException(status_code=503, detail=str(err)) from err
        return ProvisionResponse(epoch=epoch, sealed_cluster_key=to_hex(sealed))

    @app.post("/v1/gatekeepers/join")
    def join(body: JoinRequest) -> dict[str, str]:
        try:
            sealed = gatekeeper.share_masters(
                Quote.from_dict(body.quote), from_hex(body.identity_public_key), body.address, from_hex(body.signature)
            )
        except (AttestationError, KeyError, ValueError) as err:
            raise HTTPException(status_code=403, detail=f"join refused: {err}") from err
        return {"sealedMasterKeys": to_hex(sealed)}

    @app.get("/v1/agents/{agent_id}/encryption-key")
    def agent_key(agent_id: int) -> dict[str, Any]:
        return gatekeeper.agent_public_key(agent_id)

    @app.put("/v1/agents/{agent_id}/secrets")
    def agent_secrets(agent_id: int, body: AgentSecretsRequest) -> dict[str, Any]:
        try:
            gatekeeper.set_agent_secrets(
                agent_id, body.epoch, body.version, from_hex(body.sealed), from_hex(body.signature)
            )
        except (AttestationError, CoprocessorError, ValueError) as err:
            raise HTTPException(status_code=403, detail=str(err)) from err
        return {"agentId": agent_id, "epoch": body.epoch, "stored": True}

    return app
