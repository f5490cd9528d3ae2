"""The gatekeeper's HTTP API."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from eth_utils.exceptions import ValidationError
from fastapi import FastAPI, HTTPException, Path
from starlette.responses import Response
from web3.exceptions import ContractLogicError

from coprocessor import metrics
from coprocessor.errors import AttestationError, CoprocessorError
from coprocessor.gatekeeper.service import Gatekeeper
from coprocessor.keys import KeyDomain
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

# Agent ids are uint256 on-chain and start at 1.
AgentId = Annotated[int, Path(ge=1, lt=2**256)]
log = logging.getLogger(__name__)


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
                Quote.from_dict(body.quote),
                from_hex(body.identity_public_key),
                body.address,
                from_hex(body.signature),
                KeyDomain(body.chain_id, body.registry),
            )
        except (AttestationError, KeyError, ValueError) as err:
            log.warning("refused a gatekeeper's join (%s): %s", body.address, err)
            raise HTTPException(status_code=403, detail=f"join refused: {err}") from err
        return {"sealedMasterKeys": to_hex(sealed)}

    @app.get("/v1/agents/{agent_id}/encryption-key")
    def agent_key(agent_id: AgentId) -> dict[str, Any]:
        return gatekeeper.agent_public_key(agent_id)

    @app.put("/v1/agents/{agent_id}/secrets")
    def agent_secrets(agent_id: AgentId, body: AgentSecretsRequest) -> dict[str, Any]:
        try:
            gatekeeper.set_agent_secrets(
                agent_id, body.epoch, body.version, from_hex(body.sealed), from_hex(body.signature)
            )
        except ContractLogicError as err:
            raise HTTPException(status_code=404, detail=f"no agent {agent_id} on-chain") from err
        except (AttestationError, CoprocessorError, ValueError, ValidationError) as err:
            raise HTTPException(status_code=403, detail=str(err)) from err
        return {"agentId": agent_id, "epoch": body.epoch, "stored": True}

    return app
