"""`python -m bridge`: runs the bridge from ENCLAVE_BRIDGE_* settings."""

from __future__ import annotations

import logging
import sys

import uvicorn

from bridge.app import create_app
from bridge.service import Bridge
from bridge.settings import BridgeSettings

# A request moves from thread to thread (the new head's, the watcher's, a dispatch's, the
# submitter's), and a thread woken for it waits for the interpreter until the one holding it
# blocks or this long has passed: at Python's default, 5 ms, that wait was much of an idle
# request's time whenever another thread was busy (the watcher on the next block, say).
SWITCH_INTERVAL_S = 0.0005


def main() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
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
