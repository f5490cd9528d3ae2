"""`python -m webui`: the dashboard, from ENCLAVE_WEB_* settings."""

from __future__ import annotations

import logging

import uvicorn

from bridge.store import RequestStore
from coprocessor.tee.simulated import SimulatedVerifier, load_authority_public_key
from protocol.deployment import Deployment, connect
from webui.app import create_app
from webui.auth import Auth
from webui.dashboard import Dashboard
from webui.settings import WebSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s web %(levelname)s %(message)s")
    settings = WebSettings()
    w3 = connect(settings.rpc_url, 10.0)
    verifier = None
    if settings.attestation_authority_public_key.exists():
        verifier = SimulatedVerifier(load_authority_public_key(settings.attestation_authority_public_key))
    dashboard = Dashboard(
        w3,
        Deployment.load(settings.deployment),
        RequestStore(settings.bridge_store_url.get_secret_value() or settings.bridge_database, readonly=True),
        settings.worker_urls,
        settings.gatekeeper_urls,
        verifier,
        settings.operator_key.get_secret_value(),
    )
    auth = Auth(
        settings.admin_token_sha256,
        settings.session_secret.get_secret_value().encode(),
        session_ttl=settings.session_ttl_seconds,
    )
    app = create_app(
        dashboard, auth, settings.require_login_for_reading, simulated_tee=settings.tee_backend == "simulated"
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
