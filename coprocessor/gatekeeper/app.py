"""The gatekeeper's HTTP API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException

from coprocessor.errors import AttestationError
from coprocessor.gatekeeper.service import Gatekeeper
from coprocessor.tee.base import Quote
from coprocessor.wire import ProvisionRequest, ProvisionResponse, from_hex, to_hex


def create_app(gatekeeper: Gatekeeper) -> FastAPI:
    app = FastAPI(title="Enclave Agents gatekeeper")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/info")
    def info() -> dict[str, Any]:
        return gatekeeper.info()

    @app.post("/v1/provision")
    def provision(body: ProvisionRequest) -> ProvisionResponse:
        try:
            quote = Quote.from_dict(body.quote)
            epoch, sealed = gatekeeper.provision(quote, from_hex(body.identityPublicKey))
        except (AttestationError, KeyError, ValueError) as err:
            raise HTTPException(status_code=403, detail=f"attestation refused: {err}") from err
        return ProvisionResponse(epoch=epoch, sealedClusterKey=to_hex(sealed))

    return app
