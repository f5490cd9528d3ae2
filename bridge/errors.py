"""The base exception of the bridge.

BridgeError
├── StoreVersionError    bridge.sqlite was written by a newer bridge
└── WorkerError          a worker answered with an error or did not answer (bridge/worker_client.py)
"""

from __future__ import annotations


class BridgeError(Exception):
    pass
