"""`python -m bridge`: runs the bridge from ENCLAVE_BRIDGE_* settings."""

from __future__ import annotations

import logging

import uvicorn

from bridge.app import create_app
from bridge.service import Bridge
from bridge.settings import BridgeSettings


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP call is noise
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bridge %(levelname)s %(message)s")
    bridge = Bridge(BridgeSettings())
    bridge.start()
    try:
        uvicorn.run(create_app(bridge), host=bridge.settings.host, port=bridge.settings.port, log_level="warning")
    finally:
        bridge.stop()


if __name__ == "__main__":
    main()
