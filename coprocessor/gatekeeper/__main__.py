"""`python -m coprocessor.gatekeeper`: runs a gatekeeper from ENCLAVE_GATEKEEPER_* settings."""

from __future__ import annotations

import logging

import uvicorn
from eth_account import Account

from coprocessor.gatekeeper.app import create_app
from coprocessor.gatekeeper.service import Gatekeeper
from coprocessor.settings import GatekeeperSettings


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP call is noise
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gatekeeper %(levelname)s %(message)s")
    settings = GatekeeperSettings()
    w3 = settings.web3()
    account = Account.from_key(settings.eth_private_key.get_secret_value())
    gatekeeper = Gatekeeper(
        w3, settings.load_deployment(), account, settings.tee(), settings.verifier(), settings.state_dir
    )
    gatekeeper.ensure_epoch()
    uvicorn.run(create_app(gatekeeper), host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
